/**
 * An image's layers flattened into one stream of entries, without unpacking
 * anything on the host (OCI image-spec `layer.md`: changesets, whiteouts).
 *
 * Layers are read bottom first, so parents come before children (the kernel's
 * initramfs unpacker needs that). To know which lower entries a higher layer
 * replaces or deletes, the layers above the bottom one are scanned once for
 * their paths first (headers only): memory holds paths, never contents.
 */
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DockyardError } from '../errors.js';
import { defaultLimits, formatSize, MaxEpoch, MaxId } from '../limits.js';
import type { BlobStore, Descriptor } from '../oci/types.js';
import { readTar, type TarHeader } from '../archive/tarread.js';
import type { Entry, EntryType } from './entry.js';

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/**
 * A layer path made relative and clean: no leading `/` or `./`, no trailing
 * `/`, no `.` parts. `..` is refused: nothing may name a path outside the root.
 * Returns '' for the root itself.
 */
export function cleanPath(raw: string, label: string): string {
  const parts: string[] = [];
  for (const p of raw.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new DockyardError('E_LAYER_UNSAFE', `${label}: entry "${raw}" climbs out of the root with ".."`);
    parts.push(p);
  }
  return parts.join('/');
}

function ancestors(p: string): string[] {
  const out: string[] = [];
  let i = p.indexOf('/');
  while (i !== -1) {
    out.push(p.slice(0, i));
    i = p.indexOf('/', i + 1);
  }
  return out;
}

/** A stream of at most `max` bytes: one more fails it with `tooMany()`. */
class Cap extends Transform {
  private n = 0;
  constructor(
    private readonly max: number,
    private readonly tooMany: () => Error,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    if (this.n > this.max) cb(this.tooMany());
    else cb(null, chunk);
  }
}

export function layerTooLarge(label: string, what: string, max: number): DockyardError {
  return new DockyardError('E_LIMIT', `${label}: ${what} is larger than ${formatSize(max)} uncompressed (--max-layer-size raises the limit)`);
}

/**
 * Open a layer blob as a stream of uncompressed tar bytes, at most `max` of
 * them. The store hashes the blob as it streams (pkg/cache: a mismatch at
 * the end fails the stream with E_CACHE_CORRUPT).
 */
export async function openLayer(store: BlobStore, desc: Descriptor, label: string, max = defaultLimits.layerBytes): Promise<Readable> {
  const mt = desc.mediaType ?? '';
  if (/zstd/.test(mt)) throw new DockyardError('E_LAYER_FORMAT', `${label}: zstd-compressed layers (${desc.digest}) are not supported`);
  const raw = await store.open(desc.digest, `${label}: blob ${desc.digest}`);
  const cap = new Cap(max, () => layerTooLarge(label, `layer ${desc.digest}`, max));
  if (/gzip/.test(mt) || mt === '') {
    // Large output chunks: far fewer thread-pool round trips than the 16 KiB default.
    const gz = createGunzip({ chunkSize: 512 * 1024 });
    pipeline(raw, gz, cap, () => {});
  } else {
    pipeline(raw, cap, () => {});
  }
  return cap;
}

/**
 * Why reading a layer failed, in one line naming it. A cached blob that no
 * longer hashes to its digest is the cause whenever it is so (a flipped byte
 * shows up first as a gzip or tar error): the store's verify() then evicts
 * it and says so.
 */
async function explain(store: BlobStore, desc: Descriptor, label: string, e: unknown): Promise<unknown> {
  if (e instanceof DockyardError && (e.code === 'E_CACHE_CORRUPT' || e.code === 'E_INTERRUPTED')) return e;
  if (store.verify) {
    try {
      await store.verify(desc.digest, `${label}: blob ${desc.digest}`);
    } catch (v) {
      return v;
    }
  }
  if (e instanceof DockyardError) return e;
  const why = (e as NodeJS.ErrnoException)?.code === 'Z_DATA_ERROR' || /incorrect header|invalid|unexpected end/i.test(String((e as Error)?.message)) ? `not a valid gzip stream (${(e as Error).message})` : (e as Error)?.message ?? String(e);
  return new DockyardError('E_LAYER_FORMAT', `${label}: layer ${desc.digest}: ${why}`, { cause: e });
}

