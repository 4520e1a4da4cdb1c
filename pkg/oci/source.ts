/**
 * What every image source (registry, OCI layout/archive, docker archive, the
 * cache) offers beyond `ImageSource`: the raw manifest bytes, so the cache can
 * store exactly the documents the source serves (their digests are their names).
 */
import type { Readable } from 'node:stream';
import { DockyardError } from '../errors.js';
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

export async function readSmall(stream: Readable, what: string, limit = MaxDocumentBytes): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > limit) {
      stream.destroy();
      throw new DockyardError('E_REGISTRY', `${what}: larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export function parseConfig(bytes: Buffer, what: string): ImageConfigFile {
  try {
    return JSON.parse(bytes.toString('utf8')) as ImageConfigFile;
  } catch (e) {
    throw new DockyardError('E_REGISTRY', `${what}: image config is not JSON`, { cause: e });
  }
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
