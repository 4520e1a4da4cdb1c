/**
 * The pacman package encoder, judged by pacman itself (libalpm 13, Debian's
 * pacman-package-manager) and by bsdtar (libarchive-tools):
 * - `pacman -Qip` reads the fields of .PKGINFO, `pacman -Qlp` the file list
 *   from .MTREE;
 * - as root, `pacman -U` installs into a throwaway root (files, modes,
 *   owners, times, symlinks land), `pacman -Qkk` finds nothing altered
 *   against the .MTREE, the .INSTALL's post_install runs in the chroot,
 *   `pacman -R` removes it (keeping a changed config as .pacsave);
 * - bsdtar, given the package as input, writes the same .MTREE text as ours
 *   byte for byte (makepkg's own command line);
 * and without tools: the tar layout (metadata first, names, owners), the
 * .PKGINFO text, relation conversion, name rules, mtree escaping and
 * `/set` lines, identical bytes from identical plans.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { Sink } from '../../../pkg/archive/sink.js';
import { END_OF_ARCHIVE, tarHeader } from '../../../pkg/archive/tarwrite.js';
import { readTar, type TarHeader } from '../../../pkg/archive/tarread.js';
import { encodePacman } from '../../../pkg/formats/pacman/pacman.js';
import { encodeMtree, mtreeQuote, mtreeText, type MtreeEntry } from '../../../pkg/formats/pacman/mtree.js';
import { pacmanRelation, pkginfoText } from '../../../pkg/formats/pacman/pkginfo.js';
import { checkPacmanName, checkPacmanNames } from '../../../pkg/formats/pacman/version.js';
import { packageFileName, type PackagePlan } from '../../../pkg/package/types.js';
import { fakePlan, type FakeFile } from '../package/fakeplan.js';

const tool = (cmd: string, args: string[]) =>
  execa(cmd, args).then(
    () => true,
    () => false,
  );
const hasPacman = tool('pacman', ['--version']);
const hasBsdtar = tool('bsdtar', ['--version']);
const isRoot = process.getuid?.() === 0;
const NO_PACMAN = 'pacman is not installed (apt-get install pacman-package-manager)';
const NO_BSDTAR = 'bsdtar is not installed (apt-get install libarchive-tools)';
const NOT_ROOT = 'pacman -U/-R refuse to run unless root';

/** pacman's output in a fixed language and time zone (Build Date). */
const ENV = { LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-pacman-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    b[i] = i % 5 === 0 ? s >>> 16 : seed; // compressible, not trivially
  }
  return b;
}

const LONG_DIR = 'usr/share/a-rather-long-directory-name-for-testing-pax-headers/' + 'x'.repeat(60);
const LONG_FILE = `/${LONG_DIR}/${'f'.repeat(70)}.txt`; // > 100 bytes of name with no ustar prefix split: a pax path
const LONG_TARGET = '../' + 'target-component/'.repeat(8) + 'end'; // > 100 bytes: a pax linkpath

/** A plan with the interesting cases: odd names, setuid, a non-root owner, long names, a ghost. */
function richPlan(o: { arch?: 'amd64' | 'arm64'; pkgEpoch?: number; scripts?: PackagePlan['scripts']; extra?: FakeFile[] } = {}): PackagePlan {
  const files: FakeFile[] = [
    { path: '/usr/bin/hello', mode: 0o4755, body: '#!/bin/sh\necho hello\n' },
    { path: '/usr/bin/hi', type: 'symlink', linkname: 'hello' },
    { path: '/usr/share/hello/with space', body: 'space\n' },
    { path: '/usr/share/hello/tab\tand#hash=eq\\back', body: 'odd\n' },
    { path: '/usr/share/hello/ünïcödé-名前', body: 'utf8\n' },
    { path: '/usr/share/hello/empty', body: '' },
    { path: '/usr/share/hello/sub/deeper.txt', body: 'deeper\n' },
    { path: '/usr/share/hello/zz-after-sub', body: 'z\n' },
    { path: LONG_FILE, body: 'long\n' },
    { path: '/usr/share/hello/long-link', type: 'symlink', linkname: LONG_TARGET },
    { path: '/etc/hello.conf', body: 'greeting=hello\n', config: true },
    { path: '/var/lib/hello', type: 'dir', mode: 0o750, user: 'dockyard-test', group: 'dockyard-test' },
    { path: '/var/lib/hello/state', body: 'state\n', mode: 0o640, user: 'dockyard-test', group: 'dockyard-test' },
    { path: '/var/log/hello.log', ghost: true, body: '' },
    ...(o.extra ?? []),
  ];
  const plan = fakePlan({ arch: o.arch, pkgEpoch: o.pkgEpoch, files, scripts: o.scripts });
  // Owners that do not exist on the host: pacman (libarchive) falls back to the ids.
  for (const f of plan.contents.files) if (f.user === 'dockyard-test') [f.uid, f.gid] = [4242, 4243];
  plan.meta.relations = {
    depends: ['glibc>=2.34', 'sh'],
    preDepends: ['libc6 (>= 2.36)'],
    recommends: ['curl: for fetching greetings'],
    suggests: ['cowsay (>> 3.0)'],
    conflicts: ['hello-old<1.0'],
    breaks: ['hello-plugin (<< 2:1.0-1)'],
    replaces: ['hello-old'],
    provides: ['hello-world=1.2.3'],
  };
  return plan;
}

