/**
 * The image cache. It IS an OCI image layout (image-spec image-layout.md), so
 * skopeo (`oci:DIR:REF`), crane and LinuxKit read it:
 *
 *   DIR/oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   DIR/index.json            one entry per reference, annotated with
 *                             org.opencontainers.image.ref.name and
 *                             io.containerd.image.name = canonical ref,
 *                             pointing at the index or manifest the ref named
 *   DIR/blobs/sha256/<hex>    content, written only after its digest verified
 *   DIR/segments/             what builds derive (sealed files: pkg/cache/sealed.ts)
 *   DIR/tmp/run-…/            one scratch directory per run (pkg/cache/scratch.ts)
 *
 * Blobs are written temp → fsync → rename; index.json is changed only under
 * an exclusive lock, read-modify-write, and replaced by rename.
 *
 * Nothing read back is trusted: every blob is hashed as it streams out
 * (open), documents are hashed when read (readDoc), and a blob that does not
 * hash to its name is removed and reported (E_CACHE_CORRUPT), so the next
 * pull or import of its image fetches it again.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { link, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline as pipelineCb, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { DockyardError, isDockyardError } from '../errors.js';
import { checkOutputPath, fsError, isMissing, outputTemp, readRegular, streamRegular } from '../fsutil.js';
import { trackTemp, untrackTemp } from '../tempfiles.js';
import { assertSha256, VerifyDigest } from '../oci/digest.js';
import { blobPath, ContainerdNameAnnotation, DockerArchive, OciLayout, RefNameAnnotation } from '../oci/layout.js';
import { choosePlatform, isIndexType, parseManifest } from '../oci/manifest.js';
import { parseReference } from '../oci/reference.js';
import { RegistryClient, type RegistryOptions } from '../oci/registry/client.js';
import { makeHandle, MaxDocumentBytes, parseConfig, resolveFrom, type ManifestSource } from '../oci/source.js';
import type { BlobStore, Descriptor, ImageHandle, Index, Manifest, Platform } from '../oci/types.js';
import type { Timeouts } from '../oci/registry/http.js';
import { withLock } from './lock.js';
import { scratchFor, type Scratch } from './scratch.js';

/** Progress events (a subset of the formats' ProgressEvent, same shape). */
export type PullProgress =
  | { kind: 'pull-start'; ref: string; total: number }
  | { kind: 'pull-progress'; ref: string; done: number; total: number }
  | { kind: 'pull-done'; ref: string };

export interface PullOptions {
  /** Where to fetch from; default chosen by the reference's transport. */
  source?: ManifestSource;
  /** Fetch even when the reference is cached. */
  pull?: boolean;
  /** Never touch the network; uncached → E_OFFLINE. */
  offline?: boolean;
  insecureRegistries?: string[];
  mirrors?: Record<string, string>;
  credentials?: RegistryOptions['credentials'];
  timeouts?: Timeouts;
  onProgress?: (ev: PullProgress) => void;
  signal?: AbortSignal;
}

export interface CacheEntry {
  ref: string;
  digest: string;
  mediaType: string;
  size: number;
}

