/**
 * pacman's rules for a package's name and version, as makepkg lints a
 * PKGBUILD (scripts/libmakepkg/lint_pkgbuild/{pkgname,pkgver,pkgrel,epoch,
 * fullpkgver}.sh) and libalpm splits a version (lib/libalpm/version.c
 * parseEVR: `[epoch:]pkgver-pkgrel`, the epoch before the first `:`, the
 * release after the last `-`).
 *
 * A `-` or `:` inside pkgver would move those splits, a `/` would make the
 * package's directory in the local database (`local/NAME-VER/`) a path, and
 * whitespace breaks the `key = value` lines of .PKGINFO and the database.
 */
import type { PackageMeta } from '../../package/types.js';

/** Names pacman accepts (lint_one_pkgname), any case: names of other packages in relations. */
const NAME_CHARS = /^[A-Za-z0-9@._+-]+$/;

/** The problem with a name used in a relation or as pkgname, or undefined. */
export function checkName(name: string, what: string, lowercase = false): string | undefined {
  if (name === '') return `${what} is empty`;
  if (name.startsWith('-')) return `${what} '${name}' starts with a hyphen`;
  if (name.startsWith('.')) return `${what} '${name}' starts with a dot`;
  if (!NAME_CHARS.test(name)) return `${what} '${name}' may contain only letters, digits and @ . _ + -`;
  // Arch's package guidelines: lowercase names, so `pacman -S Name` and `name` never name two packages.
  if (lowercase && name !== name.toLowerCase()) return `${what} '${name}' must be lowercase`;
  return undefined;
}

/** pkgver: not empty, ASCII, no `:` `/` `-` or whitespace (check_pkgver). */
export function checkPkgver(ver: string, what = 'pkgver'): string | undefined {
  if (ver === '') return `${what} is empty`;
  if (/[\s/:-]/.test(ver)) return `${what} '${ver}' may not contain colons, slashes, hyphens or whitespace`;
  if (/[^\x20-\x7e]/.test(ver)) return `${what} '${ver}' may contain only printable ASCII`;
  return undefined;
}

/** pkgrel: `integer[.integer]` (check_pkgrel). */
export function checkPkgrel(rel: string, what = 'pkgrel'): string | undefined {
  if (!/^[0-9]+(\.[0-9]+)?$/.test(rel)) return `${what} '${rel}' must be of the form integer[.integer]`;
  return undefined;
}

/**
 * A full version as relations write it, `[epoch:]pkgver[-pkgrel]`
 * (check_fullpkgver: the epoch before the first `:`, the release after the
 * last `-`).
 */
export function checkFullVersion(full: string, what: string): string | undefined {
  let rest = full;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    const epoch = rest.slice(0, colon);
    if (!/^[0-9]*$/.test(epoch)) return `${what}: epoch '${epoch}' must be an integer`;
    rest = rest.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  if (dash > 0) {
    const bad = checkPkgrel(rest.slice(dash + 1), `${what}: pkgrel`);
    if (bad) return bad;
    rest = rest.slice(0, dash);
  }
  return checkPkgver(rest, `${what}: pkgver`);
}

/** Whether `meta` names a valid pacman package; the first problem found, or undefined. */
export function checkPacmanName(meta: Pick<PackageMeta, 'name' | 'version' | 'release' | 'epoch'>): string | undefined {
  return (
    checkName(meta.name, 'pacman pkgname', true) ??
    checkPkgver(meta.version, `pacman pkgver of ${meta.name}`) ??
    checkPkgrel(meta.release, `pacman pkgrel of ${meta.name}`) ??
    (Number.isSafeInteger(meta.epoch) && meta.epoch >= 0 ? undefined : `pacman epoch of ${meta.name} must be a non-negative integer, not ${meta.epoch}`)
  );
}

/** pkgver as .PKGINFO and the file name write it: `[epoch:]version-release`, the epoch only when > 0. */
export function pacmanFullVersion(meta: Pick<PackageMeta, 'version' | 'release' | 'epoch'>): string {
  return `${meta.epoch > 0 ? `${meta.epoch}:` : ''}${meta.version}-${meta.release}`;
}

/**
 * checkPacmanName in the shape the packaging formats report (pkg/formats/package.ts
 * PackageEncoder.checkNames): the spec key at fault and why. The epoch has
 * no key of its own there; its problems are the version's.
 */
export function checkPacmanNames(meta: Pick<PackageMeta, 'name' | 'version' | 'release' | 'epoch'>): { key: 'name' | 'version' | 'release'; message: string } | undefined {
  const name = checkName(meta.name, 'pacman pkgname', true);
  if (name) return { key: 'name', message: name };
  const ver = checkPkgver(meta.version, 'pacman pkgver');
  if (ver) return { key: 'version', message: ver };
  const rel = checkPkgrel(meta.release, 'pacman pkgrel');
  if (rel) return { key: 'release', message: rel };
  const bad = checkPacmanName(meta);
  return bad ? { key: 'version', message: bad } : undefined;
}
