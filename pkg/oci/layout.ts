/**
 * Reading OCI image layouts (image-spec `image-layout.md`: `oci-layout`,
 * `index.json`, `blobs/<alg>/<hex>`), as directories or tars (`oci-archive`),
 * and `docker save` archives (`manifest.json` with Config/RepoTags/Layers).
 *
 * An image inside a layout is found by its `org.opencontainers.image.ref.name`
 * annotation: either the full reference (as LinuxKit's cache and our cache
 * write it) or a bare tag (as skopeo's `oci:DIR:TAG` writes it).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as pipelineCb, type Readable } from 'node:stream';
import { DockyardError } from '../errors.js';
import { isMissing, readRegular, streamRegular } from '../fsutil.js';
import { trackTemp, untrackTemp } from '../tempfiles.js';
import { assertSha256, sha256Digest, VerifyDigest } from './digest.js';
import { parseReference, parseRegistryReference } from './reference.js';
import { MaxDocumentBytes, resolveFrom, type ManifestSource, type RawManifest } from './source.js';
import { MediaType, type Descriptor, type ImageHandle, type Index, type Platform } from './types.js';

export const RefNameAnnotation = 'org.opencontainers.image.ref.name';
export const ContainerdNameAnnotation = 'io.containerd.image.name';

export function blobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', assertSha256(digest));
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch (e) {
    throw new DockyardError('E_IMAGE_NOT_FOUND', `${p}: no such file or directory`, { cause: e });
  }
}

async function extractToTemp(file: string, tmpParent?: string, signal?: AbortSignal): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const { extractTar } = await import('./tarfile.js');
  const dir = await mkdtemp(join(tmpParent ?? tmpdir(), 'dockyard-archive-'));
  trackTemp(dir);
  const cleanup = async () => {
    await rm(dir, { recursive: true, force: true });
    untrackTemp(dir);
  };
  try {
    await extractTar(file, dir, signal);
  } catch (e) {
    await cleanup();
    throw e;
  }
  return { dir, cleanup };
}

/** A blob of a layout as a stream checked against its descriptor (a FIFO or device in its place is refused). */
async function verifiedStream(path: string, desc: Descriptor, ref: string, where: string): Promise<Readable> {
  let src: Readable;
  try {
    src = (await streamRegular(path, `${ref}: blob ${desc.digest} in ${where}`, 'E_IMAGE_NOT_FOUND')).stream;
  } catch (e) {
    if (isMissing(e)) throw new DockyardError('E_IMAGE_NOT_FOUND', `${ref}: blob ${desc.digest} missing from ${where}`, { cause: e });
    throw e;
  }
  const v = new VerifyDigest(desc.digest, desc.size, `${ref}: blob ${desc.digest} in ${where}`);
  pipelineCb(src, v, () => {});
  return v;
}

/** Does the annotation `name` on a layout entry answer to `select`? */
export function refNameMatches(name: string | undefined, select: string): boolean {
  if (name === undefined) return false;
  if (name === select) return true;
  try {
    const a = parseRegistryReference(name);
    // A bare tag asks for the entry whose full ref carries that tag.
    if (/^[\w][\w.-]{0,127}$/.test(select) && a.tag === select && !select.includes('/')) return true;
    return a.canonical === parseRegistryReference(select).canonical;
  } catch {
    return false;
  }
}

/** `select` for a `ref` given to a file source: a transport's name part, or the ref itself. */
function selectorOf(ref: string): string | undefined {
  const r = parseReference(ref);
  return r.transport === 'registry' ? ref : r.select;
}

export class OciLayout implements ManifestSource {
  constructor(
    readonly dir: string,
    private readonly cleanup?: () => Promise<void>,
  ) {}

  /** A layout directory, or a tar of one (extracted to a temp dir under `tmpParent`). */
  static async open(path: string, tmpParent?: string, signal?: AbortSignal): Promise<OciLayout> {
    if (await isDir(path)) return new OciLayout(path);
    const { dir, cleanup } = await extractToTemp(path, tmpParent, signal);
    return new OciLayout(dir, cleanup);
  }

