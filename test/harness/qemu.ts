/**
 * Boots a kernel + initrd under qemu (TCG, no graphics, serial on stdio) and
 * collects the console. Resolves when `until` matches the console, when qemu
 * exits, or at the timeout; qemu is killed by its PID in the first and last cases.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type QemuArch = 'amd64' | 'arm64';

export interface BootOptions {
  arch: QemuArch;
  kernel: string;
  initrd: string;
  /** Kernel command line; default `console=<defaultConsole(arch)> panic=-1`. */
  cmdline?: string;
  timeoutMs: number;
  /** Resolve (and kill qemu) as soon as the console matches. */
  until?: RegExp;
  memoryMB?: number;
  /** Extra qemu arguments. */
  extraArgs?: string[];
}

export interface BootResult {
  /** Everything qemu printed: the serial console, then qemu's own stderr if any. */
  console: string;
  /** qemu exited on its own (the guest powered off or panicked), not killed by us. */
  exitedByItself: boolean;
  /** Wall time from spawn to resolution. */
  ms: number;
  /** Why the boot ended. */
  reason: 'until' | 'exit' | 'timeout';
}

export function defaultConsole(arch: QemuArch): string {
  return arch === 'amd64' ? 'ttyS0' : 'ttyAMA0';
}

/** TCG, no devices but ours, serial console on stdio, exit instead of rebooting. */
function headless(memoryMB = 512): string[] {
  return ['-accel', 'tcg', '-m', String(memoryMB), '-nodefaults', '-display', 'none', '-serial', 'stdio', '-monitor', 'none', '-no-reboot'];
}

export function qemuCommand(o: BootOptions): { bin: string; args: string[] } {
  const cmdline = o.cmdline ?? `console=${defaultConsole(o.arch)} panic=-1`;
  const common = [
    ...headless(o.memoryMB),
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', cmdline,
  ];
  if (o.arch === 'amd64') return { bin: 'qemu-system-x86_64', args: ['-M', 'q35', ...common, ...(o.extraArgs ?? [])] };
  return { bin: 'qemu-system-aarch64', args: ['-M', 'virt', '-cpu', 'cortex-a57', ...common, ...(o.extraArgs ?? [])] };
}

export function bootKernel(o: BootOptions): Promise<BootResult> {
  const { bin, args } = qemuCommand(o);
  return runQemu(bin, args, o);
}

/** Spawn qemu, collect the console until `until`, exit or timeout (killed by PID). */
export function runQemu(bin: string, args: string[], o: { timeoutMs: number; until?: RegExp }): Promise<BootResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let settled = false;
    let killedByUs = false;
    const kill = (): void => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        killedByUs = true;
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    };
    const finish = (reason: BootResult['reason']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (reason !== 'exit') kill();
      const text = err === '' ? out : `${out}\n[qemu stderr]\n${err}`;
      resolve({ console: text, exitedByItself: reason === 'exit' && !killedByUs, ms: Date.now() - t0, reason });
    };
    const timer = setTimeout(() => finish('timeout'), o.timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (o.until && o.until.test(out)) finish('until');
    });
    child.stderr.on('data', (d: string) => {
      err += d;
    });
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`qemu: cannot run ${bin}: ${e.message}`));
    });
    // 'close' waits for the pipes to drain, so the console is complete.
    child.on('close', () => finish('exit'));
  });
}

export interface DiskBootOptions {
  arch: QemuArch;
  /** The disk image; opened with snapshot=on, so the file is never written. */
  disk: string;
  /** qemu's name for the container: raw, qcow2, vpc (VHD), vmdk. */
  format: 'raw' | 'qcow2' | 'vpc' | 'vmdk';
  timeoutMs: number;
  until?: RegExp;
  memoryMB?: number;
  extraArgs?: string[];
}

/** UEFI firmware: code (read-only) and the variable store template copied per boot. */
export const UEFI_FIRMWARE: Record<QemuArch, { code: string; vars: string }> = {
  amd64: { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
  arm64: { code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd' },
};

/** Boot a disk image through UEFI (OVMF / AAVMF) from a virtio disk; a fresh copy of the variables each time. */
export async function bootDiskUefi(o: DiskBootOptions): Promise<BootResult> {
  const dir = await mkdtemp(join(tmpdir(), 'dockyard-fw-'));
  try {
    const fw = UEFI_FIRMWARE[o.arch];
    const vars = join(dir, 'vars.fd');
    await copyFile(fw.vars, vars);
    const common = [
      ...headless(o.memoryMB),
      '-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${fw.code}`,
      '-drive', `if=pflash,format=raw,unit=1,file=${vars}`,
      '-drive', `if=virtio,format=${o.format},snapshot=on,file=${o.disk}`,
      ...(o.extraArgs ?? []),
    ];
    const bin = o.arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
    const machine = o.arch === 'amd64' ? ['-M', 'q35'] : ['-M', 'virt', '-cpu', 'cortex-a57'];
    return await runQemu(bin, [...machine, ...common], o);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Boot a disk image through the BIOS (SeaBIOS, qemu's default firmware) from a virtio disk (amd64). */
export function bootDiskBios(o: Omit<DiskBootOptions, 'arch'>): Promise<BootResult> {
  const args = [
    '-M', 'q35',
    ...headless(o.memoryMB),
    '-drive', `if=virtio,format=${o.format},snapshot=on,file=${o.disk}`,
    ...(o.extraArgs ?? []),
  ];
  return runQemu('qemu-system-x86_64', args, o);
}
