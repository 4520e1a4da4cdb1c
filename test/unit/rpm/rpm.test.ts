/**
 * The rpm encoder, judged by rpm's own tools: rpm -K checks every digest,
 * rpm -qp reads the header (info, file list with sizes, modes, digests and
 * config flags, scriptlets, dependencies, changelog), rpm2cpio | cpio
 * unpacks the payload, rpm installs into a throwaway root, verifies and
 * erases it, rpmlint finds no errors but the ones no encoder can help.
 * Also: the header structure round trip, the lead, byte-identical output,
 * a multi-member gzip payload, the temp spool removed on success and error,
 * bad input refused, and (with DOCKYARD_SLOW_TESTS=1) a file over 4 GiB in
 * rpm's large-file format.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createWriteStream } from 'node:fs';
import { mkdtemp, mkdir, readFile, readdir, readlink, rm, stat, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { Sink } from '../../../pkg/archive/sink.js';
import { encodeRpm, rpmFiles, rpmGroup } from '../../../pkg/formats/rpm/rpm.js';
import { encodeLead, LEAD_SIZE } from '../../../pkg/formats/rpm/lead.js';
import { decodeHeader, encodeHeader, HeaderBuilder, headerValue, type HeaderEntry } from '../../../pkg/formats/rpm/header.js';
import { checkRpmVersion, parseRelation } from '../../../pkg/formats/rpm/version.js';
import { HEADER_IMMUTABLE, HEADER_SIGNATURES, RpmType, Sense, SigTag, Tag } from '../../../pkg/formats/rpm/tags.js';
import { packageFileName, type PackagePlan } from '../../../pkg/package/types.js';
import { fakePlan, type FakeFile } from '../package/fakeplan.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-rpmunit-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let spoolCount = 0;
/** Encodes into `work/name`, spooling in a fresh directory (checked empty afterwards). */
async function writeRpm(plan: PackagePlan, name = packageFileName('rpm', plan.meta)): Promise<{ path: string; sha: string; bytes: Buffer }> {
  const path = join(work, name);
  const spool = join(work, `spool-${++spoolCount}`);
  await mkdir(spool);
  const sink = new Sink([createWriteStream(path)]);
  await encodeRpm(plan, sink, { tmpDir: spool });
  await sink.end();
  expect(await readdir(spool)).toEqual([]);
  return { path, sha: sink.sha256(), bytes: await readFile(path) };
}

const hasTool = async (t: string) => (await execa('sh', ['-c', `command -v ${t}`], { reject: false })).exitCode === 0;
const rpmq = async (path: string, ...args: string[]) => (await execa('rpm', ['-qp', ...args, path])).stdout;

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    b[i] = s >>> 16;
  }
  return b;
}

