/**
 * Big directories: 100 000 files in one directory (hundreds of directory
 * blocks: the kernel's lookup binary-searches the blocks by their first
 * name, then the entries of one block; nids past 16 bits in the dirents),
 * and 70 000 subdirectories in one (nlink past 16 bits: an extended inode).
 * Judged by fsck.erofs, dump.erofs and the kernel (readdir, stat by name,
 * read).
 *
 * The files hold a few bytes each, `i % 97` of them distinct: with
 * deduplication the image stays small while every name still has to reach
 * the right inode and the right block.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Entry } from '../../../pkg/rootfs/entry.js';
import { fsckClean, mountImage, probeMount, tool, writeImage } from './helpers.js';

const EPOCH = 1_650_000_000;
const N = 100_000;
const DIRS = 70_000;
const name = (i: number) => `f-${i}`; // unpadded: byte order is not number order
const content = (i: number) => Buffer.from(`content ${i % 97}\n`);

function* files(): Generator<Entry> {
  yield { path: 'big', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 };
  for (let i = 0; i < N; i++) {
    const body = content(i);
    yield { path: `big/${name(i)}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, body };
  }
  yield { path: 'after', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 2, body: Buffer.from('ok') };
}

function* dirs(): Generator<Entry> {
  for (let i = 0; i < DIRS; i++) yield { path: `wide/d${i}`, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 };
}

const mountProblem = await probeMount();

describe('EROFS writer: big directories', () => {
  let work: string;
  let filesImg: string;
  let dirsImg: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dockyard-erofs-big-'));
    filesImg = join(work, 'files.erofs');
    dirsImg = join(work, 'dirs.erofs');
    await writeImage(filesImg, files(), { epoch: EPOCH });
    await writeImage(dirsImg, dirs(), { epoch: EPOCH });
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('fsck.erofs checks 100 000 entries in one directory and 70 000 subdirectories clean', async () => {
    for (const img of [filesImg, dirsImg]) await fsckClean([img]);
    const s = await tool('dump.erofs', ['-s', filesImg]);
    expect(s.out).toMatch(new RegExp(`inode count:\\s+${N + 3}\\n`)); // root, big, after, the files
    const d = await tool('dump.erofs', [`--path=/big/${name(54321)}`, filesImg]);
    expect(d.out).toMatch(new RegExp(`Size: ${content(54321).length} `));
    const big = await tool('dump.erofs', ['--path=/big', filesImg]);
    expect(Number(big.out.match(/Size: (\d+)/)?.[1])).toBeGreaterThan(400 * 4096);
    const wide = await tool('dump.erofs', ['--path=/wide', dirsImg]);
    expect(wide.out).toMatch(new RegExp(`Links: ${DIRS + 2} `));
    expect(wide.out).toMatch(/Inode size: 64 /);
  });

  it.skipIf(mountProblem !== undefined)(`the kernel lists them all and finds each by name${mountProblem ? ` (skipped: ${mountProblem})` : ''}`, async () => {
    const mnt = join(work, 'mnt');
    let umount = await mountImage(filesImg, mnt);
    try {
      const names = await readdir(join(mnt, 'big'));
      expect(names.length).toBe(N);
      const want = new Set(Array.from({ length: N }, (_, i) => name(i)));
      expect(names.every((n) => want.has(n))).toBe(true);
      for (const i of [0, 1, 9, 10, 99_999, 12_345, 54_321, 77_777, 50_000]) {
        const p = join(mnt, 'big', name(i));
        expect((await stat(p)).size, name(i)).toBe(content(i).length);
        expect((await readFile(p)).toString(), name(i)).toBe(content(i).toString());
      }
      // Every 997th name, across the whole range of blocks.
      for (let i = 3; i < N; i += 997) expect((await readFile(join(mnt, 'big', name(i)))).toString(), name(i)).toBe(content(i).toString());
      for (const missing of ['f-', 'f-100000', 'f-5a', 'e', 'g', '0']) await expect(stat(join(mnt, 'big', missing)), missing).rejects.toThrow(/ENOENT/);
      expect((await readFile(join(mnt, 'after'))).toString()).toBe('ok');
    } finally {
      await umount();
    }
    umount = await mountImage(dirsImg, mnt);
    try {
      const st = await stat(join(mnt, 'wide'));
      expect(st.nlink).toBe(DIRS + 2);
      expect((await readdir(join(mnt, 'wide'))).length).toBe(DIRS);
      for (const i of [0, 69_999, 35_000]) expect((await stat(join(mnt, 'wide', `d${i}`))).isDirectory()).toBe(true);
    } finally {
      await umount();
    }
  });
});
