/**
 * `dockyard run qemu PATH`: boot a build output under qemu with the serial
 * console on this terminal (LinuxKit's `linuxkit run qemu`). The decisions
 * are pkg/run's; this spawns qemu (stdio inherited), forwards SIGINT/SIGTERM
 * to it by PID, and removes the run's temp dir afterwards.
 */
import { Command, Option } from 'commander';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DockyardError } from '../pkg/errors.js';
import {
  inspectInput,
  decideArch,
  resolveAccel,
  planQemu,
  prepareRun,
  renderPlan,
  parseDisk,
  parsePublish,
  parsePositiveInt,
  parseArch,
  DEFAULT_MEM_MIB,
  DEFAULT_CPUS,
  type AccelChoice,
} from '../pkg/run/index.js';

const collect = <T>(parse: (v: string) => T) => (v: string, prev: T[] = []): T[] => [...prev, parse(v)];

/** Grace period between SIGTERM and SIGKILL for qemu. */
const KILL_GRACE_MS = 5000;

export function registerRun(program: Command): void {
  const run = program.command('run').description('boot a build output in a VM');
  run
    .command('qemu')
    .description('boot PATH under qemu: a kernel+initrd NAME prefix, or an .iso, .raw/.img, .qcow2, .vhd, .vmdk or .efi file')
    .argument('<path>', 'image file, or NAME for NAME-kernel + NAME-initrd.img + NAME-cmdline')
    .option('--arch <arch>', 'amd64 or arm64 (default: from the image, else the host)', parseArch)
    .option('--uefi', 'boot through UEFI firmware (default for EFI images and on arm64)')
    .option('--no-uefi', 'boot through the PC BIOS')
    .option('--fw <code[,vars]>', 'UEFI firmware CODE image and VARS template (a fresh copy of VARS per run)')
    .option('--mem <MiB>', 'memory in MiB', (v) => parsePositiveInt('--mem', v), DEFAULT_MEM_MIB)
    .option('--cpus <n>', 'number of CPUs', (v) => parsePositiveInt('--cpus', v), DEFAULT_CPUS)
    .option('--disk <[file=]path[,size=S][,format=F]>', 'extra disk, created with qemu-img if size= is given and it is missing (repeatable)', collect(parseDisk))
    .option('--publish <host:guest[/tcp|udp]>', 'forward a host port to the guest (user networking; repeatable)', collect(parsePublish))
    .addOption(new Option('--accel <accel>', 'accelerator: auto uses KVM only if a probe VM runs on it').choices(['auto', 'kvm', 'tcg']).default('auto'))
    .option('--cmdline <cmdline>', 'kernel command line instead of NAME-cmdline (kernel+initrd)')
    .option('--qemu <path>', 'qemu system emulator to run (default: qemu-system-x86_64 / qemu-system-aarch64)')
    .option('--dry-run', 'print the qemu command (and disk creation) instead of running it')
    .action(async (path: string, o) => {
      const input = await inspectInput(resolve(path));
      const { arch } = decideArch(input, o.arch);
      const accel = await resolveAccel({ choice: o.accel as AccelChoice, arch, qemu: o.qemu });
      const tmpDir = o.dryRun ? join(tmpdir(), 'dockyard-run-XXXXXX') : await mkdtemp(join(tmpdir(), 'dockyard-run-'));
      try {
        const plan = await planQemu(input, {
          arch: o.arch,
          uefi: o.uefi,
          fw: o.fw,
          memMiB: o.mem,
          cpus: o.cpus,
          disks: o.disk,
          publish: o.publish,
          accel: accel.accel,
          cmdline: o.cmdline,
          qemu: o.qemu,
          tmpDir,
        });
        const at = plan.notes.indexOf(`accel ${accel.accel}`);
        if (at >= 0) plan.notes[at] = `accel ${accel.reason}`;
        if (o.dryRun) {
          process.stdout.write(renderPlan(plan));
          return;
        }
        await prepareRun(plan);
        process.stderr.write(
          `dockyard: booting ${path} (${arch}, ${plan.uefi ? 'UEFI' : input.kind === 'kernel' ? 'direct kernel' : 'BIOS'}, ${accel.accel}); Ctrl-A x quits qemu\n`,
        );
        process.exitCode = await runQemu(plan.bin, plan.args);
      } finally {
        if (!o.dryRun) await rm(tmpDir, { recursive: true, force: true });
      }
    });
}

/** Run qemu on this terminal; SIGINT/SIGTERM/SIGHUP are passed on to it by PID. Resolves to our exit status. */
async function runQemu(bin: string, args: string[]): Promise<number> {
  const { execa } = await import('execa'); // loaded when used: every CLI start would pay its import
  const child = execa(bin, args, { stdio: 'inherit', reject: false });
  let interrupted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const onSignal = (): void => {
    interrupted = true;
    const pid = child.pid;
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    killTimer ??= setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, KILL_GRACE_MS);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const s of signals) process.on(s, onSignal);
  try {
    const r = await child;
    if (r.failed && r.exitCode === undefined && r.signal === undefined) {
      const missing = (r as { code?: string }).code === 'ENOENT';
      throw new DockyardError('E_OUTPUT', missing ? `${bin} not found: install qemu (Debian: qemu-system-x86 / qemu-system-arm)` : `cannot run ${bin}: ${r.shortMessage}`);
    }
    if (interrupted) return 130;
    return r.exitCode ?? 1;
  } finally {
    clearTimeout(killTimer);
    for (const s of signals) process.off(s, onSignal);
  }
}