/** The offsets of the main header and the payload, read the way rpm does (lead, signature, padding, header). */
function layout(b: Buffer) {
  const sig = decodeHeader(b, LEAD_SIZE);
  const hdrAt = LEAD_SIZE + sig.byteLength + ((8 - (sig.byteLength % 8)) % 8);
  const hdr = decodeHeader(b, hdrAt);
  return { sig, hdr, hdrAt, payloadAt: hdrAt + hdr.byteLength };
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('rpm header structure', () => {
  it('round-trips every type through encode and decode', () => {
    const entries: HeaderEntry[] = [
      { tag: 1000, type: RpmType.STRING, value: 'héllo' },
      { tag: 1001, type: RpmType.CHAR, value: [0x41, 0x42, 0x43] },
      { tag: 1002, type: RpmType.INT8, value: [1, 255] },
      { tag: 1003, type: RpmType.INT16, value: [0o100644, 0xffff] },
      { tag: 1004, type: RpmType.INT32, value: [0, 0xffffffff, 7] },
      { tag: 1005, type: RpmType.INT64, value: [0n, 0xffffffffffffffffn, 5_000_000_000n] },
      { tag: 1006, type: RpmType.BIN, value: Buffer.from([0, 1, 2]) },
      { tag: 1007, type: RpmType.STRING_ARRAY, value: ['a', '', 'ccc'] },
      { tag: 1008, type: RpmType.I18NSTRING, value: ['summary'] },
      { tag: 100, type: RpmType.STRING_ARRAY, value: ['C'] },
    ];
    const b = encodeHeader(entries, HEADER_IMMUTABLE);
    const d = decodeHeader(b);
    expect(d.region).toBe(HEADER_IMMUTABLE);
    expect(d.byteLength).toBe(b.length);
    expect(d.entries).toEqual([...entries].sort((x, y) => x.tag - y.tag));
  });

  it('lays out magic, region entry, sorted index, aligned store and the trailer as rpm does', () => {
    const h = new HeaderBuilder().string(1000, 'x').int64(1005, 1).int16(1030, [1, 2, 3]).int32(1028, 9);
    const b = h.encode(HEADER_SIGNATURES);
    expect(b.subarray(0, 8).toString('hex')).toBe('8eade80100000000');
    const il = b.readUInt32BE(8);
    const dl = b.readUInt32BE(12);
    expect(il).toBe(5);
    expect(b.length).toBe(16 + il * 16 + dl);
    const idx = (i: number, k: number) => b.readInt32BE(16 + i * 16 + k * 4);
    // Region entry first: tag 62, BIN, offset of the trailer (the last 16 bytes), count 16.
    expect([idx(0, 0), idx(0, 1), idx(0, 2), idx(0, 3)]).toEqual([62, 7, dl - 16, 16]);
    // Then sorted by tag, each value aligned to its size.
    expect([1, 2, 3, 4].map((i) => idx(i, 0))).toEqual([1000, 1005, 1028, 1030]);
    expect(idx(2, 2) % 8).toBe(0);
    expect(idx(3, 2) % 4).toBe(0);
    expect(idx(4, 2) % 2).toBe(0);
    // The trailer: tag 62, BIN, -(il × 16), 16.
    const t = 16 + il * 16 + dl - 16;
    expect([b.readInt32BE(t), b.readInt32BE(t + 4), b.readInt32BE(t + 8), b.readInt32BE(t + 12)]).toEqual([62, 7, -il * 16, 16]);
  });

  it('refuses a bad region, empty values, NUL in strings and duplicate tags', () => {
    const b = new HeaderBuilder().string(1000, 'x').encode(HEADER_IMMUTABLE);
    const bad = Buffer.from(b);
    bad.writeInt32BE(-16, bad.length - 8); // trailer no longer covers both index entries
    expect(() => decodeHeader(bad)).toThrow(/trailer offset/);
    expect(() => encodeHeader([{ tag: 1000, type: RpmType.STRING_ARRAY, value: [] }], HEADER_IMMUTABLE)).toThrow(/count 0/);
    expect(() => new HeaderBuilder().string(1000, 'a\0b').encode(HEADER_IMMUTABLE)).toThrow(/NUL/);
    expect(() => new HeaderBuilder().string(1000, 'a').string(1000, 'b')).toThrow(/twice/);
    expect(() => new HeaderBuilder().int16(1030, 0x10000).encode(HEADER_IMMUTABLE)).toThrow(/does not fit/);
  });
});

describe('rpm lead', () => {
  it('is rpmbuild’s 96 bytes', () => {
    const l = encodeLead({ nevr: 'hello-1:1.2.3-1', arch: 'aarch64' });
    expect(l.length).toBe(96);
    expect(l.subarray(0, 8).toString('hex')).toBe('edabeedb03000000');
    expect(l.readUInt16BE(8)).toBe(19);
    expect(l.subarray(10, 10 + 15).toString()).toBe('hello-1:1.2.3-1');
    expect(l[25]).toBe(0);
    expect(l.readUInt16BE(76)).toBe(1);
    expect(l.readUInt16BE(78)).toBe(5);
    expect(l.subarray(80).equals(Buffer.alloc(16))).toBe(true);
    expect(encodeLead({ nevr: 'x'.repeat(100), arch: 'x86_64' })[75]).toBe(0); // cut to 65 bytes and a NUL
  });
});

describe('rpm names and relations', () => {
  it('checks name, version, release and epoch as rpmbuild does', () => {
    const ok = { name: 'hello', version: '1.2.3~rc1^git1', release: '1.el9', epoch: 2 };
    expect(checkRpmVersion(ok)).toBeUndefined();
    expect(checkRpmVersion({ ...ok, version: '1.2-3' })).toMatch(/version/);
    expect(checkRpmVersion({ ...ok, release: '1-2' })).toMatch(/release/);
    expect(checkRpmVersion({ ...ok, version: '1..2' })).toMatch(/version/);
    expect(checkRpmVersion({ ...ok, name: '-hello' })).toMatch(/name/);
    expect(checkRpmVersion({ ...ok, name: 'he llo' })).toMatch(/name/);
    expect(checkRpmVersion({ ...ok, epoch: -1 })).toMatch(/epoch/);
  });

  it('parses rpm and Debian relations and turns alternatives into rich dependencies', () => {
    expect(parseRelation('glibc >= 2.34', 'Depends', true)).toEqual({ name: 'glibc', flags: Sense.GREATER | Sense.EQUAL, version: '2.34', rich: false });
    expect(parseRelation('libc6 (>= 2.34)', 'Depends', true)).toEqual({ name: 'libc6', flags: Sense.GREATER | Sense.EQUAL, version: '2.34', rich: false });
    expect(parseRelation('foo (<< 2:1.0-1)', 'Depends', true)).toMatchObject({ flags: Sense.LESS, version: '2:1.0-1' });
    expect(parseRelation('pkgconfig(gtk+-3.0) > 3', 'Depends', true)).toMatchObject({ name: 'pkgconfig(gtk+-3.0)', flags: Sense.GREATER });
    expect(parseRelation('a>=1', 'Depends', true)).toMatchObject({ name: 'a', version: '1' });
    expect(parseRelation('/bin/sh', 'Depends', true)).toMatchObject({ name: '/bin/sh', flags: 0, version: '' });
    expect(parseRelation('a (>= 1) | b', 'Depends', true)).toEqual({ name: '(a >= 1 or b)', flags: 0, version: '', rich: true });
    expect(parseRelation('(a with b)', 'Depends', true)).toMatchObject({ name: '(a with b)', rich: true });
    expect(() => parseRelation('a | b', 'Provides', false)).toThrow(/not allowed/);
    expect(() => parseRelation('-a', 'Depends', true)).toThrow(/must begin/);
    expect(() => parseRelation('/bin/sh >= 1', 'Depends', true)).toThrow(/file name/);
    expect(() => parseRelation('a >= 1-2-3', 'Depends', true)).toThrow(/more than one/);
    expect(() => parseRelation('a (1.0)', 'Depends', true)).toThrow(/expected/);
    expect(() => parseRelation('(a or b', 'Depends', true)).toThrow(/unbalanced/);
  });

  it('maps Debian sections to rpm groups', () => {
    expect(rpmGroup('admin')).toBe('Applications/System');
    expect(rpmGroup('Applications/Internet')).toBe('Applications/Internet');
    expect(rpmGroup('misc')).toBe('misc');
  });
});

describe('rpm package', () => {
  let rpmOk = false;
  beforeAll(async () => {
    rpmOk = await hasTool('rpm');
  });
  const needRpm = (ctx: { skip: (c: boolean, note?: string) => void }) => ctx.skip(!rpmOk, 'rpm is not installed (scripts/install-deps.sh installs it)');

  it('is lead + signature + header + payload, with rpmbuild’s tags', async () => {
    const { bytes: b } = await writeRpm(fakePlan());
    expect(b.subarray(0, 4).toString('hex')).toBe('edabeedb');
    const { sig, hdr, hdrAt, payloadAt } = layout(b);
    expect(sig.region).toBe(HEADER_SIGNATURES);
    expect(hdr.region).toBe(HEADER_IMMUTABLE);
    expect(hdrAt % 8).toBe(0);
    const header = b.subarray(hdrAt, payloadAt);
    const payload = b.subarray(payloadAt);
    expect(headerValue(sig, SigTag.SHA256)).toBe(sha256(header));
    expect(headerValue(sig, SigTag.SHA1)).toBe(createHash('sha1').update(header).digest('hex'));
    expect(headerValue(sig, SigTag.MD5)).toEqual(createHash('md5').update(header).update(payload).digest());
    expect(headerValue(sig, SigTag.SIZE)).toEqual([header.length + payload.length]);
    expect(headerValue(hdr, Tag.PAYLOADDIGEST)).toEqual([sha256(payload)]);
    expect(headerValue(hdr, Tag.PAYLOADDIGESTALGO)).toEqual([8]);
    expect(headerValue(hdr, Tag.FILEDIGESTALGO)).toEqual([8]);
    expect(headerValue(hdr, Tag.EPOCH)).toBeUndefined();
    expect(headerValue(hdr, Tag.DIRNAMES)).toEqual(['/etc/', '/usr/bin/', '/usr/share/doc/', '/usr/share/doc/hello/', '/var/lib/', '/var/log/']);
    expect(headerValue(hdr, Tag.BASENAMES)).toEqual(['hello.conf', 'hello', 'hi', 'hello', 'README', 'hello', 'hello.log']);
    expect(headerValue(hdr, Tag.DIRINDEXES)).toEqual([0, 1, 1, 2, 3, 4, 5]);
    expect(payload.subarray(0, 2).toString('hex')).toBe('1f8b');
  });

  it('passes rpm -K with every digest OK', async (ctx) => {
    needRpm(ctx);
    const { path } = await writeRpm(fakePlan());
    expect((await execa('rpm', ['-K', path])).stdout).toBe(`${path}: digests OK`);
    const v = (await execa('rpm', ['-Kv', path])).stdout;
    for (const d of ['Header SHA256 digest: OK', 'Header SHA1 digest: OK', 'Payload SHA256 digest: OK', 'MD5 digest: OK']) expect(v).toContain(d);
    expect(v).not.toMatch(/BAD|NOTFOUND/);
  });

  it('reads back with rpm -qp: info, file list, scripts, relations, changelog', async (ctx) => {
    needRpm(ctx);
    const plan = fakePlan({ scripts: { deb: {}, rpm: { pre: 'echo pre\n', post: 'echo installed\n', preun: 'echo preun\n', postun: 'echo postun\n' } } });
    plan.meta.relations.depends = ['libc6 (>= 2.34)', 'foo | bar (>= 2)'];
    plan.meta.relations.preDepends = ['shadow-utils'];
    plan.meta.relations.recommends = ['curl'];
    plan.meta.relations.suggests = ['jq >= 1.6'];
    plan.meta.relations.breaks = ['hello-plugin < 2'];
    plan.meta.section = 'admin';
    const { path } = await writeRpm(plan);

    const info = await rpmq(path, '--info');
    for (const line of [
      /^Name\s+: hello$/m,
      /^Version\s+: 1\.2\.3$/m,
      /^Release\s+: 1$/m,
      /^Architecture: x86_64$/m,
      /^Group\s+: Applications\/System$/m,
      /^Size\s+: 47$/m, // 15 + 21 + 6 bytes of files and the 5-byte symlink target, as rpmbuild counts
      /^License\s+: Apache-2\.0$/m,
      /^Source RPM\s+: hello-1\.2\.3-1\.src\.rpm$/m,
      /^Build Host\s+: dockyard$/m,
      /^Packager\s+: Dockyard Tests <tests@dockyard\.invalid>$/m,
      /^Vendor\s+: dockyard$/m,
      /^URL\s+: https:\/\/example\.org\/hello$/m,
      /^Summary\s+: says hello$/m,
      /^Description :\nA small package that says hello\.\nIt has a config file and a symlink\.$/m,
    ])
      expect(info).toMatch(line);
    expect(await rpmq(path, '--qf', '%{BUILDTIME} %{OS} %{PAYLOADFORMAT} %{PAYLOADCOMPRESSOR} %{PAYLOADFLAGS} %{ENCODING}')).toBe('1700000000 linux cpio gzip 9 utf-8');

    // --dump: path size mtime digest mode owner group isconfig isdoc rdev symlink
    const dump = (await rpmq(path, '--dump')).split('\n');
    const h = (s: string) => sha256(s);
    expect(dump).toEqual([
      `/etc/hello.conf 15 1700000000 ${h('greeting=hello\n')} 0100644 root root 1 0 0 X`,
      `/usr/bin/hello 21 1700000000 ${h('#!/bin/sh\necho hello\n')} 0100755 root root 0 0 0 X`,
      `/usr/bin/hi 5 1700000000 ${'0'.repeat(64)} 0120777 root root 0 0 0 hello`,
      `/usr/share/doc/hello 0 1700000000 ${'0'.repeat(64)} 040755 root root 0 0 0 X`,
      `/usr/share/doc/hello/README 6 1700000000 ${h('hello\n')} 0100644 root root 0 1 0 X`,
      `/var/lib/hello 0 1700000000 ${'0'.repeat(64)} 040755 root root 0 0 0 X`,
      `/var/log/hello.log 0 1700000000 ${'0'.repeat(64)} 0100644 root root 0 0 0 X`,
    ]);
    // Flags: c %config, n noreplace, d %doc (below /usr/share/doc), g %ghost.
    expect((await rpmq(path, '--qf', '[%{FILENAMES} %{FILEFLAGS:fflags}\n]')).split('\n')).toEqual([
      '/etc/hello.conf cn',
      '/usr/bin/hello ',
      '/usr/bin/hi ',
      '/usr/share/doc/hello ',
      '/usr/share/doc/hello/README d',
      '/var/lib/hello ',
      '/var/log/hello.log g',
    ]);
    expect(await rpmq(path, '--configfiles')).toBe('/etc/hello.conf');

    expect(await rpmq(path, '--scripts')).toBe(
      [
        'preinstall scriptlet (using /bin/sh):',
        'echo pre',
        'postinstall scriptlet (using /bin/sh):',
        'echo installed',
        'preuninstall scriptlet (using /bin/sh):',
        'echo preun',
        'postuninstall scriptlet (using /bin/sh):',
        'echo postun',
      ].join('\n'),
    );
    expect((await rpmq(path, '--requires')).split('\n')).toEqual([
      '(foo or bar >= 2)',
      '/bin/sh',
      '/bin/sh',
      '/bin/sh',
      '/bin/sh',
      'config(hello) = 1.2.3-1',
      'libc6 >= 2.34',
      'rpmlib(CompressedFileNames) <= 3.0.4-1',
      'rpmlib(FileDigests) <= 4.6.0-1',
      'rpmlib(PayloadFilesHavePrefix) <= 4.0-1',
      'rpmlib(RichDependencies) <= 4.12.0-1',
      'shadow-utils',
    ]);
    // The interpreter requirements are flagged for their scriptlets, the pre-dependency as Requires(pre).
    expect(await rpmq(path, '--qf', '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]')).toContain('/bin/sh pre,interp\n/bin/sh post,interp\n/bin/sh preun,interp\n/bin/sh postun,interp\n');
    expect(await rpmq(path, '--qf', '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]')).toMatch(/^shadow-utils pre$/m);
    expect((await rpmq(path, '--provides')).split('\n')).toEqual(['config(hello) = 1.2.3-1', 'hello = 1.2.3-1', 'hello(x86-64) = 1.2.3-1', 'hello-world']);
    expect((await rpmq(path, '--conflicts')).split('\n')).toEqual(['hello-old', 'hello-plugin < 2']);
    expect(await rpmq(path, '--obsoletes')).toBe('hello-old');
    expect(await rpmq(path, '--recommends')).toBe('curl');
    expect(await rpmq(path, '--suggests')).toBe('jq >= 1.6');
    expect(await rpmq(path, '--changelog')).toBe('* Tue Nov 14 2023 Dockyard Tests <tests@dockyard.invalid> - 1.2.3-1\n- First release.\n');
  });

  it('unpacks with rpm2cpio | cpio: contents, modes, symlink; no ghost, no system directories', async (ctx) => {
    needRpm(ctx);
    ctx.skip(!(await hasTool('cpio')), 'cpio is not installed (scripts/install-deps.sh installs it)');
    const { path } = await writeRpm(fakePlan());
    const out = join(work, 'unpacked');
    await mkdir(out);
    const r = await execa('sh', ['-c', `rpm2cpio "$1" | cpio -idmv --no-absolute-filenames`, 'sh', path], { cwd: out });
    expect(r.stderr.split('\n').filter((l) => l.startsWith('./'))).toEqual([
      './etc/hello.conf',
      './usr/bin/hello',
      './usr/bin/hi',
      './usr/share/doc/hello',
      './usr/share/doc/hello/README',
      './var/lib/hello',
    ]);
    expect(await readFile(join(out, 'usr/bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hello\n');
    expect((await stat(join(out, 'usr/bin/hello'))).mode & 0o7777).toBe(0o755);
    expect(await readFile(join(out, 'etc/hello.conf'), 'utf8')).toBe('greeting=hello\n');
    expect(await readlink(join(out, 'usr/bin/hi'))).toBe('hello');
    expect((await stat(join(out, 'usr/bin/hello'))).mtimeMs).toBe(1700000000_000);
    await expect(lstat(join(out, 'var/log/hello.log'))).rejects.toThrow();
  });

  it('installs into a throwaway root, verifies and erases', async (ctx) => {
    needRpm(ctx);
    // rpm sets owners (chown) while unpacking: the tests run as root, as the deb tests do.
    ctx.skip(process.getuid?.() !== 0, 'installing with rpm --root needs root (it chowns every file)');
    const { path } = await writeRpm(fakePlan({ files: [...defaultFiles(), { path: '/opt/hello/lib/data.bin', body: bytes(70_000, 3), mode: 0o600 }] }));
    const root = join(work, 'root');
    const rpmRoot = ['--root', root, '--dbpath', '/var/lib/rpm'];
    await execa('rpm', [...rpmRoot, '--initdb']);
    // No /bin/sh in the root to run the scriptlets with, nor glibc to satisfy the dependency.
    await execa('rpm', [...rpmRoot, '--nodeps', '--noscripts', '-i', path]);
    expect(await readFile(join(root, 'usr/bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hello\n');
    expect((await stat(join(root, 'usr/bin/hello'))).mode & 0o7777).toBe(0o755);
    expect(await readFile(join(root, 'opt/hello/lib/data.bin'))).toEqual(bytes(70_000, 3));
    expect((await stat(join(root, 'opt/hello/lib/data.bin'))).mode & 0o7777).toBe(0o600);
    expect(await readlink(join(root, 'usr/bin/hi'))).toBe('hello');
    expect((await stat(join(root, 'var/lib/hello'))).isDirectory()).toBe(true);
    expect(await execa('rpm', [...rpmRoot, '-q', 'hello']).then((r) => r.stdout)).toBe('hello-1.2.3-1.x86_64');
    const verify = await execa('rpm', [...rpmRoot, '-V', '--nodeps', 'hello'], { reject: false });
    expect(verify.stdout, verify.stdout + verify.stderr).toBe('');
    expect(verify.exitCode).toBe(0);
    await execa('rpm', [...rpmRoot, '--noscripts', '-e', 'hello']);
    await expect(lstat(join(root, 'usr/bin/hello'))).rejects.toThrow();
    await expect(lstat(join(root, 'opt/hello'))).rejects.toThrow();
    await expect(lstat(join(root, 'etc/hello.conf'))).rejects.toThrow(); // unchanged config files go too
  });

  it('needs only rpmlib() features rpm has: installs with dependency checks on', async (ctx) => {
    needRpm(ctx);
    ctx.skip(process.getuid?.() !== 0, 'installing with rpm --root needs root (it chowns every file)');
    const plan = fakePlan({ version: '1.0~rc1^git2', scripts: { deb: {}, rpm: {} } });
    plan.meta.relations = { depends: [], preDepends: [], recommends: ['a | b'], suggests: [], conflicts: [], breaks: [], replaces: [], provides: [] };
    const { path } = await writeRpm(plan);
    const needs = (await rpmq(path, '--requires')).split('\n').filter((l) => l.startsWith('rpmlib('));
    expect(needs).toEqual([
      'rpmlib(CaretInVersions) <= 4.15.0-1',
      'rpmlib(CompressedFileNames) <= 3.0.4-1',
      'rpmlib(FileDigests) <= 4.6.0-1',
      'rpmlib(PayloadFilesHavePrefix) <= 4.0-1',
      'rpmlib(RichDependencies) <= 4.12.0-1',
      'rpmlib(TildeInVersions) <= 4.10.0-1',
    ]);
    const root = join(work, 'root-deps');
    const rpmRoot = ['--root', root, '--dbpath', '/var/lib/rpm'];
    await execa('rpm', [...rpmRoot, '--initdb']);
    await execa('rpm', [...rpmRoot, '-i', path]);
    expect(await execa('rpm', [...rpmRoot, '-q', 'hello']).then((r) => r.stdout)).toBe('hello-1.0~rc1^git2-1.x86_64');
    await execa('rpm', [...rpmRoot, '-e', 'hello']);
  });

  it('rpmlint finds no errors but the unsigned package and the content’s no-binary', async (ctx) => {
    ctx.skip(!(await hasTool('rpmlint')), 'rpmlint is not installed (scripts/install-deps.sh installs it)');
    const { path } = await writeRpm(fakePlan());
    const r = await execa('rpmlint', [path], { reject: false });
    const errors = r.stdout
      .split('\n')
      .map((l) => / E: (\S+)/.exec(l)?.[1])
      .filter((e): e is string => e !== undefined);
    // no-signature: the package is not signed (signing is rpmsign's, with a key dockyard does not hold).
    // no-binary: an x86_64 package of shell scripts: the test plan's content, not the encoding.
    expect(errors, r.stdout).toEqual(['no-signature', 'no-binary']);
  });

  it('is byte-identical when encoded twice', async () => {
    const a = await writeRpm(fakePlan(), 'r1.rpm');
    const b = await writeRpm(fakePlan(), 'r2.rpm');
    expect(a.sha).toBe(b.sha);
  });

  it('writes arm64 and an epoch where rpm wants them', async (ctx) => {
    needRpm(ctx);
    const { path, bytes: b } = await writeRpm(fakePlan({ arch: 'arm64', pkgEpoch: 3 }));
    expect(b.readUInt16BE(8)).toBe(19);
    expect(b.subarray(10, 10 + 15).toString()).toBe('hello-3:1.2.3-1');
    expect(await rpmq(path, '--qf', '%{ARCH} %{EPOCH} %{NEVRA}')).toBe('aarch64 3 hello-3:1.2.3-1.aarch64');
    expect((await rpmq(path, '--provides')).split('\n')).toContain('hello(aarch-64) = 3:1.2.3-1');
    expect((await execa('rpm', ['-K', path])).stdout).toBe(`${path}: digests OK`);
  });

  it('writes a payload of several gzip members that rpm reads whole', async (ctx) => {
    needRpm(ctx);
    const big = bytes(9 * 1024 * 1024 + 77, 11);
    const { path, bytes: b } = await writeRpm(fakePlan({ files: [{ path: '/usr/lib/hello/big.bin', body: big }, { path: '/usr/lib/hello/after', body: 'after\n' }] }));
    const payload = b.subarray(layout(b).payloadAt);
    // Each member starts with gzip's header as zlib writes it at level 9: 1f 8b 08, flags 0, mtime 0, xfl 2, OS 3.
    const member = Buffer.from('1f8b08000000000002', 'hex');
    let members = 0;
    for (let at = payload.indexOf(member); at >= 0; at = payload.indexOf(member, at + 1)) members++;
    expect(members).toBeGreaterThanOrEqual(3);
    expect((await execa('rpm', ['-K', path])).stdout).toBe(`${path}: digests OK`);
    const cpio = (await execa('rpm2cpio', [path], { encoding: 'buffer' })).stdout as unknown as Uint8Array;
    const c = Buffer.from(cpio);
    expect(c.indexOf(big)).toBeGreaterThan(0);
    expect(c.includes('./usr/lib/hello/after')).toBe(true);
    expect(c.subarray(c.length - 124).toString('latin1')).toMatch(/^070701.*TRAILER!!!\0/);
  });

  it('makes a package of no files', async (ctx) => {
    needRpm(ctx);
    const plan = fakePlan({ files: [] });
    const { path } = await writeRpm(plan);
    expect(await rpmq(path, '-l')).toBe('(contains no files)');
    expect((await execa('rpm', ['-K', path])).stdout).toBe(`${path}: digests OK`);
  });

  it('owns no system directories, sorts by path bytes and refuses a path twice', () => {
    const plan = fakePlan();
    expect(plan.contents.files.map((f) => f.path)).toContain('/usr/bin');
    expect(() => rpmFiles([...plan.contents.files, plan.contents.files.find((f) => f.path === '/usr/bin/hello')!])).toThrow(/listed twice/);
    expect(rpmFiles([...plan.contents.files].reverse()).map((f) => f.path)).toEqual([
      '/etc/hello.conf',
      '/usr/bin/hello',
      '/usr/bin/hi',
      '/usr/share/doc/hello',
      '/usr/share/doc/hello/README',
      '/var/lib/hello',
      '/var/log/hello.log',
    ]);
  });

  it('refuses bad input and removes its spool on error', async () => {
    await expect(writeRpm(fakePlan({ version: '1.2-3' }), 'bad1.rpm')).rejects.toMatchObject({ code: 'E_PACKAGE', message: expect.stringMatching(/version/) });
    const plan = fakePlan();
    plan.meta.relations.replaces = ['a | b'];
    await expect(writeRpm(plan, 'bad2.rpm')).rejects.toMatchObject({ code: 'E_PACKAGE' });
    // A file whose bytes differ from the plan's size: refused, and the spool directory is left empty.
    const grown = fakePlan();
    const body = grown.contents.body;
    grown.contents.body = (f) => (f.path === '/usr/bin/hello' ? (async function* () { yield Buffer.from('#!/bin/sh\necho hello, more\n'); })() : body(f));
    const spool = join(work, 'spool-err');
    await mkdir(spool);
    const sink = new Sink([createWriteStream(join(work, 'bad3.rpm'))]);
    await expect(encodeRpm(grown, sink, { tmpDir: spool })).rejects.toMatchObject({ code: 'E_PACKAGE', message: expect.stringMatching(/usr\/bin\/hello/) });
    expect(await readdir(spool)).toEqual([]);
    // An aborted build stops and cleans up too.
    const ac = new AbortController();
    ac.abort();
    await expect(encodeRpm(fakePlan(), sink, { tmpDir: spool, signal: ac.signal })).rejects.toThrow();
    expect(await readdir(spool)).toEqual([]);
  });

  it('writes a file of 4 GiB or more in rpm’s large-file format (DOCKYARD_SLOW_TESTS=1)', async (ctx) => {
    needRpm(ctx);
    ctx.skip(!process.env.DOCKYARD_SLOW_TESTS, 'set DOCKYARD_SLOW_TESTS=1: compresses 4 GiB (about a minute)');
    const size = 4 * 1024 * 1024 * 1024 + 5;
    const plan = fakePlan({ name: 'big' });
    const zeros = { path: '/opt/big/zeros', type: 'file' as const, mode: 0o644, user: 'root', group: 'root', uid: 0, gid: 0, size, mtime: 1700000000 };
    plan.contents.files.push({ ...zeros, path: '/opt/big', type: 'dir', mode: 0o755, size: 0 }, zeros);
    plan.contents.files.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
    const body = plan.contents.body;
    const z = Buffer.alloc(1 << 20);
    plan.contents.body = (f) =>
      f.path === zeros.path
        ? (async function* () {
            for (let n = size; n > 0; n -= z.length) yield z.subarray(0, Math.min(n, z.length));
          })()
        : body(f);
    const { path, bytes: b } = await writeRpm(plan);
    const { sig, hdr } = layout(b);
    expect(headerValue(sig, SigTag.LONGARCHIVESIZE)).toBeDefined();
    expect(headerValue(hdr, Tag.LONGFILESIZES)).toContain(BigInt(size));
    expect((await execa('rpm', ['-K', path])).stdout).toBe(`${path}: digests OK`);
    expect(await rpmq(path, '--requires')).toContain('rpmlib(LargeFiles) <= 4.12.0-1');
    const digest = await zerosDigest(size);
    expect((await rpmq(path, '--dump')).split('\n')).toContain(`/opt/big/zeros ${size} 1700000000 ${digest} 0100644 root root 0 0 0 X`);
  }, 600_000);
});

/** SHA-256 of `n` zero bytes. */
async function zerosDigest(n: number): Promise<string> {
  const h = createHash('sha256');
  const z = Buffer.alloc(1 << 20);
  for (; n > 0; n -= z.length) h.update(z.subarray(0, Math.min(n, z.length)));
  return h.digest('hex');
}

/** fakePlan's default files, to add to. */
function defaultFiles(): FakeFile[] {
  return [
    { path: '/usr/bin/hello', mode: 0o755, body: '#!/bin/sh\necho hello\n' },
    { path: '/usr/share/doc/hello/README', body: 'hello\n' },
    { path: '/usr/bin/hi', type: 'symlink', linkname: 'hello' },
    { path: '/etc/hello.conf', body: 'greeting=hello\n', config: true },
    { path: '/var/lib/hello', type: 'dir' },
    { path: '/var/log/hello.log', ghost: true, body: '' },
  ];
}
