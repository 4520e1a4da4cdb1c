/**
 * The SBOM written into the root filesystem as `sbom.spdx.json` (LinuxKit's
 * default name and place). LinuxKit merges the SPDX attestations of its
 * images and stamps a random namespace; ours lists every component image by
 * digest and derives the namespace from the content, so it is reproducible.
 */
import { createHash } from 'node:crypto';
import type { PlannedComponent } from '../plan/plan.js';

export const sbomPath = 'sbom.spdx.json';

function spdxId(s: string): string {
  return 'SPDXRef-' + s.replace(/[^A-Za-z0-9.-]/g, '-');
}

function purl(ref: string, digest: string): string {
  const noTag = ref.replace(/@.*$/, '');
  const slash = noTag.lastIndexOf('/');
  const colon = noTag.lastIndexOf(':');
  const repo = colon > slash ? noTag.slice(0, colon) : noTag;
  const name = repo.slice(repo.lastIndexOf('/') + 1);
  return `pkg:oci/${encodeURIComponent(name)}@${encodeURIComponent(digest)}?repository_url=${encodeURIComponent(repo)}`;
}

/** An SPDX 2.3 document describing `packages`; the namespace is `key` (a digest of the content: reproducible). */
function spdxDocument(name: string, key: string, packages: { SPDXID: string }[], epoch: number): Buffer {
  const doc = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name,
    documentNamespace: `https://dockyard.invalid/sbom/${key}`,
    creationInfo: {
      creators: ['Tool: dockyard'],
      created: new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    },
    packages,
    relationships: packages.map((p) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: p.SPDXID })),
  };
  return Buffer.from(JSON.stringify(doc, null, 2) + '\n');
}

export function renderSbom(components: PlannedComponent[], epoch: number): Buffer {
  const images = components.filter((c) => c.ref && c.digest);
  const key = createHash('sha256');
  for (const c of images) key.update(`${c.kind}\0${c.name}\0${c.ref}\0${c.digest}\n`);
  const packages = images.map((c) => ({
    SPDXID: spdxId(`${c.kind}-${c.name}`),
    name: c.ref!,
    versionInfo: c.digest!,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    checksums: [{ algorithm: 'SHA256', checksumValue: c.digest!.replace(/^sha256:/, '') }],
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl(c.ref!, c.digest!) }],
    comment: `${c.kind} placed at /${c.path.replace(/^\//, '')}`,
  }));
  return spdxDocument('sbom', key.digest('hex'), packages, epoch);
}

/** One Debian package of an image built by `dockyard pkg build`. */
export interface DebianPackageRecord {
  name: string;
  version: string;
  architecture: string;
  /** Download URL of the .deb and its SHA256. */
  url: string;
  sha256: string;
  maintainer?: string;
  source?: string;
}

/** Where `pkg build` puts the image's SBOM (apko's place for it). */
export function packageSbomPath(image: string): string {
  return `var/lib/db/sbom/${image}.spdx.json`;
}

/**
 * The SPDX 2.3 document of an image built from Debian packages: every
 * package with its version, the .deb's URL and SHA256, and its purl
 * (`pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=SUITE`, the purl spec's
 * deb type). The namespace is a digest of the content: reproducible.
 */
export function renderPackageSbom(image: string, arch: string, distro: string, pkgs: DebianPackageRecord[], epoch: number): Buffer {
  const key = createHash('sha256').update(`${image}\0${arch}\0${distro}\n`);
  for (const p of pkgs) key.update(`${p.name}\0${p.version}\0${p.architecture}\0${p.sha256}\n`);
  const packages = pkgs.map((p) => ({
    SPDXID: spdxId(`deb-${p.name}-${p.architecture}`),
    name: p.name,
    versionInfo: p.version,
    supplier: p.maintainer ? `Person: ${p.maintainer.replace(/[\r\n]/g, ' ')}` : 'NOASSERTION',
    downloadLocation: p.url,
    filesAnalyzed: false,
    checksums: [{ algorithm: 'SHA256', checksumValue: p.sha256 }],
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    externalRefs: [
      {
        referenceCategory: 'PACKAGE-MANAGER',
        referenceType: 'purl',
        referenceLocator: `pkg:deb/debian/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}?arch=${encodeURIComponent(p.architecture)}&distro=${encodeURIComponent(distro)}`,
      },
    ],
    ...(p.source && p.source !== p.name ? { sourceInfo: `built from the Debian source package ${p.source}` } : {}),
  }));
  return spdxDocument(`${image} (${arch})`, key.digest('hex'), packages, epoch);
}