/** Extra attempts at one blob when its download breaks off. */
const blobAttempts = 3;
const emptyIndex = (): Index => ({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
let tmpSeq = 0;

export class Cache implements BlobStore {
  /** Blobs this process has hashed in full and found intact. */
  private readonly verified = new Set<string>();

  constructor(readonly dir: string) {}

  private get indexPath(): string {
    return join(this.dir, 'index.json');
  }

  /** This run's scratch directory for the cache (read-only caches get one elsewhere). */
  scratch(): Promise<Scratch> {
    return scratchFor(this.dir);
  }

  /** Fails at once, in one line, when the cache cannot be written. */
  private async writable(): Promise<string> {
    const s = await this.scratch();
    if (s.readOnly) throw new DockyardError('E_CACHE', `the cache ${this.dir} is read-only: cannot store anything in it`);
    return s.dir;
  }

  private async tmpName(tag: string): Promise<string> {
    const p = join(await this.writable(), `${tag}-${tmpSeq++}`);
    trackTemp(p);
    return p;
  }

  /** Create the layout if absent (safe against concurrent creators: link() never overwrites). */
  async init(): Promise<void> {
    try {
      await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
      await this.createIfAbsent(join(this.dir, 'oci-layout'), Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
      await this.createIfAbsent(this.indexPath, Buffer.from(JSON.stringify(emptyIndex())));
    } catch (e) {
      throw fsError('E_CACHE', `cannot write to the cache ${this.dir}`, e);
    }
  }

  private async createIfAbsent(path: string, data: Buffer): Promise<void> {
    try {
      await stat(path);
      return;
    } catch {
      /* absent */
    }
    const tmp = await this.writeTemp(data);
    try {
      await link(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }

  private async writeTemp(data: Buffer): Promise<string> {
    const tmp = await this.tmpName('w');
    try {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      await unlink(tmp).catch(() => {});
      untrackTemp(tmp);
      throw fsError('E_CACHE', `cannot write to the cache ${this.dir}`, e);
    }
    return tmp;
  }

  private async atomicWrite(path: string, data: Buffer): Promise<void> {
    const tmp = await this.writeTemp(data);
    try {
      await rename(tmp, path);
    } finally {
      untrackTemp(tmp);
    }
  }

  private corrupt(got: string, what: string): DockyardError {
    return new DockyardError(
      'E_CACHE_CORRUPT',
      `${what}: the cache's copy is corrupt (it hashes to ${got}); removed it from ${this.dir}: pulling or importing the image again restores it`,
    );
  }

  /**
   * Blobs this process removed as corrupt, with the error it gave: a reader
   * of the same blob that finds it gone (formats read side by side) reports
   * that, not a missing file.
   */
  private readonly evicted = new Map<string, DockyardError>();

  /** Remove a blob found corrupt (should another process have just replaced it, it is only fetched again). */
  private async evict(digest: string, why: DockyardError): Promise<DockyardError> {
    this.verified.delete(digest);
    this.evicted.set(digest, why);
    await unlink(this.pathOf(digest)).catch(() => {});
    return why;
  }

  /** The error of a blob found missing: the corrupt-copy error if this process removed it as corrupt. */
  private gone(digest: string, e: unknown): unknown {
    return isMissing(e) ? (this.evicted.get(digest) ?? e) : e;
  }

  // ---- BlobStore ----
  pathOf(digest: string): string {
    return blobPath(this.dir, digest);
  }
  async has(digest: string): Promise<boolean> {
    try {
      await stat(this.pathOf(digest));
      return true;
    } catch {
      return false;
    }
  }
  async open(digest: string, what = `blob ${digest}`): Promise<Readable> {
    let src: Readable;
    try {
      src = (await streamRegular(this.pathOf(digest), `${what} in the cache ${this.dir}`, 'E_CACHE')).stream;
    } catch (e) {
      const evicted = this.evicted.get(digest);
      if (evicted && this.gone(digest, e) === evicted) throw evicted;
      if (isMissing(e)) {
        throw new DockyardError('E_IMAGE_NOT_FOUND', `${what} is missing from the cache ${this.dir}; pull the image again`, { cause: e });
      }
      throw e;
    }
    const check = new VerifyDigest(digest, undefined, what, async (got) => this.evict(digest, this.corrupt(got, what)));
    check.once('end', () => this.verified.add(digest));
    pipelineCb(src, check, () => {});
    return check;
  }

  /** Hash a stored blob in full, once per process; a corrupt one is evicted (E_CACHE_CORRUPT). */
  async verify(digest: string, what = `blob ${digest}`): Promise<void> {
    if (this.verified.has(digest)) return;
    const h = createHash('sha256');
    const { stream } = await streamRegular(this.pathOf(digest), `${what} in the cache ${this.dir}`, 'E_CACHE').catch((e: unknown) => {
      throw this.gone(digest, e);
    });
    for await (const c of stream) h.update(c as Buffer);
    const got = 'sha256:' + h.digest('hex');
    if (got !== digest) throw await this.evict(digest, this.corrupt(got, what));
    this.verified.add(digest);
  }

  /** Whether a stored blob is intact (a corrupt one is evicted and reported false). */
  private async intact(digest: string): Promise<boolean> {
    if (!(await this.has(digest))) return false;
    try {
      await this.verify(digest);
      return true;
    } catch (e) {
      if (isDockyardError(e) && e.code === 'E_CACHE_CORRUPT') return false;
      throw e;
    }
  }
  async size(digest: string): Promise<number> {
    try {
      return (await stat(this.pathOf(digest))).size;
    } catch (e) {
      throw new DockyardError('E_CACHE', `blob ${digest} missing from cache ${this.dir}`, { cause: e });
    }
  }

  /**
   * Store a blob from a stream: hashed as it is written to a temp file,
   * renamed into blobs/ only when it hashes to `desc.digest`.
   */
  async writeBlob(desc: { digest: string; size?: number }, src: Readable, onBytes?: (n: number) => void): Promise<void> {
    assertSha256(desc.digest);
    // Present and intact: nothing to do. Present and corrupt: evicted, written again below.
    if (await this.intact(desc.digest)) {
      src.destroy();
      return;
    }
    await this.init();
    const tmp = await this.tmpName('blob');
    let out: WriteStream | undefined;
    try {
      const verify = new VerifyDigest(desc.digest, desc.size, `blob ${desc.digest}`);
      if (onBytes) verify.on('data', (c: Buffer) => onBytes(c.length));
      out = createWriteStream(tmp, { flags: 'wx' });
      await pipeline(src, verify, out);
      // fsync is per inode: a fresh descriptor flushes what the stream wrote.
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.pathOf(desc.digest));
      this.evicted.delete(desc.digest);
    } catch (e) {
      src.destroy();
      // A stream destroyed before its file was open still makes the file once it opens: wait for it to close.
      if (out && !out.closed) await new Promise<void>((r) => out!.once('close', () => r()));
      await unlink(tmp).catch(() => {});
      throw isDockyardError(e) || !(e as NodeJS.ErrnoException).syscall ? e : fsError('E_CACHE', `cannot store blob ${desc.digest} in the cache ${this.dir}`, e);
    } finally {
      untrackTemp(tmp);
    }
    this.verified.add(desc.digest);
  }

  /**
   * Store a file this process has just written and hashed itself (a layer
   * it built, in the cache's scratch directory): flushed and moved into
   * blobs/ rather than copied and hashed again. On another file system it
   * is copied through writeBlob (and hashed there). The file is gone
   * afterwards either way.
   */
  async adoptBlob(desc: { digest: string; size: number }, path: string): Promise<void> {
    assertSha256(desc.digest);
    try {
      if (await this.intact(desc.digest)) return;
      await this.init();
      const fh = await open(path, 'r');
      try {
        const st = await fh.stat();
        if (st.size !== desc.size) throw new DockyardError('E_INTERNAL', `${path}: ${st.size} bytes, not the ${desc.size} of ${desc.digest}`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await rename(path, this.pathOf(desc.digest));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw fsError('E_CACHE', `cannot store blob ${desc.digest} in the cache ${this.dir}`, e);
        await this.writeBlob(desc, createReadStream(path));
        return;
      }
      this.evicted.delete(desc.digest);
      this.verified.add(desc.digest);
    } finally {
      await unlink(path).catch(() => {});
    }
  }

  async writeBlobBytes(digest: string, bytes: Buffer): Promise<void> {
    const { Readable } = await import('node:stream');
    await this.writeBlob({ digest, size: bytes.length }, Readable.from([bytes]));
  }

  // ---- index.json ----
  async readIndex(): Promise<Index> {
    let text: string;
    try {
      text = (await readRegular(this.indexPath, MaxDocumentBytes * 8, this.indexPath, 'E_CACHE')).toString('utf8');
    } catch (e) {
      if (isMissing(e)) return emptyIndex();
      throw e;
    }
    try {
      const idx = JSON.parse(text) as Index;
      if (!Array.isArray(idx.manifests)) throw new Error('no manifests array');
      return idx;
    } catch (e) {
      throw new DockyardError('E_CACHE', `cache index ${this.indexPath} is corrupt (${(e as Error).message}); run dockyard cache clean`, { cause: e });
    }
  }

  private async updateIndex(fn: (idx: Index) => Index | Promise<Index>): Promise<void> {
    await this.writable();
    await this.init();
    await withLock(this.indexPath + '.lock', async () => {
      const idx = await fn(await this.readIndex());
      idx.manifests.sort((a, b) => cmp(a.annotations?.[RefNameAnnotation] ?? '', b.annotations?.[RefNameAnnotation] ?? '') || cmp(a.digest, b.digest));
      await this.atomicWrite(this.indexPath, Buffer.from(JSON.stringify(idx, null, 2) + '\n'));
    });
  }

  /** Names `desc` (an index or manifest whose blobs are in the cache) `ref`, replacing what the name had. */
  async tag(ref: string, desc: Descriptor): Promise<string> {
    const canonical = parseReference(ref).canonical;
    await this.recordRef(canonical, desc);
    return canonical;
  }

  private async recordRef(canonical: string, desc: Descriptor): Promise<void> {
    await this.updateIndex((idx) => {
      idx.manifests = idx.manifests.filter((m) => m.annotations?.[RefNameAnnotation] !== canonical);
      idx.manifests.push({
        mediaType: desc.mediaType,
        digest: desc.digest,
        size: desc.size,
        annotations: { [ContainerdNameAnnotation]: canonical, [RefNameAnnotation]: canonical },
        ...(desc.platform ? { platform: desc.platform } : {}),
      });
      return idx;
    });
  }

  async list(): Promise<CacheEntry[]> {
    const idx = await this.readIndex();
    return idx.manifests
      .filter((m) => m.annotations?.[RefNameAnnotation])
      .map((m) => ({ ref: m.annotations![RefNameAnnotation], digest: m.digest, mediaType: m.mediaType, size: m.size }))
      .sort((a, b) => cmp(a.ref, b.ref));
  }

  // ---- resolve (cache only) ----
  /** A manifest, index or config from the cache, hashed before it is believed. */
  private async readDoc(digest: string, what: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readRegular(this.pathOf(digest), MaxDocumentBytes, `${what}: blob ${digest}`, 'E_CACHE');
    } catch (e) {
      const evicted = this.evicted.get(digest);
      if (evicted && this.gone(digest, e) === evicted) throw evicted;
      if (isMissing(e)) {
        throw new DockyardError('E_IMAGE_NOT_FOUND', `${what}: blob ${digest} is missing from the cache ${this.dir}; pull it again`, { cause: e });
      }
      throw e;
    }
    const got = 'sha256:' + createHash('sha256').update(bytes).digest('hex');
    if (got !== digest) throw await this.evict(digest, this.corrupt(got, `${what}: blob ${digest}`));
    return bytes;
  }

  /** The top-level descriptor a reference names in the cache, if any. */
  async lookup(ref: string): Promise<Descriptor | undefined> {
    const canonical = parseReference(ref).canonical;
    const idx = await this.readIndex();
    const hit = idx.manifests.find((m) => m.annotations?.[RefNameAnnotation] === canonical);
    if (hit) return hit;
    const r = parseReference(ref);
    // A digest reference is satisfied by the content itself, whatever name it was pulled under.
    if (r.transport === 'registry' && r.digest && (await this.has(r.digest))) {
      const bytes = await this.readDoc(r.digest, ref);
      const p = parseManifest(bytes, undefined, ref);
      return { mediaType: p.mediaType, digest: r.digest, size: bytes.length };
    }
    return undefined;
  }

  /** From the cache only: no network, no re-hashing (blobs were verified on write). */
  async resolve(ref: string, platform: Platform): Promise<ImageHandle> {
    const top = await this.lookup(ref);
    if (!top) throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${ref} is not in the cache ${this.dir}`);
    const canonical = parseReference(ref).canonical;
    const p = parseManifest(await this.readDoc(top.digest, ref), top.mediaType, ref);
    let manifest: Manifest;
    let manifestDigest = top.digest;
    if (p.kind === 'index') {
      const d = choosePlatform(p.index, platform, ref);
      if (!(await this.has(d.digest))) {
        throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${ref} is cached without its ${platform.architecture} manifest; pull it for that platform`);
      }
      const q = parseManifest(await this.readDoc(d.digest, ref), d.mediaType, ref);
      if (q.kind !== 'manifest') throw new DockyardError('E_CACHE', `${ref}: nested index is not supported`);
      manifest = q.manifest;
      manifestDigest = d.digest;
    } else manifest = p.manifest;
    const config = parseConfig(await this.readDoc(manifest.config.digest, ref), ref);
    for (const l of manifest.layers) {
      if (!(await this.has(l.digest))) throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${ref}: layer ${l.digest} missing from the cache; pull it again`);
    }
    return makeHandle(ref, canonical, top.digest, manifestDigest, manifest, config, platform);
  }

  // ---- pull ----
  private async sourceFor(ref: string, opts: PullOptions): Promise<ManifestSource> {
    const r = parseReference(ref);
    await this.init();
    switch (r.transport) {
      case 'registry':
        return new RegistryClient({ insecureRegistries: opts.insecureRegistries, mirrors: opts.mirrors, credentials: opts.credentials, timeouts: opts.timeouts, signal: opts.signal });
      case 'oci-layout':
      case 'oci-archive':
        return OciLayout.open(r.file, (await this.scratch()).dir, opts.signal);
      case 'docker-archive':
        return DockerArchive.open(r.file, (await this.scratch()).dir, opts.signal);
    }
  }

  async pull(ref: string, platform: Platform, opts: PullOptions = {}): Promise<ImageHandle> {
    const r = parseReference(ref);
    // --offline wins over --pull: the cache is all there is.
    if (!opts.pull || (opts.offline && r.transport === 'registry')) {
      try {
        return await this.resolve(ref, platform);
      } catch (e) {
        if (!isDockyardError(e) || e.code !== 'E_IMAGE_NOT_FOUND') throw e;
      }
    }
    if (opts.offline && r.transport === 'registry') {
      throw new DockyardError('E_OFFLINE', `image ${ref} is not in the cache and --offline forbids pulling it`);
    }
    const src = opts.source ?? (await this.sourceFor(ref, opts));
    try {
      return await this.pullFrom(src, ref, r.canonical, platform, opts);
    } finally {
      if (!opts.source) await src.close?.();
    }
  }

  private async pullFrom(src: ManifestSource, ref: string, canonical: string, platform: Platform, opts: PullOptions): Promise<ImageHandle> {
    await this.init();
    const res = await resolveFrom(src, ref, canonical, platform);
    const layers = res.handle.layers;
    const total = layers.reduce((s, l) => s + l.size, 0);
    let done = 0;
    opts.onProgress?.({ kind: 'pull-start', ref, total });
    for (const l of layers) {
      // A layer already here is checked first: a pull repairs a corrupt one.
      if (await this.intact(l.digest)) {
        done += l.size;
        continue;
      }
      const before = done;
      for (let attempt = 1; ; attempt++) {
        done = before;
        try {
          await this.writeBlob(l, await src.fetchBlob(ref, l), (n) => {
            done += n;
            opts.onProgress?.({ kind: 'pull-progress', ref, done, total });
          });
          break;
        } catch (e) {
          if (attempt >= blobAttempts || (isDockyardError(e) && e.code !== 'E_NETWORK')) throw wrapNetwork(e, ref);
        }
      }
    }
    await this.writeBlobBytes(res.handle.manifest.config.digest, res.configBytes);
    await this.writeBlobBytes(res.image.digest, res.image.bytes);
    if (res.top !== res.image) await this.writeBlobBytes(res.top.digest, res.top.bytes);
    const topType = parseManifest(res.top.bytes, res.top.mediaType, ref).mediaType;
    await this.recordRef(canonical, {
      mediaType: topType,
      digest: res.top.digest,
      size: res.top.bytes.length,
      ...(isIndexType(topType) ? {} : { platform: res.handle.platform }),
    });
    opts.onProgress?.({ kind: 'pull-done', ref });
    return res.handle;
  }

  // ---- import / export ----
  /** Copy every named image of a layout (dir or tar) into the cache, all platforms present. */
  async import(path: string, signal?: AbortSignal): Promise<string[]> {
    await this.init();
    const layout = await OciLayout.open(path, (await this.scratch()).dir, signal);
    try {
      const idx = await layout.index();
      const refs: string[] = [];
      for (const d of idx.manifests) {
        const name = d.annotations?.[RefNameAnnotation] ?? d.annotations?.[ContainerdNameAnnotation];
        if (!name) continue;
        signal?.throwIfAborted();
        await this.copyTree(layout, name, d, true);
        let canonical = name;
        try {
          canonical = parseReference(name).canonical;
        } catch {
          /* keep a bare tag as written */
        }
        await this.recordRef(canonical, { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.platform ? { platform: d.platform } : {}) });
        refs.push(canonical);
      }
      if (refs.length === 0) throw new DockyardError('E_IMAGE_NOT_FOUND', `${path}: no image in index.json carries ${RefNameAnnotation}`);
      return refs.sort(cmp);
    } finally {
      await layout.close();
    }
  }

  /** Copy `d` and everything under it; children of an index that the layout lacks are skipped when `lenient`. */
  private async copyTree(layout: OciLayout, ref: string, d: Descriptor, lenient: boolean): Promise<void> {
    const path = blobPath(layout.dir, d.digest);
    const present = await stat(path).then(
      () => true,
      () => false,
    );
    if (!present) {
      if (lenient) return;
      throw new DockyardError('E_IMAGE_NOT_FOUND', `${ref}: blob ${d.digest} missing from ${layout.dir}`);
    }
    if (d.mediaType && /manifest|index|list/.test(d.mediaType) && !/layer|config/.test(d.mediaType)) {
      const bytes = await readRegular(path, MaxDocumentBytes, `${ref}: ${path}`, 'E_IMAGE_NOT_FOUND');
      const p = parseManifest(bytes, d.mediaType, ref);
      if (p.kind === 'index') for (const c of p.index.manifests) await this.copyTree(layout, ref, c, true);
      else {
        await this.copyTree(layout, ref, p.manifest.config, false);
        for (const l of p.manifest.layers) await this.copyTree(layout, ref, l, false);
      }
    }
    await this.writeBlob(d, (await streamRegular(path, `${ref}: ${path}`, 'E_IMAGE_NOT_FOUND')).stream);
  }

  /** Blobs reachable from `d` that the cache has (an index's absent platforms are skipped). */
  private async reachable(d: Descriptor, into: Set<string>): Promise<void> {
    if (into.has(d.digest) || !(await this.has(d.digest))) return;
    into.add(d.digest);
    if (!/manifest|index|list/.test(d.mediaType) || /layer|config/.test(d.mediaType)) return;
    const p = parseManifest(await this.readDoc(d.digest, d.digest), d.mediaType, d.digest);
    if (p.kind === 'index') for (const c of p.index.manifests) await this.reachable(c, into);
    else {
      into.add(p.manifest.config.digest);
      for (const l of p.manifest.layers) into.add(l.digest);
    }
  }

  /** Write `ref` and its blobs as an OCI image layout tar (readable by `cache import`, skopeo oci-archive:). */
  async export(ref: string, outTar: string, signal?: AbortSignal): Promise<void> {
    const top = await this.lookup(ref);
    if (!top) throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${ref} is not in the cache ${this.dir}`);
    const canonical = parseReference(ref).canonical;
    const blobs = new Set<string>();
    await this.reachable(top, blobs);
    const index: Index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ ...top, annotations: { [ContainerdNameAnnotation]: canonical, [RefNameAnnotation]: canonical } }],
    };
    await checkOutputPath(outTar, 'output');
    const pack = tar.pack();
    const tmp = await outputTemp(outTar);
    const written = pipeline(pack, createWriteStream(tmp, { flags: 'wx' }));
    written.catch(() => {}); // awaited below; a failure before that is the entry's

    const fixed = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };
    const addBuf = (name: string, b: Buffer) => new Promise<void>((res, rej) => pack.entry({ name, size: b.length, mode: 0o644, ...fixed }, b, (e) => (e ? rej(e) : res())));
    try {
      await addBuf('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
      await addBuf('index.json', Buffer.from(JSON.stringify(index)));
      for (const dir of ['blobs/', 'blobs/sha256/']) pack.entry({ name: dir, type: 'directory', mode: 0o755, ...fixed });
      for (const dg of [...blobs].sort()) {
        const size = await this.size(dg);
        await new Promise<void>((res, rej) => {
          const e = pack.entry({ name: `blobs/sha256/${dg.slice(7)}`, size, mode: 0o644, ...fixed }, (err) => (err ? rej(err) : res()));
          this.open(dg, `${ref}: blob ${dg}`).then((src) => pipeline(src, e), rej).catch(rej);
        });
        signal?.throwIfAborted();
      }
      pack.finalize();
      await written;
      await checkOutputPath(outTar, 'output');
      await rename(tmp, outTar);
    } catch (e) {
      pack.destroy();
      await unlink(tmp).catch(() => {});
      throw isDockyardError(e) ? e : fsError('E_OUTPUT', `cannot write ${outTar}`, e);
    } finally {
      untrackTemp(tmp);
    }
  }

  // ---- removal ----
  /**
   * Drop a reference, then blobs no remaining reference reaches. Blobs under
   * a minute old are kept: a concurrent pull may have written them and not
   * yet recorded its reference.
   */
  async remove(ref: string): Promise<void> {
    const canonical = parseReference(ref).canonical;
    let found = false;
    await this.updateIndex(async (idx) => {
      const keep = idx.manifests.filter((m) => m.annotations?.[RefNameAnnotation] !== canonical);
      found = keep.length !== idx.manifests.length;
      idx.manifests = keep;
      if (found) await this.collect(idx);
      return idx;
    });
    if (!found) throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${ref} is not in the cache ${this.dir}`);
  }

  private async collect(idx: Index): Promise<void> {
    const live = new Set<string>();
    for (const m of idx.manifests) await this.reachable(m, live);
    const dir = join(this.dir, 'blobs', 'sha256');
    const now = Date.now();
    for (const f of await readdir(dir)) {
      if (live.has(`sha256:${f}`)) continue;
      const p = join(dir, f);
      const st = await stat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > 60_000) await unlink(p).catch(() => {});
    }
  }

  /** Remove everything: all references, blobs and temp files. */
  async clean(): Promise<void> {
    await this.updateIndex(async (idx) => {
      for (const f of await readdir(this.dir).catch(() => [] as string[])) {
        if (f === 'index.json' || f === 'index.json.lock' || f === 'oci-layout' || f === 'tmp') continue;
        await rm(join(this.dir, f), { recursive: true, force: true });
      }
      await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
      idx.manifests = [];
      return idx;
    });
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function wrapNetwork(e: unknown, ref: string): unknown {
  if (isDockyardError(e)) return e;
  return new DockyardError('E_NETWORK', `pulling ${ref}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}
