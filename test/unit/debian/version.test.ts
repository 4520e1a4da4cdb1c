/**
 * Debian version ordering against dpkg's own (`dpkg --compare-versions`),
 * over tricky hand-picked pairs and pairs of real versions from the
 * machine's dpkg status file; and the relation fields' syntax.
 */
import { describe, it, expect } from 'vitest';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { compareVersions, parseVersion, satisfies } from '../../../pkg/debian/version.js';
import { parseClauses, parseProvides, parseList, formatClause } from '../../../pkg/debian/relations.js';
import { parseDeb822 } from '../../../pkg/debian/deb822.js';
import { DockyardError } from '../../../pkg/errors.js';

const HAND = [
  ['1.0', '1.0'],
  ['1.0~rc1', '1.0'],
  ['1.0~~', '1.0~'],
  ['1.0', '1.0+b1'],
  ['1.0-1', '1.0-1+deb12u1'],
  ['1:0.9', '2.0'],
  ['2.36-9+deb12u4', '2.36-9+deb12u13'],
  ['1.2.3a', '1.2.3'],
  ['0001', '1'],
  ['1.0a', '1.0+'],
  ['1.0.', '1.0'],
  ['1:1.35.0-4+b1', '1:1.35.0-4'],
  ['20.10.24+dfsg1-1+deb12u1+b1', '20.10.24+dfsg1-1+deb12u1'],
  ['6.1.0-57', '6.1.0-6'],
  ['2.06-13+deb12u2', '2.06-13+deb12u1'],
  ['1.0-0', '1.0'],
  ['a1', 'A1'],
  ['1.0~beta1~svn1', '1.0~beta1'],
  ['3.0-1~bpo12+1', '3.0-1'],
] as const;

async function dpkgCmp(a: string, b: string): Promise<number> {
  for (const [op, v] of [['lt', -1], ['eq', 0], ['gt', 1]] as const) {
    if ((await execa('dpkg', ['--compare-versions', a, op, b], { reject: false })).exitCode === 0) return v;
  }
  throw new Error(`dpkg compares ${a} and ${b} in no way`);
}

describe('Debian versions', () => {
  it('hand-picked pairs order as dpkg orders them, both ways', async () => {
    for (const [a, b] of HAND) {
      const want = await dpkgCmp(a, b);
      expect(Math.sign(compareVersions(a, b)), `${a} vs ${b}`).toBe(want);
      expect(Math.sign(compareVersions(b, a)) || 0, `${b} vs ${a}`).toBe(-want || 0);
    }
  });

  it('real versions from the dpkg status file: neighbours in a sorted list order as dpkg says', async () => {
    const status = parseDeb822(await readFile('/var/lib/dpkg/status', 'utf8'), '/var/lib/dpkg/status');
    const versions = [...new Set(status.map((p) => p.version).filter((v): v is string => !!v))].sort((a, b) => compareVersions(a, b));
    expect(versions.length).toBeGreaterThan(100);
    // A sorted list is right when each neighbour pair is: dpkg judges all of them (one call per pair, batched).
    const step = Math.max(1, Math.floor(versions.length / 150));
    for (let i = 0; i + step < versions.length; i += step) {
      const a = versions[i];
      const b = versions[i + step];
      expect(Math.sign(compareVersions(a, b)), `${a} vs ${b}`).toBe(await dpkgCmp(a, b));
    }
  });

  it('epochs, revisions, and what is not a version', () => {
    expect(parseVersion('1:2.3-4')).toEqual({ epoch: 1, upstream: '2.3', revision: '4' });
    expect(parseVersion('2.3-4-5')).toEqual({ epoch: 0, upstream: '2.3-4', revision: '5' });
    expect(parseVersion('2.3')).toEqual({ epoch: 0, upstream: '2.3', revision: '' });
    for (const bad of ['', 'x:1', '1.0-', '1.0 2', '1:', '1.0-a_b']) expect(() => parseVersion(bad), bad).toThrow(DockyardError);
    expect(satisfies('2.36-9', '>=', '2.34')).toBe(true);
    expect(satisfies('2.36-9', '<<', '2.36-9')).toBe(false);
    expect(satisfies('2.36-9', '<=', '2.36-9')).toBe(true);
    expect(satisfies('1:1.0', '>>', '9.9')).toBe(true);
  });
});

describe('relation fields', () => {
  it('clauses, alternatives, versions, architecture qualifiers; obsolete < and > read as <= and >=', () => {
    const c = parseClauses('libc6 (>= 2.34), default-mta | mail-transport-agent, perl:any, foo (< 2), bar (>3.0)', 'x');
    expect(c.map(formatClause)).toEqual(['libc6 (>= 2.34)', 'default-mta | mail-transport-agent', 'perl:any', 'foo (<= 2)', 'bar (>= 3.0)']);
    expect(parseClauses('a [amd64] <!nocheck>, b', 'x').map(formatClause)).toEqual(['a', 'b']);
    expect(parseProvides('awk, libfoo-abi (= 3)', 'x')).toEqual([{ name: 'awk' }, { name: 'libfoo-abi', op: '=', version: '3' }]);
    expect(() => parseProvides('x (>= 1)', 'p 1')).toThrow(/only "=" is allowed/);
    expect(() => parseList('a | b', 'p 1')).toThrow(/alternatives/);
    expect(() => parseClauses('Bad_Name', 'p 1')).toThrow(/p 1: "Bad_Name" is not a package relation/);
  });

  it('deb822: continuation lines, case-insensitive names, paragraphs, errors with the line', () => {
    const ps = parseDeb822('Package: a\nDescription: one\n two\n .\n three\n\n\nPACKAGE: b\r\nVersion: 1\n', 'f');
    expect(ps).toEqual([{ package: 'a', description: 'one\ntwo\n.\nthree' }, { package: 'b', version: '1' }]);
    expect(() => parseDeb822('Package: a\nnot a field\n', 'f')).toThrow(/^f:2: not a "Field: value" line$/);
    expect(() => parseDeb822(' lead\n', 'f')).toThrow(/f:1: a continuation line/);
  });
});
