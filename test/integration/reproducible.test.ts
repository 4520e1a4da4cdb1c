/**
 * Bit-for-bit: one spec built twice, with separate caches, at different wall
 * clock times and time zones, gives byte-identical tar, initrd, kernel and cmdline.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { dockyard, dataDir } from '../harness/cli.js';

const images = join(dataDir, 'conformance/images');
const spec = `
kernel:
  image: 127.0.0.1:5000/fixtures/kernel:1
  cmdline: "console=ttyS0"
  ucode: intel-ucode.cpio
init:
  - 127.0.0.1:5000/fixtures/init:1
  - 127.0.0.1:5000/fixtures/init2:1
onboot:
  - name: one
    image: 127.0.0.1:5000/fixtures/busybox:1
  - name: two
    image: 127.0.0.1:5000/fixtures/layered:1
    readonly: true
services:
  - name: svc
    image: 127.0.0.1:5000/fixtures/svc:1
files:
  - path: etc/motd
    contents: "hello\\n"
`;

const sha = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-repro-'));
  await writeFile(join(work, 'repro.yml'), spec);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function buildOnce(run: string, tz: string): Promise<Record<string, string>> {
  const cache = join(work, `cache-${run}`);
  const out = join(work, `out-${run}`);
  let r = await dockyard(['cache', '--cache', cache, 'import', images]);
  expect(r.exitCode, r.stderr).toBe(0);
  r = await dockyard(['build', '--cache', cache, '--offline', '--dir', out, '-f', 'tar,kernel+initrd', join(work, 'repro.yml')], { env: { TZ: tz } });
  expect(r.exitCode, r.stderr).toBe(0);
  const names = ['repro.tar', 'repro-kernel', 'repro-initrd.img', 'repro-cmdline'];
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await sha(join(out, n))])));
}

describe('reproducible outputs', () => {
  it('same bytes from two builds on separate caches at different times', async () => {
    const a = await buildOnce('a', 'UTC');
    await new Promise((r) => setTimeout(r, 1100));
    const b = await buildOnce('b', 'Pacific/Kiritimati');
    expect(b).toEqual(a);
  });
});
