/**
 * Choosing qemu's accelerator. KVM is used only when it demonstrably runs
 * guest code: a /dev/kvm that exists can still fail or hang, so `auto`
 * starts qemu with `-accel kvm` on a few bytes of guest code that power the
 * machine off with a known status, and falls back to TCG if that does not
 * happen within the timeout. The probe is killed by its PID and never waited
 * for after that (a process hung inside KVM may not die promptly).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockyardError } from '../errors.js';
import type { Arch } from './detect.js';

export type Accel = 'tcg' | 'kvm';
export type AccelChoice = Accel | 'auto';

export const hostArch = (): Arch | undefined => (process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined);

export function qemuBinary(arch: Arch): string {
  return arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64';
}

/**
 * x86: a 64 KiB BIOS image whose reset vector (top 16 bytes, mapped at
 * 0xFFFFFFF0) runs `mov al,0x2a; out 0xf4,al` into an isa-debug-exit port:
 * qemu exits with status (0x2a << 1) | 1 = 85.
 */
function x86Payload(): Buffer {
  const b = Buffer.alloc(65536, 0xf4); // hlt
  Buffer.from([0xb0, 0x2a, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]).copy(b, 0xfff0); // mov al,42; out 0xf4,al; hlt; jmp $-1
  return b;
}

/** arm64: a raw `-kernel` image calling PSCI SYSTEM_OFF (0x84000008) by HVC: qemu exits 0. */
function arm64Payload(): Buffer {
  const b = Buffer.alloc(16);
  [0x52800100, 0x72b08000, 0xd4000002, 0x14000000].forEach((w, i) => b.writeUInt32LE(w, i * 4)); // movz w0,#8; movk w0,#0x8400,lsl 16; hvc #0; b .
  return b;
}

export interface ProbeResult {
  ok: boolean;
  /** Why KVM is (not) used, one line. */
  reason: string;
  ms: number;
}

/**
 * Start `qemu` (the system emulator for `arch`) with `accel` on the probe
 * payload; ok when it exits with the payload's status within `timeoutMs`.
 */
export async function probeAccel(o: { arch: Arch; accel: Accel; qemu?: string; timeoutMs?: number }): Promise<ProbeResult> {
  const timeoutMs = o.timeoutMs ?? 3000;
  const dir = await mkdtemp(join(tmpdir(), 'dockyard-probe-'));
  const t0 = Date.now();
  try {
    const payload = join(dir, 'probe.bin');
    await writeFile(payload, o.arch === 'amd64' ? x86Payload() : arm64Payload());
    const args =
      o.arch === 'amd64'
        ? ['-M', 'q35', '-bios', payload, '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04']
        : ['-M', 'virt', '-cpu', o.accel === 'kvm' ? 'host' : 'cortex-a57', '-kernel', payload];
    const want = o.arch === 'amd64' ? 85 : 0;
    const { execa } = await import('execa'); // loaded when used: every CLI start would pay its import
    const child = execa(o.qemu ?? qemuBinary(o.arch), [...args, '-accel', o.accel, '-m', '64', '-nodefaults', '-display', 'none', '-no-reboot'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      reject: false,
      all: false,
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((res) => {
      timer = setTimeout(() => res('timeout'), timeoutMs);
    });
    const r = await Promise.race([child, timedOut]);
    clearTimeout(timer);
    const ms = Date.now() - t0;
    if (r === 'timeout') {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      child.catch(() => {});
      child.stderr?.destroy();
      child.unref();
      return { ok: false, reason: `${o.accel} did not run the probe within ${timeoutMs} ms`, ms };
    }
    if (r.exitCode === want) return { ok: true, reason: `${o.accel} ran the probe in ${ms} ms`, ms };
    const err = String(r.stderr ?? '').trim().split('\n').pop() || r.message || 'failed';
    return { ok: false, reason: `${o.accel} probe failed: ${err}`, ms };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `tcg` and `kvm` are taken as given; `auto` is KVM when the guest arch is
 * the host's and the probe succeeds, else TCG.
 */
export async function resolveAccel(o: { choice: AccelChoice; arch: Arch; qemu?: string; timeoutMs?: number }): Promise<{ accel: Accel; reason: string }> {
  if (o.choice === 'kvm' && hostArch() !== o.arch) {
    throw new DockyardError('E_USAGE', `--accel kvm runs ${hostArch() ?? process.arch} guests only on this host, not ${o.arch}: use --accel tcg`);
  }
  if (o.choice !== 'auto') return { accel: o.choice, reason: `${o.choice} (--accel ${o.choice})` };
  if (hostArch() !== o.arch) return { accel: 'tcg', reason: `tcg (${o.arch} guest on ${hostArch() ?? process.arch} host)` };
  const p = await probeAccel({ arch: o.arch, accel: 'kvm', qemu: o.qemu, timeoutMs: o.timeoutMs });
  return p.ok ? { accel: 'kvm', reason: `kvm (${p.reason})` } : { accel: 'tcg', reason: `tcg (${p.reason})` };
}
