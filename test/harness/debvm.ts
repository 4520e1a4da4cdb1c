/**
 * A booted Debian bookworm with systemd, for tests that install packages
 * (deb, rpm, pacman) and run what they install.
 *
 *   const vm = await debianVm('amd64', log);   // built once, then cached
 *   const r = await runInVm(vm, {
 *     files: [{ name: 'engine.deb', path: debPath }, { name: 'busybox.tar', path: archive }],
 *     script: 'apt-get install -y "$PWD/engine.deb" && docker load -i busybox.tar',
 *     timeoutMs: 600_000,
 *     onLine: (l) => process.stderr.write(`vm: ${l}\n`),
 *   });
 *   expect(r.status).toBe(0);       // the script's exit status; undefined: no marker seen
 *
 * The image (debianVm): `mmdebstrap --mode=root --variant=minbase` of bookworm
 * from the machine's apt sources (its Debian sources file, deb.debian.org),
 * plus DEBVM_PACKAGES: systemd as init, udev, the kernel (linux-image-<arch>)
 * with an initramfs-tools initrd (MODULES=list: virtio_pci, virtio_mmio,
 * virtio_blk, ext4 — modules in Debian's kernel), apt, rpm, pacman, apparmor
 * (Debian's kernel enables AppArmor: dockerd needs apparmor_parser), and the
 * dependencies of Debian's docker.io (iptables, libdevmapper1.02.1,
 * libsystemd0, libseccomp2, adduser, lsb-base, ...) already installed, so that
 * `apt-get install ./engine.deb` resolves offline. docker.io, containerd, runc
 * and tini are NOT installed. No apt package lists (mmdebstrap removes them):
 * apt in the guest installs local .debs whose dependencies are installed, and
 * nothing else (`apt-get install -y ./x.deb` works; do not add --no-download:
 * bookworm's apt 2.6 then fails "Internal Error, Pathname to install is not
 * absolute"). dpkg runs with force-unsafe-io. No docs, man pages or locales.
 * The root filesystem is an ext4 image made with `mke2fs -d` (no loop mount),
 * its content plus DEBVM_FREE_MIB free (about 650 MiB used, 1.4 GiB free; a
 * sparse 2.3 GB file taking ~750 MB); the kernel and initrd are copied out of
 * /boot. Cached in `${XDG_CACHE_HOME:-~/.cache}/dockyard-debvm/<arch>-<key>/`
 * (vmlinuz, initrd.img, rootfs.ext4, info.json), key = FORMAT + the candidate
 * versions of the packages + the build recipe; built in `<dir>.tmp-<pid>` and
 * renamed, under a lock file `<dir>.lock` (holder's PID; a dead holder's lock
 * is taken over) so that concurrent vitest forks build it once. Older images of
 * the same architecture are removed after a build. Cold build: ~1.5-2 min for
 * amd64, ~10 min for arm64 (its maintainer scripts run under qemu-user).
 * mmdebstrap runs under `setpriv --pdeathsig TERM` (it stops if the test
 * process dies); what a killed build leaves mounted in its tree is unmounted
 * before the tree is removed. Needs root (mmdebstrap's root mode; files must
 * be owned by their real owners for `mke2fs -d`), and for arm64 arch-test,
 * qemu-user-static and binfmt_misc with the F flag (debVmMissing tells what
 * is missing, for a skip reason).
 *
 * In the guest: no getty, no firstboot, no timers. No network unless
 * `network: true`: then a virtio NIC on qemu's user network, DHCP by
 * systemd-networkd (10.0.2.15, DNS 10.0.2.3 in /etc/resolv.conf), and the
 * outside is reachable (deb.debian.org answers). Without it there is no NIC
 * and networkd is masked on the kernel command line (it costs ~5-10 s of
 * TCG time); docker's bridge network works either way.
 * `dockyard-test.service` (Type=simple, after multi-user.target, so
 * `systemctl is-system-running --wait` in the script works: it prints
 * `running`) mounts the disk labelled `dockyard-run` (the second virtio disk,
 * ext4, made per run from `files` + `run.sh`) at /run/dockyard-test, runs
 * `bash ./run.sh` there (cwd; HOME=/root, DEBIAN_FRONTEND=noninteractive,
 * TERM=dumb, SYSTEMD_COLORS=0) with stdout+stderr on the console, unmounts,
 * prints `DOCKYARD-VM-EXIT <status>` and powers off. `set -x` etc. are the
 * script's business.
 *
 * runInVm boots it under qemu (TCG: /dev/kvm hangs on this machine; 2 vCPUs;
 * -m memMiB, default 2048; qemuCommand of qemu.ts) with the cached image as a
 * snapshot=on drive (never written), the kernel command line `root=/dev/vda rw
 * console=<ttyS0|ttyAMA0> quiet systemd.show_status=0 ...` (the console shows
 * little but the script's output), and returns the console (as terminalLine
 * renders it: no ANSI escapes, progress meters reduced to their last state)
 * and the status from the marker. With `outDir`, whatever the script left in
 * `out/` of its directory is copied there afterwards (debugfs rdump of the
 * run disk). qemu is killed by PID at the timeout, and 20 s after the marker
 * if it has not powered off by then. Boot to the script: ~35-50 s for amd64,
 * ~65 s for arm64 under TCG.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { aptShow, parseStanzas, type Arch } from '../fixtures/debs.js';
import { defaultConsole, qemuCommand } from './qemu.js';
import { pidAlive } from '../../pkg/tempfiles.js';

export type DebVmArch = Arch;

export interface DebVm {
  arch: DebVmArch;
  /** The kernel (/boot/vmlinuz-* of the image). */
  kernel: string;
  /** The initramfs-tools initrd (/boot/initrd.img-*). */
  initrd: string;
  /** The cached root filesystem (raw ext4); runInVm never writes it. */
  disk: string;
  /** The cache entry's directory (holds info.json: versions, sizes, build time). */
  dir: string;
}

