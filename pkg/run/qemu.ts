/**
 * The qemu command line for `dockyard run qemu` (LinuxKit's `run qemu`):
 * machine, accelerator, firmware, the boot medium for each input type, extra
 * disks, user networking with published ports, serial console on stdio.
 * `planQemu` is pure (it only decides paths inside `tmpDir`); `prepareRun`
 * makes the files the plan refers to (VARS copy, ESP directory, new disks).
 */
import { copyFile, link, mkdir, stat } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { DockyardError } from '../errors.js';
import { hostArch, qemuBinary, type Accel } from './accel.js';
import { sniffFile, type Arch, type RunInput } from './detect.js';
import { findFirmware } from './firmware.js';
import type { DiskSpec, Publish } from './options.js';

export interface RunOptions {
  /** `--arch`; default: what the image says, else the host's. */
  arch?: Arch;
  /** `--uefi` / `--no-uefi`; default: decided from the image. */
  uefi?: boolean;
  /** `--fw CODE[,VARS]`. */
  fw?: string;
  memMiB?: number;
  cpus?: number;
  disks?: DiskSpec[];
  publish?: Publish[];
  accel: Accel;
  /** Kernel command line, replacing NAME-cmdline. */
  cmdline?: string;
  /** qemu system emulator to run instead of qemu-system-<arch>. */
  qemu?: string;
  /** Directory for this run's files (VARS copy, ESP directory, scratch disks); made by prepareRun. */
  tmpDir: string;
}

export interface QemuPlan {
  bin: string;
  args: string[];
  arch: Arch;
  uefi: boolean;
  accel: Accel;
  /** Files prepareRun copies (or links) before qemu starts. */
  copies: { from: string; to: string; link?: boolean }[];
  /** Disks prepareRun creates with qemu-img. */
  create: { path: string; format: string; sizeMiB: number }[];
  /** How the choices were made, one line each. */
  notes: string[];
}

/** Default memory (MiB) and CPUs, as LinuxKit's. */
export const DEFAULT_MEM_MIB = 1024;
export const DEFAULT_CPUS = 1;

const QEMU_FORMAT: Record<string, string> = { raw: 'raw', qcow2: 'qcow2', vhd: 'vpc', vmdk: 'vmdk' };
const EFI_BOOT_FILE: Record<Arch, string> = { amd64: 'BOOTX64.EFI', arm64: 'BOOTAA64.EFI' };

/** A value inside a qemu option list: commas are doubled. */
const q = (s: string): string => s.replaceAll(',', ',,');

export function decideArch(input: RunInput, override: Arch | undefined): { arch: Arch; note: string } {
  if (override) {
    if (input.arch && input.arch !== override) {
      throw new DockyardError('E_UNSUPPORTED_ARCH', `${input.path} is for ${input.arch}, not ${override} (--arch)`);
    }
    return { arch: override, note: `arch ${override} (--arch)` };
  }
  if (input.arch) return { arch: input.arch, note: `arch ${input.arch} (from the image)` };
  const h = hostArch();
  if (!h) throw new DockyardError('E_UNSUPPORTED_ARCH', `cannot tell the image's architecture on a ${process.arch} host: give --arch`);
  return { arch: h, note: `arch ${h} (the host's; the image does not say)` };
}

export function decideUefi(input: RunInput, arch: Arch, override: boolean | undefined): { uefi: boolean; note: string } {
  if (override !== undefined) {
    if (!override && arch === 'arm64' && input.kind !== 'kernel') {
      throw new DockyardError('E_USAGE', `arm64 images boot through UEFI only: --no-uefi works for kernel+initrd alone`);
    }
    if (!override && input.kind === 'efi') throw new DockyardError('E_USAGE', `${input.path} is an EFI binary: it needs --uefi`);
    return { uefi: override, note: override ? 'UEFI (--uefi)' : 'BIOS (--no-uefi)' };
  }
  if (input.kind === 'kernel') return { uefi: false, note: 'direct kernel boot' };
  if (arch === 'arm64') return { uefi: true, note: 'UEFI (arm64)' };
  if (input.kind === 'efi') return { uefi: true, note: 'UEFI (EFI binary)' };
  if (input.kind === 'iso') return input.bios ? { uefi: false, note: 'BIOS (El Torito BIOS entry)' } : { uefi: true, note: 'UEFI (EFI-only ISO)' };
  return input.efi ? { uefi: true, note: 'UEFI (EFI system partition)' } : { uefi: false, note: 'BIOS (no EFI system partition)' };
}

