/**
 * The solver on a small made-up archive: the choices apt makes (first
 * alternative, real package before providers, a clause already satisfied,
 * conflicts passed over, Pre-Depends, Essential, exclude) and one clear
 * line with the chain when a set cannot be satisfied. Agreement with apt
 * on Debian's real archive is test/integration/debian-solver.test.ts.
 */
import { describe, it, expect } from 'vitest';
import { parseDeb822 } from '../../../pkg/debian/deb822.js';
import { PackageIndex, defaultPin } from '../../../pkg/debian/packages.js';
import { solve } from '../../../pkg/debian/solve.js';
import { DockyardError } from '../../../pkg/errors.js';

let n = 0;
function stanza(fields: Record<string, string>): string {
  const sha = (++n).toString(16).padStart(64, '0');
  const all = { Architecture: 'amd64', Filename: `pool/main/${fields.Package}.deb`, Size: '100', SHA256: sha, ...fields };
  return Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\n');
}

function index(main: Record<string, string>[], backports: Record<string, string>[] = []): PackageIndex {
  const src = (suite: string, pin: number, list: Record<string, string>[]) => ({ suite, pin, what: suite, paragraphs: parseDeb822(list.map(stanza).join('\n\n'), suite) });
  return new PackageIndex('amd64', [src('main', defaultPin(false, false), main), src('backports', defaultPin(true, true), backports)]);
}

const names = (s: ReturnType<typeof solve>) => s.packages.map((p) => `${p.name} ${p.version}`);

function error(f: () => unknown): DockyardError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DockyardError);
    return e as DockyardError;
  }
  throw new Error('no error');
}

describe('solver', () => {
  const idx = index(
    [
      { Package: 'app', Version: '1.0', Depends: 'libfoo (>= 2), mta | mail-transport-agent, awk' },
      { Package: 'libfoo', Version: '2.1' },
      { Package: 'libfoo', Version: '1.9' },
      { Package: 'mta', Version: '1', Conflicts: 'libfoo' },
      { Package: 'postfix', Version: '3', Provides: 'mail-transport-agent' },
      { Package: 'exim', Version: '4', Provides: 'mail-transport-agent', Priority: 'standard' },
      { Package: 'mawk', Version: '1.3', Provides: 'awk', Priority: 'required' },
      { Package: 'gawk', Version: '5', Provides: 'awk', Priority: 'optional' },
      { Package: 'base', Version: '1', Essential: 'yes', 'Pre-Depends': 'libc' },
      { Package: 'libc', Version: '2.36' },
      { Package: 'old', Version: '1', Depends: 'libfoo (>= 3)' },
      { Package: 'tool', Version: '1', Depends: 'gawk | mawk' },
      { Package: 'virt-user', Version: '1', Depends: 'nothing-provides-this' },
    ],
    [{ Package: 'libfoo', Version: '3.0~bpo' }, { Package: 'newonly', Version: '1~bpo' }],
  );

  it('candidates: the main suite over backports (pin 500 over 100), the newest version; a backports-only package is its own candidate', () => {
    expect(idx.candidate('libfoo')?.version).toBe('2.1');
    expect(idx.candidate('newonly')?.version).toBe('1~bpo');
    expect(idx.versions('libfoo').map((p) => p.version)).toEqual(['2.1', '1.9', '3.0~bpo']);
  });

  it('first alternative that can go in; a conflicting one is passed over for a provider, chosen by priority then name', () => {
    expect(names(solve(idx, [{ name: 'app' }]))).toEqual(['app 1.0', 'exim 4', 'libfoo 2.1', 'mawk 1.3']);
  });

  it('a clause already satisfied by a requested package is not installed again; the requested ones are marked first', () => {
    expect(names(solve(idx, [{ name: 'tool' }]))).toEqual(['gawk 5', 'tool 1']);
    expect(names(solve(idx, [{ name: 'tool' }, { name: 'mawk' }]))).toEqual(['mawk 1.3', 'tool 1']);
  });

  it('Essential: the Essential: yes packages and their Pre-Depends come first', () => {
    expect(names(solve(idx, [{ name: 'tool' }], { essential: true }))).toEqual(['base 1', 'gawk 5', 'libc 2.36', 'tool 1']);
  });

  it('exclude: a clause naming an excluded package counts as satisfied', () => {
    expect(names(solve(idx, [{ name: 'app' }], { exclude: ['mta', 'awk'] }))).toEqual(['app 1.0', 'libfoo 2.1']);
    // Excluding every provider of a virtual package leaves its clause unsatisfied.
    expect(error(() => solve(idx, [{ name: 'app' }], { exclude: ['mawk', 'gawk'] })).message).toBe('app: app 1.0 depends on awk but its providers (gawk, mawk) are excluded');
    expect(error(() => solve(idx, [{ name: 'app' }], { exclude: ['app'] })).message).toBe('app is both requested and excluded');
  });

  it('a requested version: the newest that satisfies it, wherever it is', () => {
    expect(names(solve(idx, [{ name: 'libfoo', op: '>=', version: '3' }]))).toEqual(['libfoo 3.0~bpo']);
    expect(error(() => solve(idx, [{ name: 'libfoo', op: '>=', version: '4' }])).message).toBe('libfoo (>= 4) is requested but libfoo has 2.1, 1.9, 3.0~bpo');
  });

  it('unsatisfiable: one line with the chain and why', () => {
    const e = error(() => solve(idx, [{ name: 'old' }]));
    expect(e.code).toBe('E_RESOLVE');
    expect(e.message).toBe('old: old 1 depends on libfoo (>= 3) but the newest libfoo is 2.1');
    expect(error(() => solve(idx, [{ name: 'virt-user' }])).message).toBe('virt-user: virt-user 1 depends on nothing-provides-this but there is no package nothing-provides-this');
    expect(error(() => solve(idx, [{ name: 'nope' }])).message).toBe('there is no package nope for amd64');
    expect(error(() => solve(idx, [{ name: 'awk' }])).message).toBe('awk is a virtual package (provided by gawk, mawk): name one of them');
    expect(error(() => solve(idx, [{ name: 'mta' }, { name: 'libfoo' }])).message).toBe('libfoo 2.1 conflicts with mta 1, both requested');
  });

  it('the chain names every step from the requested package', () => {
    const deep = index([
      { Package: 'a', Version: '1', Depends: 'b' },
      { Package: 'b', Version: '1', Depends: 'c (>= 2)' },
      { Package: 'c', Version: '1.5' },
    ]);
    expect(error(() => solve(deep, [{ name: 'a' }])).message).toBe('a → b: b 1 depends on c (>= 2) but the newest c is 1.5');
  });
});
