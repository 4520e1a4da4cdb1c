/**
 * The virtual-disk formats built from examples/hello.yml with the CLI:
 * every one (qcow2-efi, vhd, dynamic-vhd, vmdk, azure, gcp's disk.raw, aws)
 * boots under qemu through OVMF (amd64) and AAVMF (arm64), qemu reading each
 * container itself; the onboot markers are read on the serial console. Every output
 * else holds exactly the raw-efi disk of the same build (qemu-img compare; the
 * same bytes for aws), passes `qemu-img check` where qemu has one and is named
 * by `qemu-img info` with the disk's size; gcp's disk.raw (a whole GiB) is
 * read back by GNU tar, sgdisk and sfdisk; a second build gives identical
 * bytes.
 *
 * These formats wrap raw-efi: until it is registered the suite is skipped.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { dockyard, repoRoot } from '../harness/cli.js';
import { bootDiskBios, bootDiskUefi } from '../harness/qemu.js';
import { fixtureCache, sha256File } from '../harness/fixtures.js';
import { formatNames } from '../../pkg/formats/index.js';
import { vhdChecksum } from '../../pkg/vdisk/vhd.js';

const hasRawEfi = formatNames.includes('raw-efi');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const spec = join(repoRoot, 'examples/hello.yml');

let work: string;
let cache: string;

const sha256 = sha256File;

async function build(arch: 'amd64' | 'arm64', formats: string[], dir: string): Promise<void> {
  const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', arch, '-f', formats.join(','), '--dir', dir, spec], { timeout: 600_000 });
  expect(b.exitCode, b.stderr).toBe(0);
}

async function qemuInfo(path: string, fmt: string): Promise<{ format: string; 'virtual-size': number; 'format-specific'?: { data?: Record<string, unknown> } }> {
  const r = await execa('qemu-img', ['info', '--output=json', '-f', fmt, path]);
  return JSON.parse(r.stdout);
}

async function compareToRaw(raw: string, path: string, fmt: string): Promise<void> {
  const r = await execa('qemu-img', ['compare', '-f', 'raw', '-F', fmt, raw, path], { reject: false });
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toMatch(/Images are identical/);
}

async function qemuCheck(path: string, fmt: string): Promise<void> {
  const r = await execa('qemu-img', ['check', '-f', fmt, path], { reject: false });
  expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toMatch(/No errors were found/);
}

function expectMarkers(c: string, arch: 'amd64' | 'arm64'): void {
  expect(c, c).toMatch(new RegExp(`dockyard-marker: hello from a read-only container on ${arch === 'amd64' ? 'x86_64' : 'aarch64'}`));
  expect(c, c).toMatch(/dockyard-marker: overlay root is writable: written/);
  expect(c, c).toMatch(/onboot writer exited 0/);
}

const AMD64 = ['raw-efi', 'qcow2-efi', 'vhd', 'vmdk', 'azure', 'gcp', 'aws'];

describe.skipIf(!hasRawEfi)('virtual disk formats (wrapping raw-efi)', () => {
  const dirs = { amd64: '', amd64Again: '', dynamic: '', arm64: '', arm64Dynamic: '', gcpAmd64: '', gcpArm64: '' };

  beforeAll(async () => {
    ({ work, cache } = await fixtureCache('dockyard-vdisk-'));
    for (const k of Object.keys(dirs) as (keyof typeof dirs)[]) {
      dirs[k] = join(work, k);
      await mkdir(dirs[k], { recursive: true });
    }
    const t0 = Date.now();
    await build('amd64', AMD64, dirs.amd64);
    const t1 = Date.now();
    // dynamic-vhd writes NAME.vhd too (as LinuxKit's does): its own directory.
    await build('amd64', ['dynamic-vhd'], dirs.dynamic);
    await build('arm64', ['raw-efi', 'qcow2-efi', 'vhd', 'vmdk', 'azure', 'gcp', 'aws'], dirs.arm64);
    await build('arm64', ['dynamic-vhd'], dirs.arm64Dynamic);
    // gcp's disk.raw as GNU tar gives it back (what GCE's import reads), to boot.
    await execa('tar', ['-xzf', join(dirs.amd64, 'hello.img.tar.gz'), '-C', dirs.gcpAmd64]);
    await execa('tar', ['-xzf', join(dirs.arm64, 'hello.img.tar.gz'), '-C', dirs.gcpArm64]);
    console.log(`vdisk: amd64 ${AMD64.join(',')} built in ${t1 - t0} ms`);
  }, 1_200_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('amd64: every output holds the raw-efi disk and passes qemu-img', async () => {
    const d = dirs.amd64;
    const raw = join(d, 'hello-efi.img');
    const rawSize = (await stat(raw)).size;

    const q = await qemuInfo(join(d, 'hello-efi.qcow2'), 'qcow2');
    expect(q.format).toBe('qcow2');
    expect(q['virtual-size']).toBe(rawSize);
    expect(q['format-specific']?.data?.compat).toBe('1.1');
    await qemuCheck(join(d, 'hello-efi.qcow2'), 'qcow2');
    await compareToRaw(raw, join(d, 'hello-efi.qcow2'), 'qcow2');
    expect((await stat(join(d, 'hello-efi.qcow2'))).size, 'sparse').toBeLessThan(rawSize);

    const v = await qemuInfo(join(d, 'hello.vhd'), 'vpc');
    expect(v['virtual-size']).toBe(rawSize);
    expect((await stat(join(d, 'hello.vhd'))).size).toBe(rawSize + 512);
    await compareToRaw(raw, join(d, 'hello.vhd'), 'vpc');

    const m = await qemuInfo(join(d, 'hello.vmdk'), 'vmdk');
    expect(m['virtual-size']).toBe(rawSize);
    expect(m['format-specific']?.data?.['create-type']).toBe('streamOptimized');
    await qemuCheck(join(d, 'hello.vmdk'), 'vmdk');
    await compareToRaw(raw, join(d, 'hello.vmdk'), 'vmdk');

    const az = join(d, 'hello-azure.vhd');
    const a = await qemuInfo(az, 'vpc');
    expect(a['virtual-size'] % MiB, 'Azure wants a whole number of MiB').toBe(0);
    const azFile = await readFile(az);
    expect(azFile.length).toBe(a['virtual-size'] + 512);
    const footer = azFile.subarray(azFile.length - 512);
    expect(footer.toString('latin1', 0, 8)).toBe('conectix');
    expect(footer.readUInt32BE(60), 'fixed disk').toBe(2);
    expect(footer.readUInt32BE(64)).toBe(vhdChecksum(footer, 64));
    if (a['virtual-size'] === rawSize) await compareToRaw(raw, az, 'vpc');

    // gcp: disk.raw alone in the archive, a whole number of GiB, a valid GPT with the ESP.
    const x = join(work, 'gcp-x');
    await mkdir(x, { recursive: true });
    const list = await execa('tar', ['-tzf', join(d, 'hello.img.tar.gz')]);
    expect(list.stdout.trim()).toBe('disk.raw');
    await execa('tar', ['-xzf', join(d, 'hello.img.tar.gz'), '-C', x]);
    const gcpRaw = join(x, 'disk.raw');
    const gcpSize = (await stat(gcpRaw)).size;
    expect(gcpSize % GiB, 'GCE wants whole GB').toBe(0);
    expect(gcpSize).toBeGreaterThan(0);
    const sg = await execa('sgdisk', ['-v', gcpRaw], { reject: false });
    expect(sg.stdout, sg.stdout + sg.stderr).toMatch(/No problems found/);
    const sf = JSON.parse((await execa('sfdisk', ['--json', gcpRaw])).stdout) as { partitiontable: { label: string; partitions: { type: string }[] } };
    expect(sf.partitiontable.label).toBe('gpt');
    expect(sf.partitiontable.partitions.map((p) => p.type)).toEqual(['C12A7328-F81F-11D2-BA4B-00A0C93EC93B']);
    // The disk grows to the GiB, the ESP does not: it is raw-efi's, byte for byte, at the same place.
    const rawParts = JSON.parse((await execa('sfdisk', ['--json', raw])).stdout) as { partitiontable: { partitions: { start: number; size: number }[] } };
    const [gp] = (sf.partitiontable.partitions as unknown as { start: number; size: number }[]);
    const [rp] = rawParts.partitiontable.partitions;
    expect({ start: gp.start, size: gp.size }).toEqual({ start: rp.start, size: rp.size });
    const cmp = await execa('cmp', ['-n', String(rp.size * 512), '-i', `${rp.start * 512}:${rp.start * 512}`, raw, gcpRaw], { reject: false });
    expect(cmp.exitCode, cmp.stdout + cmp.stderr).toBe(0);
    await rm(x, { recursive: true, force: true });

    expect(await sha256(join(d, 'hello.raw'))).toBe(await sha256(raw));

    const dyn = join(dirs.dynamic, 'hello.vhd');
    const dv = await qemuInfo(dyn, 'vpc');
    expect(dv['virtual-size']).toBe(rawSize);
    await compareToRaw(raw, dyn, 'vpc');
    const dynHead = (await readFile(dyn)).subarray(0, 1536);
    expect(dynHead.readUInt32BE(60), 'dynamic disk').toBe(3);
    expect(dynHead.readUInt32BE(512 + 36)).toBe(vhdChecksum(dynHead.subarray(512, 1536), 36));
  }, 300_000);

  it('arm64: qcow2-efi, vhd, dynamic-vhd, vmdk, azure, gcp and aws hold the raw-efi disk and pass qemu-img / tar', async () => {
    const d = dirs.arm64;
    const raw = join(d, 'hello-efi.img');
    const q = join(d, 'hello-efi.qcow2');
    expect((await qemuInfo(q, 'qcow2'))['virtual-size']).toBe((await stat(raw)).size);
    await qemuCheck(q, 'qcow2');
    await compareToRaw(raw, q, 'qcow2');
    await compareToRaw(raw, join(d, 'hello.vhd'), 'vpc');
    await compareToRaw(raw, join(dirs.arm64Dynamic, 'hello.vhd'), 'vpc');
    await qemuCheck(join(d, 'hello.vmdk'), 'vmdk');
    await compareToRaw(raw, join(d, 'hello.vmdk'), 'vmdk');
    expect((await qemuInfo(join(d, 'hello-azure.vhd'), 'vpc'))['virtual-size'] % MiB).toBe(0);
    expect((await execa('tar', ['-tzf', join(d, 'hello.img.tar.gz')])).stdout.trim()).toBe('disk.raw');
    expect(await sha256(join(d, 'hello.raw'))).toBe(await sha256(raw));
  }, 180_000);

  it('azure with a --size that is not whole MiB: rounded up, GPT intact at the new end', async () => {
    const dir = join(work, 'azure-size');
    const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', 'amd64', '-f', 'azure', '--size', '30000000', '--dir', dir, spec], { timeout: 300_000 });
    expect(b.exitCode, b.stderr).toBe(0);
    const az = join(dir, 'hello-azure.vhd');
    const info = await qemuInfo(az, 'vpc');
    expect(info['virtual-size']).toBe(29 * MiB); // 30000000 rounded up to MiB
    expect((await stat(az)).size).toBe(29 * MiB + 512);
    const plain = join(dir, 'plain.img');
    await execa('qemu-img', ['convert', '-f', 'vpc', '-O', 'raw', az, plain]);
    const sg = await execa('sgdisk', ['-v', plain], { reject: false });
    expect(sg.stdout, sg.stdout + sg.stderr).toMatch(/No problems found/);
  }, 300_000);

  it('a big --size costs only the data: raw and vhd outputs are sparse, gcp and vmdk stay small', async () => {
    const dir = join(work, 'big');
    const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', 'amd64', '-f', 'raw-efi,vhd,vmdk,gcp', '--size', '8G', '--dir', dir, '--json', spec], { timeout: 300_000 });
    expect(b.exitCode, b.stderr).toBe(0);
    const raw = join(dir, 'hello-efi.img');
    const st = await stat(raw);
    expect(st.size).toBe(8 * GiB);
    expect(st.blocks * 512, 'holes, not written zeros').toBeLessThan(200 * MiB);
    const reported = (JSON.parse(b.stdout) as { outputs: { path: string; sha256: string }[] }).outputs;
    expect(reported.find((o) => o.path === raw)?.sha256).toBe(await sha256(raw));
    await compareToRaw(raw, join(dir, 'hello.vhd'), 'vpc');
    expect((await stat(join(dir, 'hello.vhd'))).blocks * 512).toBeLessThan(200 * MiB);
    await compareToRaw(raw, join(dir, 'hello.vmdk'), 'vmdk');
    expect((await stat(join(dir, 'hello.vmdk'))).size).toBeLessThan(100 * MiB);
    expect((await stat(join(dir, 'hello.img.tar.gz'))).size).toBeLessThan(100 * MiB);
    const sg = await execa('sgdisk', ['-v', raw], { reject: false });
    expect(sg.stdout, sg.stdout + sg.stderr).toMatch(/No problems found/);
  }, 300_000);

  it('a second build gives identical bytes', async () => {
    await build('amd64', AMD64, dirs.amd64Again);
    for (const f of ['hello-efi.qcow2', 'hello.vhd', 'hello.vmdk', 'hello-azure.vhd', 'hello.img.tar.gz', 'hello.raw']) {
      expect(await sha256(join(dirs.amd64Again, f)), f).toBe(await sha256(join(dirs.amd64, f)));
    }
  }, 600_000);

  // Every wrapper of the EFI disk, on both arches: qemu reads each container itself
  // (vpc, vmdk, qcow2), gcp's disk.raw as tar extracts it, aws's raw as it is.
  type Boot = { name: string; arch: 'amd64' | 'arm64'; file: () => string; format: 'qcow2' | 'vpc' | 'vmdk' | 'raw' };
  const perArch = (arch: 'amd64' | 'arm64'): Boot[] => {
    const d = () => (arch === 'amd64' ? dirs.amd64 : dirs.arm64);
    return [
      { name: 'qcow2-efi', arch, file: () => join(d(), 'hello-efi.qcow2'), format: 'qcow2' },
      { name: 'vhd', arch, file: () => join(d(), 'hello.vhd'), format: 'vpc' },
      { name: 'dynamic-vhd', arch, file: () => join(arch === 'amd64' ? dirs.dynamic : dirs.arm64Dynamic, 'hello.vhd'), format: 'vpc' },
      { name: 'vmdk', arch, file: () => join(d(), 'hello.vmdk'), format: 'vmdk' },
      { name: 'azure', arch, file: () => join(d(), 'hello-azure.vhd'), format: 'vpc' },
      { name: 'gcp', arch, file: () => join(arch === 'amd64' ? dirs.gcpAmd64 : dirs.gcpArm64, 'disk.raw'), format: 'raw' },
      { name: 'aws', arch, file: () => join(d(), 'hello.raw'), format: 'raw' },
    ];
  };
  const boots: Boot[] = [...perArch('amd64'), ...perArch('arm64')];
  for (const b of boots) {
    it(`${b.arch}: ${b.name} boots through UEFI and prints the onboot markers`, async () => {
      const res = await bootDiskUefi({ arch: b.arch, disk: b.file(), format: b.format, timeoutMs: 180_000, until: /dockyard-init: onboot done/ });
      expectMarkers(res.console, b.arch);
      expect(res.reason, res.console).toBe('until');
      console.log(`vdisk: ${b.arch} ${b.name} boot ${res.ms} ms`);
    }, 240_000);
  }

  it('amd64: qcow2-bios (the raw-bios disk as qcow2) passes qemu-img and boots under SeaBIOS', async () => {
    const dir = join(work, 'qcow2-bios');
    await build('amd64', ['qcow2-bios'], dir);
    const file = join(dir, 'hello.qcow2');
    await execa('qemu-img', ['check', file]);
    expect(JSON.parse((await execa('qemu-img', ['info', '--output=json', file])).stdout).format).toBe('qcow2');
    const res = await bootDiskBios({ disk: file, format: 'qcow2', timeoutMs: 180_000, until: /dockyard-init: onboot done/ });
    expectMarkers(res.console, 'amd64');
    expect(res.reason, res.console).toBe('until');
  }, 300_000);
});