export interface VmFile {
  /** Relative path on the run disk (subdirectories allowed). */
  name: string;
  /** A host file to copy (hard-linked where possible). */
  path?: string;
  content?: string | Buffer;
  /** Default 0644 (0755 for run.sh). */
  mode?: number;
}

export interface RunInVmOptions {
  files: VmFile[];
  /** bash script, run as root in the run disk's directory. */
  script: string;
  /** Whole run: boot, script, power-off. */
  timeoutMs: number;
  /** Guest memory, default 2048. */
  memMiB?: number;
  /** Free space on the run disk beyond the files, default 256 MiB. */
  runDiskFreeMiB?: number;
  /** Each console line as it comes (terminalLine: no line end, no escapes). */
  onLine?: (line: string) => void;
  /** Copy the run disk's `out/` directory here afterwards. */
  outDir?: string;
  /** Extra kernel command line arguments. */
  cmdline?: string;
  /**
   * A NIC on qemu's user network, configured by systemd-networkd, through
   * which the guest reaches the outside (deb.debian.org answers). Default
   * false: no NIC, networkd masked, so that a test cannot come to depend on
   * the network by accident, and the boot is quicker.
   */
  network?: boolean;
}

export interface RunInVmResult {
  /** The console (serial) as terminalLine renders it; qemu's stderr appended if any. */
  log: string;
  /** The script's exit status from the `DOCKYARD-VM-EXIT` line; undefined when it never came. */
  status: number | undefined;
  /** Wall time of the qemu run. */
  ms: number;
  /** How qemu ended. */
  reason: 'exit' | 'marker' | 'timeout';
}

/** Bump when the image's content or setup changes: part of the cache key. */
const FORMAT = 'dockyard-debvm-4';

export const EXIT_MARKER = 'DOCKYARD-VM-EXIT';

/** Installed on top of minbase (with their dependencies, no recommends). */
export const DEBVM_PACKAGES = [
  'systemd',
  'systemd-sysv',
  'udev',
  'initramfs-tools',
  'apt',
  'rpm',
  'pacman-package-manager',
  'iptables',
  'libdevmapper1.02.1',
  'libsystemd0',
  'libseccomp2',
  'adduser',
  'lsb-base',
  'init-system-helpers',
  'e2fsprogs',
  'kmod',
  'procps',
  'ca-certificates',
  'xz-utils',
  'iproute2',
  // Debian's kernel enables AppArmor; dockerd then needs apparmor_parser to load
  // its docker-default profile, or `docker run` fails (docker.io recommends it).
  'apparmor',
] as const;

