/**
 * EROFS on-disk structures checked against fixed values and against an
 * image made by mkfs.erofs (the superblock checksum); determinism; and
 * refusals of what an image could not hold (one DockyardError naming the
 * path, never a corrupt image).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { Entry } from '../../../pkg/rootfs/entry.js';
import { DockyardError } from '../../../pkg/errors.js';
import { BufferPositionalSink } from '../../../pkg/archive/positional.js';
import { writeErofs } from '../../../pkg/erofs/index.js';
import { crc32cRaw, superblockBlock } from '../../../pkg/erofs/superblock.js';
import { compactInode, extendedInode, newEncodeDev, type InodeFields } from '../../../pkg/erofs/inode.js';
import { dirBlock, dirLayout } from '../../../pkg/erofs/dirent.js';
import { bytes, chunked, fsckClean, stream, tool, writeImage } from './helpers.js';

const EPOCH = 1_600_000_000;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-erofs-st-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('EROFS structures', () => {
  it('crc32c matches the standard check value, and the superblock checksum of a mkfs.erofs image', async () => {
    // CRC-32C("123456789") = 0xE3069283; the kernel's crc32c(~0, ...) omits the final inversion.
    expect((crc32cRaw(Buffer.from('123456789')) ^ 0xffffffff) >>> 0).toBe(0xe3069283);
    const src = join(work, 'mkfs-src');
    await mkdir(src);
    await writeFile(join(src, 'f'), 'x');
    const img = join(work, 'mkfs.img');
    expect((await tool('mkfs.erofs', [img, src])).code).toBe(0);
    const blk = Buffer.from((await readFile(img)).subarray(0, 4096));
    const stored = blk.readUInt32LE(1024 + 4);
    expect(blk.readUInt32LE(1024 + 8) & 1).toBe(1); // SB_CHKSUM set by mkfs.erofs
    blk.writeUInt32LE(0, 1024 + 4);
    expect(crc32cRaw(blk.subarray(1024))).toBe(stored);
  });

  it('lays out the superblock fields at their offsets', () => {
    const uuid = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const b = superblockBlock({ rootNid: 0x1234, inos: 7, buildTime: EPOCH, buildTimeNsec: 5, blocks: 99, metaBlkaddr: 42, uuid, volumeName: 'vol' });
    expect(b.length).toBe(4096);
    expect(b.subarray(0, 1024).every((x) => x === 0)).toBe(true);
    const s = b.subarray(1024);
    expect(s.readUInt32LE(0)).toBe(0xe0f5e1e2);
    expect(s.readUInt32LE(8)).toBe(3); // sb_csum | mtime
    expect(s[12]).toBe(12);
    expect(s.readUInt16LE(14)).toBe(0x1234);
    expect(s.readBigUInt64LE(16)).toBe(7n);
    expect(s.readBigUInt64LE(24)).toBe(BigInt(EPOCH));
    expect(s.readUInt32LE(32)).toBe(5);
    expect(s.readUInt32LE(36)).toBe(99);
    expect(s.readUInt32LE(40)).toBe(42);
    expect(s.subarray(48, 64)).toEqual(uuid);
    expect(s.subarray(64, 80).toString('latin1')).toBe('vol' + '\0'.repeat(13));
    expect(s.readUInt32LE(80)).toBe(0); // no incompatible features
    const crc = s.readUInt32LE(4);
    const z = Buffer.from(s);
    z.writeUInt32LE(0, 4);
    expect(crc32cRaw(z)).toBe(crc);
    expect(() => superblockBlock({ rootNid: 0x10000, inos: 1, buildTime: 0, buildTimeNsec: 0, blocks: 1, metaBlkaddr: 1, uuid })).toThrow(/16 bits/);
  });

  it('encodes compact and extended inodes', () => {
    const f: InodeFields = { layout: 2, mode: 0o40755, nlink: 3, size: 0x12345, u: 77, ino: 9, uid: 1000, gid: 100, mtime: EPOCH, mtimeNsec: 12 };
    const c = compactInode(f);
    expect(c.length).toBe(32);
    expect(c.readUInt16LE(0)).toBe(2 << 1);
    expect([c.readUInt16LE(4), c.readUInt16LE(6), c.readUInt32LE(8), c.readUInt32LE(16), c.readUInt32LE(20), c.readUInt16LE(24), c.readUInt16LE(26)]).toEqual([0o40755, 3, 0x12345, 77, 9, 1000, 100]);
    const e = extendedInode({ ...f, size: 2 ** 33 + 1, uid: 100000, gid: 200000, mtime: -5, nlink: 70000 });
    expect(e.length).toBe(64);
    expect(e.readUInt16LE(0)).toBe(1 | (2 << 1));
    expect(e.readBigUInt64LE(8)).toBe(2n ** 33n + 1n);
    expect([e.readUInt32LE(16), e.readUInt32LE(24), e.readUInt32LE(28), e.readUInt32LE(40), e.readUInt32LE(44)]).toEqual([77, 100000, 200000, 12, 70000]);
    expect(e.readBigInt64LE(32)).toBe(-5n);
  });

  it('encodes device numbers as the kernel new_encode_dev does', () => {
    expect(newEncodeDev(8, 0)).toBe(0x800);
    expect(newEncodeDev(1, 3)).toBe(0x103);
    // The kernel's new_decode_dev: major = (dev & 0xfff00) >> 8, minor = (dev & 0xff) | ((dev >> 12) & 0xfff00).
    const d = newEncodeDev(300, 70000);
    expect((d & 0xfff00) >> 8).toBe(300);
    expect((d & 0xff) | ((d >>> 12) & 0xfff00)).toBe(70000);
  });

  it('breaks directory blocks on whole entries, and writes dirents then names', () => {
    // 340 entries of 12 + 0 bytes fill 4080; one more of 12 + 5 does not fit.
    expect(dirLayout([...Array(340).fill(0), 5], 4096)).toEqual({ ends: [340, 341], size: 4096 + 17 });
    expect(dirLayout([1, 2], 4096)).toEqual({ ends: [2], size: 27 });
    const b = dirBlock(
      [
        { name: Buffer.from('.'), nid: 5, fileType: 2 },
        { name: Buffer.from('..'), nid: 0, fileType: 2 },
        { name: Buffer.from('abc'), nid: 2 ** 40, fileType: 1 },
      ],
      4096,
    );
    expect(b.readUInt16LE(8)).toBe(36); // the first nameoff: 3 dirents
    expect([b.readUInt16LE(20), b.readUInt16LE(32)]).toEqual([37, 39]);
    expect(b.readBigUInt64LE(24)).toBe(2n ** 40n);
    expect(b[34]).toBe(1);
    expect(b.subarray(36, 42).toString()).toBe('...abc');
    expect(b.subarray(42).every((x) => x === 0)).toBe(true);
  });
});

function sample(seed: number): Entry[] {
  const big = bytes(300_000, seed);
  return [
    { path: 'd', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 },
    { path: 'd/f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: big.length, body: chunked(big, [1000, 77777]) },
    { path: 'd/g', type: 'file', mode: 0o600, uid: 70000, gid: 1, size: 3, body: Buffer.from('abc'), mtime: EPOCH + 1 },
    { path: 'l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: 'd/f' },
  ];
}

describe('EROFS writer: determinism', () => {
  it('writes the same bytes for the same entries, and another UUID for other content', async () => {
    const a = join(work, 'a.img');
    const b = join(work, 'b.img');
    const c = join(work, 'c.img');
    const ra = await writeImage(a, sample(1), { epoch: EPOCH });
    const rb = await writeImage(b, sample(1), { epoch: EPOCH });
    await writeImage(c, sample(2), { epoch: EPOCH });
    expect(rb.bytes).toBe(ra.bytes);
    const [ba, bb, bc] = await Promise.all([a, b, c].map((p) => readFile(p)));
    expect(sha(bb)).toBe(sha(ba));
    const uuid = (x: Buffer) => x.subarray(1024 + 48, 1024 + 64).toString('hex');
    expect(uuid(ba)).not.toBe('0'.repeat(32));
    expect(uuid(bc)).not.toBe(uuid(ba));
    await fsckClean([a]);
    // In memory too (BufferPositionalSink): the same bytes.
    const mem = new BufferPositionalSink();
    await writeErofs(stream(sample(1)), mem, { epoch: EPOCH });
    expect(sha(mem.bytes())).toBe(sha(ba));
  });

  it('an image with nothing but the root', async () => {
    const p = join(work, 'empty.img');
    const r = await writeImage(p, [], { epoch: EPOCH });
    expect(r.bytes).toBe(2 * 4096); // block 0 (superblock), then one metadata block: the root inode with its directory inline
    await fsckClean([p]);
  });

  it('a duplicate at the very end leaves only zeros past the image', async () => {
    const data = bytes(3 * 1024 * 1024 + 5, 9);
    const e = (path: string): Entry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, body: chunked(data, [1 << 20]) });
    const p = join(work, 'dup.img');
    const r = await writeImage(p, [e('a'), e('b')], { epoch: EPOCH });
    const raw = await readFile(p);
    expect(r.bytes).toBeLessThan(data.length + 64 * 1024);
    expect(raw.readUInt32LE(1024 + 36) * 4096).toBe(r.bytes);
    expect(raw.length).toBeGreaterThan(r.bytes);
    expect(raw.subarray(r.bytes).every((x) => x === 0)).toBe(true);
    const x = join(work, 'dup-x');
    await fsckClean([`--extract=${x}`, p]);
    expect(sha(await readFile(join(x, 'b')))).toBe(sha(data));
  });
});

describe('EROFS writer: refusals', () => {
  const write = (entries: Entry[], o: { volumeName?: string; signal?: AbortSignal } = {}) => writeErofs(stream(entries), new BufferPositionalSink(), { epoch: EPOCH, ...o });
  const fails = async (p: Promise<unknown>): Promise<DockyardError> => {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(DockyardError);
    return e as DockyardError;
  };
  const ok = (path: string): Entry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 1, body: Buffer.from('x') });

  it('a 300-byte name is one E_LAYER_FORMAT error naming the path', async () => {
    const long = 'n'.repeat(300);
    let after = 0;
    async function* entries(): AsyncGenerator<Entry> {
      yield ok('before');
      yield ok(`dir/${long}`);
      after++;
      yield ok('after');
    }
    const e = await fails(writeErofs(entries(), new BufferPositionalSink(), { epoch: EPOCH }));
    expect(e.code).toBe('E_LAYER_FORMAT');
    expect(e.message).toBe(`dir/${long}: a name of 300 bytes; EROFS names are at most 255 bytes`);
    expect(after).toBe(0);
    // A long name as a directory along the way, and 255 bytes is fine.
    expect((await fails(write([ok(`${long}/x`)]))).code).toBe('E_LAYER_FORMAT');
    await expect(write([ok('m'.repeat(255))])).resolves.toBeDefined();
  });

  it('names a directory could not hold', async () => {
    for (const p of ['a/./b', 'a/../b', 'a//b', 'a\0b']) expect((await fails(write([ok(p)]))).code).toBe('E_LAYER_FORMAT');
    const e = await fails(write([{ path: 'l', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: '' }]));
    expect(e.message).toMatch(/^l: symlink with an empty target/);
  });

  it('sizes and numbers past their fields are E_LIMIT errors naming the path', async () => {
    const cases: [Entry, RegExp][] = [
      [{ ...ok('u'), uid: 2 ** 32 }, /^u: uid 4294967296 /],
      [{ ...ok('g'), gid: -1 }, /^g: gid -1 /],
      [{ path: 'dev/x', type: 'char', mode: 0o600, uid: 0, gid: 0, size: 0, devmajor: 4096, devminor: 0 }, /^dev\/x: device 4096:0 /],
      [{ path: 'dev/y', type: 'block', mode: 0o600, uid: 0, gid: 0, size: 0, devmajor: 1, devminor: 1 << 20 }, /^dev\/y: device 1:1048576 /],
      [{ path: 'ln', type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: 'x'.repeat(4096) }, /^ln: symlink target of 4096 bytes/],
      [{ ...ok('s'), size: -1 }, /^s: size -1 /],
      [{ ...ok('t'), mtime: Infinity }, /^t: time Infinity /],
    ];
    for (const [entry, msg] of cases) {
      const e = await fails(write([entry]));
      expect(e.code, entry.path).toBe('E_LIMIT');
      expect(e.message).toMatch(msg);
    }
    const v = await fails(write([], { volumeName: '0123456789abcdef' }));
    expect(v.code).toBe('E_LIMIT');
    await expect(write([], { volumeName: '0123456789abcde' })).resolves.toBeDefined();
  });

  it('a body shorter or longer than its size is refused', async () => {
    expect((await fails(write([{ ...ok('short'), size: 5 }]))).message).toBe('short: body is 1 bytes, header says 5');
    expect((await fails(write([{ ...ok('long'), size: 0 }]))).message).toMatch(/^long: body is longer/);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    async function* entries(): AsyncGenerator<Entry> {
      yield ok('a');
      ac.abort();
      yield ok('b');
    }
    await expect(writeErofs(entries(), new BufferPositionalSink(), { epoch: EPOCH, signal: ac.signal })).rejects.toThrow(/abort/i);
  });
});
