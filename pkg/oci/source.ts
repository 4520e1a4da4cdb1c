/**
 * What every image source (registry, OCI layout/archive, docker archive, the
 * cache) offers beyond `ImageSource`: the raw manifest bytes, so the cache can
 * store exactly the documents the source serves (their digests are their names).
 */
import type { Readable } from 'node:stream';
import { DockyardError } from '../errors.js';
import { collectBody } from '../archive/sink.js';
import { choosePlatform, parseManifest } from './manifest.js';
import type { Descriptor, ImageConfigFile, ImageHandle, ImageSource, Manifest, Platform } from './types.js';
import { sha256Digest } from './digest.js';

export interface RawManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface ManifestSource extends ImageSource {
  /**
   * The document `ref` names when `digest` is undefined, else the manifest
   * with that digest from the same repository. Bytes verified against digest.
   */
  getManifest(ref: string, digest?: string): Promise<RawManifest>;
  /** Release temporary files (extracted archives). */
  close?(): Promise<void>;
}

/** Everything read while resolving, kept so the cache can store it verbatim. */
export interface Resolved {
  handle: ImageHandle;
  top: RawManifest;
  /** The platform manifest (the same object as `top` when the ref named a manifest). */
  image: RawManifest;
  configBytes: Buffer;
}

/** Largest manifest or config we read into memory (they are JSON documents). */
export const MaxDocumentBytes = 8 << 20;

export function readSmall(stream: Readable, what: string, limit = MaxDocumentBytes): Promise<Buffer> {
  return collectBody(stream, limit, what);
}

/**
 * An image config, with the fields dockyard reads checked for their types
 * (an image is input like any other: `Entrypoint: 42` is one clear line).
 */
export function parseConfig(bytes: Buffer, what: string): ImageConfigFile {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DockyardError('E_REGISTRY', `${what}: image config is not JSON`, { cause: e });
  }
  const bad = (field: string, want: string) => new DockyardError('E_REGISTRY', `${what}: image config ${field} must be ${want}`);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('', 'a JSON object');
  const d = doc as Record<string, unknown>;
  for (const k of ['architecture', 'os', 'variant']) if (d[k] !== undefined && typeof d[k] !== 'string') throw bad(k, 'a string');
  const c = d.config;
  if (c !== undefined && c !== null) {
    if (typeof c !== 'object' || Array.isArray(c)) throw bad('config', 'an object');
    const cfg = c as Record<string, unknown>;
    const strings = (v: unknown) => v === undefined || v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
    for (const k of ['Entrypoint', 'Cmd', 'Env']) if (!strings(cfg[k])) throw bad(`config.${k}`, 'a list of strings or null');
    for (const k of ['WorkingDir', 'User']) if (cfg[k] !== undefined && cfg[k] !== null && typeof cfg[k] !== 'string') throw bad(`config.${k}`, 'a string');
    const labels = cfg.Labels;
    if (labels !== undefined && labels !== null) {
      if (typeof labels !== 'object' || Array.isArray(labels) || !Object.values(labels).every((v) => typeof v === 'string')) throw bad('config.Labels', 'a map of strings');
    }
  } else if (c === null) delete d.config;
  return d as ImageConfigFile;
}

/** Resolve `ref` for `platform` through a source: index → manifest → config. */
export async function resolveFrom(src: ManifestSource, ref: string, canonical: string, platform: Platform): Promise<Resolved> {
  const top = await src.getManifest(ref);
  const p = parseManifest(top.bytes, top.mediaType, ref);
  let image = top;
  let manifest: Manifest;
  if (p.kind === 'index') {
    const d = choosePlatform(p.index, platform, ref);
    image = await src.getManifest(ref, d.digest);
    const q = parseManifest(image.bytes, d.mediaType, ref);
    if (q.kind !== 'manifest') throw new DockyardError('E_REGISTRY', `${ref}: nested index for ${platform.architecture} is not supported`);
    manifest = q.manifest;
  } else manifest = p.manifest;
  const configBytes = await readSmall(await src.fetchBlob(ref, manifest.config), `${ref} config`);
  const config = parseConfig(configBytes, ref);
  return { handle: makeHandle(ref, canonical, top.digest, image.digest, manifest, config, platform), top, image, configBytes };
}

export function makeHandle(
  ref: string,
  canonical: string,
  digest: string,
  manifestDigest: string,
  manifest: Manifest,
  config: ImageConfigFile,
  platform: Platform,
): ImageHandle {
  const plat: Platform = {
    architecture: config.architecture ?? platform.architecture,
    os: config.os ?? platform.os,
    ...(config.variant ? { variant: config.variant } : {}),
  };
  return { ref, canonical, digest, manifestDigest, manifest, config, layers: manifest.layers as Descriptor[], platform: plat };
}

export function rawFromBytes(bytes: Buffer, mediaType: string): RawManifest {
  return { bytes, mediaType, digest: sha256Digest(bytes) };
}
