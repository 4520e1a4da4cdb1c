/**
 * What rpm accepts as a package name, version, release and dependency, with
 * rpmbuild's own rules (rpm 4.18 build/rpmbuild_internal.h ALLOWED_CHARS_*,
 * build/parsePreamble.c rpmCharCheck(), build/parseReqs.c checkDep()):
 *
 *   name      first char ASCII alphanumeric or `_`; then alphanumerics and `.-_+`; no `..`
 *   version   alphanumerics and `._+~^` (no `-`: it separates version and release); no `..`
 *   release   the same as version
 *   epoch     an unsigned 32-bit integer
 *
 * (`%{}` are allowed by rpmbuild only as unexpanded macros; they are refused
 * here.) Dependencies are `NAME [OP EVR]`, OP one of `< <= = >= >`; the
 * Debian form `name (>= 1.0)` is accepted too, and Debian alternatives
 * `a | b` become an rpm rich dependency `(a or b)` (rpm ≥ 4.12,
 * docs/manual/boolean_dependencies.md).
 */
import type { PackageMeta } from '../../package/types.js';
import { DockyardError } from '../../errors.js';
import { Sense } from './tags.js';

const ALNUM = /^[A-Za-z0-9]$/;
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;
const VERREL_RE = /^[A-Za-z0-9._+~^]+$/;
const EVR_RE = /^[A-Za-z0-9._+~^:-]+$/;

/** Why `meta` cannot be an rpm's name, version, release and epoch; undefined when it can. */
export function checkRpmVersion(meta: Pick<PackageMeta, 'name' | 'version' | 'release' | 'epoch'>): string | undefined {
  if (!NAME_RE.test(meta.name) || meta.name.includes('..'))
    return `rpm: package name ${JSON.stringify(meta.name)} is not valid: it must start with a letter, a digit or '_' and hold only letters, digits and '._+-' (no '..')`;
  for (const [what, v] of [
    ['version', meta.version],
    ['release', meta.release],
  ] as const) {
    if (!VERREL_RE.test(v) || v.includes('..'))
      return `rpm: ${what} ${JSON.stringify(v)} is not valid: it may hold only letters, digits and '._+~^' (no '-', no '..')`;
  }
  if (!Number.isInteger(meta.epoch) || meta.epoch < 0 || meta.epoch > 0xffffffff) return `rpm: epoch ${meta.epoch} is not an unsigned 32-bit integer`;
  return undefined;
}

/** `[epoch:]version-release`, as rpm prints and compares it. */
export function evrOf(meta: Pick<PackageMeta, 'version' | 'release' | 'epoch'>): string {
  return `${meta.epoch > 0 ? `${meta.epoch}:` : ''}${meta.version}-${meta.release}`;
}

/** One dependency as the header stores it: NAME, FLAGS (the sense bits) and VERSION (an EVR, or empty). */
export interface RpmDep {
  name: string;
  flags: number;
  version: string;
}

const OPS: Record<string, number> = {
  '<': Sense.LESS,
  '<<': Sense.LESS,
  '<=': Sense.LESS | Sense.EQUAL,
  '=': Sense.EQUAL,
  '==': Sense.EQUAL,
  '>=': Sense.GREATER | Sense.EQUAL,
  '>': Sense.GREATER,
  '>>': Sense.GREATER,
};
const OP_TEXT: Record<number, string> = {
  [Sense.LESS]: '<',
  [Sense.LESS | Sense.EQUAL]: '<=',
  [Sense.EQUAL]: '=',
  [Sense.GREATER | Sense.EQUAL]: '>=',
  [Sense.GREATER]: '>',
};

const OP_ALT = '<<|>>|<=|>=|==|<|>|=';
/** `name (op version)`: Debian's form. */
const DEBIAN_FORM = new RegExp(`^([^\\s()]+)\\s*\\(\\s*(${OP_ALT})\\s*([^\\s()]+)\\s*\\)$`);
/** `name op version`, spaces optional between the three (`glibc>=2.34`). */
const RPM_FORM = new RegExp(`^([^\\s<>=]+)\\s*(${OP_ALT})\\s*([^\\s<>=]+)$`);

