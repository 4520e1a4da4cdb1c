/**
 * The on-disk structures one by one, against values worked out from
 * squashfs_fs.h and the kernel's readers (new_decode_dev, the metadata
 * block header, the directory header rules).
 */
import { describe, it, expect } from 'vitest';
import { inflateSync } from 'node:zlib';
import { encodeDev, dirInode, ldirInode, fileInode, lregInode, fitsBasicFile, NO_FRAGMENT } from '../../../pkg/squashfs/inode.js';
import { encodeSuperblock } from '../../../pkg/squashfs/superblock.js';
import { MetadataWriter, metadataBlock, inodeRef } from '../../../pkg/squashfs/metadata.js';
import { Listing } from '../../../pkg/squashfs/directory.js';

/** The kernel's new_decode_dev (include/linux/kdev_t.h). */
const decode = (dev: number) => [(dev & 0xfff00) >>> 8, (dev & 0xff) | ((dev >>> 12) & 0xfff00)];

describe('squashfs structures', () => {
  it('device numbers: new_encode_dev, decoded back by new_decode_dev', () => {
    expect(encodeDev(8, 0)).toBe(0x800);
    expect(encodeDev(1, 3)).toBe(0x103);
    expect(encodeDev(300, 70000)).toBe(0x11112c70);
    expect(encodeDev(0xfff, 0xfffff)).toBe(0xffffffff);
    for (const [ma, mi] of [[0, 0], [8, 17], [300, 70000], [4095, 1048575], [259, 256]]) expect(decode(encodeDev(ma, mi))).toEqual([ma, mi]);
  });

  it('superblock: magic, version 4.0, zlib, block_log, absent tables all ones', () => {
    const b = encodeSuperblock({
      inodes: 3,
      mkfsTime: 1234,
      blockSize: 131072,
      fragments: 1,
      flags: 0x260,
      ids: 2,
      rootInode: inodeRef({ block: 0x1234, offset: 0x56 }),
      bytesUsed: 2 ** 33 + 7,
      idTableStart: 100,
      inodeTableStart: 10,
      directoryTableStart: 20,
      fragmentTableStart: 30,
    });
    expect(b.length).toBe(96);
    expect(b.subarray(0, 4).toString('latin1')).toBe('hsqs');
    expect([b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12), b.readUInt32LE(16)]).toEqual([3, 1234, 131072, 1]);
    expect([b.readUInt16LE(20), b.readUInt16LE(22), b.readUInt16LE(24), b.readUInt16LE(26), b.readUInt16LE(28), b.readUInt16LE(30)]).toEqual([1, 17, 0x260, 2, 4, 0]);
    expect(b.readBigUInt64LE(32)).toBe(0x12340056n);
    expect(b.readBigUInt64LE(40)).toBe(2n ** 33n + 7n);
    expect(b.readBigUInt64LE(56)).toBe(0xffffffffffffffffn); // xattr_id_table_start
    expect(b.readBigUInt64LE(88)).toBe(0xffffffffffffffffn); // lookup_table_start
    expect([b.readBigUInt64LE(48), b.readBigUInt64LE(64), b.readBigUInt64LE(72), b.readBigUInt64LE(80)]).toEqual([100n, 10n, 20n, 30n]);
  });

  it('metadata blocks: a zlib stream with its length, or the raw bytes with bit 15', async () => {
    const text = Buffer.from('inode '.repeat(1000));
    const z = await metadataBlock(text, 9);
    expect(z.readUInt16LE(0) & 0x8000).toBe(0);
    expect(z.readUInt16LE(0)).toBe(z.length - 2);
    expect(z[2]).toBe(0x78); // RFC 1950 header, not gzip
    expect(inflateSync(z.subarray(2)).equals(text)).toBe(true);
    let x = 12345;
    const noise = Buffer.from(Array.from({ length: 8192 }, () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), x & 0xff)));
    const raw = await metadataBlock(noise, 9);
    expect(raw.readUInt16LE(0)).toBe(0x8000 | 8192);
    expect(raw.subarray(2).equals(noise)).toBe(true);
  });

  it('metadata writer: refs are (block header offset, offset in the uncompressed block)', async () => {
    const w = new MetadataWriter(9, 'test table');
    expect(await w.add(Buffer.alloc(8000, 1))).toEqual({ block: 0, offset: 0 });
    expect(await w.add(Buffer.alloc(300, 2))).toEqual({ block: 0, offset: 8000 });
    const first = w.blocks[0].length;
    expect(await w.add(Buffer.alloc(10, 3))).toEqual({ block: first, offset: 108 });
    const len = await w.finish();
    expect(len).toBe(w.blocks.reduce((n, b) => n + b.length, 0));
    const all = Buffer.concat(w.blocks.map((b) => inflateSync(b.subarray(2))));
    expect(all.equals(Buffer.concat([Buffer.alloc(8000, 1), Buffer.alloc(300, 2), Buffer.alloc(10, 3)]))).toBe(true);
  });

  it('directory headers split at 256 entries, at a new inode block, at an int16 inode delta, and every 8 KiB (index points)', async () => {
    const headers = async (l: Listing) => {
      const w = new MetadataWriter(1, 'dir');
      const { index } = await l.write(w);
      await w.finish();
      const b = Buffer.concat(w.blocks.map((x) => inflateSync(x.subarray(2))));
      const out: { count: number; block: number; base: number; at: number }[] = [];
      for (let p = 0; p < b.length; ) {
        const h = { count: b.readUInt32LE(p) + 1, block: b.readUInt32LE(p + 4), base: b.readUInt32LE(p + 8), at: p };
        out.push(h);
        p += 12;
        for (let i = 0; i < h.count; i++) p += 8 + b.readUInt16LE(p + 6) + 1;
      }
      return { out, index, size: b.length };
    };
    const name = (i: number) => Buffer.from(`n${String(i).padStart(5, '0')}`);

    const a = new Listing();
    for (let i = 0; i < 300; i++) a.add(name(i), { block: 0, offset: i * 32 }, i + 1, 2);
    expect((await headers(a)).out.map((h) => h.count)).toEqual([256, 44]);

    const b = new Listing();
    b.add(name(0), { block: 0, offset: 0 }, 1, 2);
    b.add(name(1), { block: 0, offset: 8160 }, 2, 2);
    b.add(name(2), { block: 7000, offset: 0 }, 3, 2);
    expect((await headers(b)).out.map((h) => [h.count, h.block, h.base])).toEqual([[2, 0, 1], [1, 7000, 3]]);

    const c = new Listing();
    c.add(name(0), { block: 0, offset: 0 }, 10, 2);
    c.add(name(1), { block: 0, offset: 32 }, 10 + 32767, 2);
    c.add(name(2), { block: 0, offset: 64 }, 10 + 32768, 2);
    expect((await headers(c)).out.map((h) => [h.count, h.base])).toEqual([[2, 10], [1, 10 + 32768]]);

    const d = new Listing();
    for (let i = 0; i < 3000; i++) d.add(name(i), { block: 0, offset: 0 }, 1, 2);
    const got = await headers(d);
    expect(got.size).toBe(d.size);
    expect(got.index.length).toBe(Math.floor(d.size / 8192));
    for (const e of got.index) expect(got.out.some((h) => h.at === e.index)).toBe(true);
    expect(got.index.map((e) => e.index)).toEqual([...got.index.map((e) => e.index)].sort((x, y) => x - y));
  });

  it('inodes: basic where they fit, extended for nlink > 1, sparse blocks, 4 GiB sizes, large listings', () => {
    const h = { mode: 0o4755, uid: 1, gid: 2, mtime: 99, number: 7 };
    const f = { size: 5, start: 96, blocks: [], fragment: 0, offset: 12, sparse: 0 };
    expect(fitsBasicFile(f, 1)).toBe(true);
    expect(fitsBasicFile(f, 2)).toBe(false);
    expect(fitsBasicFile({ ...f, size: 2 ** 32 }, 1)).toBe(false);
    expect(fitsBasicFile({ ...f, start: 2 ** 32 }, 1)).toBe(false);
    expect(fitsBasicFile({ ...f, sparse: 131072 }, 1)).toBe(false);
    const basic = fileInode(h, { ...f, blocks: [0x1000123, 0] });
    expect([basic.readUInt16LE(0), basic.readUInt16LE(2), basic.readUInt32LE(12), basic.readUInt32LE(20), basic.readUInt32LE(32), basic.length]).toEqual([2, 0o4755, 7, 0, 0x1000123, 40]);
    const ext = lregInode(h, { ...f, size: 2 ** 32 + 5, start: 2 ** 32 + 96, fragment: NO_FRAGMENT }, 3);
    expect([ext.readUInt16LE(0), ext.readBigUInt64LE(16), ext.readBigUInt64LE(24), ext.readUInt32LE(40), ext.readUInt32LE(44), ext.readUInt32LE(52)]).toEqual([9, 2n ** 32n + 96n, 2n ** 32n + 5n, 3, NO_FRAGMENT, 0xffffffff]);
    const d = dirInode(h, { start: 5, nlink: 3, size: 40, offset: 100, parent: 9 });
    expect([d.readUInt16LE(0), d.readUInt32LE(16), d.readUInt32LE(20), d.readUInt16LE(24), d.readUInt16LE(26), d.readUInt32LE(28), d.length]).toEqual([1, 5, 3, 40, 100, 9, 32]);
    const l = ldirInode(h, { start: 5, nlink: 3, size: 70000, offset: 100, parent: 9, index: [{ index: 8200, start: 4000, name: Buffer.from('abc') }] });
    expect([l.readUInt16LE(0), l.readUInt32LE(20), l.readUInt32LE(24), l.readUInt16LE(32), l.readUInt16LE(34), l.readUInt32LE(40), l.readUInt32LE(44), l.readUInt32LE(48), l.subarray(52).toString()]).toEqual([8, 70000, 5, 1, 100, 8200, 4000, 2, 'abc']);
  });
});
