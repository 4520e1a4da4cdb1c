/**
 * Smaller segments: the merged apk database of several init images, and a
 * volume holding an image as an OCI image layout (moby/build image.go,
 * ImageOCITar).
 */
import { DockyardError } from '../errors.js';
import type { BlobStore, Descriptor, ImageHandle, Index } from '../oci/types.js';
import { MediaType } from '../oci/types.js';
import type { Segment } from './entry.js';
import { flattenLayers } from './layers.js';
import { collectBody, MaxCollectedBytes } from '../archive/sink.js';
import { MaxDocumentBytes } from '../oci/source.js';
import { prefixDirs, ROOTFS_VERSION } from './image.js';
import { sha256hex } from '../hash.js';

const APK_DB = 'lib/apk/db/installed';

/**
 * LinuxKit writes `lib/apk/db/installed` once more after the init images,
 * the databases of all of them concatenated, each followed by two newlines,
 * when more than one init image has one.
 */
export function initApkDbSegment(o: { images: ImageHandle[]; store: BlobStore; maxLayerBytes?: number }): Segment {
  return {
    name: 'init apk database',
    key: sha256hex(ROOTFS_VERSION, 'apkdb', ...o.images.map((i) => i.manifestDigest)),
    async *entries() {
      const dbs: Buffer[] = [];
      for (const img of o.images) {
        let db: Buffer | undefined;
        for await (const e of flattenLayers(o.store, img.layers, `image ${img.ref}`, { maxLayerBytes: o.maxLayerBytes })) {
          if (e.path === APK_DB && e.type === 'file') db = await collectBody(e.body, MaxCollectedBytes, `image ${img.ref}: /${APK_DB}`);
        }
        if (db) dbs.push(db);
      }
      if (dbs.length < 2) return;
      const body = Buffer.concat(dbs.flatMap((d) => [d, Buffer.from('\n\n')]));
      yield { path: APK_DB, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, body };
    },
  };
}

function parsePlatform(p: string): { os: string; architecture: string; variant?: string } {
  const [os, architecture, variant] = p.split('/');
  if (!os || !architecture) throw new DockyardError('E_SPEC_INVALID', `volume platform "${p}" is not os/arch[/variant]`);
  return { os, architecture, variant };
}

async function readBlob(store: BlobStore, digest: string, what: string): Promise<Buffer> {
  return collectBody(await store.open(digest, what), MaxDocumentBytes, what);
}

function parseDoc<T>(raw: Buffer, what: string): T {
  try {
    return JSON.parse(raw.toString('utf8')) as T;
  } catch (e) {
    throw new DockyardError('E_REGISTRY', `${what} is not JSON`, { cause: e });
  }
}

export interface OciVolumeOptions {
  name: string;
  image: ImageHandle;
  store: BlobStore;
  prefix: string;
  /** os/arch[/variant] to keep from an index; default: the platform resolved for the build. */
  platforms?: string[];
}

/**
 * The image as an OCI image layout (`oci-layout`, `index.json`, `blobs/`)
 * under `prefix`: the index as published (all its platforms listed) and the
 * manifests, configs and layers of the platforms asked for.
 */
export function ociVolumeSegment(o: OciVolumeOptions): Segment {
  const plats = (o.platforms && o.platforms.length > 0 ? o.platforms : [`${o.image.platform.os}/${o.image.platform.architecture}${o.image.platform.variant ? '/' + o.image.platform.variant : ''}`]).map(parsePlatform);
  return {
    name: o.name,
    key: sha256hex(ROOTFS_VERSION, 'ocivolume', o.image.digest, o.image.manifestDigest, o.prefix, ...plats.map((p) => JSON.stringify(p))),
    async *entries() {
      const { image, store } = o;
      const top = image.digest;
      const blobs = new Set<string>([top]);
      let topDesc: Descriptor;
      if (top !== image.manifestDigest) {
        const raw = await readBlob(store, top, `volume image ${image.ref}: index ${top}`);
        const index = parseDoc<Index>(raw, `volume image ${image.ref}: index ${top}`);
        if (!Array.isArray(index.manifests)) throw new DockyardError('E_REGISTRY', `volume image ${image.ref}: index ${top} has no manifests`);
        topDesc = { mediaType: index.mediaType ?? MediaType.OciIndex, size: raw.length, digest: top };
        for (const want of plats) {
          const m = index.manifests.find(
            (d) => d.platform && d.platform.os === want.os && d.platform.architecture === want.architecture && (want.variant === undefined || d.platform.variant === want.variant),
          );
          if (!m) throw new DockyardError('E_IMAGE_NOT_FOUND', `volume image ${image.ref} has no ${want.os}/${want.architecture} manifest`);
          if (!(await store.has(m.digest))) {
            throw new DockyardError('E_IMAGE_NOT_FOUND', `volume image ${image.ref}: ${want.os}/${want.architecture} is not in the cache (only the build platform is pulled)`);
          }
          const what = `volume image ${image.ref}: manifest ${m.digest}`;
          const man = parseDoc<{ config: Descriptor; layers: Descriptor[] }>(await readBlob(store, m.digest, what), what);
          if (!man.config || !Array.isArray(man.layers)) throw new DockyardError('E_REGISTRY', `${what} has no config or layers`);
          blobs.add(m.digest);
          blobs.add(man.config.digest);
          for (const l of man.layers) blobs.add(l.digest);
        }
      } else {
        topDesc = { mediaType: image.manifest.mediaType ?? MediaType.OciManifest, size: await store.size(top), digest: top };
        blobs.add(image.manifest.config.digest);
        for (const l of image.layers) blobs.add(l.digest);
      }
      yield* prefixDirs(o.prefix);
      const p = (s: string) => `${o.prefix}/${s}`;
      yield { path: p('blobs'), type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 };
      yield { path: p('blobs/sha256'), type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 };
      for (const d of [...blobs].sort()) {
        if (!(await store.has(d))) throw new DockyardError('E_IMAGE_NOT_FOUND', `volume image ${image.ref}: blob ${d} is not in the cache`);
        const size = await store.size(d);
        yield { path: p(`blobs/sha256/${d.slice('sha256:'.length)}`), type: 'file', mode: 0o644, uid: 0, gid: 0, size, body: await store.open(d, `volume image ${image.ref}: blob ${d}`) };
      }
      const index = {
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: [{ ...topDesc, annotations: { 'org.opencontainers.image.ref.name': image.canonical } }],
      };
      const indexJson = Buffer.from(JSON.stringify(index, null, 3));
      // Byte for byte what LinuxKit writes (a Go raw string indented with tabs).
      const layout = Buffer.from('{\n\t\t"imageLayoutVersion": "1.0.0"\n\t}');
      yield { path: p('index.json'), type: 'file', mode: 0o644, uid: 0, gid: 0, size: indexJson.length, body: indexJson };
      yield { path: p('oci-layout'), type: 'file', mode: 0o644, uid: 0, gid: 0, size: layout.length, body: layout };
    },
  };
}
