/**
 * An image's layers flattened into one stream of entries, without unpacking
 * anything on the host (OCI image-spec `layer.md`: changesets, whiteouts).
 *
 * Layers are read bottom first, so parents come before children (the kernel's
 * initramfs unpacker needs that). To know which lower entries a higher layer
 * replaces or deletes, the layers above the bottom one are scanned once for
 * their paths first (headers only): memory holds paths, never contents.
 */
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { DockyardError } from '../errors.js';
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

/** Open a layer blob as a stream of uncompressed tar bytes. */
export async function openLayer(store: BlobStore, desc: Descriptor, label: string): Promise<Readable> {
  const mt = desc.mediaType ?? '';
  if (/zstd/.test(mt)) throw new DockyardError('E_LAYER_FORMAT', `${label}: zstd-compressed layers (${desc.digest}) are not supported`);
  const raw = await store.open(desc.digest);
  if (/gzip/.test(mt) || mt === '') {
    // Large output chunks: far fewer thread-pool round trips than the 16 KiB default.
    const gz = createGunzip({ chunkSize: 512 * 1024 });
    return pipeline(raw, gz, () => {}) as unknown as Readable;
  }
  return raw;
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

/** Entries of a tar stream (a layer or a kernel.tar), cleaned and checked. */
export async function* tarEntries(source: AsyncIterable<Buffer>, label: string): AsyncGenerator<{ entry: Entry; raw: TarHeader }> {
  for await (const { header, body } of readTar(source, label)) {
    const type = typeMap[header.type];
    if (!type) continue; // unknown typeflags (e.g. GNU sparse) are not image content
    const path = cleanPath(header.name, label);
    if (path === '') continue;
    const entry: Entry = {
      path,
      type,
      mode: header.mode,
      uid: header.uid,
      gid: header.gid,
      size: type === 'file' ? header.size : 0,
      mtime: header.mtime,
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

async function scan(store: BlobStore, layers: Descriptor[], label: string): Promise<Shadow> {
  const s: Shadow = { top: new Map(), nondir: new Map(), whiteout: new Map(), opaque: new Map() };
  for (let i = 1; i < layers.length; i++) {
    const stream = await openLayer(store, layers[i], label);
    for await (const { header } of readTar(stream, `${label} layer ${i}`)) {
      const p = cleanPath(header.name, label);
      if (p === '') continue;
      const base = p.slice(p.lastIndexOf('/') + 1);
      const dir = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
      if (base === OPAQUE) raise(s.opaque, dir, i);
      else if (base.startsWith(WH)) raise(s.whiteout, dir ? `${dir}/${base.slice(WH.length)}` : base.slice(WH.length), i);
      else {
        raise(s.top, p, i);
        if (header.type !== 'dir') raise(s.nondir, p, i);
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

/** Refuse an entry lying below a symlink written earlier in the same stream (extraction would follow it). */
export function assertNotBelowSymlink(symlinks: Set<string>, path: string, label: string): void {
  for (const a of ancestors(path)) {
    if (symlinks.has(a)) throw new DockyardError('E_LAYER_UNSAFE', `${label}: entry "${path}" lies below the symlink "${a}"`);
  }
}

/**
 * The flattened filesystem of an image: every entry that survives the
 * layers above it, bottom layer first, whiteouts applied and dropped.
 * An entry below a symlink the image itself wrote is refused (it would
 * write through the link when extracted).
 */
export async function* flattenLayers(store: BlobStore, layers: Descriptor[], label: string): AsyncGenerator<Entry> {
  const shadow = layers.length > 1 ? await scan(store, layers, label) : undefined;
  const symlinks = new Set<string>();
  for (let i = 0; i < layers.length; i++) {
    const stream = await openLayer(store, layers[i], label);
    try {
      for await (const { entry } of tarEntries(stream, layers.length > 1 ? `${label} layer ${i}` : label)) {
        const base = entry.path.slice(entry.path.lastIndexOf('/') + 1);
        if (base.startsWith(WH)) continue;
        if (shadow && hidden(shadow, entry.path, i)) continue;
        assertNotBelowSymlink(symlinks, entry.path, label);
        if (entry.type === 'symlink') symlinks.add(entry.path);
        else symlinks.delete(entry.path);
        yield entry;
      }
    } finally {
      stream.destroy();
    }
  }
}