  async close(): Promise<void> {
    await this.cleanup?.();
  }

  async index(): Promise<Index> {
    let text: string;
    try {
      text = (await readRegular(join(this.dir, 'index.json'), MaxDocumentBytes * 8, `${this.dir}/index.json`, 'E_IMAGE_NOT_FOUND')).toString('utf8');
    } catch (e) {
      if (isMissing(e)) throw new DockyardError('E_IMAGE_NOT_FOUND', `${this.dir} is not an OCI image layout (no index.json)`, { cause: e });
      throw e;
    }
    try {
      const idx = JSON.parse(text) as Index;
      if (!Array.isArray(idx.manifests)) throw new Error('no manifests array');
      return idx;
    } catch (e) {
      throw new DockyardError('E_CACHE', `${this.dir}/index.json is corrupt: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The index entry `select` names; without `select`, the layout's only entry. */
  async find(select: string | undefined): Promise<Descriptor> {
    const idx = await this.index();
    if (select === undefined) {
      if (idx.manifests.length === 1) return idx.manifests[0];
      throw new DockyardError('E_IMAGE_REF', `${this.dir} holds ${idx.manifests.length} images: name one (PATH:REF)`);
    }
    const exact = idx.manifests.find((m) => m.annotations?.[RefNameAnnotation] === select);
    const hit = exact ?? idx.manifests.find((m) => refNameMatches(m.annotations?.[RefNameAnnotation], select));
    if (!hit) throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${select} not found in ${this.dir}`);
    return hit;
  }

  async getManifest(ref: string, digest?: string): Promise<RawManifest> {
    let mediaType: string | undefined;
    if (digest === undefined) {
      const d = await this.find(selectorOf(ref));
      digest = d.digest;
      mediaType = d.mediaType;
    }
    const bytes = await this.readBlob(digest, ref);
    return { bytes, digest, mediaType: mediaType ?? '' };
  }

  private async readBlob(digest: string, ref: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readRegular(blobPath(this.dir, digest), MaxDocumentBytes, `${ref}: blob ${digest} in ${this.dir}`, 'E_IMAGE_NOT_FOUND');
    } catch (e) {
      if (isMissing(e)) throw new DockyardError('E_IMAGE_NOT_FOUND', `${ref}: blob ${digest} missing from ${this.dir}`, { cause: e });
      throw e;
    }
    const got = sha256Digest(bytes);
    if (got !== digest) throw new DockyardError('E_DIGEST_MISMATCH', `${ref}: blob ${digest} in ${this.dir} hashes to ${got}`);
    return bytes;
  }

  async fetchBlob(ref: string, desc: Descriptor): Promise<Readable> {
    return verifiedStream(blobPath(this.dir, desc.digest), desc, ref, this.dir);
  }

  async resolve(ref: string, platform: Platform): Promise<ImageHandle> {
    return (await resolveFrom(this, ref, ref, platform)).handle;
  }
}

interface DockerSaveEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/**
 * A `docker save` tar. Its layers are tar files named by path; we describe
 * them with a synthesised OCI manifest (media types by content: gzip magic
 * 1f 8b → tar+gzip, else tar), config and layers named by their sha256.
 */
export class DockerArchive implements ManifestSource {
  private manifests = new Map<string, { raw: RawManifest; files: Map<string, string> }>();
  private constructor(
    readonly dir: string,
    private readonly entries: DockerSaveEntry[],
    private readonly cleanup: () => Promise<void>,
  ) {}