/** The checked entries of one layer, read to its end (which completes the store's digest check). */
async function* layerEntries(store: BlobStore, desc: Descriptor, label: string, max: number): AsyncGenerator<{ entry: Entry; raw: TarHeader }> {
  const stream = await openLayer(store, desc, label, max);
  try {
    yield* tarEntries(stream, label, max);
  } catch (e) {
    throw await explain(store, desc, label, e);
  } finally {
    stream.destroy();
  }
}

const typeMap: Record<string, EntryType | undefined> = {
  file: 'file',
  dir: 'dir',
  symlink: 'symlink',
  hardlink: 'hardlink',
  char: 'char',
  block: 'block',
  fifo: 'fifo',
};

/** Header values every writer can carry: ids in 0..2^32-2, device numbers in 32 bits, sizes within the limit. */
function checkHeader(h: TarHeader, label: string, max: number): void {
  const bad = (what: string) => new DockyardError('E_LAYER_UNSAFE', `${label}: entry "${h.name}" has ${what}`);
  if (!(h.uid >= 0 && h.uid <= MaxId && Number.isInteger(h.uid))) throw bad(`uid ${h.uid}, outside 0..${MaxId}`);
  if (!(h.gid >= 0 && h.gid <= MaxId && Number.isInteger(h.gid))) throw bad(`gid ${h.gid}, outside 0..${MaxId}`);
  if (!(h.devmajor >= 0 && h.devmajor <= 0xffffffff) || !(h.devminor >= 0 && h.devminor <= 0xffffffff)) throw bad(`device number ${h.devmajor}:${h.devminor}, outside 32 bits`);
  if (h.name.includes('\0') || h.linkname.includes('\0')) throw bad('a NUL byte in its name or link');
  if (h.size > max) throw layerTooLarge(label, `entry "${h.name}" (${formatSize(h.size)})`, max);
}

/** Entries of a tar stream (a layer or a kernel.tar), cleaned and checked. */
export async function* tarEntries(source: AsyncIterable<Buffer>, label: string, max = defaultLimits.layerBytes): AsyncGenerator<{ entry: Entry; raw: TarHeader }> {
  for await (const { header, body } of readTar(source, label)) {
    const type = typeMap[header.type];
    if (!type) continue; // unknown typeflags (e.g. GNU sparse) are not image content
    checkHeader(header, label, max);
    const path = cleanPath(header.name, label);
    if (path === '') continue;
    const entry: Entry = {
      path,
      type,
      mode: header.mode,
      uid: header.uid,
      gid: header.gid,
      size: type === 'file' ? header.size : 0,
      // Times every output can carry (cpio: 32 bits); a layer's time is kept when it fits.
      mtime: Math.min(Math.max(header.mtime, 0), MaxEpoch),
    };
    if (type === 'symlink') entry.linkname = header.linkname;
    if (type === 'hardlink') {
      const target = cleanPath(header.linkname, label);
      if (target === '') throw new DockyardError('E_LAYER_UNSAFE', `${label}: hard link "${header.name}" points at the root`);
      entry.linkname = target;
    }
    if (type === 'char' || type === 'block') {
      entry.devmajor = header.devmajor;
      entry.devminor = header.devminor;
    }
    if (type === 'file') entry.body = body;
    yield { entry, raw: header };
  }
}

interface Shadow {
  /** Highest layer index writing the path. */
  top: Map<string, number>;
  /** Highest layer index writing the path as a non-directory (hides children below). */
  nondir: Map<string, number>;
  /** Highest layer index deleting the path (`.wh.name`). */
  whiteout: Map<string, number>;
  /** Highest layer index making the directory opaque (`.wh..wh..opq`). */
  opaque: Map<string, number>;
}

function raise(m: Map<string, number>, k: string, i: number): void {
  const v = m.get(k);
  if (v === undefined || v < i) m.set(k, i);
}