async function encode(plan: PackagePlan, name?: string): Promise<{ path: string; sha: string }> {
  const path = join(work, name ?? packageFileName('pacman', plan.meta));
  const sink = new Sink([createWriteStream(path)]);
  await encodePacman(plan, sink, {});
  await sink.end();
  return { path, sha: sink.sha256() };
}

/** Every entry of the package: header, raw ustar block (for uname/gname), body. */
async function entries(file: string): Promise<{ header: TarHeader; body: Buffer }[]> {
  const tar = gunzipSync(await readFile(file));
  const out: { header: TarHeader; body: Buffer }[] = [];
  for await (const it of readTar(Readable.from([tar]), file)) {
    const chunks: Buffer[] = [];
    for await (const c of it.body) chunks.push(Buffer.from(c));
    out.push({ header: it.header, body: Buffer.concat(chunks) });
  }
  return out;
}

/** The ustar blocks' uname/gname by entry name, read straight from the tar bytes. */
function ownerNames(tar: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  let pax: string | undefined;
  const str = (o: number, n: number) => tar.toString('utf8', o, o + n).replace(/\0.*$/s, '');
  while (off + 512 <= tar.length && tar[off] !== 0) {
    const size = parseInt(str(off + 124, 12), 8);
    const flag = String.fromCharCode(tar[off + 156]);
    const body = off + 512;
    if (flag === 'x') {
      pax = /\d+ path=([^\n]*)\n/.exec(tar.toString('utf8', body, body + size))?.[1];
    } else {
      const prefix = str(off + 345, 155);
      const name = pax ?? (prefix ? `${prefix}/${str(off, 100)}` : str(off, 100));
      out.set(name, `${str(off + 265, 32)}:${str(off + 297, 32)}`);
      pax = undefined;
    }
    off = body + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** `Key : value` lines of pacman -Qi(p); lines without a key continue the last value (joined with '\n'). */
function fields(out: string): Record<string, string> {
  const f: Record<string, string> = {};
  let last = '';
  for (const line of out.split('\n')) {
    const m = /^(\S[^:]*?)\s+:(?: (.*))?$/.exec(line);
    if (m) f[(last = m[1])] = m[2] ?? '';
    else if (last && line.trim()) f[last] += (f[last] ? '\n' : '') + line.trim();
  }
  return f;
}

/** Split gzip members (10-byte header, raw deflate, 8-byte trailer: what ParallelGzip writes). */
function gzipMembers(buf: Buffer): number {
  let n = 0;
  let off = 0;
  while (off < buf.length) {
    expect(buf.subarray(off, off + 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const res = inflateRawSync(buf.subarray(off + 10), { info: true }) as unknown as { engine: { bytesWritten: number } };
    off += 10 + res.engine.bytesWritten + 8;
    n++;
  }
  return n;
}

describe('pacman names and versions', () => {
  const ok = { name: 'hello', version: '1.2.3', release: '1', epoch: 0 };
  it('accepts what makepkg accepts', () => {
    expect(checkPacmanName(ok)).toBeUndefined();
    expect(checkPacmanName({ ...ok, name: 'lib32-foo_bar+baz@2.0' })).toBeUndefined();
    expect(checkPacmanName({ ...ok, version: '1.2.3rc1+git.abc_1~x' })).toBeUndefined();
    expect(checkPacmanName({ ...ok, release: '2.1', epoch: 3 })).toBeUndefined();
  });
  it('refuses names, versions and releases pacman would misread', () => {
    expect(checkPacmanName({ ...ok, name: 'Hello' })).toMatch(/lowercase/);
    expect(checkPacmanName({ ...ok, name: '-x' })).toMatch(/hyphen/);
    expect(checkPacmanName({ ...ok, name: '.x' })).toMatch(/dot/);
    expect(checkPacmanName({ ...ok, name: 'a/b' })).toMatch(/may contain only/);
    expect(checkPacmanName({ ...ok, name: 'héllo' })).toMatch(/may contain only/);
    expect(checkPacmanName({ ...ok, name: '' })).toMatch(/empty/);
    for (const version of ['1.2-3', '1:2', '1/2', '1 2', '', 'ü'])
      expect(checkPacmanName({ ...ok, version }), version).toMatch(/pkgver/);
    for (const release of ['1a', '1.2.3', '', '-1']) expect(checkPacmanName({ ...ok, release }), release).toMatch(/pkgrel/);
    expect(checkPacmanName({ ...ok, epoch: -1 })).toMatch(/epoch/);
  });
  it('names the spec key at fault for the format check', () => {
    expect(checkPacmanNames(ok)).toBeUndefined();
    expect(checkPacmanNames({ ...ok, name: 'Hello' })).toMatchObject({ key: 'name' });
    expect(checkPacmanNames({ ...ok, version: '1-2' })).toMatchObject({ key: 'version', message: expect.stringMatching(/hyphens/) });
    expect(checkPacmanNames({ ...ok, release: 'x' })).toMatchObject({ key: 'release' });
    expect(checkPacmanNames({ ...ok, epoch: 1.5 })).toMatchObject({ key: 'version', message: expect.stringMatching(/epoch/) });
  });
});

describe('relations', () => {
  it('keeps pacman forms and converts Debian ones', () => {
    expect(pacmanRelation('glibc>=2.34', 'depend')).toBe('glibc>=2.34');
    expect(pacmanRelation('foo', 'depend')).toBe('foo');
    expect(pacmanRelation('glibc >= 2.34', 'depend')).toBe('glibc>=2.34');
    expect(pacmanRelation('libc6 (>= 2.34)', 'depend')).toBe('libc6>=2.34');
    expect(pacmanRelation('foo (>> 1.0)', 'conflict')).toBe('foo>1.0');
    expect(pacmanRelation('foo (<< 2:1.0-1)', 'conflict')).toBe('foo<2:1.0-1');
    expect(pacmanRelation('foo (= 1.0-1)', 'depend')).toBe('foo=1.0-1');
    expect(pacmanRelation('foo (> 1.0)', 'depend')).toBe('foo>=1.0'); // Debian's obsolete > means >=
    expect(pacmanRelation('foo=1.0', 'provides')).toBe('foo=1.0');
    expect(pacmanRelation('curl: for   fetching', 'optdepend')).toBe('curl: for fetching');
    expect(pacmanRelation('curl>=1:8.0-1: newer curl', 'optdepend')).toBe('curl>=1:8.0-1: newer curl');
  });
  it('refuses alternatives and malformed items, naming them on one line', () => {
    const err = (item: string, key: Parameters<typeof pacmanRelation>[1]) => {
      try {
        pacmanRelation(item, key);
      } catch (e) {
        return e as { code: string; message: string };
      }
      throw new Error(`accepted ${item}`);
    };
    const alt = err('libssl3 | libssl1.1', 'depend');
    expect(alt.code).toBe('E_PACKAGE');
    expect(alt.message).toContain("'libssl3 | libssl1.1'");
    expect(alt.message).not.toContain('\n');
    expect(err('foo>=1.0', 'provides').message).toMatch(/provides/);
    expect(err('foo>=1-2-3', 'depend').message).toMatch(/pkgver/);
    expect(err('foo bar', 'depend').code).toBe('E_PACKAGE');
    expect(err('.foo', 'depend').message).toMatch(/dot/);
    expect(err('foo\nbar', 'depend').message).not.toContain('\n');
  });
});

describe('.PKGINFO', () => {
  it('is makepkg’s layout', () => {
    const plan = richPlan({ pkgEpoch: 2 });
    expect(pkginfoText(plan, plan.time)).toBe(
      [
        '# Generated by dockyard',
        'pkgname = hello',
        'pkgbase = hello',
        'xdata = pkgtype=pkg',
        'pkgver = 2:1.2.3-1',
        'pkgdesc = says hello',
        'url = https://example.org/hello',
        'builddate = 1700000000',
        'packager = Dockyard Tests <tests@dockyard.invalid>',
        `size = ${plan.contents.installedBytes}`,
        'arch = x86_64',
        'license = Apache-2.0',
        'replaces = hello-old',
        'conflict = hello-old<1.0',
        'conflict = hello-plugin<2:1.0-1',
        'provides = hello-world=1.2.3',
        'backup = etc/hello.conf',
        'depend = libc6>=2.36',
        'depend = glibc>=2.34',
        'depend = sh',
        'optdepend = curl: for fetching greetings',
        'optdepend = cowsay>3.0',
        '',
      ].join('\n'),
    );
  });
  it('writes url empty and no license when there are none; squeezes the description', () => {
    const plan = fakePlan({ arch: 'arm64' });
    plan.meta.homepage = undefined;
    plan.meta.license = undefined;
    plan.meta.summary = '  says\t hello  ';
    const t = pkginfoText(plan, 5);
    expect(t).toContain('\npkgdesc = says hello\nurl = \nbuilddate = 5\n');
    expect(t).toContain('\narch = aarch64\n');
    expect(t).not.toContain('license');
  });
});

describe('mtree', () => {
  it('escapes like libarchive’s mtree_quote', () => {
    expect(mtreeQuote('plain-name_1.2+x@y~z*?[]{}()!$%&\',;:<>^`|"')).toBe('plain-name_1.2+x@y~z*?[]{}()!$%&\',;:<>^`|"');
    expect(mtreeQuote('a b')).toBe('a\\040b');
    expect(mtreeQuote('#=\\')).toBe('\\043\\075\\134');
    expect(mtreeQuote('\t\n\x7f\x01')).toBe('\\011\\012\\177\\001');
    expect(mtreeQuote('ü名')).toBe('\\303\\274\\345\\220\\215');
  });

  const f = (path: string, o: Partial<MtreeEntry> = {}): MtreeEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 7, size: 1, md5: 'm', sha256: 's', ...o });
  const d = (path: string, o: Partial<MtreeEntry> = {}): MtreeEntry => f(path, { type: 'dir', mode: 0o755, size: 0, md5: undefined, sha256: undefined, ...o });
  it('writes directories, then their files, then their subdirectories, with /set defaults as bsdtar does', () => {
    const text = mtreeText([
      f('.PKGINFO'),
      d('usr'),
      d('usr/lib'),
      d('usr/lib/b'),
      f('usr/lib/b/x', { mode: 0o755 }),
      f('usr/lib/b/y', { mode: 0o755 }),
      f('usr/lib/c.so'),
      f('usr/lib/a', { uid: 5, gid: 6 }),
      f('usr/lib/z', { type: 'symlink', mode: 0o777, size: 0, linkname: 'c so', md5: undefined, sha256: undefined }),
      f('opt/virtual/child'), // opt and opt/virtual are not listed: "virtual" directories, not written
    ]);
    expect(text).toBe(
      [
        '#mtree',
        '/set type=file uid=0 gid=0 mode=755',
        './.PKGINFO time=7.0 mode=644 size=1 md5digest=m sha256digest=s',
        './opt/virtual/child time=7.0 mode=644 size=1 md5digest=m sha256digest=s',
        './usr time=7.0 type=dir',
        '/set mode=644',
        './usr/lib time=7.0 mode=755 type=dir',
        './usr/lib/a time=7.0 gid=6 uid=5 size=1 md5digest=m sha256digest=s',
        './usr/lib/c.so time=7.0 size=1 md5digest=m sha256digest=s',
        './usr/lib/z time=7.0 mode=777 type=link link=c\\040so',
        '/set mode=755',
        './usr/lib/b time=7.0 type=dir',
        './usr/lib/b/x time=7.0 size=1 md5digest=m sha256digest=s',
        './usr/lib/b/y time=7.0 size=1 md5digest=m sha256digest=s',
        '',
      ].join('\n'),
    );
    // Entry order does not matter; the gzip is that of `gzip -n` (no name, no time, OS Unix).
    const gz = encodeMtree([d('usr'), f('.PKGINFO')]);
    expect(gz.subarray(0, 10)).toEqual(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]));
    expect(gunzipSync(gz).toString()).toBe(mtreeText([f('.PKGINFO'), d('usr')]));
  });
  it('refuses what cannot be a tree', () => {
    expect(() => mtreeText([f('a'), f('a/b')])).toThrow(/not a directory/);
    expect(() => mtreeText([f('a'), f('a')])).toThrow(/twice/);
    expect(() => mtreeText([f('/abs')])).toThrow(/bad path/);
  });
});

