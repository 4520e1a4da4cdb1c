/**
 * Shared by the EROFS tests: entry streams, writing an image to a file,
 * running the erofs-utils tools and the kernel loop mount.
 */
import { open, mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { expect } from 'vitest';
import type { Entry } from '../../../pkg/rootfs/entry.js';
import { FilePositionalSink } from '../../../pkg/archive/positional.js';
import { writeErofs, type ErofsOptions } from '../../../pkg/erofs/index.js';

export async function* stream(entries: Iterable<Entry>): AsyncGenerator<Entry> {
  for (const e of entries) yield e;
}

/** Deterministic pseudo-random bytes. */
export function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    b[i] = s >>> 23;
  }
  return b;
}

/** `data` as an async stream of chunks of the given sizes, in turn. */
export async function* chunked(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = sizes[i++ % sizes.length];
    yield data.subarray(off, off + n);
    off += n;
  }
}

export async function writeImage(path: string, entries: AsyncIterable<Entry> | Iterable<Entry>, o: ErofsOptions): Promise<{ bytes: number }> {
  const fh = await open(path, 'w+');
  try {
    const it = Symbol.asyncIterator in entries ? (entries as AsyncIterable<Entry>) : stream(entries as Iterable<Entry>);
    return await writeErofs(it, new FilePositionalSink(fh), o);
  } finally {
    await fh.close();
  }
}

export async function tool(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const r = await execa(cmd, args, { reject: false, all: true, env: { TZ: 'UTC' } });
  return { code: r.exitCode ?? -1, out: r.all ?? '' };
}

/**
 * fsck.erofs with `args` (the image last) must pass: exit status 0 and no
 * error or warning lines — fsck.erofs 1.5 exits 0 even when it reports a
 * bad superblock checksum, so its output is checked too.
 */
export async function fsckClean(args: string[]): Promise<void> {
  const r = await tool('fsck.erofs', args);
  expect(r.out).not.toMatch(/<E>|<W>|corrupt|fail|err(?!ofs)/i);
  expect(r.code).toBe(0);
}

/**
 * Whether the kernel mounts EROFS from a loop device here: a tiny image
 * made by mkfs.erofs (an independent writer) is mounted and unmounted.
 * Returns the reason when it cannot.
 */
export async function probeMount(): Promise<string | undefined> {
  const dir = await mkdtemp(join(tmpdir(), 'dockyard-erofs-probe-'));
  try {
    if (process.getuid?.() !== 0) return 'not root';
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'f'), 'x');
    const mk = await tool('mkfs.erofs', [join(dir, 'p.img'), join(dir, 'src')]);
    if (mk.code !== 0) return `mkfs.erofs failed: ${mk.out.split('\n').pop()}`;
    await mkdir(join(dir, 'mnt'));
    const m = await tool('mount', ['-t', 'erofs', '-o', 'loop,ro', join(dir, 'p.img'), join(dir, 'mnt')]);
    if (m.code !== 0) return `no loop mount: ${m.out.trim().split('\n').pop()}`;
    await tool('umount', [join(dir, 'mnt')]);
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Mounts `img` read-only at `dir` (made if missing); returns the unmount. */
export async function mountImage(img: string, dir: string): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true });
  const m = await tool('mount', ['-t', 'erofs', '-o', 'loop,ro', img, dir]);
  if (m.code !== 0) {
    const dmesg = await tool('sh', ['-c', 'dmesg | tail -5']);
    throw new Error(`mount failed: ${m.out}\n${dmesg.out}`);
  }
  return async () => {
    const u = await tool('umount', [dir]);
    if (u.code !== 0) throw new Error(`umount failed: ${u.out}`);
  };
}

/** The Linux st_rdev for major:minor (glibc makedev). */
export function makedev(major: number, minor: number): number {
  return (minor & 0xff) + (major & 0xfff) * 0x100 + (minor & ~0xff) * 0x1000 + Math.floor(major / 0x1000) * 2 ** 32 * 0x1000;
}
