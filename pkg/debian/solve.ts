/**
 * Which packages an image gets: the requested ones and everything they
 * depend on, chosen the way `apt-get install --no-install-recommends`
 * chooses on an empty system (apt's pkgDepCache::MarkInstall), with no apt
 * on the build path:
 *
 * - the requested packages are marked first (apt marks every command-line
 *   package, then installs their dependencies in order);
 * - then, depth first, each marked package's Pre-Depends and Depends
 *   clauses in order: a clause already satisfied by a marked package (or
 *   its Provides) is done; otherwise the first alternative whose candidate
 *   satisfies it is marked — the real package if its candidate fits, else a
 *   provider of the name (a virtual package), preferring apt's way;
 * - a candidate that Conflicts or Breaks a marked package (or is
 *   conflicted by one) is passed over for the next alternative;
 * - `essential: true` adds the Essential: yes packages first (what
 *   debootstrap and mmdebstrap lay down before anything else);
 * - Recommends are not followed (images are minimal; apt's
 *   --no-install-recommends).
 *
 * An unsatisfiable request is one error naming the chain from the
 * requested package to the clause that breaks.
 */
import { DockyardError } from '../errors.js';
import type { BinaryPackage, PackageIndex } from './packages.js';
import { formatAlt, formatClause, type Alt, type Clause } from './relations.js';
import { satisfies, type Relation } from './version.js';

export interface Request {
  name: string;
  op?: Relation;
  version?: string;
}

export interface SolveOptions {
  /** Add the Essential: yes set (default false). */
  essential?: boolean;
  /** Names never installed; a clause naming one counts as satisfied. */
  exclude?: string[];
}

export interface Solution {
  /** Sorted by name. */
  packages: BinaryPackage[];
  /** For each package, what pulled it in (absent for requested and Essential ones). */
  reasons: Map<string, { by: string; clause: string }>;
}

/** apt's order of Priority: values (pkgCache::State::VerPriority). */
const PRIORITY: Record<string, number> = { required: 1, important: 2, standard: 3, optional: 4, extra: 5 };

