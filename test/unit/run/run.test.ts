/**
 * pkg/run: input detection on small hand-made images (made and converted by
 * the independent tools users have: mkfs.fat + mtools, sgdisk, xorriso,
 * qemu-img), the qemu command lines planned for each input type, firmware
 * VARS copies, flag parsing, and the KVM probe's payloads under TCG.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile, readFile, stat, mkdir, truncate, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  inspectInput,
  binaryArch,
  openGuestDisk,
  planQemu,
  prepareRun,
  renderPlan,
  parseDisk,
  parsePublish,
  probeAccel,
  resolveAccel,
  findFirmware,
  type RunInput,
  type RunOptions,
} from '../../../pkg/run/index.js';
import { DockyardError } from '../../../pkg/errors.js';

let dir: string;
const p = (name: string): string => join(dir, name);
const sh = (cmd: string, args: string[]) => execa(cmd, args, { cwd: dir });

/** A bzImage head: 'HdrS' at 0x202, and a PE header (EFI stub) for x86-64. */
function bzImage(): Buffer {
  const b = peBinary(0x8664, 8192);
  b.write('HdrS', 0x202, 'latin1');
  return b;
}
/** An arm64 Image head: 'ARM\x64' at 0x38. */
function arm64Image(): Buffer {
  const b = Buffer.alloc(8192);
  b.writeUInt32LE(0x644d5241, 0x38);
  return b;
}
/** MZ, e_lfanew = 0x80, 'PE\0\0', COFF Machine. */
function peBinary(machine: number, size = 4096): Buffer {
  const b = Buffer.alloc(size);
  b.write('MZ', 0, 'latin1');
  b.writeUInt32LE(0x80, 0x3c);
  b.write('PE\0\0', 0x80, 'latin1');
  b.writeUInt16LE(machine, 0x84);
  return b;
}

/** A FAT ESP image (mkfs.fat + mtools) holding \EFI\BOOT\<file>. */
async function makeEsp(path: string, bootFile: string, sizeKiB = 8192): Promise<void> {
  await sh('mkfs.fat', ['-C', path, String(sizeKiB)]);
  await writeFile(p('payload.efi'), peBinary(bootFile.includes('AA64') ? 0xaa64 : 0x8664));
  await sh('mmd', ['-i', path, '::/EFI', '::/EFI/BOOT']);
  await sh('mcopy', ['-i', path, p('payload.efi'), `::/EFI/BOOT/${bootFile}`]);
}

