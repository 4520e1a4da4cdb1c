/**
 * Boots a kernel + initrd under qemu (TCG, no graphics, serial on stdio) and
 * collects the console. Resolves when `until` matches the console, when qemu
 * exits, or at the timeout; qemu is killed by its PID in the first and last cases.
 */
import { spawn } from 'node:child_process';

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

export function qemuCommand(o: BootOptions): { bin: string; args: string[] } {
  const cmdline = o.cmdline ?? `console=${defaultConsole(o.arch)} panic=-1`;
  const common = [
    '-accel', 'tcg',
    '-m', String(o.memoryMB ?? 512),
    '-nodefaults',
    '-display', 'none',
    '-serial', 'stdio',
    '-monitor', 'none',
    '-no-reboot',
    '-kernel', o.kernel,
    '-initrd', o.initrd,
    '-append', cmdline,
  ];
  if (o.arch === 'amd64') return { bin: 'qemu-system-x86_64', args: ['-M', 'q35', ...common, ...(o.extraArgs ?? [])] };
  return { bin: 'qemu-system-aarch64', args: ['-M', 'virt', '-cpu', 'cortex-a57', ...common, ...(o.extraArgs ?? [])] };
}

export function bootKernel(o: BootOptions): Promise<BootResult> {
  const { bin, args } = qemuCommand(o);
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