const bad = (what: string, item: string, why: string) => new DockyardError('E_PACKAGE', `rpm: ${what} ${JSON.stringify(item)}: ${why}`);

/** One simple `NAME [OP EVR]` (either form), checked as rpmbuild's checkDep() does. */
function parseSimple(item: string, what: string): RpmDep {
  const s = item.trim();
  let name: string;
  let flags = Sense.ANY as number;
  let version = '';
  const m = DEBIAN_FORM.exec(s) ?? RPM_FORM.exec(s);
  if (m) {
    name = m[1];
    flags = OPS[m[2]];
    version = m[3];
  } else if (/^\S+$/.test(s)) {
    name = s;
  } else {
    throw bad(what, item, "expected 'NAME', 'NAME OP VERSION' or 'NAME (OP VERSION)' with OP one of < <= = >= >");
  }
  // checkDep(): "Dependency tokens must begin with alpha-numeric, '_' or '/'" (plain ASCII only is checked).
  const c = name[0];
  if (c.charCodeAt(0) < 0x80 && !(ALNUM.test(c) || c === '_' || c === '/')) throw bad(what, item, "a dependency name must begin with a letter, a digit, '_' or '/'");
  if (version) {
    if (name.startsWith('/')) throw bad(what, item, 'a file name cannot have a version');
    if (!EVR_RE.test(version) || version.includes('..')) throw bad(what, item, `version ${JSON.stringify(version)} may hold only letters, digits and '._+~^-:'`);
    if (version.split('-').length > 2 || version.split(':').length > 2) throw bad(what, item, `version ${JSON.stringify(version)} has more than one '-' or ':'`);
    const colon = version.indexOf(':');
    if (colon >= 0 && !/^[0-9]+$/.test(version.slice(0, colon))) throw bad(what, item, 'the epoch (before the colon) must be an unsigned integer');
  }
  return { name, flags, version };
}

function simpleText(d: RpmDep): string {
  return d.version ? `${d.name} ${OP_TEXT[d.flags & 0xe]} ${d.version}` : d.name;
}

/**
 * One relation item as written in the plan (already rpm's, or Debian style).
 * `rich` says whether a boolean dependency is allowed where it goes (rpm
 * allows them in Requires, Recommends, Suggests, Supplements, Enhances and
 * Conflicts, not in Provides or Obsoletes: build/pack.c haveRichDep()).
 * A rich dependency is stored whole as the NAME, with FLAGS 0 and no VERSION.
 */
export function parseRelation(item: string, what: string, rich: boolean): RpmDep & { rich: boolean } {
  const s = item.trim();
  if (s === '') throw bad(what, item, 'empty');
  if (s.includes('\0') || s.includes('\n')) throw bad(what, item, 'contains a control character');
  if (s.startsWith('(')) {
    // Written as a rich dependency already: passed through, rpm parses it on install.
    if (!rich) throw bad(what, item, 'a boolean (rich) dependency is not allowed here');
    let depth = 0;
    for (const ch of s) {
      depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
      if (depth < 0) break;
    }
    if (depth !== 0 || !s.endsWith(')')) throw bad(what, item, 'unbalanced parentheses');
    return { name: s, flags: 0, version: '', rich: true };
  }
  if (s.includes('|')) {
    if (!rich) throw bad(what, item, 'alternatives (|) are not allowed here');
    const alts = s.split('|').map((a) => parseSimple(a, what));
    return { name: `(${alts.map(simpleText).join(' or ')})`, flags: 0, version: '', rich: true };
  }
  return { ...parseSimple(s, what), rich: false };
}

/** The package-name rule rpmbuild applies to Obsoletes ("Only package names are allowed in Obsoletes"). */
export function isPackageName(name: string): boolean {
  return NAME_RE.test(name) && !name.includes('..');
}