/** A 64 MiB raw GPT disk (sgdisk) whose partition 1 (at 1 MiB) is an ESP holding `bootFile`. */
async function makeGptDisk(path: string, bootFile: string, typeCode = 'ef00'): Promise<void> {
  await writeFile(path, '');
  await truncate(path, 64 << 20);
  await sh('sgdisk', ['-n', '1:2048:+16M', '-t', `1:${typeCode}`, '-n', '2:0:0', '-t', '2:8300', path]);
  const esp = `${path}.esp`;
  await makeEsp(esp, bootFile, 16384);
  await sh('dd', [`if=${esp}`, `of=${path}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
}

/** A 16 MiB raw MBR disk with boot code (0xEB 0x63…) and one FAT partition, like raw-bios. */
async function makeMbrBiosDisk(path: string): Promise<void> {
  const b = Buffer.alloc(16 << 20);
  b[0] = 0xeb;
  b[1] = 0x63;
  const e = 446;
  b[e] = 0x80;
  b[e + 4] = 0x0c;
  b.writeUInt32LE(2048, e + 8);
  b.writeUInt32LE((16 << 11) - 2048, e + 12);
  b.writeUInt16LE(0xaa55, 510);
  await writeFile(path, b);
}

const opts = (extra: Partial<RunOptions> = {}): RunOptions => ({ accel: 'tcg', tmpDir: p('run-tmp'), ...extra });

/** The value following `flag` (every occurrence). */
function values(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (args[i - 1] === flag ? [a] : []));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockyard-run-unit-'));
  await writeFile(p('k64-kernel'), bzImage());
  await writeFile(p('k64-initrd.img'), gzipSync(Buffer.from('initrd')));
  await writeFile(p('k64-cmdline'), 'console=ttyS0 panic=-1\n');
  await writeFile(p('ka-kernel'), gzipSync(arm64Image()));
  await writeFile(p('ka-initrd.img'), 'x');
  await writeFile(p('ka-cmdline'), 'console=ttyAMA0');

  await makeGptDisk(p('efi-x64.raw'), 'BOOTX64.EFI');
  await makeGptDisk(p('efi-aa64.img'), 'BOOTAA64.EFI');
  await makeGptDisk(p('gpt-linux.raw'), 'BOOTX64.EFI', '8300');
  await makeMbrBiosDisk(p('bios.img'));
  for (const [name, args] of [
    ['efi-aa64.qcow2', ['-O', 'qcow2']],
    ['efi-aa64-c.qcow2', ['-O', 'qcow2', '-c']],
    ['efi-aa64.vhd', ['-O', 'vpc']],
    ['efi-aa64-fixed.vhd', ['-O', 'vpc', '-o', 'subformat=fixed']],
    ['efi-aa64.vmdk', ['-O', 'vmdk', '-o', 'subformat=streamOptimized']],
    ['efi-aa64-sparse.vmdk', ['-O', 'vmdk']],
  ] as const) {
    await sh('qemu-img', ['convert', '-f', 'raw', ...args, p('efi-aa64.img'), p(name)]);
  }
  await sh('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', p('bios.img'), p('bios.qcow2')]);

  // ISOs by xorriso: BIOS only, EFI only (arm64 ESP), and both.
  await mkdir(p('isotree/boot'), { recursive: true });
  await writeFile(p('isotree/boot/isolinux.bin'), Buffer.alloc(2048, 0x90));
  await makeEsp(p('isotree/boot/efi.img'), 'BOOTAA64.EFI', 1440);
  const iso = (out: string, boot: string[]) =>
    sh('xorriso', ['-as', 'mkisofs', '-quiet', '-o', p(out), ...boot, p('isotree')]);
  await iso('bios.iso', ['-b', 'boot/isolinux.bin', '-no-emul-boot', '-boot-load-size', '4']);
  await iso('efi.iso', ['-e', 'boot/efi.img', '-no-emul-boot']);
  await iso('both.iso', ['-b', 'boot/isolinux.bin', '-no-emul-boot', '-boot-load-size', '4', '-eltorito-alt-boot', '-e', 'boot/efi.img', '-no-emul-boot']);
  await iso('plain.iso', []);

  await writeFile(p('uki-x64.efi'), peBinary(0x8664));
  await writeFile(p('uki-aa64.efi'), peBinary(0xaa64));
  await writeFile(p('riscv.efi'), peBinary(0x5064));
  await writeFile(p('notes.txt'), 'hello\n'.repeat(200));
  await writeFile(p('fake.qcow2'), Buffer.alloc(4096));
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('binaryArch', () => {
  it('reads bzImage, arm64 Image (also gzip), PE Machine and ELF e_machine', () => {
    expect(binaryArch(bzImage())).toBe('amd64');
    expect(binaryArch(arm64Image())).toBe('arm64');
    expect(binaryArch(gzipSync(arm64Image()))).toBe('arm64');
    expect(binaryArch(peBinary(0xaa64))).toBe('arm64');
    expect(binaryArch(peBinary(0x8664))).toBe('amd64');
    const elf = Buffer.alloc(64);
    elf.writeUInt32BE(0x7f454c46, 0);
    elf[5] = 1;
    elf.writeUInt16LE(183, 18);
    expect(binaryArch(elf)).toBe('arm64');
    expect(binaryArch(Buffer.from('hello world'))).toBeUndefined();
  });
});

describe('inspectInput', () => {
  const cases: [string, Partial<RunInput>][] = [
    ['k64', { kind: 'kernel', arch: 'amd64', cmdline: 'console=ttyS0 panic=-1' }],
    ['k64-kernel', { kind: 'kernel', arch: 'amd64' }],
    ['ka', { kind: 'kernel', arch: 'arm64', cmdline: 'console=ttyAMA0' }],
    ['efi-x64.raw', { kind: 'raw', efi: true, bios: false, arch: 'amd64' }],
    ['efi-aa64.img', { kind: 'raw', efi: true, arch: 'arm64' }],
    ['gpt-linux.raw', { kind: 'raw', efi: false, arch: undefined }],
    ['bios.img', { kind: 'raw', efi: false, bios: true }],
    ['bios.qcow2', { kind: 'qcow2', efi: false, bios: true }],
    ['efi-aa64.qcow2', { kind: 'qcow2', efi: true, arch: 'arm64' }],
    ['efi-aa64-c.qcow2', { kind: 'qcow2', efi: true, arch: 'arm64' }],
    ['efi-aa64.vhd', { kind: 'vhd', efi: true, arch: 'arm64' }],
    ['efi-aa64-fixed.vhd', { kind: 'vhd', efi: true, arch: 'arm64' }],
    ['efi-aa64.vmdk', { kind: 'vmdk', efi: true, arch: 'arm64' }],
    ['efi-aa64-sparse.vmdk', { kind: 'vmdk', efi: true, arch: 'arm64' }],
    ['bios.iso', { kind: 'iso', bios: true, efi: false, arch: undefined }],
    ['efi.iso', { kind: 'iso', bios: false, efi: true, arch: 'arm64' }],
    ['both.iso', { kind: 'iso', bios: true, efi: false, arch: 'arm64' }],
    ['uki-x64.efi', { kind: 'efi', efi: true, arch: 'amd64' }],
    ['uki-aa64.efi', { kind: 'efi', efi: true, arch: 'arm64' }],
  ];
  for (const [name, want] of cases) {
    it(name, async () => {
      const got = await inspectInput(p(name));
      expect(got).toMatchObject(want);
      if (want.arch === undefined) expect(got.arch).toBeUndefined();
    });
  }

  const bad: [string, RegExp][] = [
    ['nothere', /nothere: no such file, and no .*nothere-kernel/],
    ['notes.txt', /unknown image type/],
    ['fake.qcow2', /named like a qcow2 image but does not start like one/],
    ['riscv.efi', /PE binary for neither x86-64 nor arm64/],
    ['plain.iso', /without an El Torito boot record/],
    ['isotree', /is a directory/],
  ];
  for (const [name, re] of bad) {
    it(`refuses ${name} in one line`, async () => {
      const e = await inspectInput(p(name)).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(DockyardError);
      expect((e as Error).message).toMatch(re);
      expect((e as Error).message).not.toContain('\n');
    });
  }
  it('a kernel without its initrd names the missing file', async () => {
    await writeFile(p('lonely-kernel'), bzImage());
    await expect(inspectInput(p('lonely'))).rejects.toThrow(/lonely-initrd.img is missing/);
  });
});

describe('guest disk readers agree with the raw image', () => {
  for (const name of ['efi-aa64.qcow2', 'efi-aa64-c.qcow2', 'efi-aa64.vhd', 'efi-aa64-fixed.vhd', 'efi-aa64.vmdk', 'efi-aa64-sparse.vmdk']) {
    it(name, async () => {
      const fmt = name.endsWith('.qcow2') ? 'qcow2' : name.endsWith('.vhd') ? 'vhd' : 'vmdk';
      const raw = await readFile(p('efi-aa64.img'));
      const d = await openGuestDisk(p(name), fmt);
      try {
        expect(d.size).toBeGreaterThanOrEqual(raw.length);
        // The GPT, the start of the ESP, and a range across cluster/grain/block boundaries.
        for (const [off, len] of [[0, 34 * 512], [1 << 20, 256 << 10], [(1 << 20) - 1000, 70_000]]) {
          expect((await d.read(off, len)).equals(raw.subarray(off, off + len)), `${off}+${len}`).toBe(true);
        }
      } finally {
        await d.close();
      }
    });
  }
});

describe('planQemu', () => {
  it('kernel+initrd amd64: q35, the three files, serial on stdio, user net', async () => {
    const plan = await planQemu(await inspectInput(p('k64')), opts({ memMiB: 512, cpus: 2, publish: [parsePublish('8080:80'), parsePublish('5353:53/udp')] }));
    expect(plan.bin).toBe('qemu-system-x86_64');
    expect(plan.args.slice(0, 4)).toEqual(['-M', 'q35', '-accel', 'tcg']);
    expect(values(plan.args, '-kernel')).toEqual([p('k64-kernel')]);
    expect(values(plan.args, '-initrd')).toEqual([p('k64-initrd.img')]);
    expect(values(plan.args, '-append')).toEqual(['console=ttyS0 panic=-1']);
    expect(values(plan.args, '-m')).toEqual(['512']);
    expect(values(plan.args, '-smp')).toEqual(['2']);
    expect(plan.args).toContain('-nographic');
    expect(values(plan.args, '-serial')).toEqual(['mon:stdio']);
    expect(values(plan.args, '-netdev')).toEqual(['user,id=t0,hostfwd=tcp::8080-:80,hostfwd=udp::5353-:53']);
    expect(plan.uefi).toBe(false);
    expect(values(plan.args, '-drive').filter((d) => d.includes('pflash'))).toEqual([]);
    expect(plan.copies).toEqual([]);
  });

  it('kernel+initrd arm64: virt, cortex-a57, --cmdline wins, no firmware', async () => {
    const plan = await planQemu(await inspectInput(p('ka')), opts({ cmdline: 'console=ttyAMA0 quiet' }));
    expect(plan.bin).toBe('qemu-system-aarch64');
    expect(plan.args.slice(0, 6)).toEqual(['-M', 'virt', '-accel', 'tcg', '-cpu', 'cortex-a57']);
    expect(values(plan.args, '-append')).toEqual(['console=ttyAMA0 quiet']);
    expect(plan.uefi).toBe(false);
  });

  it('kernel with KVM: -cpu host (amd64), gic-version=host (arm64)', async () => {
    const a = await planQemu(await inspectInput(p('k64')), opts({ accel: 'kvm' }));
    expect(a.args.slice(0, 6)).toEqual(['-M', 'q35', '-accel', 'kvm', '-cpu', 'host']);
    const b = await planQemu(await inspectInput(p('ka')), opts({ accel: 'kvm' }));
    expect(b.args.slice(0, 6)).toEqual(['-M', 'virt,gic-version=host', '-accel', 'kvm', '-cpu', 'host']);
  });

  it('--arch contradicting the kernel is one clear error', async () => {
    await expect(planQemu(await inspectInput(p('k64')), opts({ arch: 'arm64' }))).rejects.toThrow(/is for amd64, not arm64/);
  });

  it('EFI raw disk amd64: OVMF CODE read-only + a VARS copy in the run dir, disk at index 0', async () => {
    const plan = await planQemu(await inspectInput(p('efi-x64.raw')), opts());
    expect(plan.uefi).toBe(true);
    const fw = findFirmware('amd64');
    const vars = join(p('run-tmp'), 'OVMF_VARS_4M.fd');
    expect(values(plan.args, '-drive')).toEqual([
      `if=pflash,format=raw,unit=0,readonly=on,file=${fw.code}`,
      `if=pflash,format=raw,unit=1,file=${vars}`,
      `file=${p('efi-x64.raw')},format=raw,index=0,media=disk`,
    ]);
    expect(plan.copies).toEqual([{ from: fw.vars, to: vars }]);
  });

  it('BIOS raw disk and qcow2 amd64: SeaBIOS, no pflash', async () => {
    for (const [name, fmt] of [['bios.img', 'raw'], ['bios.qcow2', 'qcow2']]) {
      const plan = await planQemu(await inspectInput(p(name)), opts());
      expect(plan.uefi).toBe(false);
      expect(values(plan.args, '-drive')).toEqual([`file=${p(name)},format=${fmt},index=0,media=disk`]);
    }
  });

  it('qcow2 / vhd / vmdk arm64: AAVMF, qemu format names (vhd is vpc)', async () => {
    for (const [name, fmt] of [['efi-aa64.qcow2', 'qcow2'], ['efi-aa64.vhd', 'vpc'], ['efi-aa64.vmdk', 'vmdk']]) {
      const plan = await planQemu(await inspectInput(p(name)), opts());
      expect(plan.bin).toBe('qemu-system-aarch64');
      expect(plan.uefi).toBe(true);
      const d = values(plan.args, '-drive');
      expect(d[0]).toBe('if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd');
      expect(d[1]).toBe(`if=pflash,format=raw,unit=1,file=${join(p('run-tmp'), 'AAVMF_VARS.fd')}`);
      expect(d[2]).toBe(`file=${p(name)},format=${fmt},index=0,media=disk`);
    }
  });

  it('ISO amd64: the CD at index 2, -boot d, BIOS when it has a BIOS entry; extra disks skip index 2', async () => {
    const plan = await planQemu(await inspectInput(p('bios.iso')), opts({ disks: [parseDisk('size=64M'), parseDisk(`${p('bios.img')}`), parseDisk(`file=${p('new.vhd')},size=1G,format=vhd`)] }));
    expect(plan.uefi).toBe(false);
    expect(values(plan.args, '-drive')).toEqual([
      `file=${p('bios.iso')},format=raw,index=2,media=cdrom,readonly=on`,
      `file=${join(p('run-tmp'), 'disk0.qcow2')},format=qcow2,index=0,media=disk`,
      `file=${p('bios.img')},format=raw,index=1,media=disk`,
      `file=${p('new.vhd')},format=vpc,index=3,media=disk`,
    ]);
    expect(values(plan.args, '-boot')).toEqual(['d']);
    expect(plan.create).toEqual([
      { path: join(p('run-tmp'), 'disk0.qcow2'), format: 'qcow2', sizeMiB: 64 },
      { path: p('new.vhd'), format: 'vpc', sizeMiB: 1024 },
    ]);
  });

  it('ISO: EFI-only boots UEFI; arm64 puts the CD on virtio-scsi', async () => {
    const a = await planQemu(await inspectInput(p('efi.iso')), opts({ arch: 'arm64' }));
    expect(a.uefi).toBe(true);
    expect(values(a.args, '-device')).toContain('scsi-cd,drive=cd0,bus=scsi0.0,bootindex=0');
    expect(values(a.args, '-drive')).toContain(`file=${p('efi.iso')},format=raw,if=none,id=cd0,media=cdrom,readonly=on`);
    await expect(planQemu(await inspectInput(p('efi.iso')), opts({ arch: 'amd64' }))).rejects.toThrow(/is for arm64, not amd64/);
    const b = await planQemu(await inspectInput(p('bios.iso')), opts({ uefi: true }));
    expect(b.uefi).toBe(true);
  });

  it('.efi: UEFI, the binary as \\EFI\\BOOT\\BOOT<arch>.EFI on a vvfat disk', async () => {
    const a = await planQemu(await inspectInput(p('uki-x64.efi')), opts());
    const esp = join(p('run-tmp'), 'esp');
    expect(values(a.args, '-drive')).toContain(`file=fat:rw:${esp},format=raw,index=0,media=disk`);
    expect(a.copies).toContainEqual({ from: p('uki-x64.efi'), to: join(esp, 'EFI/BOOT/BOOTX64.EFI'), link: true });
    const b = await planQemu(await inspectInput(p('uki-aa64.efi')), opts());
    expect(b.copies).toContainEqual({ from: p('uki-aa64.efi'), to: join(esp, 'EFI/BOOT/BOOTAA64.EFI'), link: true });
    await expect(planQemu(await inspectInput(p('uki-x64.efi')), opts({ uefi: false }))).rejects.toThrow(/needs --uefi/);
  });

  it('--fw CODE (one combined image) is copied per run and used read-write; missing firmware is named', async () => {
    const plan = await planQemu(await inspectInput(p('efi-x64.raw')), opts({ fw: '/usr/share/OVMF/OVMF_CODE_4M.fd' }));
    expect(values(plan.args, '-drive')[0]).toBe(`if=pflash,format=raw,unit=0,file=${join(p('run-tmp'), 'OVMF_CODE_4M.fd')}`);
    await expect(planQemu(await inspectInput(p('efi-x64.raw')), opts({ fw: '/nope/CODE.fd,/nope/VARS.fd' }))).rejects.toThrow(
      'firmware file /nope/CODE.fd does not exist',
    );
    expect(() => findFirmware('arm64', undefined, () => false)).toThrow(/no UEFI firmware for arm64: install Debian's qemu-efi-aarch64/);
  });

  it('an extra disk that does not exist and has no size is an error', async () => {
    await expect(planQemu(await inspectInput(p('k64')), opts({ disks: [parseDisk(p('missing.qcow2'))] }))).rejects.toThrow(/does not exist \(add size=/);
  });

  it('renderPlan quotes for the shell', async () => {
    const plan = await planQemu(await inspectInput(p('k64')), opts());
    expect(renderPlan(plan)).toContain(`-append 'console=ttyS0 panic=-1'`);
  });
});

describe('prepareRun', () => {
  it('copies a fresh VARS per run, links the EFI binary into the ESP tree, creates disks with qemu-img', async () => {
    const tmp1 = p('prep1');
    const tmp2 = p('prep2');
    const input = await inspectInput(p('uki-x64.efi'));
    const disks = [parseDisk('size=32M')];
    const a = await planQemu(input, opts({ tmpDir: tmp1, disks }));
    const b = await planQemu(input, opts({ tmpDir: tmp2, disks }));
    await prepareRun(a);
    await prepareRun(b);
    const template = await readFile(findFirmware('amd64').vars!);
    for (const t of [tmp1, tmp2]) {
      const copy = join(t, 'OVMF_VARS_4M.fd');
      expect((await readFile(copy)).equals(template)).toBe(true);
      expect((await readFile(join(t, 'esp/EFI/BOOT/BOOTX64.EFI'))).equals(await readFile(p('uki-x64.efi')))).toBe(true);
      const info = JSON.parse((await execa('qemu-img', ['info', '--output=json', join(t, 'disk0.qcow2')])).stdout);
      expect(info).toMatchObject({ format: 'qcow2', 'virtual-size': 32 << 20 });
    }
    // Two runs never share a variable store: writing one leaves the other and the template alone.
    const fh = await open(join(tmp1, 'OVMF_VARS_4M.fd'), 'r+');
    await fh.write(Buffer.from('scribble'), 0, 8, 0);
    await fh.close();
    expect((await readFile(join(tmp2, 'OVMF_VARS_4M.fd'))).equals(template)).toBe(true);
    expect((await readFile(findFirmware('amd64').vars!)).equals(template)).toBe(true);
    expect((await stat(join(tmp1, 'OVMF_VARS_4M.fd'))).ino).not.toBe((await stat(findFirmware('amd64').vars!)).ino);
  });
});

describe('flags', () => {
  it('--disk and --publish parse as LinuxKit does', () => {
    expect(parseDisk('d.img')).toEqual({ path: 'd.img' });
    expect(parseDisk('file=d.qcow2,size=2G,format=qcow2')).toEqual({ path: 'd.qcow2', sizeMiB: 2048, format: 'qcow2' });
    expect(parseDisk('size=512M')).toEqual({ sizeMiB: 512 });
    expect(parseDisk('size=3')).toEqual({ sizeMiB: 3072 });
    expect(() => parseDisk('colour=red')).toThrow(/unknown key "colour"/);
    expect(parsePublish('2222:22')).toEqual({ host: 2222, guest: 22, protocol: 'tcp' });
    expect(parsePublish('53:53/UDP')).toEqual({ host: 53, guest: 53, protocol: 'udp' });
    expect(() => parsePublish('80')).toThrow(/HOST:GUEST/);
    expect(() => parsePublish('0:80')).toThrow(/out of range/);
  });
});

describe('accelerator probe', () => {
  for (const arch of ['amd64', 'arm64'] as const) {
    it(`${arch}: the probe payload runs and powers off under TCG`, async () => {
      const r = await probeAccel({ arch, accel: 'tcg', timeoutMs: 20_000 });
      expect(r.ok, r.reason).toBe(true);
    });
  }
  it('auto on a foreign arch is TCG without probing', async () => {
    const r = await resolveAccel({ choice: 'auto', arch: process.arch === 'arm64' ? 'amd64' : 'arm64', qemu: '/nonexistent' });
    expect(r.accel).toBe('tcg');
  });
  it('--accel kvm for a foreign arch is refused', async () => {
    await expect(resolveAccel({ choice: 'kvm', arch: process.arch === 'arm64' ? 'amd64' : 'arm64' })).rejects.toThrow(/--accel kvm runs .* guests only on this host/);
  });
  it('a qemu that hangs with KVM is given up on in time, killed, and TCG is used', async () => {
    const script = p('hang-qemu.sh');
    const pidFile = p('hang.pid');
    await writeFile(script, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 600\n`, { mode: 0o755 });
    const t0 = Date.now();
    const r = await resolveAccel({ choice: 'auto', arch: process.arch === 'arm64' ? 'arm64' : 'amd64', qemu: script, timeoutMs: 1500 });
    const ms = Date.now() - t0;
    expect(r.accel).toBe('tcg');
    expect(r.reason).toMatch(/did not run the probe within 1500 ms/);
    expect(ms).toBeLessThan(5000);
    const pid = Number(await readFile(pidFile, 'utf8'));
    await new Promise((res) => setTimeout(res, 200));
    expect(existsSync(`/proc/${pid}`) && !(await readFile(`/proc/${pid}/stat`, 'utf8')).includes(') Z ')).toBe(false);
  });
  it('KVM is chosen when the probe exits with the payload status', async () => {
    const script = p('good-qemu.sh');
    const arm = process.arch === 'arm64';
    await writeFile(script, `#!/bin/sh\nexit ${arm ? 0 : 85}\n`, { mode: 0o755 });
    const r = await resolveAccel({ choice: 'auto', arch: arm ? 'arm64' : 'amd64', qemu: script });
    expect(r.accel).toBe('kvm');
  });
});
