/**
 * Debian's rules for names and versions (Debian Policy §5.6.1 Package,
 * §5.6.12 Version): a name of lowercase letters, digits, + - . (two or more,
 * starting alphanumeric); an upstream version starting with a digit, of
 * alphanumerics and . + ~ (and - only when a revision follows, which it
 * always does here: dockyard refuses - to keep one version valid for rpm and
 * pacman too); a revision of alphanumerics and + . ~.
 */
import type { PackageMeta } from '../../package/types.js';

export function checkDebNames(m: Pick<PackageMeta, 'name' | 'version' | 'release'>): { key: 'name' | 'version' | 'release'; message: string } | undefined {
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(m.name)) return { key: 'name', message: `package name "${m.name}" is not a valid Debian package name (lowercase letters, digits, "+", "-", "."; at least two, starting with a letter or digit)` };
  if (!/^[0-9][A-Za-z0-9.+~]*$/.test(m.version)) return { key: 'version', message: `version "${m.version}" is not a valid Debian upstream version (starts with a digit; letters, digits, ".", "+", "~"; no "-" or ":": release and epoch are separate keys)` };
  if (!/^[A-Za-z0-9+.~]+$/.test(m.release)) return { key: 'release', message: `release "${m.release}" is not a valid Debian revision (letters, digits, "+", ".", "~")` };
  return undefined;
}