describe('the package', () => {
  it('is .PKGINFO, .INSTALL, .MTREE, then the files sorted, without ghosts, with owner names', async () => {
    const plan = richPlan();
    const { path } = await encode(plan, 'layout.pkg.tar.gz');
    const es = await entries(path);
    const names = es.map((e) => e.header.name);
    const shipped = plan.contents.files.filter((x) => !x.ghost);
    expect(names).toEqual(['.PKGINFO', '.INSTALL', '.MTREE', ...shipped.map((x) => x.path.slice(1) + (x.type === 'dir' ? '/' : ''))]);
    expect(names).not.toContain('var/log/hello.log');
    const byName = new Map(es.map((e) => [e.header.name, e]));
    expect(byName.get('.PKGINFO')!.body.toString()).toBe(pkginfoText(plan, 1700000000));
    expect(byName.get('.INSTALL')!.body.toString()).toBe(plan.scripts.pacman);
    for (const m of ['.PKGINFO', '.INSTALL', '.MTREE']) expect(byName.get(m)!.header).toMatchObject({ mode: 0o644, uid: 0, gid: 0, mtime: 1700000000 });
    expect(byName.get('usr/bin/hello')!.header).toMatchObject({ type: 'file', mode: 0o4755, size: 21 });
    expect(byName.get('usr/bin/hi')!.header).toMatchObject({ type: 'symlink', linkname: 'hello' });
    expect(byName.get('usr/share/hello/long-link')!.header.linkname).toBe(LONG_TARGET);
    expect(byName.get(LONG_FILE.slice(1))!.body.toString()).toBe('long\n');
    expect(byName.get('var/lib/hello/')!.header).toMatchObject({ type: 'dir', mode: 0o750, uid: 4242, gid: 4243 });
    const owners = ownerNames(gunzipSync(await readFile(path)));
    expect(owners.get('.PKGINFO')).toBe('root:root');
    expect(owners.get('usr/bin/hello')).toBe('root:root');
    expect(owners.get('var/lib/hello/state')).toBe('dockyard-test:dockyard-test');
    expect(owners.get(LONG_FILE.slice(1))).toBe('root:root');
    // The .MTREE lists the metadata files and every shipped path, not itself.
    const mtree = gunzipSync(byName.get('.MTREE')!.body).toString();
    expect(mtree).toMatch(/^#mtree\n\/set type=file uid=0 gid=0 mode=/);
    expect(mtree).toContain('./.INSTALL time=1700000000.0');
    expect(mtree).not.toContain('.MTREE');
    expect(mtree).not.toContain('hello.log');
    expect(mtree).toContain('./var/lib/hello/state time=1700000000.0 mode=640 gid=4243 uid=4242 size=6 ');
  });

  it('has no .INSTALL when the plan has no pacman script', async () => {
    const plan = fakePlan({ scripts: { deb: {}, rpm: {} } });
    const names = (await entries((await encode(plan, 'noinstall.pkg.tar.gz')).path)).map((e) => e.header.name);
    expect(names.slice(0, 3)).toEqual(['.PKGINFO', '.MTREE', 'etc/']);
  });

  it('is the same bytes from the same plan', async () => {
    const a = await encode(richPlan(), 'same-a.pkg.tar.gz');
    const b = await encode(richPlan(), 'same-b.pkg.tar.gz');
    expect(a.sha).toBe(b.sha);
    expect(await readFile(a.path)).toEqual(await readFile(b.path));
  });

  it('refuses a bad name, a top-level dot file, and a body that is not what was planned', async () => {
    const sink = { write: async () => {} };
    const bad = fakePlan({ name: 'Hello' });
    await expect(encodePacman(bad, sink, {})).rejects.toMatchObject({ code: 'E_PACKAGE', message: expect.stringMatching(/lowercase/) });
    const dot = fakePlan({ files: [{ path: '/.INSTALL', body: 'x' }] });
    await expect(encodePacman(dot, sink, {})).rejects.toMatchObject({ code: 'E_PACKAGE' });
    const nl = fakePlan({ files: [{ path: '/usr/share/a\nb', body: 'x' }] });
    await expect(encodePacman(nl, sink, {})).rejects.toMatchObject({ code: 'E_PACKAGE', message: expect.stringMatching(/line break/) });
    const alt = fakePlan();
    alt.meta.relations.depends = ['a | b'];
    await expect(encodePacman(alt, sink, {})).rejects.toMatchObject({ code: 'E_PACKAGE', message: expect.stringContaining("'a | b'") });
    const owner = fakePlan({ files: [{ path: '/x', body: 'x', user: 'u'.repeat(32) }] });
    await expect(encodePacman(owner, sink, {})).rejects.toMatchObject({ code: 'E_PACKAGE', message: expect.stringMatching(/user name/) });
    const changed = fakePlan();
    changed.contents.files.find((x) => x.path === '/usr/bin/hello')!.sha256 = '0'.repeat(64);
    await expect(encodePacman(changed, sink, {})).rejects.toMatchObject({ code: 'E_INTERNAL', message: expect.stringMatching(/sha256/) });
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(encodePacman(fakePlan(), { write: async () => {} }, { signal: ac.signal })).rejects.toThrow('stop');
  });
});

describe('bsdtar (libarchive-tools)', () => {
  it('writes the same mtree text for a tree with virtual directories, owners and modes that move the /set defaults', async (ctx) => {
    if (!(await hasBsdtar)) ctx.skip(NO_BSDTAR);
    const file = (path: string, o: Partial<MtreeEntry> = {}) => ({ path, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 1234567890, size: 2, ...o });
    const dir = (path: string, o: Partial<MtreeEntry> = {}) => ({ ...file(path, { type: 'dir', mode: 0o755, size: 0, ...o }) });
    const list: MtreeEntry[] = [
      file('.PKGINFO'),
      file('usr/lib/b/x', { mode: 0o755 }), // before its directories: they are virtual until listed
      dir('usr'),
      dir('usr/lib'),
      dir('usr/lib/b', { mode: 0o700, uid: 7 }),
      file('usr/lib/b/y', { mode: 0o755 }),
      file('usr/lib/b/w', { mode: 0o600, uid: 7, gid: 8 }),
      file('usr/lib/c.so'),
      file('usr/lib/a', { uid: 5, gid: 6 }),
      file('usr/lib/a b#=\\', { uid: 5, gid: 6 }),
      { path: 'usr/lib/z', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 5, size: 0, linkname: '../ü b' },
      file('opt/virtual/child'),
      dir('var', { mode: 0o700 }),
      dir('var/empty', { mode: 0o1777, gid: 3 }),
      file('srv/a', { mode: 0o640, uid: 9, gid: 9 }),
      file('srv/b', { mode: 0o640, uid: 9, gid: 9 }),
      dir('srv/sub', { mode: 0o640, uid: 9, gid: 9 }),
    ];
    const parts: Buffer[] = [];
    for (const e of list) {
      const body = Buffer.from(e.type === 'file' ? e.path.slice(-2).padStart(2, '_') : '');
      e.md5 = e.type === 'file' ? createHash('md5').update(body).digest('hex') : undefined;
      e.sha256 = e.type === 'file' ? createHash('sha256').update(body).digest('hex') : undefined;
      parts.push(tarHeader({ ...e, body }, 0), body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
    const tarFile = join(work, 'tree.tar');
    await writeFile(tarFile, Buffer.concat([...parts, END_OF_ARCHIVE]));
    const theirs = await execa('bsdtar', ['-cf', '-', '--format=mtree', '--options=!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link', `@${tarFile}`], {
      env: ENV,
      stripFinalNewline: false,
    });
    expect(mtreeText(list)).toBe(theirs.stdout);
  });

  it('writes the same .MTREE from the package as makepkg’s command line does', async (ctx) => {
    if (!(await hasBsdtar)) ctx.skip(NO_BSDTAR);
    for (const plan of [richPlan(), fakePlan(), richPlan({ arch: 'arm64', scripts: { deb: {}, rpm: {} } })]) {
      const { path } = await encode(plan, 'bsdtar.pkg.tar.gz');
      const ours = gunzipSync((await entries(path)).find((e) => e.header.name === '.MTREE')!.body).toString();
      const theirs = await execa(
        'bsdtar',
        ['-cf', '-', '--format=mtree', '--options=!all,use-set,type,uid,gid,mode,time,size,md5,sha256,link', '--exclude', '.MTREE', `@${path}`],
        { env: ENV, stripFinalNewline: false },
      );
      expect(ours).toBe(theirs.stdout);
    }
  });
  it('lists the package', async (ctx) => {
    if (!(await hasBsdtar)) ctx.skip(NO_BSDTAR);
    const { path } = await encode(richPlan(), 'bsdtar-list.pkg.tar.gz');
    const r = await execa('bsdtar', ['-tvf', path], { env: ENV });
    expect(r.stdout).toMatch(/^-rw-r--r-- +0 root +root +\d+ .* \.PKGINFO$/m);
    expect(r.stdout).toMatch(/^-rwsr-xr-x +0 root +root +21 .* usr\/bin\/hello$/m);
    expect(r.stdout).toMatch(/^lrwxrwxrwx .* usr\/bin\/hi -> hello$/m);
    expect(r.stdout).toMatch(/^drwxr-x--- +0 dockyard-test +dockyard-test +0 .* var\/lib\/hello\/$/m);
  });
});

describe('pacman -Qip / -Qlp', () => {
  it('reads the fields', async (ctx) => {
    if (!(await hasPacman)) ctx.skip(NO_PACMAN);
    const plan = richPlan({ arch: 'arm64', pkgEpoch: 2 });
    const { path } = await encode(plan);
    expect(path).toMatch(/\/hello-2:1\.2\.3-1-aarch64\.pkg\.tar\.gz$/);
    const r = await execa('pacman', ['-Qiip', path], { env: ENV });
    const q = fields(r.stdout);
    expect(q).toMatchObject({
      Name: 'hello',
      Version: '2:1.2.3-1',
      Description: 'says hello',
      Architecture: 'aarch64',
      URL: 'https://example.org/hello',
      Licenses: 'Apache-2.0',
      Provides: 'hello-world=1.2.3',
      'Depends On': 'libc6>=2.36  glibc>=2.34  sh',
      'Optional Deps': 'curl: for fetching greetings\ncowsay>3.0',
      'Conflicts With': 'hello-old<1.0  hello-plugin<2:1.0-1',
      Replaces: 'hello-old',
      Packager: 'Dockyard Tests <tests@dockyard.invalid>',
      'Build Date': 'Tue Nov 14 22:13:20 2023',
      'Install Script': 'Yes',
    });
  });

  it('lists the files from the .MTREE', async (ctx) => {
    if (!(await hasPacman)) ctx.skip(NO_PACMAN);
    const plan = richPlan();
    const { path } = await encode(plan);
    const r = await execa('pacman', ['-Qlp', path], { env: ENV });
    const listed = r.stdout.split('\n').map((l) => l.replace(/^hello /, ''));
    const want = plan.contents.files.filter((x) => !x.ghost).map((x) => x.path + (x.type === 'dir' ? '/' : ''));
    expect(listed).toEqual(want.sort()); // pacman sorts its list (byte order)
  });
});

describe('pacman -U / -Qkk / -R into a throwaway root', () => {
  /** A root with pacman's database directory and a config that needs no keyring. */
  async function makeRoot(name: string, arch: string): Promise<{ root: string; args: string[]; tx: string[] }> {
    const root = join(work, name);
    await mkdir(join(root, 'var/lib/pacman'), { recursive: true });
    await mkdir(join(root, 'tmp'), { recursive: true }); // scriptlets are copied here
    const conf = join(work, `${name}.conf`);
    await writeFile(conf, `[options]\nArchitecture = ${arch}\nSigLevel = Never\nLocalFileSigLevel = Never\n`);
    const args = ['--config', conf, '--root', root, '--dbpath', join(root, 'var/lib/pacman')];
    // For -U and -R: no questions, no log or cache outside the root, no dependency checks (an empty root has no glibc).
    const tx = [...args, '--logfile', join(root, 'pacman.log'), '--cachedir', join(root, 'cache'), '--noconfirm', '--noprogressbar', '--nodeps', '--nodeps'];
    return { root, args, tx };
  }

  it('installs what was planned; -Qkk finds nothing altered; -R removes it', async (ctx) => {
    if (!(await hasPacman)) ctx.skip(NO_PACMAN);
    if (!isRoot) ctx.skip(NOT_ROOT);
    const plan = richPlan();
    const { path } = await encode(plan);
    const { root, args, tx } = await makeRoot('root-install', 'x86_64');
    // No /bin/sh in this root: the scriptlet is skipped (the next test runs one).
    await execa('pacman', ['-U', ...tx, '--noscriptlet', path], { env: ENV });
    for (const f of plan.contents.files) {
      const p = join(root, f.path);
      if (f.ghost) {
        await expect(lstat(p)).rejects.toMatchObject({ code: 'ENOENT' });
        continue;
      }
      const st = await lstat(p);
      expect(st.mode & 0o7777, f.path).toBe(f.type === 'symlink' ? 0o777 : f.mode);
      expect([st.uid, st.gid], f.path).toEqual([f.uid, f.gid]);
      if (f.type === 'file') {
        expect(st.isFile(), f.path).toBe(true);
        expect(createHash('sha256').update(await readFile(p)).digest('hex'), f.path).toBe(f.sha256);
        expect(Math.floor(st.mtimeMs / 1000), f.path).toBe(f.mtime);
      } else if (f.type === 'symlink') {
        expect(await readlink(p), f.path).toBe(f.linkname);
      } else expect(st.isDirectory(), f.path).toBe(true);
    }
    const q = await execa('pacman', ['-Qkk', ...args, 'hello'], { env: ENV, reject: false });
    expect(q.stderr).toBe('');
    expect(q.stdout).toBe(`hello: ${1 + plan.contents.files.filter((x) => !x.ghost).length} total files, 0 altered files`); // + .INSTALL
    expect(q.exitCode).toBe(0);
    const info = fields((await execa('pacman', ['-Qii', ...args, 'hello'], { env: ENV })).stdout);
    expect(info['Backup Files']).toBe(`UNMODIFIED\t${join(root, 'etc/hello.conf')}`);
    expect(info.Version).toBe('1.2.3-1');
    // A changed config file is kept as .pacsave on removal; the rest goes.
    await writeFile(join(root, 'etc/hello.conf'), 'greeting=changed\n');
    await execa('pacman', ['-R', ...tx, '--noscriptlet', 'hello'], { env: ENV });
    expect(await readFile(join(root, 'etc/hello.conf.pacsave'), 'utf8')).toBe('greeting=changed\n');
    await expect(lstat(join(root, 'usr/bin/hello'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(lstat(join(root, 'var/lib/pacman/local/hello-1.2.3-1'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('runs the .INSTALL post_install in the root', async (ctx) => {
    if (!(await hasPacman)) ctx.skip(NO_PACMAN);
    if (!isRoot) ctx.skip(NOT_ROOT);
    const ldd = await execa('ldd', ['/bin/sh'], { reject: false });
    if (ldd.exitCode !== 0 && !/not a dynamic/.test(ldd.stderr + ldd.stdout)) ctx.skip('ldd cannot list /bin/sh’s libraries to build a chroot');
    const plan = fakePlan({
      scripts: { deb: {}, rpm: {}, pacman: 'post_install() {\n  echo "installed $1" > /post-install-ran\n}\n\npre_remove() {\n  echo "removing $1" > /pre-remove-ran\n}\n' },
    });
    const { path } = await encode(plan, 'scriptlet.pkg.tar.gz');
    const { root, args, tx } = await makeRoot('root-scriptlet', 'x86_64');
    // pacman runs `/bin/sh -c '. .INSTALL; post_install VERSION'` chrooted into the root: give it the host's sh and its libraries.
    await mkdir(join(root, 'bin'), { recursive: true });
    await copyFile('/bin/sh', join(root, 'bin/sh'));
    await chmod(join(root, 'bin/sh'), 0o755);
    for (const lib of ldd.stdout.match(/\/\S+/g) ?? []) {
      await mkdir(join(root, dirname(lib)), { recursive: true });
      await copyFile(lib, join(root, lib));
    }
    await execa('pacman', ['-U', ...tx, path], { env: ENV });
    expect(await readFile(join(root, 'post-install-ran'), 'utf8')).toBe('installed 1.2.3-1\n');
    const q = await execa('pacman', ['-Qkk', ...args, 'hello'], { env: ENV });
    expect(q.stdout).toMatch(/hello: \d+ total files, 0 altered files/);
    await execa('pacman', ['-R', ...tx, 'hello'], { env: ENV });
    expect(await readFile(join(root, 'pre-remove-ran'), 'utf8')).toBe('removing 1.2.3-1\n');
  });

  it('installs a package of several gzip members (big files) for another architecture', async (ctx) => {
    if (!(await hasPacman)) ctx.skip(NO_PACMAN);
    const big = [5, 5, 5, 20].map((mib, i) => ({ path: `/usr/lib/big/part${i}.bin`, body: bytes(mib * 1024 * 1024 + i, i + 1) }));
    const plan = fakePlan({ arch: 'arm64', files: [...big, { path: '/usr/bin/tool', mode: 0o755, body: 'tool' }] });
    const { path } = await encode(plan, 'big.pkg.tar.gz');
    expect(gzipMembers(await readFile(path))).toBeGreaterThan(1);
    const listed = (await execa('pacman', ['-Qlp', path], { env: ENV })).stdout;
    expect(listed).toContain('hello /usr/lib/big/part3.bin');
    if (!isRoot) ctx.skip(NOT_ROOT);
    const { root, args, tx } = await makeRoot('root-big', 'aarch64');
    await execa('pacman', ['-U', ...tx, '--noscriptlet', path], { env: ENV });
    for (const b of big) expect((await stat(join(root, b.path))).size).toBe(b.body.length);
    expect(createHash('sha256').update(await readFile(join(root, big[3].path))).digest('hex')).toBe(createHash('sha256').update(big[3].body).digest('hex'));
    const q = await execa('pacman', ['-Qkk', ...args, 'hello'], { env: ENV });
    expect(q.stdout).toMatch(/0 altered files$/);
  });
});