/** Free space in the root filesystem, for docker's images and containers. */
export const DEBVM_FREE_MIB = 1536;

const kernelMeta = (arch: DebVmArch): string => `linux-image-${arch}`;

export function debVmCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'dockyard-debvm');
}

const RUN_LABEL = 'dockyard-run';

/** Enabled in the image, masked on the kernel command line unless `network: true`. */
const NETWORKD_UNITS = ['systemd-networkd.service', 'systemd-networkd.socket', 'systemd-networkd-wait-online.service'];

/** The guest's runner, /usr/local/sbin/dockyard-test. */
const RUNNER = `#!/bin/bash
# Runs run.sh from the disk labelled ${RUN_LABEL}, prints the exit marker, powers off.
dev=$(blkid -L ${RUN_LABEL} 2>/dev/null || echo /dev/vdb)
dir=/run/dockyard-test
mkdir -p "$dir"
if mount -t ext4 "$dev" "$dir"; then
  mkdir -p "$dir/out"
  cd "$dir" && bash ./run.sh </dev/null
  status=$?
  cd /
  sync
  umount "$dir" || umount -l "$dir"
else
  echo "dockyard-test: cannot mount $dev" >&2
  status=255
fi
# On a line of its own even if the script's output did not end with one.
printf '\\n${EXIT_MARKER} %s\\n' "$status"
sync
systemctl poweroff --force --force
`;

const UNIT = `[Unit]
Description=dockyard test script (run.sh of the ${RUN_LABEL} disk)
After=multi-user.target

[Service]
Type=simple
ExecStart=/usr/local/sbin/dockyard-test
Environment=HOME=/root DEBIAN_FRONTEND=noninteractive TERM=dumb SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat PAGER=cat
StandardInput=null
StandardOutput=tty
StandardError=inherit
TTYPath=/dev/console
TTYReset=no
TTYVHangup=no

[Install]
WantedBy=multi-user.target
`;

const NETWORK = `[Match]
Name=en* eth*

[Network]
DHCP=ipv4
`;

/**
 * The initrd holds only what finding the root disk needs (MODULES=list; the
 * list is read from modules.d, not the conffile /etc/initramfs-tools/modules):
 * a 7 MB initrd instead of MODULES=most's 36 MB, a few seconds less under TCG.
 */
const INITRD_MODULES = ['virtio_pci', 'virtio_mmio', 'virtio_blk', 'ext4'];

/** The mmdebstrap setup hook (before any package is installed): $1 = the root directory. */
function setupScript(): string {
  return [
    '#!/bin/sh',
    'set -eu',
    'root="$1"',
    'mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"',
    `echo MODULES=list > "$root/etc/initramfs-tools/conf.d/dockyard"`,
    `printf '%s\\n' ${INITRD_MODULES.join(' ')} > "$root/usr/share/initramfs-tools/modules.d/dockyard"`,
    '',
  ].join('\n');
}

