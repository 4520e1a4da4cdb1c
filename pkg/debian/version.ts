/**
 * Debian version numbers ([epoch:]upstream[-revision]) and their ordering,
 * as dpkg compares them (deb-version(7); dpkg lib/dpkg/version.c):
 * epochs numerically, then upstream and revision each by alternating
 * non-digit parts (letters before non-letters, `~` before everything, even
 * the end) and digit parts (numerically).
 */
import { DockyardError } from '../errors.js';

export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

const UPSTREAM = /^[0-9][A-Za-z0-9.+~:-]*$/;
const REVISION = /^[A-Za-z0-9.+~]*$/;

export function parseVersion(v: string, what = 'a version'): DebVersion {
  const s = v.trim();
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const e = s.slice(0, colon);
    if (!/^[0-9]+$/.test(e)) throw new DockyardError('E_ARCHIVE_FORMAT', `${what}: "${v}" has a bad epoch`);
    epoch = Number(e);
    rest = s.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : '';
  // dpkg accepts upstream versions not starting with a digit with a warning; so do we, but not empty ones.
  if (upstream === '' || !/^[A-Za-z0-9.+~:-]+$/.test(upstream) || (colon < 0 && upstream.includes(':')) || !REVISION.test(revision) || (dash >= 0 && revision === '')) {
    throw new DockyardError('E_ARCHIVE_FORMAT', `${what}: "${v}" is not a Debian version`);
  }
  void UPSTREAM;
  return { epoch, upstream, revision };
}

/** dpkg's order of a character in a non-digit part: `~` first, then the end, letters, then the rest. */
function order(c: number): number {
  if (c >= 0x30 && c <= 0x39) return 0;
  if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return c;
  if (c === 0x7e) return -1;
  if (c) return c + 256;
  return 0;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** dpkg's verrevcmp. */
function compareParts(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(i < a.length ? a.charCodeAt(i) : 0);
      const bc = order(j < b.length ? b.charCodeAt(j) : 0);
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (i < a.length && a.charCodeAt(i) === 0x30) i++;
    while (j < b.length && b.charCodeAt(j) === 0x30) j++;
    while (i < a.length && isDigit(a.charCodeAt(i)) && j < b.length && isDigit(b.charCodeAt(j))) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (i < a.length && isDigit(a.charCodeAt(i))) return 1;
    if (j < b.length && isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/** <0, 0, >0 as `a` sorts before, equal to, after `b`. */
export function compareVersions(a: string | DebVersion, b: string | DebVersion): number {
  const x = typeof a === 'string' ? parseVersion(a) : a;
  const y = typeof b === 'string' ? parseVersion(b) : b;
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  const u = compareParts(x.upstream, y.upstream);
  if (u) return u;
  return compareParts(x.revision, y.revision);
}

export type Relation = '<<' | '<=' | '=' | '>=' | '>>';

/** Whether `version` satisfies `op ref` (Depends: pkg (op ref)). */
export function satisfies(version: string, op: Relation, ref: string): boolean {
  const c = compareVersions(version, ref);
  switch (op) {
    case '<<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '=':
      return c === 0;
    case '>=':
      return c >= 0;
    case '>>':
      return c > 0;
  }
}