  static async open(file: string, tmpParent?: string, signal?: AbortSignal): Promise<DockerArchive> {
    const { dir, cleanup } = await extractToTemp(file, tmpParent, signal);
    try {
      const entries = JSON.parse((await readRegular(join(dir, 'manifest.json'), MaxDocumentBytes, `${file}: manifest.json`, 'E_IMAGE_NOT_FOUND')).toString('utf8')) as DockerSaveEntry[];
      if (!Array.isArray(entries) || !entries.every((e) => e && typeof e.Config === 'string' && Array.isArray(e.Layers) && e.Layers.every((l) => typeof l === 'string'))) {
        throw new Error('manifest.json is not a list of {Config, Layers}');
      }
      return new DockerArchive(dir, entries, cleanup);
    } catch (e) {
      await cleanup();
      throw new DockyardError('E_IMAGE_NOT_FOUND', `${file} is not a docker-archive (docker save) tar: ${(e as Error).message}`, { cause: e });
    }
  }

  async close(): Promise<void> {
    await this.cleanup();
  }

  repoTags(): string[] {
    return this.entries.flatMap((e) => e.RepoTags ?? []);
  }

  private pick(select: string | undefined): DockerSaveEntry {
    if (select === undefined) {
      if (this.entries.length === 1) return this.entries[0];
      throw new DockyardError('E_IMAGE_REF', `${this.dir} holds ${this.entries.length} images: name one (FILE:REF)`);
    }
    const hit = this.entries.find((e) => (e.RepoTags ?? []).some((t) => refNameMatches(t, select)));
    if (!hit) throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${select} not found in docker archive`);
    return hit;
  }

  private async describe(rel: string, mediaType?: string): Promise<Descriptor> {
    const p = join(this.dir, rel);
    if (!p.startsWith(this.dir + '/')) throw new DockyardError('E_LAYER_UNSAFE', `docker archive: "${rel}" points outside the archive`);
    const h = createHash('sha256');
    let size = 0;
    let head: Buffer | undefined;
    for await (const c of (await streamRegular(p, `docker archive: ${rel}`, 'E_IMAGE_NOT_FOUND')).stream) {
      const b = c as Buffer;
      if (!head) head = b.subarray(0, 2);
      size += b.length;
      h.update(b);
    }
    const gz = head !== undefined && head.length === 2 && head[0] === 0x1f && head[1] === 0x8b;
    return { mediaType: mediaType ?? (gz ? MediaType.OciLayerGzip : MediaType.OciLayer), digest: 'sha256:' + h.digest('hex'), size };
  }

  async getManifest(ref: string, digest?: string): Promise<RawManifest> {
    if (digest !== undefined) {
      const m = [...this.manifests.values()].find((x) => x.raw.digest === digest);
      if (!m) throw new DockyardError('E_IMAGE_NOT_FOUND', `${ref}: manifest ${digest} not in docker archive`);
      return m.raw;
    }
    const e = this.pick(selectorOf(ref));
    const key = e.Config;
    const have = this.manifests.get(key);
    if (have) return have.raw;
    const files = new Map<string, string>();
    const config = await this.describe(e.Config, MediaType.OciConfig);
    files.set(config.digest, e.Config);
    const layers: Descriptor[] = [];
    for (const l of e.Layers) {
      const d = await this.describe(l);
      files.set(d.digest, l);
      layers.push(d);
    }
    const doc = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers };
    const bytes = Buffer.from(JSON.stringify(doc));
    const raw = { bytes, digest: sha256Digest(bytes), mediaType: MediaType.OciManifest };
    this.manifests.set(key, { raw, files });
    return raw;
  }

  async fetchBlob(ref: string, desc: Descriptor): Promise<Readable> {
    for (const m of this.manifests.values()) {
      const rel = m.files.get(desc.digest);
      if (rel) return verifiedStream(join(this.dir, rel), desc, ref, 'the docker archive');
    }
    throw new DockyardError('E_IMAGE_NOT_FOUND', `${ref}: blob ${desc.digest} not in docker archive`);
  }

  async resolve(ref: string, platform: Platform): Promise<ImageHandle> {
    return (await resolveFrom(this, ref, ref, platform)).handle;
  }
}
