/**
 * The package plan: what every packaging format (deb, rpm, pacman) encodes.
 * Contents are resolved once per build and architecture (from the spec's
 * images, its `files:` and `package.contents`, generated units and container
 * bundles); each format only encodes them (nfpm's split: resolve once,
 * packagers encode).
 */
export type PackageFormat = 'deb' | 'rpm' | 'pacman';
export type Arch = 'amd64' | 'arm64';

/** Relations, already with this format's overrides applied; each item as written (`libc6 (>= 2.34)`, `glibc >= 2.34`). */
export interface Relations {
  depends: string[];
  preDepends: string[];
  recommends: string[];
  suggests: string[];
  conflicts: string[];
  breaks: string[];
  replaces: string[];
  provides: string[];
}

export interface ChangelogEntry {
  /** Full version as written in this entry (`1.2.3-1`, or with an epoch `1:1.2.3-1`). */
  version: string;
  /** Seconds since the epoch (defaults to SOURCE_DATE_EPOCH). */
  date: number;
  /** `Name <email>` (defaults to the maintainer). */
  author: string;
  /** One line each, without bullets. */
  changes: string[];
}

export interface PackageMeta {
  name: string;
  /** Upstream version (no epoch, no release). */
  version: string;
  /** 0 when absent; formats write it only when > 0. */
  epoch: number;
  /** Release (deb revision, rpm release, pacman pkgrel); '1' by default. */
  release: string;
  arch: Arch;
  /** One line. */
  summary: string;
  /** Longer text, lines separated by \n (may be empty). */
  description: string;
  /** `Name <email>`. */
  maintainer: string;
  vendor?: string;
  homepage?: string;
  license?: string;
  /** Debian section / rpm group-ish; default `misc`. */
  section: string;
  /** Debian priority; default `optional`. */
  priority: string;
  relations: Relations;
  /** Newest first. */
  changelog: ChangelogEntry[];
}

/** The users and groups the package's scripts create (system accounts). */
export interface Account {
  kind: 'user' | 'group';
  name: string;
  /** For users: primary group (created if missing), home, shell. */
  group?: string;
  home?: string;
  shell?: string;
}

/** Every maintainer script of every format, rendered (pkg/package/scripts.ts). Absent: the format writes none. */
export interface RenderedScripts {
  deb: { preinst?: string; postinst?: string; prerm?: string; postrm?: string };
  /** Bodies of %pre, %post, %preun, %postun (interpreter /bin/sh). */
  rpm: { pre?: string; post?: string; preun?: string; postun?: string };
  /** The `.INSTALL` file: shell functions pre_install, post_install, pre_upgrade, post_upgrade, pre_remove, post_remove. */
  pacman?: string;
}

export interface PackageFile {
  /** Absolute path on the installed system: `/usr/bin/dockerd` (no trailing slash; never `/`). */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  /** Permission bits (0o7777 mask), without the file type. */
  mode: number;
  /** Owner and group names (rpm and pacman want names; dpkg resolves names first). */
  user: string;
  group: string;
  /** Numeric ids written beside the names where a format has both (tar): 0 for root, else as resolved. */
  uid: number;
  gid: number;
  /** Bytes of a file, else 0. */
  size: number;
  /** Symlink target as written. */
  linkname?: string;
  /** Seconds (SOURCE_DATE_EPOCH). */
  mtime: number;
  /** Of a file's bytes, lowercase hex. */
  sha256?: string;
  md5?: string;
  /** A configuration file: deb conffiles, rpm %config(noreplace), pacman backup. */
  config?: boolean;
  /** A parent directory added because something lies below it (rpm leaves these to the packages that own them). */
  implicit?: boolean;
  /** Owned but not shipped (rpm %ghost; other formats leave it out, a dir/file the scripts or the service make). */
  ghost?: boolean;
}

export interface PackageContents {
  /** Sorted by path (byte order); parents before children; every parent directory listed. */
  files: PackageFile[];
  /** A file's bytes; each call a fresh read. */
  body(f: PackageFile): AsyncIterable<Buffer>;
  /** Sum of file sizes (bytes), ghosts excluded. */
  installedBytes: number;
}

export interface PackagePlan {
  meta: PackageMeta;
  contents: PackageContents;
  scripts: RenderedScripts;
  accounts: Account[];
  /** Systemd units to enable and start (names, `docker.service`). */
  units: string[];
  /** Where the spec's container bundles are installed (`/usr/lib/NAME/containers`), when it has any: their roots are shipped as the images hold them. */
  containersDir?: string;
  /** Seconds every timestamp of the package carries (SOURCE_DATE_EPOCH, else the newest changelog date). */
  time: number;
}

/** Each ecosystem's name of an architecture. */
export function archName(format: PackageFormat, arch: Arch): string {
  if (format === 'deb') return arch;
  return arch === 'amd64' ? 'x86_64' : 'aarch64';
}

/** The file a format writes for a package: NAME_VERSION-RELEASE_ARCH.deb, NAME-VERSION-RELEASE.ARCH.rpm, NAME-VERSION-RELEASE-ARCH.pkg.tar.gz. */
export function packageFileName(format: PackageFormat, meta: Pick<PackageMeta, 'name' | 'version' | 'release' | 'epoch' | 'arch'>): string {
  const a = archName(format, meta.arch);
  if (format === 'deb') return `${meta.name}_${meta.version}-${meta.release}_${a}.deb`;
  if (format === 'rpm') return `${meta.name}-${meta.version}-${meta.release}.${a}.rpm`;
  // pacman: the epoch is part of pkgver in the file name (`1:2.0-1`).
  return `${meta.name}-${meta.epoch > 0 ? `${meta.epoch}:` : ''}${meta.version}-${meta.release}-${a}.pkg.tar.gz`;
}