/** The mmdebstrap customize hook: run on the host with $1 = the root directory. */
function customizeScript(): string {
  const files: Record<string, string> = {
    'etc/fstab': '/dev/vda / ext4 rw,errors=remount-ro 0 0\n',
    'etc/hostname': 'debvm\n',
    'etc/hosts': '127.0.0.1 localhost\n127.0.1.1 debvm\n::1 localhost ip6-localhost ip6-loopback\n',
    'etc/resolv.conf': 'nameserver 10.0.2.3\n',
    // A fixed machine id: no first-boot logic (systemd-firstboot would prompt on the console).
    'etc/machine-id': `${createHash('sha256').update(FORMAT).digest('hex').slice(0, 32)}\n`,
    'etc/systemd/network/50-dhcp.network': NETWORK,
    // No fsync per file: package installs under TCG take a fraction of the time.
    'etc/dpkg/dpkg.cfg.d/dockyard-unsafe-io': 'force-unsafe-io\n',
    'etc/systemd/system/dockyard-test.service': UNIT,
    'usr/local/sbin/dockyard-test': RUNNER,
  };
  const lines = ['#!/bin/sh', 'set -eu', 'root="$1"'];
  for (const [name, content] of Object.entries(files)) {
    lines.push(`mkdir -p "$root/${path.posix.dirname(name)}"`);
    lines.push(`rm -f "$root/${name}"`);
    lines.push(`cat > "$root/${name}" <<'DOCKYARD_EOF'\n${content}DOCKYARD_EOF`);
  }
  lines.push('chmod 0755 "$root/usr/local/sbin/dockyard-test"');
  const sys = '$root/etc/systemd/system';
  const masked = [
    'getty@.service',
    'serial-getty@.service',
    'console-getty.service',
    'getty-static.service',
    'systemd-firstboot.service',
    'apt-daily.timer',
    'apt-daily-upgrade.timer',
    'dpkg-db-backup.timer',
    'e2scrub_all.timer',
    'e2scrub_reap.service',
    'fstrim.timer',
    'systemd-pstore.service',
  ];
  for (const m of masked) lines.push(`ln -sfn /dev/null "${sys}/${m}"`);
  lines.push(`rm -rf "${sys}/getty.target.wants" "${sys}/timers.target.wants"`);
  lines.push(`rm -f "${sys}/multi-user.target.wants/e2scrub_reap.service" "${sys}/sysinit.target.wants/systemd-pstore.service"`);
  lines.push(`ln -sfn /lib/systemd/system/multi-user.target "${sys}/default.target"`);
  lines.push(`mkdir -p "${sys}/multi-user.target.wants" "${sys}/sockets.target.wants" "${sys}/network-online.target.wants"`);
  lines.push(`ln -sfn ../dockyard-test.service "${sys}/multi-user.target.wants/dockyard-test.service"`);
  lines.push(`ln -sfn /lib/systemd/system/systemd-networkd.service "${sys}/multi-user.target.wants/systemd-networkd.service"`);
  lines.push(`ln -sfn /lib/systemd/system/systemd-networkd.socket "${sys}/sockets.target.wants/systemd-networkd.socket"`);
  lines.push(
    `ln -sfn /lib/systemd/system/systemd-networkd-wait-online.service "${sys}/network-online.target.wants/systemd-networkd-wait-online.service"`,
  );
  // An empty root password for debugging by hand (no getty runs in tests).
  lines.push('chroot "$root" passwd -d root >/dev/null');
  return `${lines.join('\n')}\n`;
}

/** The apt sources for mmdebstrap: the machine's Debian sources file if there is one, else deb.debian.org. */
function sourcesArgs(): string[] {
  for (const f of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    try {
      if (existsSync(f) && /^\s*(deb|Types:)/m.test(readFileSync(f, 'utf8'))) return [f];
    } catch {
      /* next */
    }
  }
  return [
    'deb http://deb.debian.org/debian bookworm main',
    'deb http://deb.debian.org/debian bookworm-updates main',
    'deb http://deb.debian.org/debian-security bookworm-security main',
  ];
}

