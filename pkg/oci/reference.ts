/**
 * Image references, parsed the way docker (distribution/reference) and
 * LinuxKit do, plus the file transports skopeo spells `oci:`/`docker-archive:`.
 *
 *   alpine                  -> docker.io/library/alpine:latest
 *   host:5000/a/b@sha256:…  -> host:5000/a/b@sha256:…  (no tag added with a digest)
 *   oci-layout:PATH[:NAME]  -> an OCI image layout directory, NAME = ref.name or tag
 *   oci-archive:FILE[:NAME] -> the same, as a tar
 *   docker-archive:FILE[:NAME] -> `docker save` output
 *
 * As skopeo does, a transport's PATH ends at its first ':' (paths with ':'
 * are not supported there).
 */
import { DockyardError } from '../errors.js';

export const DefaultDomain = 'docker.io';
export const DefaultTag = 'latest';
/** Where docker.io's API actually lives. */
export const DockerHubApiHost = 'registry-1.docker.io';

export interface RegistryReference {
  transport: 'registry';
  /** What the user wrote. */
  raw: string;
  /** Registry host, with port if any (`docker.io`, `127.0.0.1:5000`). */
  domain: string;
  /** Repository path within the registry (`library/alpine`). */
  path: string;
  tag?: string;
  digest?: string;
  /** `domain/path[:tag][@digest]`. */
  canonical: string;
  /** `domain/path`. */
  name: string;
}

export interface FileReference {
  transport: 'oci-layout' | 'oci-archive' | 'docker-archive';
  raw: string;
  file: string;
  /** Image within the layout/archive: a full ref name or a tag; undefined = the only one. */
  select?: string;
  /** The reference as stored in our cache: the raw string. */
  canonical: string;
}

export type ImageReference = RegistryReference | FileReference;

// distribution/reference grammar (reference/regexp.go), lower case path components.
const pathComponent = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const tagRe = /^[\w][\w.-]{0,127}$/;
const digestRe = /^sha256:[a-f0-9]{64}$/;
const domainRe = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;

function bad(raw: string, why: string): DockyardError {
  return new DockyardError('E_IMAGE_REF', `invalid image reference "${raw}": ${why}`);
}

export function isDigest(s: string): boolean {
  return digestRe.test(s);
}

export function parseReference(raw: string): ImageReference {
  const t = /^(oci-layout|oci-archive|docker-archive):(.*)$/.exec(raw);
  if (t) {
    const transport = t[1] as FileReference['transport'];
    const rest = t[2];
    const i = rest.indexOf(':');
    const file = i < 0 ? rest : rest.slice(0, i);
    const select = i < 0 ? undefined : rest.slice(i + 1);
    if (!file) throw bad(raw, `${transport}: needs a path`);
    if (select === '') throw bad(raw, 'empty image name after the path');
    return { transport, raw, file, select, canonical: raw };
  }
  return parseRegistryReference(raw);
}

export function parseRegistryReference(raw: string): RegistryReference {
  if (raw === '' || raw.trim() !== raw) throw bad(raw, 'empty or surrounded by spaces');
  if (raw.length > 255 + 200) throw bad(raw, 'too long');
  let rest = raw;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestRe.test(digest)) throw bad(raw, 'digest must be sha256: and 64 lower-case hex digits');
  }
  let domain = DefaultDomain;
  let remainder = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    // docker: the first component is a host if it has '.' or ':' or is localhost.
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!domainRe.test(first)) throw bad(raw, `bad registry host "${first}"`);
      domain = first;
      remainder = rest.slice(slash + 1);
    }
  }
  let tag: string | undefined;
  const colon = remainder.lastIndexOf(':');
  if (colon >= 0) {
    tag = remainder.slice(colon + 1);
    remainder = remainder.slice(0, colon);
    if (!tagRe.test(tag)) throw bad(raw, `bad tag "${tag}"`);
  }
  if (domain === 'index.docker.io') domain = DefaultDomain;
  if (domain === DefaultDomain && !remainder.includes('/')) remainder = `library/${remainder}`;
  for (const c of remainder.split('/')) {
    if (!pathComponent.test(c)) {
      throw bad(raw, c === '' ? 'empty path component' : `"${c}" is not a valid repository name component (lower case letters, digits, . _ -)`);
    }
  }
  if (tag === undefined && digest === undefined) tag = DefaultTag;
  const name = `${domain}/${remainder}`;
  const canonical = name + (tag !== undefined ? `:${tag}` : '') + (digest !== undefined ? `@${digest}` : '');
  return { transport: 'registry', raw, domain, path: remainder, tag, digest, canonical, name };
}

/** The canonical form of any reference (what the cache records). */
export function canonicalRef(raw: string): string {
  return parseReference(raw).canonical;
}

/** Host the registry API is reached at (docker.io → registry-1.docker.io). */
export function apiHost(domain: string): string {
  return domain === DefaultDomain ? DockerHubApiHost : domain;
}

/** True for hosts that get plain HTTP without being listed as insecure. */
export function isLoopbackHost(hostport: string): boolean {
  let host = hostport;
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']'));
  else if (host.includes(':')) host = host.slice(0, host.lastIndexOf(':'));
  if (host === 'localhost' || host === '::1') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
