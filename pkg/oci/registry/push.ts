/**
 * Copy an image (index or manifest, with every platform manifest the source
 * has, configs and layers) from any source to a registry.
 */
import { DockyardError, isDockyardError } from '../../errors.js';
import { parseManifest } from '../manifest.js';
import type { ManifestSource } from '../source.js';
import type { Descriptor } from '../types.js';
import { parseReference } from '../reference.js';
import type { RegistryClient } from './client.js';

export async function pushImage(src: ManifestSource, srcRef: string, client: RegistryClient, destRef: string): Promise<string> {
  const dest = parseReference(destRef);
  if (dest.transport !== 'registry') throw new DockyardError('E_IMAGE_REF', `${destRef} is not a registry reference`);
  const top = await src.getManifest(srcRef);
  const p = parseManifest(top.bytes, top.mediaType, srcRef);
  const pushManifest = async (bytes: Buffer, mediaType: string, desc: Descriptor | undefined) => {
    const m = parseManifest(bytes, mediaType, srcRef);
    if (m.kind !== 'manifest') throw new DockyardError('E_REGISTRY', `${srcRef}: nested index`);
    for (const b of [m.manifest.config, ...m.manifest.layers]) {
      // Sources verify as they stream, so a retry must reopen the blob.
      const body = await src.fetchBlob(srcRef, b);
      let first = true;
      await client.pushBlob(destRef, b, () => {
        if (first) {
          first = false;
          return body;
        }
        throw new DockyardError('E_REGISTRY', `${srcRef}: blob ${b.digest} would have to be sent twice`);
      });
      if (first) body.destroy();
    }
    if (desc) await client.pushManifest(destRef, desc.digest, bytes, m.mediaType);
    return m.mediaType;
  };
  if (p.kind === 'index') {
    for (const d of p.index.manifests) {
      let child;
      try {
        child = await src.getManifest(srcRef, d.digest);
      } catch (e) {
        if (isDockyardError(e) && e.code === 'E_IMAGE_NOT_FOUND') continue;
        throw e;
      }
      await pushManifest(child.bytes, d.mediaType, d);
    }
    await client.pushManifest(destRef, dest.tag ?? top.digest, top.bytes, p.mediaType);
  } else {
    const mt = await pushManifest(top.bytes, top.mediaType, undefined);
    await client.pushManifest(destRef, dest.tag ?? top.digest, top.bytes, mt);
  }
  return top.digest;
}