function mmdebstrapArgs(arch: DebVmArch, hooks: { setup: string; customize: string }, target: string): string[] {
  return [
    '--mode=root',
    '--variant=minbase',
    `--arch=${arch}`,
    `--include=${[...DEBVM_PACKAGES, kernelMeta(arch)].join(',')}`,
    '--dpkgopt=path-exclude=/usr/share/man/*',
    '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    '--dpkgopt=path-exclude=/usr/share/locale/*',
    `--setup-hook=sh ${hooks.setup} "$1"`,
    `--customize-hook=sh ${hooks.customize} "$1"`,
    'bookworm',
    target,
    ...sourcesArgs(),
  ];
}

/** The candidate versions of what the image is made of (apt-get update once if apt knows none). */
async function candidateVersions(arch: DebVmArch): Promise<Record<string, string>> {
  const names = [...DEBVM_PACKAGES, kernelMeta(arch)];
  // `name:arch` finds a foreign architecture's packages but not the
  // architecture-independent ones (those only as the bare name).
  const show = async (): Promise<Map<string, string>[]> => {
    const r = await execa('apt-cache', ['show', '--no-all-versions', ...names.map((n) => `${n}:${arch}`), ...names], { reject: false });
    const stanzas = parseStanzas(r.stdout);
    return names.map((n) => {
      const of = (a: string): Map<string, string> | undefined => stanzas.find((st) => st.get('Package') === n && st.get('Architecture') === a);
      const f = of(arch) ?? of('all');
      if (!f?.get('Version')) throw new Error(`debvm: apt-cache knows no ${n} for ${arch}: ${r.stderr.trim()}`);
      return f;
    });
  };
  let shown: Map<string, string>[];
  try {
    shown = await show();
  } catch (first) {
    if (process.getuid?.() !== 0) throw first;
    if (arch !== 'amd64') {
      const foreign = await execa('dpkg', ['--print-foreign-architectures']);
      if (!foreign.stdout.split('\n').includes(arch)) await execa('dpkg', ['--add-architecture', arch]);
    }
    await execa('apt-get', ['update', '-qq']);
    shown = await show();
  }
  const out: Record<string, string> = {};
  names.forEach((n, i) => {
    out[n] = shown[i].get('Version')!;
  });
  // The versioned kernel package the metapackage points at.
  const dep = (shown[names.length - 1].get('Depends') ?? '')
    .split(',')
    .map((d) => d.trim().split(/\s/)[0])
    .find((d) => /^linux-image-\d/.test(d));
  if (dep) out[dep] = (await aptShow([[dep, arch]]))[0].get('Version')!;
  return out;
}


const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` holding `lockPath` (O_EXCL file with our PID); waits for a live holder, takes over a dead one's. */
async function withLock<T>(lockPath: string, fn: () => Promise<T>, log: (m: string) => void): Promise<T> {
  let told = false;
  for (;;) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = NaN;
      let age = 0;
      try {
        holder = Number.parseInt(await readFile(lockPath, 'utf8'), 10);
        age = Date.now() - (await stat(lockPath)).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      const dead = Number.isFinite(holder) ? !pidAlive(holder) : age > 60_000;
      if (dead) {
        log(`debvm: taking over the lock of dead process ${Number.isFinite(holder) ? holder : '?'}`);
        await rm(lockPath, { force: true });
        continue;
      }
      if (!told) log(`debvm: waiting for process ${holder} to finish building the image`);
      told = true;
      await sleep(2000);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockPath, { force: true });
  }
}

/** Mount points at or below `dir` (mmdebstrap's root mode mounts /proc, /sys, /dev there while it runs). */
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && (mp === dir || mp.startsWith(`${dir}/`))) out.push(mp.replace(/\\040/g, ' '));
  }
  return out;
}

/**
 * Removes one of our build trees without crossing into other filesystems:
 * first unmounts what a killed mmdebstrap left mounted in it (/proc, /sys,
 * /dev/pts, ... of the chroot, deepest first), and refuses if any remains.
 */
async function removeTree(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const abs = path.resolve(dir);
  for (const mp of (await mountsUnder(abs)).sort((a, b) => b.length - a.length)) {
    const r = await execa('umount', [mp], { reject: false });
    if (r.exitCode !== 0) await execa('umount', ['-l', mp], { reject: false });
  }
  const m = await mountsUnder(abs);
  if (m.length > 0) throw new Error(`debvm: ${dir} still has mounts (${m.join(', ')}); not removing it`);
  await execa('rm', ['-rf', '--one-file-system', dir]);
}

async function duBytes(dir: string): Promise<number> {
  const r = await execa('du', ['-s', '-B1', '--apparent-size', dir]);
  return Number.parseInt(r.stdout.split(/\s/)[0], 10);
}

async function countFiles(dir: string): Promise<number> {
  const r = await execa('find', [dir, '-xdev', '-printf', '.']);
  return r.stdout.length;
}

interface VmInfo {
  arch: DebVmArch;
  format: string;
  versions: Record<string, string>;
  kernel: string;
  initrd: string;
  buildSeconds: number;
  treeBytes: number;
  diskBytes: number;
}

async function buildImage(arch: DebVmArch, dir: string, versions: Record<string, string>, log: (m: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('debvm: building the Debian VM image needs root (mmdebstrap --mode=root, mke2fs -d with real owners)');
  const t0 = Date.now();
  const tmp = `${dir}.tmp-${process.pid}`;
  await removeTree(tmp);
  await mkdir(tmp, { recursive: true });
  try {
    const hooks = { setup: path.join(tmp, 'setup.sh'), customize: path.join(tmp, 'customize.sh') };
    await writeFile(hooks.setup, setupScript(), { mode: 0o755 });
    await writeFile(hooks.customize, customizeScript(), { mode: 0o755 });
    const root = path.join(tmp, 'root');
    log(`debvm: mmdebstrap bookworm ${arch} into ${root}`);
    // --pdeathsig: should this process die, mmdebstrap gets SIGTERM instead of building on as an orphan.
    const r = await execa('setpriv', ['--pdeathsig', 'TERM', '--', 'mmdebstrap', ...mmdebstrapArgs(arch, hooks, root)], { reject: false, all: true });
    if (r.exitCode !== 0) {
      throw new Error(`debvm: mmdebstrap failed (${r.exitCode}):\n${(r.all ?? '').split('\n').slice(-40).join('\n')}`);
    }
    const boot = await readdir(path.join(root, 'boot'));
    const kernels = boot.filter((n) => n.startsWith('vmlinuz-'));
    if (kernels.length !== 1) throw new Error(`debvm: expected one kernel in /boot, found ${boot.join(', ')}`);
    const kver = kernels[0].slice('vmlinuz-'.length);
    if (!boot.includes(`initrd.img-${kver}`)) throw new Error(`debvm: no initrd.img-${kver} in /boot (${boot.join(', ')})`);
    await copyFile(path.join(root, 'boot', kernels[0]), path.join(tmp, 'vmlinuz'));
    await copyFile(path.join(root, 'boot', `initrd.img-${kver}`), path.join(tmp, 'initrd.img'));

    const treeBytes = await duBytes(root);
    const files = await countFiles(root);
    // Content, ~10% for metadata and the journal, plus the free space.
    const mib = Math.ceil((treeBytes * 1.1) / 2 ** 20) + 64 + DEBVM_FREE_MIB;
    const disk = path.join(tmp, 'rootfs.ext4');
    log(`debvm: mke2fs -d (${(treeBytes / 2 ** 20).toFixed(0)} MiB in ${files} files) -> ${mib} MiB ext4`);
    await execa('mke2fs', [
      '-q', '-F', '-t', 'ext4', '-L', 'dockyard-root',
      '-N', String(files + 200_000),
      '-U', 'clear', '-E', 'root_owner=0:0',
      '-d', root, disk, `${mib}M`,
    ]);
    await removeTree(root);
    await rm(hooks.setup, { force: true });
    await rm(hooks.customize, { force: true });
    const info: VmInfo = {
      arch,
      format: FORMAT,
      versions,
      kernel: kver,
      initrd: `initrd.img-${kver}`,
      buildSeconds: Math.round((Date.now() - t0) / 1000),
      treeBytes,
      diskBytes: (await stat(disk)).blocks * 512,
    };
    await writeFile(path.join(tmp, 'info.json'), `${JSON.stringify(info, null, 2)}\n`);
    await rename(tmp, dir);
    log(`debvm: built ${dir} in ${info.buildSeconds}s`);
  } finally {
    await removeTree(tmp).catch(() => {});
  }
}

function vmOf(arch: DebVmArch, dir: string): DebVm {
  return { arch, dir, kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img'), disk: path.join(dir, 'rootfs.ext4') };
}

/**
 * The cached Debian VM image of `arch`, built first if needed (cold: a few
 * minutes for amd64; arm64 runs its maintainer scripts under qemu-user).
 */
export async function debianVm(arch: DebVmArch, log: (m: string) => void = () => {}): Promise<DebVm> {
  const cacheRoot = debVmCacheDir();
  await mkdir(cacheRoot, { recursive: true });
  const versions = await candidateVersions(arch);
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        FORMAT,
        arch,
        versions,
        recipe: mmdebstrapArgs(arch, { setup: 'SETUP', customize: 'CUSTOMIZE' }, 'ROOT'),
        hooks: [setupScript(), customizeScript()],
      }),
    )
    .digest('hex')
    .slice(0, 16);
  const name = `${arch}-${key}`;
  const dir = path.join(cacheRoot, name);
  if (existsSync(path.join(dir, 'info.json'))) return vmOf(arch, dir);
  await withLock(
    path.join(cacheRoot, `${name}.lock`),
    async () => {
      if (existsSync(path.join(dir, 'info.json'))) return;
      await buildImage(arch, dir, versions, log);
      // Older images of this architecture, and the leftovers of dead builds.
      for (const n of await readdir(cacheRoot)) {
        const tmp = /\.tmp-(\d+)$/.exec(n);
        const stale = tmp ? !pidAlive(Number(tmp[1])) : n.startsWith(`${arch}-`) && n !== name && !n.endsWith('.lock');
        if (stale) {
          log(`debvm: pruning ${n}`);
          await removeTree(path.join(cacheRoot, n)).catch(() => {});
        }
      }
    },
    log,
  );
  return vmOf(arch, dir);
}

/** Writes the per-run disk (ext4 labelled dockyard-run) holding `files` and run.sh. */
async function makeRunDisk(work: string, o: RunInVmOptions): Promise<string> {
  const tree = path.join(work, 'run');
  await mkdir(tree, { recursive: true });
  const all: VmFile[] = [...o.files, { name: 'run.sh', content: o.script, mode: 0o755 }];
  let bytes = 0;
  for (const f of all) {
    const rel = path.posix.normalize(f.name);
    if (rel.startsWith('..') || path.posix.isAbsolute(rel)) throw new Error(`debvm: file name ${f.name} leaves the run disk`);
    const dst = path.join(tree, rel);
    await mkdir(path.dirname(dst), { recursive: true });
    if (f.path !== undefined) {
      // A link shares the inode: copy when the mode is to change.
      if (f.mode === undefined) await link(f.path, dst).catch(() => copyFile(f.path!, dst));
      else await copyFile(f.path, dst);
    } else {
      await writeFile(dst, f.content ?? '');
    }
    bytes += (await stat(dst)).size;
    if (f.mode !== undefined || f.path === undefined) await chmod(dst, f.mode ?? 0o644);
  }
  const mib = Math.ceil((bytes * 1.05) / 2 ** 20) + 16 + (o.runDiskFreeMiB ?? 256);
  const disk = path.join(work, 'run.ext4');
  // No journal: after the guest's sync, everything is in place for debugfs (out/), even if umount failed.
  await execa('mke2fs', ['-q', '-F', '-t', 'ext4', '-O', '^has_journal', '-L', RUN_LABEL, '-E', 'root_owner=0:0', '-d', tree, disk, `${mib}M`]);
  await rm(tree, { recursive: true, force: true });
  return disk;
}

/**
 * Boots `vm` and runs `o.script` (with `o.files` beside it) as root under
 * systemd; resolves with the console and the script's status.
 */
export async function runInVm(vm: DebVm, o: RunInVmOptions): Promise<RunInVmResult> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'dockyard-debvm-'));
  try {
    const runDisk = await makeRunDisk(work, o);
    const consoleDev = defaultConsole(vm.arch);
    const cmdline = [
      'root=/dev/vda', 'rw', `console=${consoleDev}`, 'quiet', 'loglevel=3', 'systemd.show_status=0',
      'panic=-1', 'net.ifnames=0', 'fsck.mode=skip',
      ...(o.network ? [] : NETWORKD_UNITS.map((u) => `systemd.mask=${u}`)),
      o.cmdline ?? '',
    ].filter((s) => s !== '').join(' ');
    const { bin, args } = qemuCommand({
      arch: vm.arch,
      kernel: vm.kernel,
      initrd: vm.initrd,
      cmdline,
      timeoutMs: o.timeoutMs,
      memoryMB: o.memMiB ?? 2048,
      extraArgs: [
        '-smp', '2',
        // cache=unsafe: guest flushes are no-ops (nothing here must survive a host crash).
        '-drive', `if=virtio,format=raw,snapshot=on,cache=unsafe,file=${vm.disk}`,
        '-drive', `if=virtio,format=raw,cache=unsafe,file=${runDisk}`,
        ...(o.network ? ['-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0'] : []),
        '-device', 'virtio-rng-pci',
      ],
    });
    const r = await runQemuLines(bin, args, o.timeoutMs, o.onLine);
    // The last marker line: the runner prints it once, after the script.
    const m = [...r.log.matchAll(new RegExp(`^${EXIT_MARKER} (\\d+)$`, 'gm'))].pop();
    if (o.outDir !== undefined && r.reason !== 'timeout') await dumpOut(runDisk, work, o.outDir);
    return { ...r, status: m ? Number(m[1]) : undefined };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * A console line as a terminal shows it: ANSI escape sequences (colours,
 * cursor moves) removed, and of a line rewritten with `\r` (progress
 * meters) only the last version.
 */
export function terminalLine(raw: string): string {
  const plain = raw.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '').replace(/\x1b[()][0-9A-Za-z]/g, '').replace(/\r+$/, '');
  const i = plain.lastIndexOf('\r');
  return i < 0 ? plain : plain.slice(i + 1);
}

/** Copies the run disk's /out into `outDir` (debugfs, the disk is not mounted). */
async function dumpOut(runDisk: string, work: string, outDir: string): Promise<void> {
  const dump = path.join(work, 'dump');
  await mkdir(dump, { recursive: true });
  const r = await execa('debugfs', ['-R', `rdump /out ${dump}`, runDisk], { reject: false, all: true });
  if (!existsSync(path.join(dump, 'out'))) throw new Error(`debvm: cannot read out/ from the run disk: ${r.all ?? ''}`);
  await mkdir(outDir, { recursive: true });
  for (const n of await readdir(path.join(dump, 'out'))) {
    await rm(path.join(outDir, n), { recursive: true, force: true });
    await rename(path.join(dump, 'out', n), path.join(outDir, n));
  }
}

/** Spawns qemu, passes each console line on, ends at exit, timeout, or a grace time after the marker (killed by PID). */
function runQemuLines(
  bin: string,
  args: string[],
  timeoutMs: number,
  onLine?: (l: string) => void,
): Promise<Omit<RunInVmResult, 'status'>> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let partial = '';
    let err = '';
    let settled = false;
    let sawMarker = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    };
    const finish = (reason: RunInVmResult['reason']): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (graceTimer) clearTimeout(graceTimer);
      if (reason !== 'exit') kill();
      if (partial !== '') lines.push(partial);
      const text = lines.join('\n');
      resolve({ log: err === '' ? text : `${text}\n[qemu stderr]\n${err}`, ms: Date.now() - t0, reason });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      const parts = (partial + d).split('\n');
      partial = parts.pop() ?? '';
      for (const raw of parts) {
        const line = terminalLine(raw);
        lines.push(line);
        onLine?.(line);
        if (!sawMarker && line.startsWith(`${EXIT_MARKER} `)) {
          sawMarker = true;
          // The guest powers off right after; do not wait for ever if it does not.
          graceTimer = setTimeout(() => finish('marker'), 20_000);
        }
      }
    });
    child.stderr.on('data', (d: string) => {
      err += d;
    });
    child.on('error', (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`debvm: cannot run ${bin}: ${e.message}`));
    });
    child.on('close', () => finish('exit'));
  });
}

/** For a test's skip reason: what debianVm needs that this machine lacks, or undefined. */
export async function debVmMissing(arch: DebVmArch): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root (mmdebstrap --mode=root)';
  const tools = ['mmdebstrap', 'setpriv', 'mke2fs', 'debugfs', qemuCommand({ arch, kernel: '', initrd: '', timeoutMs: 0 }).bin];
  if (arch === 'arm64' && os.arch() !== 'arm64') tools.push('arch-test');
  for (const tool of tools) {
    const r = await execa('sh', ['-c', `command -v ${tool}`], { reject: false });
    if (r.exitCode !== 0) return `${tool} is not installed`;
  }
  if (arch === 'arm64' && os.arch() !== 'arm64') {
    const binfmt = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
    if (!existsSync(binfmt)) return 'no binfmt_misc entry for qemu-aarch64 (apt-get install qemu-user-static binfmt-support)';
    const text = await readFile(binfmt, 'utf8');
    if (!/^enabled/m.test(text) || !/^flags:.*F/m.test(text)) return 'the qemu-aarch64 binfmt_misc entry is disabled or lacks the F flag';
  }
  return undefined;
}