/**
 * The qemu invocation for `input`. Reads only the headers of extra disks
 * that exist (to name their format); creates nothing.
 */
export async function planQemu(input: RunInput, o: RunOptions): Promise<QemuPlan> {
  const { arch, note: archNote } = decideArch(input, o.arch);
  const { uefi, note: uefiNote } = decideUefi(input, arch, o.uefi);
  const notes = [...input.notes, archNote, uefiNote, `accel ${o.accel}`];
  const copies: QemuPlan['copies'] = [];
  const create: QemuPlan['create'] = [];
  const args: string[] = [];

  if (arch === 'amd64') {
    args.push('-M', 'q35', '-accel', o.accel);
    if (o.accel === 'kvm') args.push('-cpu', 'host');
  } else {
    args.push('-M', o.accel === 'kvm' ? 'virt,gic-version=host' : 'virt', '-accel', o.accel, '-cpu', o.accel === 'kvm' ? 'host' : 'cortex-a57');
  }
  args.push('-smp', String(o.cpus ?? DEFAULT_CPUS), '-m', String(o.memMiB ?? DEFAULT_MEM_MIB));
  // No default devices: the serial port (and qemu's monitor, Ctrl-A c) on the terminal, nothing graphical.
  args.push('-nodefaults', '-nographic', '-serial', 'mon:stdio');

  if (uefi) {
    const fw = findFirmware(arch, o.fw);
    if (fw.vars) {
      const vars = join(o.tmpDir, basename(fw.vars));
      copies.push({ from: fw.vars, to: vars });
      args.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${q(fw.code)}`);
      args.push('-drive', `if=pflash,format=raw,unit=1,file=${q(vars)}`);
      notes.push(`firmware ${fw.code} with a fresh copy of ${fw.vars}`);
    } else {
      const image = join(o.tmpDir, basename(fw.code));
      copies.push({ from: fw.code, to: image });
      args.push('-drive', `if=pflash,format=raw,unit=0,file=${q(image)}`);
      notes.push(`firmware: a fresh copy of ${fw.code}`);
    }
  }

  args.push('-object', 'rng-random,id=rng0,filename=/dev/urandom', '-device', 'virtio-rng-pci,rng=rng0');

  // The boot medium. Disks take -drive index 0, 1, …; on amd64 index 2 is the CD (as LinuxKit does).
  let index = 0;
  const cdOnIde = input.kind === 'iso' && arch === 'amd64';
  const nextIndex = (): number => {
    if (cdOnIde && index === 2) index++;
    return index++;
  };
  switch (input.kind) {
    case 'kernel': {
      const cmdline = o.cmdline ?? input.cmdline;
      if (cmdline === undefined) throw new DockyardError('E_OUTPUT', `${input.path}-cmdline is missing: give --cmdline`);
      args.push('-kernel', input.kernel!, '-initrd', input.initrd!, '-append', cmdline);
      break;
    }
    case 'iso':
      if (arch === 'amd64') args.push('-drive', `file=${q(input.path)},format=raw,index=2,media=cdrom,readonly=on`, '-boot', 'd');
      else {
        args.push('-device', 'virtio-scsi-pci,id=scsi0');
        args.push('-drive', `file=${q(input.path)},format=raw,if=none,id=cd0,media=cdrom,readonly=on`);
        args.push('-device', 'scsi-cd,drive=cd0,bus=scsi0.0,bootindex=0');
      }
      break;
    case 'efi': {
      // A FAT disk made by qemu (vvfat) from a directory holding \EFI\BOOT\BOOT<arch>.EFI.
      const esp = join(o.tmpDir, 'esp');
      copies.push({ from: input.path, to: join(esp, 'EFI', 'BOOT', EFI_BOOT_FILE[arch]), link: true });
      args.push('-drive', `file=fat:rw:${q(esp)},format=raw,index=${nextIndex()},media=disk`);
      notes.push(`booting ${input.path} as \\EFI\\BOOT\\${EFI_BOOT_FILE[arch]} on a FAT disk qemu makes from ${esp}`);
      break;
    }
    default:
      args.push('-drive', `file=${q(input.path)},format=${QEMU_FORMAT[input.kind]},index=${nextIndex()},media=disk`);
  }
  if (o.cmdline !== undefined && input.kind !== 'kernel') throw new DockyardError('E_USAGE', '--cmdline applies to kernel+initrd only');

  for (const [i, d] of (o.disks ?? []).entries()) {
    const given = d.format === undefined ? undefined : (QEMU_FORMAT[d.format] ?? d.format);
    const path = d.path ?? join(o.tmpDir, `disk${i}.${d.format ?? 'qcow2'}`);
    let format: string;
    if (d.path !== undefined && (await isFile(path))) {
      const kind = await sniffFile(path);
      format = given ?? (kind && kind in QEMU_FORMAT ? QEMU_FORMAT[kind] : 'raw');
    } else if (d.sizeMiB !== undefined) {
      format = given ?? 'qcow2';
      create.push({ path, format, sizeMiB: d.sizeMiB });
    } else {
      throw new DockyardError('E_OUTPUT', `disk ${path} does not exist (add size= to create it)`);
    }
    args.push('-drive', `file=${q(path)},format=${format},index=${nextIndex()},media=disk`);
  }

  const fwd = (o.publish ?? []).map((p) => `,hostfwd=${p.protocol}::${p.host}-:${p.guest}`).join('');
  args.push('-netdev', `user,id=t0${fwd}`, '-device', 'virtio-net-pci,netdev=t0,romfile=');

  return { bin: o.qemu ?? qemuBinary(arch), args, arch, uefi, accel: o.accel, copies, create, notes };
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** Make what the plan refers to: copies (the VARS template, the ESP tree) and new disks. */
export async function prepareRun(plan: QemuPlan, o: { qemuImg?: string } = {}): Promise<void> {
  for (const c of plan.copies) {
    await mkdir(dirname(c.to), { recursive: true });
    if (c.link) {
      try {
        await link(c.from, c.to);
        continue;
      } catch {
        /* another filesystem: copy */
      }
    }
    await copyFile(c.from, c.to);
  }
  const { execa } = await import('execa'); // loaded when used: every CLI start would pay its import
  for (const d of plan.create) {
    await mkdir(dirname(d.path), { recursive: true });
    const r = await execa(o.qemuImg ?? 'qemu-img', ['create', '-q', '-f', d.format, d.path, `${d.sizeMiB}M`], { reject: false });
    if (r.exitCode !== 0) {
      const why = r.failed && r.exitCode === undefined ? r.message : String(r.stderr).trim();
      throw new DockyardError('E_OUTPUT', `cannot create disk ${d.path}: ${why}`);
    }
  }
}

/** The plan as shell commands (for --dry-run): disk creation, then qemu. */
export function renderPlan(plan: QemuPlan): string {
  const sh = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);
  const lines = plan.notes.map((n) => `# ${n}`);
  for (const c of plan.copies) lines.push(`# copy ${c.from} -> ${c.to}`);
  for (const d of plan.create) lines.push(['qemu-img', 'create', '-f', d.format, d.path, `${d.sizeMiB}M`].map(sh).join(' '));
  lines.push([plan.bin, ...plan.args].map(sh).join(' '));
  return lines.join('\n') + '\n';
}
