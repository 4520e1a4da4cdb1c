/**
 * `dockyard run qemu` as users run it: examples/hello.yml built from the
 * fixture images to kernel+initrd (amd64, arm64) and to every registered
 * bootable format, each booted through the compiled CLI (serial console on
 * its stdout) until the onboot containers' markers appear, then the CLI is
 * sent SIGTERM and must leave no qemu and no temp files behind. Also: the
 * planned command lines for every output (--dry-run), `--accel auto` choosing
 * KVM exactly when a probe VM runs on it and TCG otherwise, in bounded time
 * (on this host, and with stand-in qemus for a KVM that works, fails or
 * hangs), SIGTERM forwarding and the per-run VARS copy (with a stand-in qemu),
 * and one-line errors.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { accessSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dockyard, repoRoot, cliPath, assertBuilt } from '../harness/cli.js';
import { fixtureCache } from '../harness/fixtures.js';
import { formatNames } from '../../pkg/formats/index.js';

type Arch = 'amd64' | 'arm64';

let work: string;
let cache: string;

/** Formats booted through `run` (when registered), with the file they write for NAME=hello. */
const BOOTED: { format: string; arch: Arch; file: string }[] = [
  { format: 'kernel+initrd', arch: 'amd64', file: 'hello' },
  { format: 'kernel+initrd', arch: 'arm64', file: 'hello' },
  { format: 'uki', arch: 'amd64', file: 'hello.efi' },
  { format: 'uki', arch: 'arm64', file: 'hello.efi' },
  { format: 'iso-bios', arch: 'amd64', file: 'hello.iso' },
  { format: 'qcow2-efi', arch: 'amd64', file: 'hello-efi.qcow2' },
  { format: 'vmdk', arch: 'arm64', file: 'hello.vmdk' },
  { format: 'iso-efi', arch: 'arm64', file: 'hello-efi.iso' },
  { format: 'raw-bios', arch: 'amd64', file: 'hello-bios.img' },
];

/** Outputs whose --dry-run command line is checked: [format, file, qemu -drive of the boot disk, UEFI]. */
const PLANNED: { format: string; file: string; drive: RegExp | null; uefi: boolean }[] = [
  { format: 'raw-efi', file: 'hello-efi.img', drive: /^file=.*\/hello-efi\.img,format=raw,index=0,media=disk$/, uefi: true },
  { format: 'qcow2-efi', file: 'hello-efi.qcow2', drive: /^file=.*\/hello-efi\.qcow2,format=qcow2,index=0,media=disk$/, uefi: true },
  { format: 'vhd', file: 'hello.vhd', drive: /^file=.*\/hello\.vhd,format=vpc,index=0,media=disk$/, uefi: true },
  { format: 'vmdk', file: 'hello.vmdk', drive: /^file=.*\/hello\.vmdk,format=vmdk,index=0,media=disk$/, uefi: true },
  { format: 'uki', file: 'hello.efi', drive: /^file=fat:rw:.*\/esp,format=raw,index=0,media=disk$/, uefi: true },
];

const registered = (f: string): boolean => f === 'kernel+initrd' || formatNames.includes(f);
const outDir = (arch: Arch, format: string): string => join(work, `${arch}-${format.replace('+', '-')}`);

async function build(arch: Arch, format: string): Promise<string> {
  const dir = outDir(arch, format);
  if (!existsSync(dir)) {
    const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', arch, '-f', format, '--dir', dir, join(repoRoot, 'examples/hello.yml')]);
    expect(b.exitCode, b.stderr).toBe(0);
  }
  return dir;
}

/** PIDs of live processes whose command line mentions `needle`. */
function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8');
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (cmd.includes(needle) && !/\) Z /.test(st)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

interface CliRun {
  stdout: string;
  stderr: string;
  exitCode?: number;
  ms: number;
  /** The marker appeared (and the CLI was then sent SIGTERM). */
  matched: boolean;
}

/**
 * `dockyard run qemu ARGS` with TMPDIR=tmp; when stdout matches `until`,
 * SIGTERM to the CLI's PID (it must take qemu down itself).
 */