async function scan(store: BlobStore, layers: Descriptor[], label: string, max: number): Promise<Shadow> {
  const s: Shadow = { top: new Map(), nondir: new Map(), whiteout: new Map(), opaque: new Map() };
  for (let i = 1; i < layers.length; i++) {
    for await (const { entry, raw } of layerEntries(store, layers[i], `${label} layer ${i}`, max)) {
      const p = entry.path;
      const base = p.slice(p.lastIndexOf('/') + 1);
      const dir = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      if (base === OPAQUE) raise(s.opaque, dir, i);
      else if (base.startsWith(WH)) raise(s.whiteout, dir ? `${dir}/${base.slice(WH.length)}` : base.slice(WH.length), i);
      else {
        raise(s.top, p, i);
        if (raw.type !== 'dir') raise(s.nondir, p, i);
      }
    }
  }
  return s;
}

function hidden(s: Shadow, p: string, layer: number): boolean {
  if ((s.top.get(p) ?? -1) > layer) return true;
  if ((s.whiteout.get(p) ?? -1) > layer) return true;
  for (const a of ancestors(p)) {
    if ((s.whiteout.get(a) ?? -1) > layer) return true;
    if ((s.opaque.get(a) ?? -1) > layer) return true;
    if ((s.nondir.get(a) ?? -1) > layer) return true;
  }
  return false;
}

/**
 * What an extractor of the output would do wrong, refused as entries stream
 * by: an entry below a symlink written earlier (extraction would follow the
 * link and write outside the root), and a hard link whose target is not an
 * earlier non-directory entry of the same stream, or lies below a symlink
 * (extraction would link a file of the host, or fail).
 */
export class LinkGuard {
  private readonly symlinks = new Set<string>();
  private readonly linkable = new Set<string>();
  constructor(private readonly label: string) {}

  private unsafe(message: string): DockyardError {
    return new DockyardError('E_LAYER_UNSAFE', `${this.label}: ${message}`);
  }

  check(e: Entry): void {
    for (const a of ancestors(e.path)) {
      if (this.symlinks.has(a)) throw this.unsafe(`entry "${e.path}" lies below the symlink "${a}"`);
    }
    if (e.type === 'hardlink') {
      const t = e.linkname ?? '';
      for (const a of ancestors(t)) {
        if (this.symlinks.has(a)) throw this.unsafe(`hard link "${e.path}" points through the symlink "${a}" (at "${t}")`);
      }
      if (!this.linkable.has(t)) throw this.unsafe(`hard link "${e.path}" points at "${t}", which is not an earlier file of the same image`);
    }
    if (e.type === 'symlink') this.symlinks.add(e.path);
    else this.symlinks.delete(e.path);
    if (e.type === 'dir') this.linkable.delete(e.path);
    else this.linkable.add(e.path);
  }
}

export interface FlattenOptions {
  /** Decompressed bytes of one layer (default: defaultLimits.layerBytes). */
  maxLayerBytes?: number;
}

/**
 * The flattened filesystem of an image: every entry that survives the
 * layers above it, bottom layer first, whiteouts applied and dropped,
 * checked by a LinkGuard. A consumer that stops before the end has not had
 * every blob hashed: it calls `verifyLayers` before trusting what it read.
 */
export async function* flattenLayers(store: BlobStore, layers: Descriptor[], label: string, o: FlattenOptions = {}): AsyncGenerator<Entry> {
  const max = o.maxLayerBytes ?? defaultLimits.layerBytes;
  const shadow = layers.length > 1 ? await scan(store, layers, label, max) : undefined;
  const guard = new LinkGuard(label);
  for (let i = 0; i < layers.length; i++) {
    for await (const { entry } of layerEntries(store, layers[i], layers.length > 1 ? `${label} layer ${i}` : label, max)) {
      const base = entry.path.slice(entry.path.lastIndexOf('/') + 1);
      if (base.startsWith(WH)) continue;
      if (shadow && hidden(shadow, entry.path, i)) continue;
      guard.check(entry);
      yield entry;
    }
  }
}

/** Hash every layer blob in full (after a read that stopped early): a corrupt one is evicted and reported. */
export async function verifyLayers(store: BlobStore, layers: Descriptor[], label: string): Promise<void> {
  for (const [i, l] of layers.entries()) await store.verify?.(l.digest, `${layers.length > 1 ? `${label} layer ${i}` : label}: blob ${l.digest}`);
}
