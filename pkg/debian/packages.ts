/**
 * The binary packages of one architecture, from the Packages indices of
 * the listed suites (dists/SUITE/COMPONENT/binary-ARCH/Packages, which
 * carry the `Architecture: all` packages too), with each package's
 * candidate as apt chooses it: the highest pin priority, then the newest
 * version (apt_preferences(5) defaults: 500 for a suite, 100 for one
 * marked `NotAutomatic: yes` + `ButAutomaticUpgrades: yes` such as
 * bookworm-backports, 1 for `NotAutomatic: yes` alone).
 */
import { DockyardError } from '../errors.js';
import type { Paragraph } from './deb822.js';
import { parseClauses, parseList, parseProvides, type Alt, type Clause } from './relations.js';
import { compareVersions, satisfies } from './version.js';

export interface BinaryPackage {
  name: string;
  version: string;
  /** `amd64`, `arm64` or `all`. */
  arch: string;
  multiArch: 'no' | 'same' | 'foreign' | 'allowed';
  essential: boolean;
  priority: string;
  source: string;
  /** Where it is: the suite's name (as the repository lists it) and pin priority. */
  suite: string;
  pin: number;
  filename: string;
  size: number;
  sha256: string;
  /** The relation fields of the stanza, parsed on first use (the rest of the stanza is not kept: an index is large). */
  fields: Paragraph;
}

export interface Relations {
  preDepends: Clause[];
  depends: Clause[];
  recommends: Clause[];
  conflicts: Alt[];
  breaks: Alt[];
  provides: Alt[];
}

export interface IndexSource {
  suite: string;
  pin: number;
  /** What errors name (the index's URL or file). */
  what: string;
  paragraphs: Paragraph[];
}

/** apt's default pin priority of a suite from its Release fields. */
export function defaultPin(notAutomatic: boolean, butAutomaticUpgrades: boolean): number {
  if (!notAutomatic) return 500;
  return butAutomaticUpgrades ? 100 : 1;
}

const MULTI_ARCH = new Set(['no', 'same', 'foreign', 'allowed']);

const RELATION_FIELDS = ['pre-depends', 'depends', 'recommends', 'conflicts', 'breaks', 'provides'];

/** Only what relations() reads: the descriptions, tags and sums of ~60 000 stanzas are dropped. */
function relationFields(p: Paragraph): Paragraph {
  const out: Paragraph = {};
  for (const k of RELATION_FIELDS) if (p[k] !== undefined) out[k] = p[k];
  return out;
}

export class PackageIndex {
  /** Every version of each package name, best candidate first. */
  private readonly byName = new Map<string, BinaryPackage[]>();
  private providersOf?: Map<string, { pkg: BinaryPackage; version?: string }[]>;
  private readonly rels = new WeakMap<BinaryPackage, Relations>();

  constructor(
    readonly arch: string,
    sources: IndexSource[],
  ) {
    for (const s of sources) {
      for (const p of s.paragraphs) {
        const pkg = this.fromParagraph(p, s);
        if (pkg.arch !== arch && pkg.arch !== 'all') continue;
        let list = this.byName.get(pkg.name);
        if (!list) this.byName.set(pkg.name, (list = []));
        // The same version in two suites (a point release and its -updates): keep the first listed.
        if (!list.some((q) => q.version === pkg.version && q.arch === pkg.arch)) list.push(pkg);
      }
    }
    for (const list of this.byName.values()) list.sort((a, b) => b.pin - a.pin || compareVersions(b.version, a.version));
  }

  private fromParagraph(p: Paragraph, s: IndexSource): BinaryPackage {
    const name = p.package;
    const version = p.version;
    if (!name || !version || !p.architecture || !p.filename) throw new DockyardError('E_ARCHIVE_FORMAT', `${s.what}: a stanza without Package, Version, Architecture or Filename (${name ?? '?'})`);
    const sha256 = (p.sha256 ?? '').toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new DockyardError('E_ARCHIVE_FORMAT', `${s.what}: ${name} ${version} has no SHA256`);
    const size = Number(p.size);
    if (!Number.isSafeInteger(size) || size < 0) throw new DockyardError('E_ARCHIVE_FORMAT', `${s.what}: ${name} ${version} has a bad Size`);
    const ma = (p['multi-arch'] ?? 'no').toLowerCase();
    return {
      name,
      version,
      arch: p.architecture,
      multiArch: (MULTI_ARCH.has(ma) ? ma : 'no') as BinaryPackage['multiArch'],
      essential: (p.essential ?? '').toLowerCase() === 'yes',
      priority: (p.priority ?? 'optional').toLowerCase(),
      source: (p.source ?? name).split(/\s/)[0],
      suite: s.suite,
      pin: s.pin,
      filename: p.filename,
      size,
      sha256,
      fields: relationFields(p),
    };
  }

  /** The package's relations, parsed once. */
  relations(pkg: BinaryPackage): Relations {
    let r = this.rels.get(pkg);
    if (!r) {
      const what = `${pkg.name} ${pkg.version}`;
      const f = pkg.fields;
      r = {
        preDepends: parseClauses(f['pre-depends'], what),
        depends: parseClauses(f.depends, what),
        recommends: parseClauses(f.recommends, what),
        conflicts: parseList(f.conflicts, what),
        breaks: parseList(f.breaks, what),
        provides: parseProvides(f.provides, what),
      };
      this.rels.set(pkg, r);
    }
    return r;
  }

  /** Every version of a real package, best candidate first. */
  versions(name: string): BinaryPackage[] {
    return this.byName.get(name) ?? [];
  }

  /** apt's candidate of a real package. */
  candidate(name: string): BinaryPackage | undefined {
    return this.byName.get(name)?.[0];
  }

  names(): IterableIterator<string> {
    return this.byName.keys();
  }

  /** Candidates (only) that provide `name`, with the version they provide it at. */
  providers(name: string): { pkg: BinaryPackage; version?: string }[] {
    if (!this.providersOf) {
      const m = new Map<string, { pkg: BinaryPackage; version?: string }[]>();
      for (const list of this.byName.values()) {
        const c = list[0];
        for (const p of this.relations(c).provides) {
          let l = m.get(p.name);
          if (!l) m.set(p.name, (l = []));
          l.push({ pkg: c, version: p.version });
        }
      }
      this.providersOf = m;
    }
    return this.providersOf.get(name) ?? [];
  }

  /** Whether `pkg` (a candidate or a chosen version) satisfies `alt` by itself or by what it provides. */
  satisfiesAlt(pkg: BinaryPackage, alt: Alt): boolean {
    if (pkg.name === alt.name && this.archOk(pkg, alt) && (!alt.op || satisfies(pkg.version, alt.op, alt.version!))) return true;
    for (const p of this.relations(pkg).provides) {
      if (p.name !== alt.name || !this.archOk(pkg, alt)) continue;
      if (!alt.op) return true;
      if (p.version !== undefined && satisfies(p.version, alt.op, alt.version!)) return true;
    }
    return false;
  }

  /**
   * Multi-Arch for a one-architecture image: `:any` wants Multi-Arch:
   * allowed (or foreign, which satisfies anything); `:native` and no
   * qualifier are this architecture's (or `all`) packages, which is every
   * package here.
   */
  private archOk(pkg: BinaryPackage, alt: Alt): boolean {
    if (!alt.archQual || alt.archQual === 'native' || alt.archQual === this.arch) return true;
    if (alt.archQual === 'any') return pkg.multiArch === 'allowed' || pkg.multiArch === 'foreign';
    return false;
  }
}
