/**
 * The virtual-disk containers judged by qemu-img (an independent reader):
 * raw disks of a few MiB with data and holes (including data straddling
 * chunk, block and L2/GT boundaries and a size that is not a multiple of the
 * cluster) are converted to qcow2, fixed and dynamic VHD and streamOptimized
 * VMDK; `qemu-img check` finds no error, `qemu-img info` names the format and
 * the exact virtual size, `qemu-img compare` finds the same bytes as the raw
 * disk, and converting twice gives identical files. VHD footers and dynamic
 * headers carry valid checksums; the GCE archive is read back by GNU tar.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { deflateSync, gunzipSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { Sink, type ByteSink } from '../../../pkg/archive/sink.js';
import { ChunkScanner, type RawDisk } from '../../../pkg/vdisk/spool.js';
import { ChunkDeflater, adler32, gzipMember, zlibFrame } from '../../../pkg/vdisk/grains.js';
import { writeZeros } from '../../../pkg/disk/io.js';
import { writeQcow2, layoutQcow2 } from '../../../pkg/vdisk/qcow2.js';
import { writeFixedVhd, writeDynamicVhd, vhdChecksum, vhdGeometry } from '../../../pkg/vdisk/vhd.js';
import { writeVmdk } from '../../../pkg/vdisk/vmdk.js';
import { writeGcpTarGz } from '../../../pkg/vdisk/gcp.js';

const MiB = 1024 * 1024;
let work: string;

/** A deterministic pseudo-random fill (no Math.random: failures must reproduce). */
function pattern(len: number, seed: number): Buffer {
  const b = Buffer.alloc(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

interface Disk {
  name: string;
  bytes: Buffer;
}

function makeDisk(name: string, size: number, pieces: [number, number][]): Disk {
  const bytes = Buffer.alloc(size);
  pieces.forEach(([off, len], k) => pattern(len, 1000 + k).copy(bytes, off));
  return { name, bytes };
}

const disks: Disk[] = [
  // 5 MiB: data at 0, a piece straddling the 64 KiB cluster boundary, one across the 2 MiB VHD block boundary, data at the very end.
  makeDisk('small', 5 * MiB, [
    [0, 4096],
    [65536 - 100, 300],
    [2 * MiB - 512, 1024],
    [5 * MiB - 512, 512],
  ]),
  // 3 MiB + 3 sectors: size not a multiple of a cluster nor a block.
  makeDisk('odd', 3 * MiB + 1536, [
    [512, 512],
    [3 * MiB, 1536],
  ]),
  // 40 MiB: spans two L2-less gaps in vmdk grain tables (32 MiB each) and compressible text.
  makeDisk('wide', 40 * MiB, [
    [0, 1 * MiB],
    [33 * MiB, 128 * 1024],
    [39 * MiB + 7, 100],
  ]),
];

/** A RawDisk over bytes, written in uneven chunk sizes. */
function rawOf(d: Disk): RawDisk {
  return {
    size: d.bytes.length,
    async write(sink: ByteSink): Promise<void> {
      const sizes = [1000, 65536, 7, 300000, 4096];
      let off = 0;
      for (let k = 0; off < d.bytes.length; k++) {
        const n = Math.min(sizes[k % sizes.length], d.bytes.length - off);
        await sink.write(Buffer.from(d.bytes.subarray(off, off + n)));
        off += n;
      }
    },
  };
}

async function toFile(path: string, fn: (sink: ByteSink) => Promise<void>): Promise<string> {
  const s = new Sink([createWriteStream(path)]);
  await fn(s);
  await s.end();
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

type Kind = 'qcow2' | 'vhd-fixed' | 'vhd-dynamic' | 'vmdk';
const qemuFormat: Record<Kind, string> = { qcow2: 'qcow2', 'vhd-fixed': 'vpc', 'vhd-dynamic': 'vpc', vmdk: 'vmdk' };
const ext: Record<Kind, string> = { qcow2: 'qcow2', 'vhd-fixed': 'vhd', 'vhd-dynamic': 'vhd', vmdk: 'vmdk' };
const EPOCH = 1_700_000_000;

function convert(kind: Kind, d: Disk, out: string, sink: ByteSink): Promise<void> {
  const opts = { epoch: EPOCH, scratchDir: work };
  switch (kind) {
    case 'qcow2':
      return writeQcow2(rawOf(d), sink, opts);
    case 'vhd-fixed':
      return writeFixedVhd(rawOf(d), sink, opts);
    case 'vhd-dynamic':
      return writeDynamicVhd(rawOf(d), sink, opts);
    case 'vmdk':
      return writeVmdk(rawOf(d), sink, { ...opts, fileName: out.split('/').pop()! });
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-vdisk-'));
  for (const d of disks) await writeFile(join(work, `${d.name}.raw`), d.bytes);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('virtual disk containers read by qemu-img', () => {
  for (const kind of ['qcow2', 'vhd-fixed', 'vhd-dynamic', 'vmdk'] as const) {
    for (const d of disks) {
      it(`${kind}: ${d.name} (${d.bytes.length} bytes)`, async () => {
        const raw = join(work, `${d.name}.raw`);
        const a = join(work, `${d.name}-${kind}-a.${ext[kind]}`);
        const b = join(work, `${d.name}-${kind}-b.${ext[kind]}`);
        const ha = await toFile(a, (s) => convert(kind, d, a, s));
        const hb = await toFile(b, (s) => convert(kind, d, a, s));
        expect(hb, 'two conversions give identical bytes').toBe(ha);

        const fmt = qemuFormat[kind];
        const info = await execa('qemu-img', ['info', '--output=json', '-f', fmt, a], { reject: false });
        expect(info.exitCode, info.stderr).toBe(0);
        const j = JSON.parse(info.stdout) as { format: string; 'virtual-size': number; 'format-specific'?: { data?: Record<string, unknown> } };
        expect(j.format).toBe(fmt);
        expect(j['virtual-size']).toBe(d.bytes.length);
        // Autodetection (no -f) finds the same format (a fixed VHD has no header to probe: qemu sees raw).
        if (kind !== 'vhd-fixed') {
          const auto = JSON.parse((await execa('qemu-img', ['info', '--output=json', a])).stdout) as { format: string };
          expect(auto.format).toBe(fmt);
        }

        if (kind === 'qcow2' || kind === 'vmdk') {
          const chk = await execa('qemu-img', ['check', '-f', fmt, a], { reject: false });
          expect(chk.exitCode, chk.stdout + chk.stderr).toBe(0);
          expect(chk.stdout).toMatch(/No errors were found/);
        }
        if (kind === 'qcow2') {
          const data = j['format-specific']?.data ?? {};
          expect(data.compat).toBe('1.1'); // version 3
          expect(data['refcount-bits']).toBe(16);
        }
        if (kind === 'vmdk') {
          const data = j['format-specific']?.data ?? {};
          expect(data['create-type']).toBe('streamOptimized');
        }

        const cmp = await execa('qemu-img', ['compare', '-f', 'raw', '-F', fmt, raw, a], { reject: false });
        expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
        expect(cmp.stdout).toMatch(/Images are identical/);

        const file = await readFile(a);
        if (kind === 'vhd-fixed') {
          expect(file.length).toBe(d.bytes.length + 512);
          expect(file.subarray(0, d.bytes.length).equals(d.bytes)).toBe(true);
        }
        if (kind.startsWith('vhd')) {
          const footer = file.subarray(file.length - 512);
          expect(footer.toString('latin1', 0, 8)).toBe('conectix');
          expect(footer.readUInt32BE(64)).toBe(vhdChecksum(footer, 64));
          expect(footer.readUInt32BE(60)).toBe(kind === 'vhd-fixed' ? 2 : 3);
          expect(Number(footer.readBigUInt64BE(48))).toBe(d.bytes.length);
          expect(footer.readUInt32BE(24)).toBe(EPOCH - 946684800);
          if (kind === 'vhd-dynamic') {
            expect(file.subarray(0, 512).equals(footer)).toBe(true); // footer copy at the start
            const dyn = file.subarray(512, 1536);
            expect(dyn.toString('latin1', 0, 8)).toBe('cxsparse');
            expect(dyn.readUInt32BE(36)).toBe(vhdChecksum(dyn, 36));
            expect(dyn.readUInt32BE(32)).toBe(2 * MiB);
          }
        }
        // Sparse formats store less than the raw disk where it has holes.
        if (kind !== 'vhd-fixed' && d.name === 'wide') expect(file.length).toBeLessThan(d.bytes.length / 2);
      });
    }
  }

  it('qcow2 and vmdk across L2 tables / grain tables: 1 GiB + 64 KiB sparse disk with data in each 512 MiB region', async () => {
    const size = 1024 * MiB + 65536;
    const pieces: [number, number][] = [
      [0, 70000],
      [512 * MiB - 10, 20],
      [size - 4096, 4096],
    ];
    const zero = Buffer.alloc(MiB);
    const raw: RawDisk = {
      size,
      async write(sink) {
        for (let off = 0; off < size; off += MiB) {
          const n = Math.min(MiB, size - off);
          const hit = pieces.filter(([o, l]) => o < off + n && o + l > off);
          if (!hit.length) {
            await sink.write(zero.subarray(0, n));
            continue;
          }
          const b = Buffer.alloc(n);
          for (const [o, l] of hit) {
            const from = Math.max(o, off);
            const to = Math.min(o + l, off + n);
            pattern(l, o).copy(b, from - off, from - o, to - o);
          }
          await sink.write(b);
        }
      },
    };
    // The raw file for qemu-img compare, written sparse.
    const rawPath = join(work, 'big.raw');
    const fh = await open(rawPath, 'w');
    await fh.truncate(size);
    for (const [o, l] of pieces) await fh.write(pattern(l, o), 0, l, o);
    await fh.close();
    for (const [fmt, ext2] of [['qcow2', 'qcow2'], ['vmdk', 'vmdk']] as const) {
      const out = join(work, `big.${ext2}`);
      await toFile(out, (s) => (fmt === 'qcow2' ? writeQcow2(raw, s, { epoch: EPOCH, scratchDir: work }) : writeVmdk(raw, s, { epoch: EPOCH, scratchDir: work, fileName: 'big.vmdk' })));
      const chk = await execa('qemu-img', ['check', '-f', fmt, out], { reject: false });
      expect(chk.exitCode, chk.stdout + chk.stderr).toBe(0);
      const cmp = await execa('qemu-img', ['compare', '-f', 'raw', '-F', fmt, rawPath, out], { reject: false });
      expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
      expect((await readFile(out)).length).toBeLessThan(2 * MiB);
    }
    await rm(rawPath, { force: true });
  }, 120_000);

  it('qcow2 layout: refcount blocks and table count themselves', () => {
    for (const data of [0, 1, 32760, 40000, 300000]) {
      const nonzero = new Uint8Array(data + 10).fill(1, 0, data);
      const l = layoutQcow2(nonzero.length * 65536, nonzero);
      expect(l.dataClusters).toBe(data);
      expect(l.totalClusters).toBe(1 + l.refcountTableClusters + l.refcountBlocks + l.l1Clusters + l.l2Of.length + data);
      expect(l.refcountBlocks * 32768).toBeGreaterThanOrEqual(l.totalClusters);
      expect((l.refcountBlocks - 1) * 32768).toBeLessThan(l.totalClusters);
      expect(l.refcountTableClusters * 8192).toBeGreaterThanOrEqual(l.refcountBlocks);
    }
  });

  it('a different content gives a different VHD unique id', async () => {
    const d1 = disks[0];
    const d2 = makeDisk('other', d1.bytes.length, [[4096, 10]]);
    const p1 = join(work, 'id1.vhd');
    const p2 = join(work, 'id2.vhd');
    await toFile(p1, (s) => writeFixedVhd(rawOf(d1), s, { epoch: EPOCH }));
    await toFile(p2, (s) => writeFixedVhd(rawOf(d2), s, { epoch: EPOCH }));
    const id = async (p: string) => (await readFile(p)).subarray(-512 + 68, -512 + 84).toString('hex');
    expect(await id(p1)).not.toBe(await id(p2));
  });

  it('VHD CHS geometry follows the spec algorithm', () => {
    expect(vhdGeometry(5 * MiB)).toEqual({ cylinders: 150, heads: 4, sectorsPerTrack: 17 });
    expect(vhdGeometry(1024 * MiB)).toEqual({ cylinders: 2080, heads: 16, sectorsPerTrack: 63 });
    expect(vhdGeometry(200 * 1024 * MiB)).toEqual({ cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
  });

  it('a raw disk that writes the wrong number of bytes is an error', async () => {
    const bad: RawDisk = { size: MiB, write: async (s) => s.write(Buffer.alloc(1000)) };
    await expect(writeQcow2(bad, { write: async () => {} }, { epoch: 0, scratchDir: work })).rejects.toThrow(/wrote 1000 bytes, planned 1048576/);
    const huge: RawDisk = { size: 3 * 1024 ** 4, write: async () => {} };
    await expect(writeFixedVhd(huge, { write: async () => {} }, { epoch: 0 })).rejects.toThrow(/larger than VHD allows/);
  });
});

describe('GCE image archive', () => {
  it('GNU tar reads disk.raw back from the gzip, byte for byte; deterministic', async () => {
    const d = disks[2];
    const a = join(work, 'gcp-a.tar.gz');
    const b = join(work, 'gcp-b.tar.gz');
    const ha = await toFile(a, (s) => writeGcpTarGz(rawOf(d), s, { epoch: EPOCH, scratchDir: work }));
    const hb = await toFile(b, (s) => writeGcpTarGz(rawOf(d), s, { epoch: EPOCH, scratchDir: work }));
    expect(hb).toBe(ha);
    const list = await execa('tar', ['--numeric-owner', '-tvzf', a]);
    expect(list.stdout.trim().split('\n')).toHaveLength(1);
    expect(list.stdout).toMatch(new RegExp(`-rw-r--r-- 0/0 +${d.bytes.length} .* disk\\.raw$`));
    const out = join(work, 'gcp-x');
    await execa('mkdir', ['-p', out]);
    await execa('tar', ['-xzf', a, '-C', out]);
    expect((await readFile(join(out, 'disk.raw'))).equals(d.bytes)).toBe(true);
    // oldgnu magic, as `tar --format=oldgnu` writes it; file(1) agrees
    expect(gunzipSync(await readFile(a)).subarray(257, 265).toString('latin1')).toBe('ustar  \0');
    const f = await execa('sh', ['-c', `gzip -dc '${a}' | file -`], { reject: false });
    if (f.exitCode === 0) expect(f.stdout).toMatch(/tar archive \(GNU\)|GNU tar archive/);
  });

  it('every disk size reads back through GNU tar, with the VMDK of the same disk compressing each chunk only once', async () => {
    for (const d of disks) {
      const deflater = new ChunkDeflater();
      let made = 0; // distinct inputs that hold anything but zeros
      const orig = deflater.deflate.bind(deflater);
      const seen = new Set<string>();
      deflater.deflate = (bytes: Buffer) => {
        const k = createHash('sha256').update(bytes).digest('hex');
        if (!seen.has(k) && bytes.some((x) => x !== 0)) made++;
        seen.add(k);
        return orig(bytes);
      };
      const gz = join(work, `gcp-${d.name}.tar.gz`);
      const vm = join(work, `gcp-${d.name}.vmdk`);
      const calls = { n: 0 };
      const counting = { deflate: (b: Buffer) => (calls.n++, deflater.deflate(b)), level: deflater.level } as unknown as ChunkDeflater;
      await toFile(vm, (s) => writeVmdk(rawOf(d), s, { epoch: EPOCH, scratchDir: work, fileName: 'x.vmdk', deflater: counting }));
      const afterVmdk = made;
      await toFile(gz, (s) => writeGcpTarGz(rawOf(d), s, { epoch: EPOCH, scratchDir: work, deflater: counting }));
      // Besides zero runs, gcp compresses only its tar header and its last member (the tail with the tar trailer).
      expect(made - afterVmdk).toBeLessThanOrEqual(2);
      expect(calls.n).toBeGreaterThan(afterVmdk);
      const out = join(work, `gcp-x-${d.name}`);
      await execa('mkdir', ['-p', out]);
      await execa('tar', ['-xzf', gz, '-C', out]);
      expect((await readFile(join(out, 'disk.raw'))).equals(d.bytes), d.name).toBe(true);
      await execa('gzip', ['-t', gz]);
      const c = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'vmdk', join(out, 'disk.raw'), vm], { reject: false });
      expect(c.exitCode, c.stdout + c.stderr).toBe(0);
    }
  });
});

describe('chunk framing (pkg/vdisk/grains.ts)', () => {
  it('a zlib stream and a gzip member around one raw deflate are what zlib itself writes', async () => {
    for (const level of [1, 6, 9]) {
      const deflater = new ChunkDeflater(level);
      for (const b of [pattern(65536, 7), Buffer.alloc(65536), Buffer.from('dockyard '.repeat(5000))]) {
        const d = await deflater.deflate(b);
        expect(zlibFrame(d, level).equals(deflateSync(b, { level })), `zlib level ${level}`).toBe(true);
        expect(gzipMember(d, level).equals(gzipSync(b, { level })), `gzip level ${level}`).toBe(true);
        expect(adler32(b)).toBe(zlibFrame(d, level).readUInt32BE(zlibFrame(d, level).length - 4));
      }
    }
  });
});

describe('zero runs without buffers (ByteSink.zeros)', () => {
  it('the chunk scanner gives the same map and id for zeros() as for written zero bytes', async () => {
    const size = 5 * MiB + 1536;
    const layout: [number, number][] = [
      [100, 1000],
      [3 * 65536 + 5, 70000],
      [5 * MiB, 1536],
    ];
    const feed = async (sink: ByteSink, useZeros: boolean): Promise<void> => {
      let at = 0;
      for (const [off, len] of layout) {
        if (useZeros) await writeZeros(sink, off - at);
        else await sink.write(Buffer.alloc(off - at));
        await sink.write(pattern(len, off));
        at = off + len;
      }
      if (useZeros) await writeZeros(sink, size - at);
      else await sink.write(Buffer.alloc(size - at));
    };
    const a = new ChunkScanner(size);
    await feed(a, true);
    const b = new ChunkScanner(size);
    await feed(b, false);
    expect((await a.finish()).equals(await b.finish())).toBe(true);
    expect(Buffer.from(a.nonzero).equals(Buffer.from(b.nonzero))).toBe(true);
    const over = new ChunkScanner(1000);
    await expect(writeZeros(over, 1001)).rejects.toThrow(/more than its planned 1000 bytes/);
  });
});
