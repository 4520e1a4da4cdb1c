/**
 * An image's filesystem as LinuxKit writes it into the system (moby/build
 * image.go, ImageTar): placed under a prefix, with a few paths dropped,
 * `etc/hosts` and `etc/resolv.conf` replaced, and the mount points every
 * container needs added when the image lacks them.
 */
import { sha256hex } from '../hash.js';
import type { BlobStore, ImageHandle } from '../oci/types.js';
import type { Entry, Segment } from './entry.js';
import { flattenLayers } from './layers.js';

/** Bumped when the way entries are derived from an image changes. */
export const ROOTFS_VERSION = 'rootfs-1';

export const RESOLV_SYMLINK = '/run/resolvconf/resolv.conf';

const EXCLUDE = new Set(['.dockerenv', 'Dockerfile', 'dev/console', 'dev/pts', 'dev/shm', 'etc/hostname']);

export const HOSTS = `127.0.0.1       localhost
::1     localhost ip6-localhost ip6-loopback
fe00::0 ip6-localnet
ff00::0 ip6-mcastprefix
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
`;
export const RESOLV_EMPTY = `
# no resolv.conf configured
`;

/** Added, in this order, when the image has no entry of that path. */
const TOUCH: Entry[] = [
  { path: 'dev', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
  { path: 'dev/pts', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
  { path: 'dev/shm', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
  { path: 'etc', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
  { path: 'etc/hosts', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 },
  { path: 'etc/mtab', type: 'symlink', mode: 0o755, uid: 0, gid: 0, size: 0, linkname: '/proc/mounts' },
  { path: 'etc/resolv.conf', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 },
  { path: 'proc', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
  { path: 'sys', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
];

function join(prefix: string, p: string): string {
  return prefix ? `${prefix}/${p}` : p;
}

/** LinuxKit's tarPrefix: every leading directory of `prefix`, 0755 root. */
export function prefixDirs(prefix: string): Entry[] {
  const parts = prefix.split('/').filter(Boolean);
  return parts.map((_, i) => ({ path: parts.slice(0, i + 1).join('/'), type: 'dir' as const, mode: 0o755, uid: 0, gid: 0, size: 0 }));
}

/** A TOUCH entry with LinuxKit's content for etc/hosts and etc/resolv.conf. */
function touched(t: Entry, resolv: string | undefined): Entry {
  if (t.path === 'etc/hosts') return { ...t, size: HOSTS.length, body: Buffer.from(HOSTS) };
  if (t.path === 'etc/resolv.conf') {
    if (resolv) return { ...t, type: 'symlink', linkname: resolv };
    return { ...t, size: RESOLV_EMPTY.length, body: Buffer.from(RESOLV_EMPTY) };
  }
  return { ...t };
}

export interface ImageSegmentOptions {
  name: string;
  image: ImageHandle;
  store: BlobStore;
  /** Output directory the image's root goes to ('' = the system root). */
  prefix: string;
  /** init images and volumes get the resolv.conf symlink; containers a fixed file. */
  kind: 'init' | 'volume' | 'container';
  /** Decompressed bytes of one layer. */
  maxLayerBytes?: number;
}

/** Entries of an image placed at `prefix`, with LinuxKit's edits (no prefix dirs). */
export async function* imageEntries(o: ImageSegmentOptions): AsyncGenerator<Entry> {
  const resolv = o.kind === 'container' ? undefined : RESOLV_SYMLINK;
  const found = new Set<string>();
  const label = `image ${o.image.ref}`;
  for await (const raw of flattenLayers(o.store, o.image.layers, label, { maxLayerBytes: o.maxLayerBytes })) {
    if (EXCLUDE.has(raw.path)) continue;
    // LinuxKit rewrites these in place and then writes them again from its
    // "touch" table, so the final state is always the table's: add them below.
    if (raw.path === 'etc/hosts' || raw.path === 'etc/resolv.conf') continue;
    found.add(raw.path);
    raw.path = join(o.prefix, raw.path);
    if (raw.type === 'hardlink' && raw.linkname) raw.linkname = join(o.prefix, raw.linkname);
    yield raw;
  }
  for (const t of TOUCH) {
    if (found.has(t.path)) continue;
    const e = touched(t, resolv);
    e.path = join(o.prefix, t.path);
    yield e;
  }
}

export function imageSegment(o: ImageSegmentOptions): Segment {
  return {
    name: o.name,
    key: sha256hex(ROOTFS_VERSION, 'image', o.image.manifestDigest, o.prefix, o.kind),
    async *entries() {
      yield* prefixDirs(o.prefix);
      yield* imageEntries(o);
    },
  };
}
