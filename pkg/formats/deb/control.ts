/**
 * The control member's files (deb-control(5), Debian Policy ch. 5): the
 * `control` stanza with fields in dpkg-gencontrol's order, `md5sums`
 * (md5sum's "HASH  PATH" lines, paths without the leading slash),
 * `conffiles` (one absolute path per line), and the maintainer scripts.
 * The documentation files Debian policy asks of every binary package
 * (§12.5 copyright, §12.7 changelog.Debian.gz) are made here too.
 */
import { gzipSync } from 'node:zlib';
import { DockyardError } from '../../errors.js';
import type { PackageMeta, Relations } from '../../package/types.js';

const OPS = ['<<', '<=', '=', '>=', '>>', '<', '>'];

/** One relation item in Debian's syntax: `name (>= 1.0)`; `name >= 1.0` (rpm/pacman style) converted; `a | b` kept. */
export function debRelation(item: string): string {
  return item
    .split('|')
    .map((alt) => {
      const s = alt.trim();
      if (/^[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?(\s*\((<<|<=|=|>=|>>)\s*[^()\s]+\))?(\s*\[[^\]]*\])?$/.test(s)) return s.replace(/\s*\(\s*/, ' (').replace(/\s*\)/, ')').replace(/\((<<|<=|=|>=|>>)\s*/, '($1 ');
      const m = /^([a-z0-9][a-z0-9+.-]*)\s*(<=|>=|=|<|>)\s*([^\s]+)$/.exec(s);
      if (m) return `${m[1]} (${m[2] === '<' ? '<<' : m[2] === '>' ? '>>' : m[2]} ${m[3]})`;
      throw new DockyardError('E_PACKAGE', `relation "${item}" is not a Debian relation (name, or name (OP VERSION) with OP one of ${OPS.slice(0, 5).join(' ')})`);
    })
    .join(' | ');
}

function rel(list: string[]): string | undefined {
  return list.length === 0 ? undefined : list.map(debRelation).join(', ');
}

/** Description per deb-control(5): the synopsis, then each line indented one space, empty lines as " .". */
function description(summary: string, long: string): string {
  const lines = long === '' ? [] : long.split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l}`));
  return [summary, ...lines].join('\n');
}

export function fullVersion(m: Pick<PackageMeta, 'epoch' | 'version' | 'release'>): string {
  return `${m.epoch > 0 ? `${m.epoch}:` : ''}${m.version}-${m.release}`;
}

export function controlFile(m: PackageMeta, installedKiB: number): Buffer {
  const r: Relations = m.relations;
  const fields: [string, string | undefined][] = [
    ['Package', m.name],
    ['Version', fullVersion(m)],
    ['Architecture', m.arch],
    ['Maintainer', m.maintainer],
    ['Installed-Size', String(installedKiB)],
    ['Pre-Depends', rel(r.preDepends)],
    ['Depends', rel(r.depends)],
    ['Recommends', rel(r.recommends)],
    ['Suggests', rel(r.suggests)],
    ['Breaks', rel(r.breaks)],
    ['Conflicts', rel(r.conflicts)],
    ['Replaces', rel(r.replaces)],
    ['Provides', rel(r.provides)],
    ['Section', m.section],
    ['Priority', m.priority],
    ['Homepage', m.homepage],
    ['Description', description(m.summary, m.description)],
  ];
  return Buffer.from(fields.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}: ${v}`).join('\n') + '\n', 'utf8');
}

/** RFC 2822 date as dpkg-parsechangelog writes it: `Mon, 30 Nov 2026 10:00:00 +0000`. */
export function rfc2822(seconds: number): string {
  const d = new Date(seconds * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** debian/changelog entries (deb-changelog(5)), newest first. */
export function changelogText(m: PackageMeta): string {
  return m.changelog
    .map((c) => [`${m.name} (${c.version}) unstable; urgency=medium`, '', ...c.changes.map((l) => `  * ${l}`), '', ` -- ${c.author}  ${rfc2822(c.date)}`, ''].join('\n'))
    .join('\n');
}

/** gzip -9n: no name, mtime 0 — what dh_compress makes, byte for byte reproducible. */
export function gzipDoc(text: string): Buffer {
  return gzipSync(Buffer.from(text, 'utf8'), { level: 9 });
}

/** Licenses whose full text Debian keeps in /usr/share/common-licenses. */
const COMMON: Record<string, string> = {
  'Apache-2.0': 'Apache-2.0',
  'GPL-2.0-only': 'GPL-2',
  'GPL-2.0-or-later': 'GPL-2',
  'GPL-3.0-only': 'GPL-3',
  'GPL-3.0-or-later': 'GPL-3',
  'LGPL-2.1-only': 'LGPL-2.1',
  'LGPL-2.1-or-later': 'LGPL-2.1',
  'LGPL-3.0-only': 'LGPL-3',
  'LGPL-3.0-or-later': 'LGPL-3',
  'MPL-2.0': 'MPL-2.0',
  'CC0-1.0': 'CC0-1.0',
};

/** A machine-readable debian/copyright (copyright-format 1.0). */
export function copyrightText(m: PackageMeta): string {
  const license = m.license ?? 'unknown';
  const common = COMMON[license];
  const body = common ? `\n On Debian systems, the full text of the license can be found in\n /usr/share/common-licenses/${common}.` : '\n The license text is not included; see the upstream project.';
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    `Upstream-Name: ${m.name}`,
    ...(m.homepage ? [`Source: ${m.homepage}`] : []),
    '',
    'Files: *',
    `Copyright: ${m.vendor ?? m.maintainer}`,
    `License: ${license}${body}`,
    '',
  ].join('\n');
}
