/**
 * The outputs judged by independent tools: GNU tar reads the tar, GNU cpio
 * reads the initrd (one continuous archive over concatenated gzip members),
 * and both list the same system (the initrd without boot/…). The microcode
 * cpio comes first, uncompressed, byte for byte; tar-kernel-initrd holds the
 * same three files. A warm rebuild (segments cached) gives the same bytes.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { dockyard, dataDir } from '../harness/cli.js';

const images = join(dataDir, 'conformance/images');
const spec = (ucode: boolean) => `
kernel:
  image: 127.0.0.1:5000/fixtures/kernel:1
  cmdline: "console=ttyS0 quiet"
${ucode ? '  ucode: intel-ucode.cpio\n' : ''}init:
  - 127.0.0.1:5000/fixtures/init:1
onboot:
  - name: one
    image: 127.0.0.1:5000/fixtures/layered:1
services:
  - name: ro
    image: 127.0.0.1:5000/fixtures/ro:1
files:
  - path: etc/motd
    contents: "hello\\n"
`;

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let work: string;
let cache: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-formats-'));
  cache = join(work, 'cache');
  const r = await dockyard(['cache', '--cache', cache, 'import', images]);
  expect(r.exitCode, r.stderr).toBe(0);
  await writeFile(join(work, 'plain.yml'), spec(false));
  await writeFile(join(work, 'ucode.yml'), spec(true));
}, 120_000);

async function build(file: string, formats: string, dir: string) {
  await mkdir(dir, { recursive: true });
  const r = await dockyard(['build', '--offline', '--cache', cache, '-f', formats, '--dir', dir, '--name', 'sys', join(work, file)]);
  expect(r.exitCode, r.stderr).toBe(0);
}

describe('formats read by independent tools', () => {
  it('tar and initrd list the same system; GNU cpio reads the initrd', async () => {
    const dir = join(work, 'plain');
    await build('plain.yml', 'tar,kernel+initrd', dir);
    const tarList = (await execa('tar', ['-tf', join(dir, 'sys.tar')])).stdout.split('\n').map((p) => p.replace(/\/$/, ''));
    const initrd = await readFile(join(dir, 'sys-initrd.img'));
    expect(initrd.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const cpioList = (await execa('cpio', ['-it', '--quiet'], { input: gunzipSync(initrd) })).stdout.split('\n');
    const expected = new Set(tarList.filter((p) => !p.startsWith('boot/')));
    expect(new Set(cpioList)).toEqual(expected);
    expect(expected.has('containers/onboot/000-one/config.json')).toBe(true);
    expect(expected.has('sbom.spdx.json')).toBe(true);
    // kernel and cmdline are what the tar holds at boot/
    const kernelFromTar = (await execa('tar', ['-xOf', join(dir, 'sys.tar'), 'boot/kernel'], { encoding: 'buffer' })).stdout as unknown as Uint8Array;
    expect(sha(await readFile(join(dir, 'sys-kernel')))).toBe(sha(Buffer.from(kernelFromTar)));
    expect(await readFile(join(dir, 'sys-cmdline'), 'utf8')).toBe('console=ttyS0 quiet');
    // a file's content survives the cpio (-u: the later entry wins, as in the kernel)
    const x = await mkdtemp(join(work, 'x-'));
    await execa('cpio', ['-idmu', '--quiet', 'etc/motd'], { input: gunzipSync(initrd), cwd: x });
    expect(await readFile(join(x, 'etc/motd'), 'utf8')).toBe('hello\n');
  });

  it('the microcode cpio is first and uncompressed; tar-kernel-initrd holds the same files', async () => {
    const dir = join(work, 'ucode');
    await build('ucode.yml', 'kernel+initrd,tar-kernel-initrd', dir);
    const initrd = await readFile(join(dir, 'sys-initrd.img'));
    const ucodeFromImage = (await execa('tar', ['-xOf', '-', 'intel-ucode.cpio'], { input: await kernelLayer(), encoding: 'buffer' })).stdout as unknown as Uint8Array;
    expect(initrd.subarray(0, ucodeFromImage.length).equals(Buffer.from(ucodeFromImage))).toBe(true);
    const x = await mkdtemp(join(work, 'tki-'));
    await execa('tar', ['-xf', join(dir, 'sys-initrd.tar'), '-C', x]);
    expect(sha(await readFile(join(x, 'kernel')))).toBe(sha(await readFile(join(dir, 'sys-kernel'))));
    expect(sha(await readFile(join(x, 'initrd.img')))).toBe(sha(initrd));
    expect(await readFile(join(x, 'cmdline'), 'utf8')).toBe('console=ttyS0 quiet');
  });

  it('a warm rebuild from cached segments gives the same bytes', async () => {
    const a = join(work, 'plain');
    const b = join(work, 'plain-warm');
    await build('plain.yml', 'tar,kernel+initrd', b);
    for (const f of ['sys.tar', 'sys-initrd.img', 'sys-kernel', 'sys-cmdline']) {
      expect(sha(await readFile(join(b, f))), f).toBe(sha(await readFile(join(a, f))));
    }
  });
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The kernel fixture image's single layer, uncompressed. */
async function kernelLayer(): Promise<Buffer> {
  const index = JSON.parse(await readFile(join(images, 'index.json'), 'utf8'));
  const desc = index.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === '127.0.0.1:5000/fixtures/kernel:1');
  const blob = (d: string) => readFile(join(images, 'blobs/sha256', d.slice(7)));
  let m = JSON.parse((await blob(desc.digest)).toString());
  if (m.manifests) m = JSON.parse((await blob(m.manifests[0].digest)).toString());
  return gunzipSync(await blob(m.layers[0].digest));
}
