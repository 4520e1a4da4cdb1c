/**
 * The ISO formats built from examples/hello.yml with the CLI, checked by
 * xorriso (El Torito catalog, isohybrid system area), osirrox (the files
 * ISOLINUX boots are the kernel+initrd of the same build), fsck.fat and
 * mtools (the EFI image), built twice to identical bytes, and booted under
 * qemu to the onboot markers on the serial console:
 *   iso-bios    amd64, SeaBIOS, -cdrom
 *   iso-efi     amd64 OVMF -cdrom; arm64 AAVMF, a SCSI CD-ROM
 *   iso-hybrid  amd64 as a disk (a USB stick): SeaBIOS and OVMF;
 *               arm64 (UEFI only) as a CD and as a disk: AAVMF
 *   iso-efi-initrd  GRUB: amd64 OVMF, arm64 AAVMF, as CDs
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { dockyard, repoRoot } from '../harness/cli.js';
import { runQemu, UEFI_FIRMWARE, type BootResult, type QemuArch } from '../harness/qemu.js';
import { fixtureCache, sha256File } from '../harness/fixtures.js';

const spec = join(repoRoot, 'examples/hello.yml');
let work: string;
let cache: string;
const dir = { amd64: '', amd64Again: '', arm64: '', arm64Again: '' };

const sha256 = sha256File;

async function build(arch: 'amd64' | 'arm64', formats: string[], out: string): Promise<void> {
  const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', arch, '-f', formats.join(','), '--dir', out, spec], { timeout: 600_000 });
  expect(b.exitCode, b.stderr).toBe(0);
}

/** Boot an ISO: firmware BIOS (SeaBIOS) or UEFI (fresh variables), as a CD-ROM or as a disk. */
async function bootIso(o: { arch: QemuArch; iso: string; firmware: 'bios' | 'uefi'; media: 'cdrom' | 'disk' }): Promise<BootResult> {
  const tmp = await mkdtemp(join(tmpdir(), 'dockyard-isoboot-'));
  try {
    const fw: string[] = [];
    if (o.firmware === 'uefi') {
      const vars = join(tmp, 'vars.fd');
      await copyFile(UEFI_FIRMWARE[o.arch].vars, vars);
      fw.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${UEFI_FIRMWARE[o.arch].code}`, '-drive', `if=pflash,format=raw,unit=1,file=${vars}`);
    }
    const media =
      o.media === 'disk'
        ? ['-drive', `if=virtio,format=raw,snapshot=on,file=${o.iso}`]
        : o.arch === 'amd64'
          ? ['-drive', `if=ide,media=cdrom,readonly=on,format=raw,file=${o.iso}`]
          : ['-drive', `if=none,id=cd,media=cdrom,readonly=on,format=raw,file=${o.iso}`, '-device', 'virtio-scsi-pci', '-device', 'scsi-cd,drive=cd'];
    const machine = o.arch === 'amd64' ? ['-M', 'q35'] : ['-M', 'virt', '-cpu', 'cortex-a57'];
    const args = [...machine, '-accel', 'tcg', '-m', '512', '-nodefaults', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot', ...fw, ...media];
    const bin = o.arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
    // AAVMF under TCG once stopped after its banner for 240 s with an image
    // that boots in ~20 s on every other try (not reproduced since): one
    // more try when the firmware never got as far as the kernel.
    const first = await runQemu(bin, args, { timeoutMs: o.firmware === 'uefi' ? 150_000 : 240_000, until: /dockyard-init: onboot done/ });
    if (first.reason !== 'timeout' || o.firmware !== 'uefi' || /Linux version|EFI stub/.test(first.console)) return first;
    console.log(`${o.arch} UEFI boot of ${o.iso} stalled in the firmware; once more with fresh variables`);
    await copyFile(UEFI_FIRMWARE[o.arch].vars, join(tmp, 'vars.fd'));
    return await runQemu(bin, args, { timeoutMs: 240_000, until: /dockyard-init: onboot done/ });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

function expectMarkers(r: BootResult, arch: QemuArch): void {
  const c = r.console;
  expect(c, c).toMatch(new RegExp(`dockyard-marker: hello from a read-only container on ${arch === 'amd64' ? 'x86_64' : 'aarch64'}`));
  expect(c, c).toMatch(/dockyard-marker: overlay root is writable: written/);
  expect(c, c).toMatch(/onboot writer exited 0/);
  expect(r.reason, c).toBe('until');
}

async function elTorito(iso: string): Promise<string> {
  const r = await execa('xorriso', ['-indev', iso, '-report_el_torito', 'plain', '-report_system_area', 'plain'], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return r.stdout;
}

/** The EFI image's bytes, found by its El Torito entry (LBA, 512-byte sectors). */
async function efiImage(iso: string, report: string, out: string): Promise<string> {
  const m = /El Torito boot img\s*:\s*(\d+)\s+UEFI\s+y\s+none\s+\S+\s+\S+\s+(\d+)\s+(\d+)/.exec(report);
  expect(m, report).toBeTruthy();
  const blks = /El Torito img blks\s*:\s*(\d+)\s+(\d+)/.exec(report);
  const lba = Number(m![3]);
  // Load size in 512-byte sectors, unless saturated (65535): then xorriso's block count, which it rounds down (the image need not fill its last block).
  const size = Number(m![2]) < 65535 || !blks ? Number(m![2]) * 512 : (Number(blks[2]) + 1) * 2048;
  const fh = await open(iso, 'r');
  const b = Buffer.alloc(size);
  await fh.read(b, 0, size, lba * 2048);
  await fh.close();
  await writeFile(out, b);
  return out;
}

describe('ISO formats', () => {
  const times: Record<string, number> = {};
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });
  beforeAll(async () => {
    ({ work, cache } = await fixtureCache('dockyard-iso-'));
    for (const k of Object.keys(dir) as (keyof typeof dir)[]) dir[k] = join(work, k);
    let t = Date.now();
    await build('amd64', ['iso-bios', 'iso-efi', 'iso-hybrid', 'iso-efi-initrd', 'kernel+initrd'], dir.amd64);
    times.amd64 = Date.now() - t;
    t = Date.now();
    await build('amd64', ['iso-bios', 'iso-efi', 'iso-hybrid', 'iso-efi-initrd'], dir.amd64Again);
    times.amd64Again = Date.now() - t;
    t = Date.now();
    await build('arm64', ['iso-efi', 'iso-efi-initrd', 'iso-hybrid', 'kernel+initrd'], dir.arm64);
    times.arm64 = Date.now() - t;
    await build('arm64', ['iso-hybrid'], dir.arm64Again);
    console.log(`iso builds (ms): amd64 iso-bios,iso-efi,iso-hybrid,iso-efi-initrd,kernel+initrd ${times.amd64}; again (no kernel+initrd) ${times.amd64Again}; arm64 iso-efi,iso-efi-initrd,iso-hybrid,kernel+initrd ${times.arm64}`);
  }, 1_200_000);

  it('iso-bios: ISOLINUX entry with boot info table, isohybrid MBR, and the kernel+initrd of the build', async () => {
    const iso = join(dir.amd64, 'hello.iso');
    const rep = await elTorito(iso);
    expect(rep).toMatch(/El Torito boot img\s*:\s*1\s+BIOS\s+y\s+none\s+0x0000\s+0x00\s+4\s+\d+/);
    expect(rep).toMatch(/El Torito img path\s*:\s*1\s+\/isolinux\/isolinux.bin/);
    expect(rep).toMatch(/El Torito img opts\s*:\s*1\s+boot-info-table isohybrid-suitable/);
    expect(rep).toMatch(/System area summary: MBR isohybrid cyl-align-on/);
    expect(rep).not.toMatch(/UEFI/);
    const x = join(work, 'bios-x');
    const r = await execa('osirrox', ['-indev', iso, '-extract', '/', x], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await sha256(join(x, 'kernel'))).toBe(await sha256(join(dir.amd64, 'hello-kernel')));
    expect(await sha256(join(x, 'initrd.img'))).toBe(await sha256(join(dir.amd64, 'hello-initrd.img')));
    const cfg = await readFile(join(x, 'isolinux/isolinux.cfg'), 'utf8');
    const cmdline = await readFile(join(dir.amd64, 'hello-cmdline'), 'utf8');
    expect(cfg).toContain('SERIAL 0 115200');
    expect(cfg).toContain(`APPEND ${cmdline}`);
    expect((await readFile(join(x, 'isolinux/ldlinux.c32'))).length).toBeGreaterThan(1000);
  });

  for (const [arch, name] of [['amd64', 'BOOTX64.EFI'], ['arm64', 'BOOTAA64.EFI']] as const) {
    it(`iso-efi ${arch}: one UEFI entry whose FAT image passes fsck.fat and holds ${name}`, async () => {
      const iso = join(dir[arch], 'hello-efi.iso');
      const rep = await elTorito(iso);
      expect(rep).toMatch(/El Torito boot img\s*:\s*1\s+UEFI\s+y\s+none/);
      expect(rep).not.toMatch(/BIOS/);
      const img = await efiImage(iso, rep, join(work, `efi-${arch}.img`));
      const f = await execa('fsck.fat', ['-n', img], { reject: false });
      expect(f.exitCode, f.stdout + f.stderr).toBe(0);
      const d = await execa('mdir', ['-i', img, '-b', '::/EFI/BOOT'], { env: { MTOOLS_SKIP_CHECK: '1' } });
      expect(d.stdout.trim()).toBe(`::/EFI/BOOT/${name}`);
    });
  }

  it('iso-hybrid: BIOS and UEFI entries, isohybrid MBR and GPT with an EFI partition on the El Torito image', async () => {
    const iso = join(dir.amd64, 'hello-hybrid.iso');
    const rep = await elTorito(iso);
    expect(rep).toMatch(/El Torito boot img\s*:\s*1\s+BIOS\s+y\s+none\s+0x0000\s+0x00\s+4\s+\d+/);
    const efi = /El Torito boot img\s*:\s*2\s+UEFI\s+y\s+none\s+\S+\s+\S+\s+\d+\s+(\d+)/.exec(rep);
    expect(efi, rep).toBeTruthy();
    expect(rep).toMatch(/System area summary: MBR isohybrid cyl-align-on/);
    expect(rep).toMatch(/MBR partition\s*:\s*1\s+0x80\s+0x00\s+0\s+\d+/);
    const p2 = /MBR partition\s*:\s*2\s+0x00\s+0xef\s+(\d+)\s+(\d+)/.exec(rep);
    expect(p2, rep).toBeTruthy();
    expect(Number(p2![1])).toBe(Number(efi![1]) * 4);
    expect(rep).toMatch(/MBR partition\s*:\s*3\s+0x00\s+0xee\s+1\s+\d+/);
    expect(rep).toMatch(/System area summary: MBR isohybrid cyl-align-on GPT/);
    // The GPT (read by sfdisk): one EFI System Partition, the El Torito image.
    const sf = JSON.parse((await execa('sfdisk', ['--json', iso])).stdout);
    expect(sf.partitiontable.label).toBe('gpt');
    expect(sf.partitiontable.partitions.map((p: { type: string; start: number }) => [p.type, p.start])).toEqual([['C12A7328-F81F-11D2-BA4B-00A0C93EC93B', Number(efi![1]) * 4]]);
    // sgdisk: headers, CRCs and the backup are sound; its only complaints are the
    // hybrid MBR's overlapping entries (partition 1 spans the image, as in every isohybrid).
    const sg = await execa('sgdisk', ['-v', iso], { reject: false });
    const problems = (sg.stdout.match(/^Problem: .*$/gm) ?? []).filter((l) => !/MBR partitions \d and \d overlap/.test(l));
    expect(problems, sg.stdout).toEqual([]);
    expect(sg.stdout).not.toMatch(/CRC|backup|Invalid/i);
    const img = await efiImage(iso, rep, join(work, 'efi-hybrid.img'));
    const f = await execa('fsck.fat', ['-n', img], { reject: false });
    expect(f.exitCode, f.stdout + f.stderr).toBe(0);
  });

  for (const [arch, name] of [['amd64', 'BOOTX64.EFI'], ['arm64', 'BOOTAA64.EFI']] as const) {
    it(`iso-efi-initrd ${arch}: GRUB as ${name} in the UEFI entry's FAT image, kernel, initrd and grub.cfg on the ISO`, async () => {
      const iso = join(dir[arch], 'hello-efi-initrd.iso');
      const rep = await elTorito(iso);
      expect(rep).toMatch(/El Torito boot img\s*:\s*1\s+UEFI\s+y\s+none/);
      const img = await efiImage(iso, rep, join(work, `grub-${arch}.img`));
      const f = await execa('fsck.fat', ['-n', img], { reject: false });
      expect(f.exitCode, f.stdout + f.stderr).toBe(0);
      const t = await execa('mtype', ['-i', img, `::/EFI/BOOT/${name}`], { env: { MTOOLS_SKIP_CHECK: '1' }, encoding: 'buffer' });
      expect(Buffer.from(t.stdout).subarray(0, 2).toString('latin1')).toBe('MZ');
      const x = join(work, `grub-x-${arch}`);
      const r = await execa('osirrox', ['-indev', iso, '-extract', '/', x], { reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await sha256(join(x, 'kernel'))).toBe(await sha256(join(dir[arch], 'hello-kernel')));
      expect(await sha256(join(x, 'initrd.img'))).toBe(await sha256(join(dir[arch], 'hello-initrd.img')));
      const cmdline = await readFile(join(dir[arch], 'hello-cmdline'), 'utf8');
      const cfg = await readFile(join(x, 'boot/grub/grub.cfg'), 'utf8');
      expect(cfg).toContain(`linux /kernel ${cmdline}`);
      expect(cfg).toContain('initrd /initrd.img');
    });
  }

  it('iso-hybrid arm64: the UEFI entry, a protective MBR and a GPT whose one EFI System Partition is the El Torito image', async () => {
    const iso = join(dir.arm64, 'hello-hybrid.iso');
    const rep = await elTorito(iso);
    const efi = /El Torito boot img\s*:\s*1\s+UEFI\s+y\s+none\s+\S+\s+\S+\s+\d+\s+(\d+)/.exec(rep);
    expect(efi, rep).toBeTruthy();
    expect(rep).not.toMatch(/BIOS/);
    expect(rep).toMatch(/System area summary: .*protective-msdos-label.*GPT|System area summary: .*GPT/);
    expect(rep).toMatch(/MBR partition\s*:\s*1\s+0x00\s+0xee\s+1\s+\d+/);
    const sf = JSON.parse((await execa('sfdisk', ['--json', iso])).stdout);
    expect(sf.partitiontable.label).toBe('gpt');
    expect(sf.partitiontable.partitions.map((p: { type: string; start: number }) => [p.type, p.start])).toEqual([['C12A7328-F81F-11D2-BA4B-00A0C93EC93B', Number(efi![1]) * 4]]);
    const sg = await execa('sgdisk', ['-v', iso], { reject: false });
    expect(sg.stdout, sg.stdout).toMatch(/No problems found/);
    const img = await efiImage(iso, rep, join(work, 'efi-hybrid-arm64.img'));
    expect((await execa('fsck.fat', ['-n', img], { reject: false })).exitCode).toBe(0);
    const t = await execa('mtype', ['-i', img, '::/EFI/BOOT/BOOTAA64.EFI'], { env: { MTOOLS_SKIP_CHECK: '1' }, encoding: 'buffer' });
    expect(Buffer.from(t.stdout).subarray(0, 2).toString('latin1')).toBe('MZ');
  });

  it('iso-bios for arm64: one clear line, nothing written', async () => {
    for (const f of ['iso-bios']) {
      const out = join(work, `bad-${f}`);
      const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', 'arm64', '-f', f, '--dir', out, spec]);
      expect(b.exitCode).not.toBe(0);
      expect(b.stderr.trim().split('\n'), b.stderr).toHaveLength(1);
      expect(b.stderr).toMatch(new RegExp(`${f} does not exist for arm64`));
      expect(existsSync(out) ? await readdir(out) : []).toEqual([]);
    }
  });

  it('bit for bit: a second build gives identical ISOs', async () => {
    for (const f of ['hello.iso', 'hello-efi.iso', 'hello-hybrid.iso', 'hello-efi-initrd.iso']) {
      expect(await sha256(join(dir.amd64Again, f)), f).toBe(await sha256(join(dir.amd64, f)));
    }
    expect(await sha256(join(dir.arm64Again, 'hello-hybrid.iso')), 'arm64 hello-hybrid.iso').toBe(await sha256(join(dir.arm64, 'hello-hybrid.iso')));
  });

  it('iso-bios boots under SeaBIOS from a CD', async () => {
    const r = await bootIso({ arch: 'amd64', iso: join(dir.amd64, 'hello.iso'), firmware: 'bios', media: 'cdrom' });
    expect(r.console).toMatch(/ISOLINUX/);
    expectMarkers(r, 'amd64');
    console.log(`iso-bios cdrom boot: ${r.ms} ms`);
  }, 500_000);

  for (const arch of ['amd64', 'arm64'] as const) {
    it(`iso-efi ${arch} boots under ${arch === 'amd64' ? 'OVMF' : 'AAVMF'} from a CD`, async () => {
      const r = await bootIso({ arch, iso: join(dir[arch], 'hello-efi.iso'), firmware: 'uefi', media: 'cdrom' });
      expectMarkers(r, arch);
      console.log(`iso-efi ${arch} cdrom boot: ${r.ms} ms`);
    }, 500_000);
  }

  for (const arch of ['amd64', 'arm64'] as const) {
    it(`iso-efi-initrd ${arch} boots through GRUB under ${arch === 'amd64' ? 'OVMF' : 'AAVMF'} from a CD`, async () => {
      const r = await bootIso({ arch, iso: join(dir[arch], 'hello-efi-initrd.iso'), firmware: 'uefi', media: 'cdrom' });
      expectMarkers(r, arch);
      console.log(`iso-efi-initrd ${arch} cdrom boot: ${r.ms} ms`);
    }, 500_000);
  }

  for (const media of ['cdrom', 'disk'] as const) {
    it(`iso-hybrid arm64 boots under AAVMF from a ${media === 'cdrom' ? 'CD' : 'disk (USB stick)'}`, async () => {
      const r = await bootIso({ arch: 'arm64', iso: join(dir.arm64, 'hello-hybrid.iso'), firmware: 'uefi', media });
      expectMarkers(r, 'arm64');
      console.log(`iso-hybrid arm64 ${media} boot: ${r.ms} ms`);
    }, 500_000);
  }

  for (const firmware of ['bios', 'uefi'] as const) {
    it(`iso-hybrid boots from a disk (USB stick) under ${firmware === 'bios' ? 'SeaBIOS' : 'OVMF'}`, async () => {
      const r = await bootIso({ arch: 'amd64', iso: join(dir.amd64, 'hello-hybrid.iso'), firmware, media: 'disk' });
      if (firmware === 'bios') expect(r.console).toMatch(/ISOLINUX/);
      expectMarkers(r, 'amd64');
      console.log(`iso-hybrid ${firmware} disk boot: ${r.ms} ms`);
    }, 500_000);
  }
});
