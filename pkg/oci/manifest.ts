/**
 * Manifest and index parsing (OCI image-spec v1 and Docker schema 2) and the
 * choice of one platform's manifest from an index.
 */
import { DockyardError } from '../errors.js';
import { MediaType, type Descriptor, type Index, type Manifest, type Platform } from './types.js';

export const manifestAccept = [MediaType.OciIndex, MediaType.OciManifest, MediaType.DockerManifestList, MediaType.DockerManifest];

export function isIndexType(mt: string | undefined): boolean {
  return mt === MediaType.OciIndex || mt === MediaType.DockerManifestList;
}
export function isManifestType(mt: string | undefined): boolean {
  return mt === MediaType.OciManifest || mt === MediaType.DockerManifest;
}

export type ParsedManifest = { kind: 'index'; index: Index; mediaType: string } | { kind: 'manifest'; manifest: Manifest; mediaType: string };

/**
 * Parse manifest bytes. `declared` is the Content-Type / descriptor media
 * type; the document's own `mediaType` wins, and an unlabelled document is an
 * index when it has `manifests` (image-spec allows omitting mediaType).
 */
export function parseManifest(bytes: Buffer, declared: string | undefined, what: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DockyardError('E_REGISTRY', `${what}: manifest is not JSON`, { cause: e });
  }
  if (typeof doc !== 'object' || doc === null) throw new DockyardError('E_REGISTRY', `${what}: manifest is not a JSON object`);
  const d = doc as Record<string, unknown>;
  if (d.schemaVersion !== 2) {
    throw new DockyardError('E_REGISTRY', `${what}: unsupported manifest schemaVersion ${String(d.schemaVersion)} (need schema 2 / OCI)`);
  }
  const mt = (typeof d.mediaType === 'string' && d.mediaType) || declared || '';
  if (isIndexType(mt) || (!isManifestType(mt) && Array.isArray(d.manifests))) {
    if (!Array.isArray(d.manifests)) throw new DockyardError('E_REGISTRY', `${what}: index without manifests`);
    d.manifests.forEach((m, i) => checkDescriptor(m, `${what}: index entry ${i}`));
    return { kind: 'index', index: d as unknown as Index, mediaType: isIndexType(mt) ? mt : MediaType.OciIndex };
  }
  if (typeof d.config !== 'object' || d.config === null || !Array.isArray(d.layers)) throw new DockyardError('E_REGISTRY', `${what}: manifest without config or layers`);
  checkDescriptor(d.config, `${what}: config`);
  d.layers.forEach((l, i) => checkDescriptor(l, `${what}: layer ${i}`));
  return { kind: 'manifest', manifest: d as unknown as Manifest, mediaType: isManifestType(mt) ? mt : MediaType.OciManifest };
}

/** A descriptor as image-spec descriptor.md has it: sha256 digest, a size that is a whole number, string media type and platform fields. */
function checkDescriptor(v: unknown, what: string): void {
  const bad = (why: string) => new DockyardError('E_REGISTRY', `${what}: ${why}`);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('is not a descriptor object');
  const d = v as Record<string, unknown>;
  if (typeof d.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d.digest)) throw bad(`digest ${JSON.stringify(d.digest)?.slice(0, 80)} is not sha256: and 64 hex digits`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw bad(`size ${JSON.stringify(d.size)?.slice(0, 40)} is not a byte count`);
  if (d.mediaType !== undefined && typeof d.mediaType !== 'string') throw bad('mediaType is not a string');
  const p = d.platform;
  if (p !== undefined) {
    if (typeof p !== 'object' || p === null) throw bad('platform is not an object');
    for (const k of ['os', 'architecture', 'variant']) {
      const x = (p as Record<string, unknown>)[k];
      if (x !== undefined && typeof x !== 'string') throw bad(`platform.${k} is not a string`);
    }
  }
}

/** arm64's variant is v8 when given; an entry without a variant matches too. */
function variantOk(want: Platform, got: Platform): boolean {
  if (!want.variant) return true;
  if (!got.variant) return true;
  return want.variant === got.variant;
}

/**
 * The index entry for `platform`: os and architecture must match; among
 * matches, an exact variant wins (arm64 treats a missing variant as v8).
 * Attestation manifests (`unknown/unknown`) never match.
 */
export function choosePlatform(index: Index, platform: Platform, what: string): Descriptor {
  const want: Platform = { ...platform, variant: platform.variant ?? (platform.architecture === 'arm64' ? 'v8' : undefined) };
  const cands = index.manifests.filter(
    (m) => isManifestType(m.mediaType) && m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture && variantOk(want, m.platform),
  );
  const exact = cands.find((m) => m.platform?.variant === want.variant);
  const chosen = exact ?? cands[0];
  if (!chosen && index.manifests.some((m) => isIndexType(m.mediaType) && m.platform?.os === want.os && m.platform?.architecture === want.architecture)) {
    throw new DockyardError('E_IMAGE_NOT_FOUND', `${what}: the index's ${want.os}/${want.architecture} entry is itself an index (nested indexes are not supported)`);
  }
  if (!chosen) {
    const have = index.manifests
      .filter((m) => m.platform)
      .map((m) => `${m.platform!.os}/${m.platform!.architecture}${m.platform!.variant ? '/' + m.platform!.variant : ''}`)
      .join(', ');
    throw new DockyardError('E_IMAGE_NOT_FOUND', `${what}: no image for ${want.os}/${want.architecture} (index has ${have || 'no platforms'})`);
  }
  return chosen;
}