async function runCli(args: string[], o: { until?: RegExp; timeoutMs: number; tmp: string }): Promise<CliRun> {
  assertBuilt();
  const t0 = Date.now();
  const child = execa('node', [cliPath, 'run', 'qemu', ...args], {
    env: { TMPDIR: o.tmp },
    stdin: 'ignore',
    reject: false,
    stripFinalNewline: false,
  });
  let stdout = '';
  let matched = false;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => {
    stdout += d;
    if (!matched && o.until?.test(stdout)) {
      matched = true;
      process.kill(child.pid!, 'SIGTERM');
    }
  });
  const timer = setTimeout(() => {
    try {
      process.kill(child.pid!, 'SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    } catch {
      /* gone */
    }
  }, o.timeoutMs);
  const r = await child;
  clearTimeout(timer);
  return { stdout, stderr: String(r.stderr), exitCode: r.exitCode, ms: Date.now() - t0, matched };
}

beforeAll(async () => {
  ({ work, cache } = await fixtureCache('dockyard-run-'));
}, 900_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('dockyard run qemu boots the outputs', () => {
  for (const b of BOOTED) {
    it.skipIf(!registered(b.format))(`${b.arch} ${b.format} (${b.file})`, async () => {
      const dir = await build(b.arch, b.format);
      const tmp = join(work, `tmp-${b.arch}-${b.format}`);
      await mkdir(tmp);
      const r = await runCli(['--accel', 'tcg', '--mem', '512', join(dir, b.file)], { until: /dockyard-init: onboot done/, timeoutMs: 240_000, tmp });
      const c = r.stdout;
      expect(c, r.stderr + c).toMatch(new RegExp(`dockyard-marker: hello from a read-only container on ${b.arch === 'amd64' ? 'x86_64' : 'aarch64'}`));
      expect(c).toMatch(/dockyard-marker: overlay root is writable: written/);
      expect(c).toMatch(/dockyard-init: onboot done/);
      expect(r.stderr).toMatch(new RegExp(`^dockyard: booting .*\\(${b.arch}, `));
      // SIGTERM after the marker (or the guest powered off first): either way qemu is gone and the run's files too.
      expect([0, 130], r.stderr).toContain(r.exitCode);
      expect(processesMentioning(dir)).toEqual([]);
      expect(await readdir(tmp)).toEqual([]);
      console.log(`run ${b.arch} ${b.format}: ${r.ms} ms to the marker`);
    }, 300_000);
  }
});

describe('--dry-run prints the qemu command for every output', () => {
  for (const arch of ['amd64', 'arm64'] as const) {
    for (const p of PLANNED) {
      it.skipIf(!registered(p.format))(`${arch} ${p.format}`, async () => {
        const dir = await build(arch, p.format);
        const r = await dockyard(['run', 'qemu', '--dry-run', '--accel', 'tcg', join(dir, p.file)]);
        expect(r.exitCode, r.stderr).toBe(0);
        const cmd = r.stdout.split('\n').find((l) => l.startsWith('qemu-system-'))!;
        expect(cmd.split(' ')[0]).toBe(arch === 'amd64' ? 'qemu-system-x86_64' : 'qemu-system-aarch64');
        const drives = [...cmd.matchAll(/-drive (\S+)/g)].map((m) => m[1]);
        const fw = arch === 'amd64' ? '/usr/share/OVMF/OVMF_CODE_4M.fd' : '/usr/share/AAVMF/AAVMF_CODE.fd';
        if (p.uefi) {
          expect(drives[0]).toBe(`if=pflash,format=raw,unit=0,readonly=on,file=${fw}`);
          expect(drives[1]).toMatch(/^if=pflash,format=raw,unit=1,file=.*dockyard-run-XXXXXX\/(OVMF_VARS_4M|AAVMF_VARS)\.fd$/);
        }
        expect(drives.at(-1)).toMatch(p.drive!);
        expect(r.stdout).toContain(`# arch ${arch} (from the image)`);
      });
    }
  }

  it('dynamic-vhd is a vpc disk too', async () => {
    if (!registered('dynamic-vhd')) return;
    const dir = await build('amd64', 'dynamic-vhd');
    const r = await dockyard(['run', 'qemu', '--dry-run', '--accel', 'tcg', join(dir, 'hello.vhd')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/-drive file=\S+\/hello\.vhd,format=vpc,index=0,media=disk/);
  });

  it('iso-bios: the CD on the IDE bus, BIOS boot, extra disks created by qemu-img', async () => {
    if (!registered('iso-bios')) return;
    const dir = await build('amd64', 'iso-bios');
    const r = await dockyard(['run', 'qemu', '--dry-run', '--accel', 'tcg', '--disk', 'size=1G', '--disk', `file=${join(work, 'd.vmdk')},size=64M,format=vmdk`, '--publish', '2222:22', join(dir, 'hello.iso')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('# BIOS (El Torito BIOS entry)');
    expect(r.stdout).toMatch(/^qemu-img create -f qcow2 \S+dockyard-run-XXXXXX\/disk0\.qcow2 1024M$/m);
    expect(r.stdout).toContain(`qemu-img create -f vmdk ${join(work, 'd.vmdk')} 64M`);
    expect(r.stdout).toMatch(/-drive file=\S+\/hello\.iso,format=raw,index=2,media=cdrom,readonly=on -boot d/);
    expect(r.stdout).toContain('-netdev user,id=t0,hostfwd=tcp::2222-:22');
    expect(r.stdout).not.toContain('pflash');
  });
});

describe('--accel', () => {
  /** The host's arch when `auto` probes KVM for a guest of it (amd64, arm64), else undefined. */
  const host: Arch | undefined = process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;
  /** The exit status of qemu when the probe's guest code ran (amd64: isa-debug-exit (0x2a << 1) | 1; arm64: PSCI SYSTEM_OFF). */
  const probeStatus = (arch: Arch): number => (arch === 'amd64' ? 85 : 0);
  /** The probe's timeout in `auto` (pkg/run/accel.ts). */
  const PROBE_TIMEOUT_MS = 3000;

  /** /dev/kvm can be opened for reading and writing (without that, qemu cannot start under KVM). */
  function kvmDeviceUsable(): boolean {
    try {
      accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * What `--dry-run` says was chosen: the `# accel ACCEL (REASON)` note, which
   * must agree with the qemu command line (`-accel ACCEL`, `-cpu host` exactly
   * under KVM).
   */
  function chosen(out: unknown): { accel: 'kvm' | 'tcg'; reason: string; cmd: string } {
    const stdout = String(out);
    const note = /^# accel (kvm|tcg) \((.*)\)$/m.exec(stdout);
    expect(note, stdout).not.toBeNull();
    const accel = note![1] as 'kvm' | 'tcg';
    const cmds = stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('qemu-img '));
    expect(cmds, stdout).toHaveLength(1);
    const cmd = cmds[0];
    expect(cmd).toContain(` -accel ${accel} `);
    expect(cmd).not.toContain(` -accel ${accel === 'kvm' ? 'tcg' : 'kvm'} `);
    expect(cmd.includes(' -cpu host '), cmd).toBe(accel === 'kvm');
    return { accel, reason: note![2], cmd };
  }

  /** A stand-in qemu at work/NAME: logs each command line to work/NAME.log, then runs `body`. */
  async function standIn(name: string, body: string): Promise<{ bin: string; log: string }> {
    const bin = join(work, name);
    const log = join(work, `${name}.log`);
    await writeFile(bin, `#!/bin/bash\nprintf '%s\\n' "$*" >> '${log}'\n${body}`, { mode: 0o755 });
    return { bin, log };
  }

  it('auto uses KVM exactly when the probe VM ran on it, else TCG, in bounded time', async () => {
    const dir = await build('amd64', 'kernel+initrd');
    const t0 = Date.now();
    const r = await dockyard(['run', 'qemu', '--dry-run', join(dir, 'hello')]);
    const ms = Date.now() - t0;
    expect(r.exitCode, r.stderr).toBe(0);
    const c = chosen(r.stdout);
    if (host === 'amd64') {
      if (c.accel === 'kvm') {
        // KVM works here: the probe VM powered off under it within the probe's timeout.
        const ran = /^kvm ran the probe in (\d+) ms$/.exec(c.reason);
        expect(ran, c.reason).not.toBeNull();
        expect(Number(ran![1])).toBeLessThan(PROBE_TIMEOUT_MS);
        expect(kvmDeviceUsable()).toBe(true);
      } else {
        // No working KVM (no /dev/kvm, not usable, or one that hangs): TCG, said why.
        expect(c.reason).toMatch(/^kvm (probe failed: .+|did not run the probe within 3000 ms)$/);
        if (!kvmDeviceUsable()) expect(c.reason).toMatch(/^kvm probe failed: /);
      }
    } else {
      // An amd64 guest on another host: TCG without a probe.
      expect(c).toMatchObject({ accel: 'tcg', reason: `amd64 guest on ${process.arch} host` });
    }
    expect(ms).toBeLessThan(15_000);
  });

  it.skipIf(!host)('auto chooses KVM when the probe VM powers off under it (stand-in qemu)', async () => {
    const arch = host!;
    const dir = await build(arch, 'kernel+initrd');
    // Stand-in qemu: under -accel kvm, with the probe's payload there, exits as qemu does when the guest code ran.
    const fake = await standIn(
      'kvm-ok-qemu.sh',
      `prev=; payload=
for a in "$@"; do case "$prev" in -bios|-kernel) payload="$a";; esac; prev="$a"; done
case " $* " in *" -accel kvm "*) [ -s "$payload" ] && exit ${probeStatus(arch)};; esac
exit 1
`,
    );
    const t0 = Date.now();
    const r = await dockyard(['run', 'qemu', '--dry-run', '--qemu', fake.bin, join(dir, 'hello')]);
    const ms = Date.now() - t0;
    expect(r.exitCode, r.stderr).toBe(0);
    const c = chosen(r.stdout);
    expect(c.accel).toBe('kvm');
    const ran = /^kvm ran the probe in (\d+) ms$/.exec(c.reason);
    expect(ran, c.reason).not.toBeNull();
    expect(Number(ran![1])).toBeLessThan(PROBE_TIMEOUT_MS);
    expect(c.cmd.startsWith(`${fake.bin} `)).toBe(true);
    // The stand-in ran once, as the KVM probe (--dry-run starts nothing else).
    const calls = (await readFile(fake.log, 'utf8')).trimEnd().split('\n');
    expect(calls).toHaveLength(1);
    expect(` ${calls[0]} `).toContain(' -accel kvm ');
    expect(calls[0]).toContain(arch === 'amd64' ? '-device isa-debug-exit,iobase=0xf4,iosize=0x04' : '-kernel ');
    expect(ms).toBeLessThan(10_000);
  });

  it.skipIf(!host)('auto falls back to TCG when qemu cannot start under KVM (stand-in qemu)', async () => {
    const arch = host!;
    const dir = await build(arch, 'kernel+initrd');
    const fake = await standIn(
      'no-kvm-qemu.sh',
      `case " $* " in *" -accel kvm "*) echo 'qemu: -accel kvm: Could not access KVM kernel module: No such file or directory' >&2; exit 1;; esac
exit 1
`,
    );
    const t0 = Date.now();
    const r = await dockyard(['run', 'qemu', '--dry-run', '--qemu', fake.bin, join(dir, 'hello')]);
    const ms = Date.now() - t0;
    expect(r.exitCode, r.stderr).toBe(0);
    const c = chosen(r.stdout);
    expect(c).toMatchObject({ accel: 'tcg', reason: 'kvm probe failed: qemu: -accel kvm: Could not access KVM kernel module: No such file or directory' });
    expect((await readFile(fake.log, 'utf8')).trimEnd().split('\n')).toHaveLength(1);
    expect(ms).toBeLessThan(10_000);
  });

  it('auto gives up on a qemu that hangs under KVM after the probe timeout and kills it', async () => {
    // On a host that is neither amd64 nor arm64 there is no probe: an amd64 guest runs under TCG.
    const arch = host ?? 'amd64';
    const dir = await build(arch, 'kernel+initrd');
    const marker = join(work, 'hang-qemu.marker');
    const fake = await standIn('hang-qemu.sh', `case "$*" in *"-accel kvm"*) exec -a "${marker}" sleep 600;; esac\nexit 1\n`);
    const t0 = Date.now();
    const r = await dockyard(['run', 'qemu', '--dry-run', '--qemu', fake.bin, join(dir, 'hello')]);
    const ms = Date.now() - t0;
    expect(r.exitCode, r.stderr).toBe(0);
    const c = chosen(r.stdout);
    if (host) {
      expect(c).toMatchObject({ accel: 'tcg', reason: `kvm did not run the probe within ${PROBE_TIMEOUT_MS} ms` });
      expect(r.stdout).toMatch(/^# accel tcg \(kvm did not run the probe within 3000 ms\)/m);
      expect(ms).toBeGreaterThanOrEqual(PROBE_TIMEOUT_MS);
      expect(ms).toBeLessThan(10_000);
      await new Promise((res) => setTimeout(res, 300));
      expect(processesMentioning(marker)).toEqual([]);
    }
    expect(c.accel).toBe('tcg');
    expect(r.stdout).toMatch(/ -accel tcg /);
  });
});

describe('the CLI runs qemu and cleans up', () => {
  it('a fresh VARS copy exists while qemu runs; SIGTERM reaches qemu by PID; temp dir removed; exit 130', async () => {
    const dir = await build('amd64', 'kernel+initrd');
    const tmp = join(work, 'tmp-fake');
    await mkdir(tmp);
    const fake = join(work, 'fake-qemu.sh');
    // Stand-in qemu: checks its VARS pflash against the template, then waits to be killed.
    await writeFile(
      fake,
      `#!/bin/bash
for a in "$@"; do case "$a" in if=pflash,*unit=1,file=*) vars="\${a##*file=}";; esac; done
if cmp -s "$vars" /usr/share/OVMF/OVMF_VARS_4M.fd && [ "$vars" != /usr/share/OVMF/OVMF_VARS_4M.fd ]; then echo "vars-copy-ok $vars"; fi
trap 'echo fake-qemu-got-TERM; exit 0' TERM
echo fake-qemu-ready
while :; do sleep 0.1; done
`,
      { mode: 0o755 },
    );
    const r = await runCli(['--qemu', fake, '--accel', 'tcg', '--uefi', join(dir, 'hello')], { until: /fake-qemu-ready/, timeoutMs: 60_000, tmp });
    expect(r.matched, r.stderr).toBe(true);
    expect(r.stdout).toMatch(new RegExp(`vars-copy-ok ${tmp}/dockyard-run-\\w+/OVMF_VARS_4M\\.fd`));
    expect(r.stdout).toContain('fake-qemu-got-TERM');
    expect(r.exitCode).toBe(130);
    expect(await readdir(tmp)).toEqual([]);
    expect(processesMentioning(fake)).toEqual([]);
  });

  it("qemu's exit status is the CLI's", async () => {
    const dir = await build('amd64', 'kernel+initrd');
    const fake = join(work, 'exit3-qemu.sh');
    await writeFile(fake, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    const r = await dockyard(['run', 'qemu', '--qemu', fake, '--accel', 'tcg', join(dir, 'hello')]);
    expect(r.exitCode).toBe(3);
  });
});

describe('errors are one line, exit 1', () => {
  it('missing input, unknown type, missing qemu', async () => {
    const junk = join(work, 'junk.bin');
    await writeFile(junk, 'not an image');
    const dir = await build('amd64', 'kernel+initrd');
    for (const [args, re] of [
      [[join(work, 'nope')], /^dockyard: .*nope: no such file, and no .*nope-kernel \(kernel\+initrd\)\n$/],
      [[junk], /^dockyard: .*junk\.bin: unknown image type \(expected NAME-kernel\/-initrd\.img, .*\)\n$/],
      [['--accel', 'tcg', '--qemu', join(work, 'no-qemu'), join(dir, 'hello')], /^dockyard: .*no-qemu not found: install qemu.*\n$/],
      [['--accel', 'tcg', '--arch', 'arm64', join(dir, 'hello')], /^dockyard: .*hello is for amd64, not arm64 \(--arch\)\n$/],
    ] as [string[], RegExp][]) {
      const r = await dockyard(['run', 'qemu', ...args]);
      expect(String(r.stderr).split('\n').filter((l) => l && !l.startsWith('dockyard: booting')).join('\n') + '\n').toMatch(re);
      expect(r.exitCode).toBe(1);
    }
  });
});