export function solve(index: PackageIndex, requests: Request[], o: SolveOptions = {}): Solution {
  const exclude = new Set(o.exclude ?? []);
  const marked = new Map<string, BinaryPackage>();
  const reasons = new Map<string, { by: string; clause: string }>();
  /** Parent chain for errors. */
  const parent = new Map<string, string>();

  const chain = (name: string): string => {
    const out = [name];
    for (let p = parent.get(name); p !== undefined && out.length < 50; p = parent.get(p)) out.push(p);
    return out.reverse().join(' → ');
  };

  const conflictsWith = (pkg: BinaryPackage): BinaryPackage | undefined => {
    const mine = [...index.relations(pkg).conflicts, ...index.relations(pkg).breaks];
    for (const other of marked.values()) {
      if (other.name === pkg.name) continue;
      if (mine.some((a) => index.satisfiesAlt(other, a))) return other;
      const theirs = [...index.relations(other).conflicts, ...index.relations(other).breaks];
      if (theirs.some((a) => index.satisfiesAlt(pkg, a))) return other;
    }
    return undefined;
  };

  const satisfied = (c: Clause): boolean =>
    c.some((a) => {
      if (exclude.has(a.name)) return true;
      const m = marked.get(a.name);
      if (m && index.satisfiesAlt(m, a)) return true;
      for (const p of index.providers(a.name)) {
        const mk = marked.get(p.pkg.name);
        if (mk === p.pkg && index.satisfiesAlt(mk, a)) return true;
      }
      return false;
    });

  /** The versions that could satisfy one alternative, in apt's order of preference. */
  const options = (a: Alt): BinaryPackage[] => {
    const out: BinaryPackage[] = [];
    const real = index.candidate(a.name);
    if (real && !exclude.has(real.name) && index.satisfiesAlt(real, a)) out.push(real);
    const provs = index
      .providers(a.name)
      .map((p) => p.pkg)
      .filter((p) => p.name !== a.name && !exclude.has(p.name) && index.satisfiesAlt(p, a));
    provs.sort((x, y) => {
      // CompareProviders: already marked first, then Essential, then Priority, then the name.
      const mx = marked.get(x.name) === x ? 0 : 1;
      const my = marked.get(y.name) === y ? 0 : 1;
      if (mx !== my) return mx - my;
      if (x.essential !== y.essential) return x.essential ? -1 : 1;
      const px = PRIORITY[x.priority] ?? 9;
      const py = PRIORITY[y.priority] ?? 9;
      if (px !== py) return px - py;
      return x.name < y.name ? -1 : x.name > y.name ? 1 : 0;
    });
    out.push(...provs);
    return out;
  };

  const explain = (by: BinaryPackage, c: Clause): string => {
    const parts = c.map((a) => {
      if (exclude.has(a.name)) return `${a.name} is excluded`;
      const cand = index.candidate(a.name);
      if (cand && a.op) return `the newest ${a.name} is ${cand.version}`;
      if (cand) {
        const other = conflictsWith(cand);
        if (other) return `${a.name} ${cand.version} conflicts with ${other.name} ${other.version}`;
        return `${a.name} cannot be installed`;
      }
      const provs = [...new Set(index.providers(a.name).map((p) => p.pkg.name))].sort();
      if (provs.length === 0) return `there is no package ${a.name}`;
      if (provs.every((p) => exclude.has(p))) return `its providers (${provs.join(', ')}) are excluded`;
      return `no provider of ${a.name} (${provs.join(', ')}) can be installed`;
    });
    return `${chain(by.name)}: ${by.name} ${by.version} depends on ${formatClause(c)} but ${parts.join(', and ')}`;
  };

  const install = (pkg: BinaryPackage, depth: number): void => {
    if (depth > 2000) throw new DockyardError('E_RESOLVE', `${chain(pkg.name)}: dependencies nest too deep`);
    const r = index.relations(pkg);
    for (const c of [...r.preDepends, ...r.depends]) {
      if (satisfied(c)) continue;
      let chosen: BinaryPackage | undefined;
      for (const a of c) {
        for (const cand of options(a)) {
          const m = marked.get(cand.name);
          if (m && m !== cand) continue; // another version of it is already in
          if (conflictsWith(cand)) continue;
          chosen = cand;
          break;
        }
        if (chosen) break;
      }
      if (!chosen) throw new DockyardError('E_RESOLVE', explain(pkg, c));
      if (marked.get(chosen.name) === chosen) continue;
      marked.set(chosen.name, chosen);
      parent.set(chosen.name, pkg.name);
      reasons.set(chosen.name, { by: pkg.name, clause: formatClause(c) });
      install(chosen, depth + 1);
    }
  };

  // The requested (and Essential) packages are marked before any dependency is followed.
  const roots: BinaryPackage[] = [];
  const mark = (pkg: BinaryPackage) => {
    const had = marked.get(pkg.name);
    if (had && had !== pkg) throw new DockyardError('E_RESOLVE', `${pkg.name} is requested at ${pkg.version} and ${had.version}`);
    const other = conflictsWith(pkg);
    if (other) throw new DockyardError('E_RESOLVE', `${pkg.name} ${pkg.version} conflicts with ${other.name} ${other.version}, both requested`);
    marked.set(pkg.name, pkg);
    roots.push(pkg);
  };
  if (o.essential) {
    for (const name of [...index.names()].sort()) {
      const c = index.candidate(name)!;
      if (c.essential && !exclude.has(name) && !marked.has(name)) mark(c);
    }
  }
  for (const rq of requests) {
    if (exclude.has(rq.name)) throw new DockyardError('E_RESOLVE', `${rq.name} is both requested and excluded`);
    const versions = index.versions(rq.name);
    if (versions.length === 0) {
      const prov = index.providers(rq.name);
      if (prov.length === 0) throw new DockyardError('E_RESOLVE', `there is no package ${rq.name} for ${index.arch}`);
      throw new DockyardError('E_RESOLVE', `${rq.name} is a virtual package (provided by ${[...new Set(prov.map((p) => p.pkg.name))].sort().join(', ')}): name one of them`);
    }
    const pick = rq.op ? versions.find((v) => satisfies(v.version, rq.op!, rq.version!)) : versions[0];
    if (!pick) throw new DockyardError('E_RESOLVE', `${formatAlt({ name: rq.name, op: rq.op, version: rq.version })} is requested but ${rq.name} has ${versions.map((v) => v.version).join(', ')}`);
    if (marked.get(rq.name) === pick) continue;
    mark(pick);
  }
  for (const p of roots) install(p, 0);

  const packages = [...marked.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { packages, reasons };
}
