/**
 * kernel+iso: the format driven with a hand-made FormatContext (a kernel
 * segment, then others), its outputs judged by independent readers —
 * xorriso/osirrox (libisofs) and bsdtar (libarchive) list and extract the
 * Rock Ridge tree, isoinfo (genisoimage) reads link counts, extents and the
 * Joliet tree. The expected tree below is written out by hand, not derived
 * from the code under test. Also: last-wins over repeated paths, identical
 * bytes from identical input, no spool or partial output left after success
 * or failure, and the limits (long names, 4 GiB files, 65535 directories).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, readdir, readlink, rm, lstat, mkdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { kernelIsoFormat } from '../../../pkg/formats/kernel-iso/index.js';
import type { FormatContext, ProgressEvent } from '../../../pkg/formats/format.js';
import type { Entry, Segment } from '../../../pkg/rootfs/entry.js';
import { DockyardError } from '../../../pkg/errors.js';
import { planIso, type IsoNode } from '../../../pkg/iso/iso.js';
import { runTag } from '../../../pkg/tempfiles.js';

const EPOCH = 1_700_000_000;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-kiso-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    b[i] = s >>> 16;
  }
  return b;
}

/** A body that can be iterated once, in odd-sized chunks (as a layer being decompressed gives it). */
async function* chunked(b: Buffer, step = 65_537): AsyncGenerator<Buffer> {
  for (let o = 0; o < b.length; o += step) yield b.subarray(o, o + step);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

type Kind = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo';
const meta = { uid: 0, gid: 0, size: 0 };
const file = (path: string, data: Buffer, mode = 0o644, o: Partial<Entry> = {}): Entry => ({ path, type: 'file', mode, ...meta, size: data.length, body: chunked(data), ...o });
const dir = (path: string, mode = 0o755, o: Partial<Entry> = {}): Entry => ({ path, type: 'dir', mode, ...meta, ...o });
const symlink = (path: string, target: string): Entry => ({ path, type: 'symlink', mode: 0o777, ...meta, linkname: target });
const hardlink = (path: string, target: string): Entry => ({ path, type: 'hardlink', mode: 0o644, ...meta, linkname: target });
const device = (path: string, type: 'char' | 'block', major: number, minor: number, mode: number, gid = 0): Entry => ({ path, type, mode, ...meta, gid, devmajor: major, devminor: minor });
const seg = (name: string, entries: () => Entry[]): Segment => ({
  name,
  key: name,
  async *entries() {
    yield* entries();
  },
});

const KERNEL = bytes(300_001, 1);
const CMDLINE = 'console=ttyS0 root=/dev/sr0 rootfstype=iso9660';
const MODULE = bytes(5000, 2);
const BUSYBOX = bytes(1_234_567, 3); // more than one 1 MiB read from the spool
const PASSWD = Buffer.from('root:x:0:0:root:/root:/bin/sh\n');
const NOTES = Buffer.from('private notes\n');
/** 255 bytes, the most a name may have (NAME_MAX); no extension. */
const LONG = 'a-long-name-'.repeat(22).slice(0, 255);
const UTF8 = 'ünïcödé-名前';
/** A symlink target over several SL entries (up to 250 bytes each), with "." and ".." among its names. */
const LONG_TARGET = '../' + Array.from({ length: 60 }, (_, i) => (i % 9 === 4 ? '..' : i % 11 === 5 ? '.' : `dir-${i}`)).join('/') + '/' + 'z'.repeat(300);

/** The system: a kernel segment (boot/ and modules), an image, then files that replace some of it. */
function segments(): Segment[] {
  return [
    seg('kernel', () => [
      dir('boot'),
      file('boot/kernel', KERNEL),
      file('boot/cmdline', Buffer.from(CMDLINE)),
      file('boot/other', Buffer.from('not in the image')),
      dir('lib/modules/6.6.0'),
      file('lib/modules/6.6.0/kernel/fs/isofs.ko', MODULE),
    ]),
    seg('init', () => [
      dir('bin'),
      file('bin/busybox', BUSYBOX, 0o755, { mtime: 1_690_000_000 }),
      hardlink('bin/sh', 'bin/busybox'),
      hardlink('usr/bin/env', 'bin/busybox'),
      symlink('bin/ash', 'busybox'),
      file('bin/su', Buffer.from('su'), 0o4755),
      file('bin/wall', Buffer.from('wall'), 0o2755, { gid: 5 }),
      dir('etc'),
      file('etc/passwd', PASSWD),
      file('etc/hostname', Buffer.from('old\n')),
      file('etc/empty', Buffer.alloc(0)),
      file('etc/empty2', Buffer.alloc(0), 0o600),
      symlink('etc/mtab', '/proc/self/mounts'),
      symlink('etc/far', LONG_TARGET),
      dir('tmp', 0o1777),
      dir('home/user', 0o700, { uid: 1000, gid: 1000, mtime: 1_600_000_000 }),
      file('home/user/notes', NOTES, 0o600, { uid: 1000, gid: 1000, mtime: 1_500_000_000 }),
      dir('dev'),
      device('dev/null', 'char', 1, 3, 0o666),
      device('dev/console', 'char', 5, 1, 0o600),
      device('dev/sda', 'block', 8, 0, 0o660, 6),
      { path: 'run/initctl', type: 'fifo', mode: 0o600, ...meta },
      file(`names/${LONG}`, Buffer.from('long\n')),
      file(`names/${UTF8}`, Buffer.from('utf8\n')),
      dir('opt/thing'),
      file('opt/thing/child', Buffer.from('gone\n')),
      file('a/old', Buffer.from('first\n')),
      hardlink('a/link', 'a/old'),
    ]),
    seg('files', () => [
      file('etc/hostname', Buffer.from('new\n')), // given twice: the last wins
      dir('etc', 0o750, { gid: 10, mtime: 1_650_000_000 }), // a directory again: new attributes, children kept
      file('opt/thing', Buffer.from('replaced\n'), 0o640), // a file over a directory: its subtree goes
      file('a/old', Buffer.from('second\n')), // a link's target replaced: the link keeps the first file
    ]),
  ];
}

interface Want {
  path: string;
  type: Kind;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  data?: Buffer;
  target?: string;
  dev?: [number, number];
}

const d = (path: string, mode = 0o755, o: Partial<Want> = {}): Want => ({ path, type: 'dir', mode, uid: 0, gid: 0, mtime: EPOCH, ...o });
const f = (path: string, data: Buffer | string, mode = 0o644, o: Partial<Want> = {}): Want => ({ path, type: 'file', mode, uid: 0, gid: 0, mtime: EPOCH, data: Buffer.from(data), ...o });

/** The tree the image must hold, written out by hand. */
const WANT: Want[] = [
  d('a'),
  f('a/link', 'first\n'),
  f('a/old', 'second\n'),
  d('bin'),
  { path: 'bin/ash', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: EPOCH, target: 'busybox' },
  f('bin/busybox', BUSYBOX, 0o755, { mtime: 1_690_000_000 }),
  f('bin/sh', BUSYBOX, 0o755, { mtime: 1_690_000_000 }),
  f('bin/su', 'su', 0o4755),
  f('bin/wall', 'wall', 0o2755, { gid: 5 }),
  d('dev'),
  { path: 'dev/console', type: 'char', mode: 0o600, uid: 0, gid: 0, mtime: EPOCH, dev: [5, 1] },
  { path: 'dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: EPOCH, dev: [1, 3] },
  { path: 'dev/sda', type: 'block', mode: 0o660, uid: 0, gid: 6, mtime: EPOCH, dev: [8, 0] },
  d('etc', 0o750, { gid: 10, mtime: 1_650_000_000 }),
  f('etc/empty', ''),
  f('etc/empty2', '', 0o600),
  { path: 'etc/far', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: EPOCH, target: LONG_TARGET },
  f('etc/hostname', 'new\n'),
  { path: 'etc/mtab', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: EPOCH, target: '/proc/self/mounts' },
  f('etc/passwd', PASSWD),
  d('home'),
  d('home/user', 0o700, { uid: 1000, gid: 1000, mtime: 1_600_000_000 }),
  f('home/user/notes', NOTES, 0o600, { uid: 1000, gid: 1000, mtime: 1_500_000_000 }),
  d('lib'),
  d('lib/modules'),
  d('lib/modules/6.6.0'),
  d('lib/modules/6.6.0/kernel'),
  d('lib/modules/6.6.0/kernel/fs'),
  f('lib/modules/6.6.0/kernel/fs/isofs.ko', MODULE),
  d('names'),
  f(`names/${LONG}`, 'long\n'),
  f(`names/${UTF8}`, 'utf8\n'),
  d('opt'),
  f('opt/thing', 'replaced\n', 0o640),
  d('run'),
  { path: 'run/initctl', type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: EPOCH },
  d('tmp', 0o1777),
  d('usr'),
  d('usr/bin'),
  f('usr/bin/env', BUSYBOX, 0o755, { mtime: 1_690_000_000 }),
];
const HARDLINKED = ['bin/busybox', 'bin/sh', 'usr/bin/env'];

function context(dir: string, segs: Segment[], o: Partial<FormatContext> = {}): FormatContext & { events: ProgressEvent[] } {
  const events: ProgressEvent[] = [];
  return { name: 'sys', dir, arch: 'amd64', epoch: EPOCH, segments: segs, spec: {} as FormatContext['spec'], emit: (e) => events.push(e), events, ...o };
}

/** Every path below `root`, relative, sorted. */
async function walk(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    out.push(p);
    if (e.isDirectory()) out.push(...(await walk(root, p)));
  }
  return out.sort();
}

function kindOf(st: Stats): Kind | 'other' {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other';
}

/** glibc's major()/minor() of a Linux dev_t (the numbers here are small). */
const devOf = (rdev: number): [number, number] => [Math.floor(rdev / 256) & 0xfff, (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00)];

/** An extracted tree against WANT: the same paths; type, mode, owner, time, bytes, target, device of each. */
async function expectTree(root: string, tool: string, o: { symlinkTimes: boolean }): Promise<void> {
  expect(await walk(root), tool).toEqual(WANT.map((w) => w.path).sort());
  for (const w of WANT) {
    const at = `${tool}: ${w.path}`;
    const st = await lstat(join(root, w.path));
    expect(kindOf(st), at).toBe(w.type);
    expect((st.mode & 0o7777).toString(8), at).toBe(w.mode.toString(8));
    expect([st.uid, st.gid], at).toEqual([w.uid, w.gid]);
    if (w.type !== 'symlink' || o.symlinkTimes) expect(st.mtimeMs / 1000, at).toBe(w.mtime);
    if (w.data) expect(sha(await readFile(join(root, w.path))), at).toBe(sha(w.data));
    if (w.target !== undefined) expect(await readlink(join(root, w.path)), at).toBe(w.target);
    if (w.dev) expect(devOf(st.rdev), at).toEqual(w.dev);
  }
}

/** `ls -l`'s permission string, written independently of the writer. */
function lsMode(w: Want): string {
  const t = { file: '-', dir: 'd', symlink: 'l', char: 'c', block: 'b', fifo: 'p' }[w.type];
  const m = w.mode;
  const x = (bit: number, special: number, on: string) => (m & special ? (m & bit ? on : on.toUpperCase()) : m & bit ? 'x' : '-');
  const rw = (r: number, wr: number) => (m & r ? 'r' : '-') + (m & wr ? 'w' : '-');
  return t + rw(0o400, 0o200) + x(0o100, 0o4000, 's') + rw(0o40, 0o20) + x(0o10, 0o2000, 's') + rw(0o4, 0o2) + x(0o1, 0o1000, 't');
}

describe('kernel+iso', () => {
  let out: string;
  let tmp: string;
  let iso: string;
  let result: Awaited<ReturnType<typeof kernelIsoFormat.write>>;
  let events: ProgressEvent[];
  beforeAll(async () => {
    out = join(work, 'out');
    tmp = join(work, 'tmp');
    await mkdir(tmp);
    const ctx = context(out, segments(), { tmpDir: tmp });
    result = await kernelIsoFormat.write(ctx);
    events = ctx.events;
    iso = join(out, 'sys.iso');
  });

  it('writes NAME-kernel, NAME.iso and NAME-cmdline (the kernel and cmdline exactly as given), and leaves no spool', async () => {
    expect(kernelIsoFormat.files('sys', { spec: {} as FormatContext['spec'], arch: 'amd64' })).toEqual(['sys-kernel', 'sys.iso', 'sys-cmdline']);
    expect((await readdir(out)).sort()).toEqual(['sys-cmdline', 'sys-kernel', 'sys.iso']);
    expect(sha(await readFile(join(out, 'sys-kernel')))).toBe(sha(KERNEL));
    expect(await readFile(join(out, 'sys-cmdline'), 'utf8')).toBe(CMDLINE);
    expect(result.map((r) => r.path)).toEqual(['sys-kernel', 'sys.iso', 'sys-cmdline'].map((n) => join(out, n)));
    for (const r of result) expect(r.sha256, r.path).toBe(sha(await readFile(r.path)));
    expect(events.filter((e) => e.kind === 'output-done')).toHaveLength(3);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('is an ISO 9660 volume DOCKYARD with Rock Ridge and Joliet and no El Torito boot, and holds no boot/', async () => {
    const info = (await execa('isoinfo', ['-d', '-i', iso])).stdout;
    expect(info).toMatch(/^Volume id: DOCKYARD$/m);
    expect(info).toMatch(/Rock Ridge signatures version 1 found/);
    expect(info).toMatch(/Joliet with UCS level 3 found/);
    expect(info).not.toMatch(/El Torito/);
    const el = await execa('xorriso', ['-indev', iso, '-report_el_torito', 'plain'], { reject: false });
    expect(el.stdout).not.toMatch(/El Torito (catalog|boot img)/);
    const rr = (await execa('isoinfo', ['-R', '-f', '-i', iso])).stdout.split('\n');
    expect(rr.filter((l) => /^\/boot\b/.test(l))).toEqual([]);
    expect(rr.sort()).toEqual(WANT.map((w) => `/${w.path}`).sort());
  });

  it('xorriso lists every path with its type, mode (setuid, setgid, sticky), owner, size, symlink target and device numbers', async () => {
    const r = await execa('xorriso', ['-abort_on', 'NEVER', '-return_with', 'SORRY', '0', '-indev', iso, '-find', '/', '-exec', 'lsdl', '--'], { reject: false });
    expect(r.stdout + r.stderr).not.toMatch(/FAILURE|SORRY|WARNING/);
    const lines = new Map<string, RegExpExecArray>();
    for (const l of r.stdout.split('\n')) {
      const m = /^(\S{10})\s+\d+\s+(\d+)\s+(\d+)\s+(\S+)\s+\w{3}\s+\d+\s+(?:\d{4}|\d\d:\d\d)\s+'\/(.*?)'(?: -> '(.*)')?$/.exec(l);
      if (m && m[5] !== '') lines.set(m[5], m);
    }
    expect([...lines.keys()].sort()).toEqual(WANT.map((w) => w.path).sort());
    for (const w of WANT) {
      const m = lines.get(w.path)!;
      expect([m[1], Number(m[2]), Number(m[3])], w.path).toEqual([lsMode(w), w.uid, w.gid]);
      if (w.data) expect(Number(m[4]), w.path).toBe(w.data.length);
      if (w.dev) expect(m[4], w.path).toBe(`${w.dev[0]},${w.dev[1]}`);
      expect(m[6], w.path).toBe(w.target);
    }
  });

  it('isoinfo: hard links share one extent and PX counts their names; a replaced link target does not', async () => {
    const ls = (await execa('isoinfo', ['-R', '-l', '-i', iso])).stdout;
    const rows = new Map<string, { nlink: number; size: number; lba: number }>();
    let cwd = '';
    for (const l of ls.split('\n')) {
      const h = /^Directory listing of \/(.*)$/.exec(l);
      if (h) cwd = h[1];
      const m = /^(\S{10})\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s+\w{3}\s+\d+\s+\d{4}\s+\[\s*(\d+)\s+\d+\]\s+(.*?)\s*$/.exec(l);
      if (m) rows.set(cwd + m[5].replace(/ -> .*$/, ''), { nlink: Number(m[2]), size: Number(m[3]), lba: Number(m[4]) });
    }
    const linked = HARDLINKED.map((p) => rows.get(p)!);
    for (const r of linked) expect(r).toEqual({ nlink: 3, size: BUSYBOX.length, lba: linked[0].lba });
    expect(rows.get('a/old')!.nlink).toBe(1);
    expect(rows.get('a/link')!.nlink).toBe(1);
    expect(rows.get('a/old')!.lba).not.toBe(rows.get('a/link')!.lba);
    expect(rows.get('etc/passwd')!.nlink).toBe(1);
  });

  it('xorriso (osirrox, -hardlinks on) extracts the tree: bytes, modes, owners, times, devices, fifo, and the hard links as one inode', async () => {
    const x = join(work, 'xorriso');
    const r = await execa('xorriso', ['-osirrox', 'on:device_files', '-hardlinks', 'on', '-indev', iso, '-extract', '/', x], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    // osirrox does not set the times of the symlinks it makes.
    await expectTree(x, 'xorriso', { symlinkTimes: false });
    const inos = await Promise.all(HARDLINKED.map(async (p) => lstat(join(x, p))));
    expect(new Set(inos.map((s) => s.ino)).size).toBe(1);
    expect(inos[0].nlink).toBe(3);
    expect((await lstat(join(x, 'a/old'))).ino).not.toBe((await lstat(join(x, 'a/link'))).ino);
  });

  it('bsdtar extracts the same tree (symlink times too), the hard links as one inode', async () => {
    const x = join(work, 'bsdtar');
    await mkdir(x);
    const r = await execa('bsdtar', ['-xpf', iso, '-C', x], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    await expectTree(x, 'bsdtar', { symlinkTimes: true });
    const inos = await Promise.all(HARDLINKED.map(async (p) => lstat(join(x, p))));
    expect(new Set(inos.map((s) => s.ino)).size).toBe(1);
    expect(inos[0].nlink).toBe(3);
    expect((await lstat(join(x, 'a/old'))).ino).not.toBe((await lstat(join(x, 'a/link'))).ino);
  });

  it('Joliet lists the same directories and files (no symlinks, devices or fifos: Joliet has none), with the same bytes', async () => {
    // isoinfo shows Joliet names in ISO 8859-1 (its default -j), "_" for characters that has not.
    const list = (await execa('isoinfo', ['-J', '-f', '-i', iso], { encoding: 'latin1' })).stdout.split('\n').map((l) => l.replace(/;1$/, ''));
    const latin1 = (p: string) => [...p].map((c) => (c.codePointAt(0)! > 0xff ? '_' : c)).join('');
    // Joliet names hold 103 UCS-2 characters at most, ";1" included for files (mkisofs -joliet-long).
    const joliet = (p: string) => p.replace(LONG, LONG.slice(0, 101));
    const want = WANT.filter((w) => w.type === 'dir' || w.type === 'file');
    expect(list.sort()).toEqual(want.map((w) => `/${latin1(joliet(w.path))}`).sort());
    const x = join(work, 'joliet');
    const r = await execa('xorriso', ['-osirrox', 'on', '-read_fs', 'norock', '-indev', iso, '-extract', '/', x], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    for (const w of want) if (w.data) expect(sha(await readFile(join(x, joliet(w.path)))), w.path).toBe(sha(w.data));
  });

  it('the same input gives the same bytes', async () => {
    const again = join(work, 'again');
    const tmp2 = join(work, 'tmp2');
    await mkdir(tmp2);
    const r = await kernelIsoFormat.write(context(again, segments(), { tmpDir: tmp2 }));
    expect(r.map((o) => o.sha256)).toEqual(result.map((o) => o.sha256));
    expect(sha(await readFile(join(again, 'sys.iso')))).toBe(sha(await readFile(iso)));
    expect(await readdir(tmp2)).toEqual([]);
    // Another epoch changes the times of the nodes that have none of their own.
    const other = await kernelIsoFormat.write(context(join(work, 'other'), segments(), { tmpDir: tmp2, epoch: EPOCH + 1 }));
    expect(other[1].sha256).not.toBe(result[1].sha256);
  });
});

describe('kernel+iso: failures and limits', () => {
  /** Runs a write expected to fail; returns the error after checking nothing is left in the output and temp directories. */
  async function failing(name: string, segs: Segment[], o: Partial<FormatContext> = {}): Promise<unknown> {
    const dir = join(work, name);
    const tmp = join(work, `${name}-tmp`);
    await mkdir(tmp, { recursive: true });
    const err = await kernelIsoFormat.write(context(dir, segs, { tmpDir: tmp, ...o })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'the write must fail').toBeDefined();
    expect(await readdir(dir).catch(() => [])).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
    return err;
  }

  it('a body that fails midway: the error surfaces, no output and no spool is left', async () => {
    async function* broken(): AsyncGenerator<Buffer> {
      yield Buffer.alloc(3000, 1);
      throw new Error('the layer stream broke');
    }
    const err = await failing('broken', [...segments().slice(0, 2), seg('late', () => [file('z/ok', Buffer.from('ok')), { path: 'z/broken', type: 'file', mode: 0o644, ...meta, size: 9000, body: broken() }])]);
    expect(String(err)).toMatch(/the layer stream broke/);
  });

  it('a 300-character name is refused with one E_LIMIT naming the path (NAME_MAX is 255 bytes: no POSIX reader could make it)', async () => {
    const name = 'n'.repeat(300);
    const err = await failing('longname', [...segments(), seg('more', () => [file(`x/${name}`, Buffer.from('x'))])]);
    expect(err).toBeInstanceOf(DockyardError);
    expect((err as DockyardError).code).toBe('E_LIMIT');
    expect((err as DockyardError).message).toContain(`x/${name}`);
    expect((err as DockyardError).message).toMatch(/300 bytes/);
  });

  it('a file over the 4 GiB extent limit is refused (E_LIMIT, naming it) before its bytes are read', async () => {
    async function* never(): AsyncGenerator<Buffer> {
      throw new Error('the body of a refused file was read');
    }
    const err = await failing('huge', [seg('big', () => [{ path: 'var/huge.img', type: 'file', mode: 0o644, ...meta, size: 5 * 1024 ** 3, body: never() }])]);
    expect(err).toBeInstanceOf(DockyardError);
    expect((err as DockyardError).code).toBe('E_LIMIT');
    expect((err as DockyardError).message).toContain('var/huge.img');
  });

  it('a symlink target xorriso could not read (1024 bytes or more) is refused (E_LIMIT, naming it)', async () => {
    const err = await failing('longlink', [seg('l', () => [symlink('etc/too-far', 'x/'.repeat(512))])]);
    expect((err as DockyardError).code).toBe('E_LIMIT');
    expect((err as DockyardError).message).toContain('etc/too-far');
  });

  it('a device number Linux cannot read is refused (E_LIMIT, naming it)', async () => {
    const err = await failing('baddev', [seg('d', () => [device('dev/weird', 'char', 0, 300, 0o600)])]);
    expect((err as DockyardError).code).toBe('E_LIMIT');
    expect((err as DockyardError).message).toContain('dev/weird');
  });

  it('-o is refused; without a kernel segment the ISO is written alone (spool in the system temp directory, removed)', async () => {
    await expect(kernelIsoFormat.write(context(join(work, 'o'), segments(), { outFile: join(work, 'o.iso') }))).rejects.toMatchObject({ code: 'E_USAGE' });
    const dir = join(work, 'nokernel');
    const spools = async () => (await readdir(tmpdir())).filter((n) => n.startsWith(`kernel-iso-${runTag}-`));
    const r = await kernelIsoFormat.write(context(dir, segments().slice(1)));
    expect(r.map((o) => o.path)).toEqual([join(dir, 'sys.iso')]);
    expect(await readdir(dir)).toEqual(['sys.iso']);
    expect(await spools()).toEqual([]);
  });

  it('more than 65535 directories is one E_LIMIT naming a directory past the limit', () => {
    // The root, 255 parents and 65280 children: 65536.
    const nodes: IsoNode[] = Array.from({ length: 65_280 }, (_, i) => ({ type: 'dir', path: `p${String(i >> 8).padStart(3, '0')}/c${String(i & 255).padStart(3, '0')}` }));
    expect(() => planIso({ nodes, epoch: EPOCH })).toThrow(/more than 65535 directories .*p254\/c255 is one too many/);
  });

  it('PN: usual device numbers in the form every reader agrees on; larger ones as Linux reads them (major high, minor low)', async () => {
    const pn = async (major: number, minor: number) => {
      const plan = planIso({ nodes: [{ type: 'device', path: 'dev/x', kind: 'block', major, minor }], epoch: EPOCH });
      const chunks: Buffer[] = [];
      await plan.write({ write: async (b) => void chunks.push(Buffer.from(b)) });
      const img = Buffer.concat(chunks);
      const at = img.indexOf(Buffer.from([0x50, 0x4e, 20, 1])); // "PN", length 20, version 1
      expect(at).toBeGreaterThan(0);
      // Both-endian: little then big, equal.
      expect(img.readUInt32BE(at + 8)).toBe(img.readUInt32LE(at + 4));
      expect(img.readUInt32BE(at + 16)).toBe(img.readUInt32LE(at + 12));
      return [img.readUInt32LE(at + 4), img.readUInt32LE(at + 12)];
    };
    expect(await pn(8, 16)).toEqual([0, (8 << 8) | 16]);
    expect(await pn(259, 300)).toEqual([259, 300]);
  });
});
