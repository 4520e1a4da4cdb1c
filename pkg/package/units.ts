/**
 * systemd units that run a spec's containers on an ordinary host, as
 * LinuxKit's init and service daemon run them on a LinuxKit system: onboot
 * containers one after another to completion (ordered oneshot units),
 * services side by side and kept running (Restart=on-failure), onshutdown
 * containers when the system stops. Before `runc run`, each unit does what
 * LinuxKit's runtime.json asks (its mounts and mkdirs: the overlay of the
 * image's root and a tmpfs, or the read-only bind), and undoes the mounts
 * after. Network interfaces and namespace binds of runtime.json have no
 * meaning on such a host: they are reported, not applied.
 */
import type { PlannedBundle } from '../plan/plan.js';

export interface ContainerUnit {
  /** `NAME-onboot-000-dhcpcd.service`, `NAME-sshd.service`. */
  name: string;
  text: string;
}

/** runc as Debian, Fedora and Arch install it. */
export const RUNC = '/usr/bin/runc';

const PROPAGATION = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable']);

/** systemd's command-line quoting: a word with a space, quote or backslash in double quotes. */
function q(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function cmd(...args: string[]): string {
  return args.map(q).join(' ');
}

/** The commands that set up one runtime.json mount, and the one that takes it down (if any). */
function mountCommands(m: PlannedBundle['runtime']['mounts'][number]): { up: string[]; down?: string } {
  const dest = m.destination;
  const opts = m.options ?? [];
  const up: string[] = [cmd('/bin/mkdir', '-p', dest)];
  const prop = opts.filter((o) => PROPAGATION.has(o));
  const rest = opts.filter((o) => !PROPAGATION.has(o));
  if (rest.includes('remount')) {
    const others = rest.filter((o) => o !== 'remount');
    if (others.length > 0) up.push(cmd('/bin/mount', '-o', ['remount', ...others].join(','), dest));
    for (const p of prop) up.push(cmd('/bin/mount', `--make-${p}`, dest));
    return { up };
  }
  const bind = rest.includes('bind') || rest.includes('rbind');
  if (m.type === 'overlay') {
    // The overlay's upper and work directories live in the tmpfs mounted just before.
    for (const o of rest) {
      const kv = /^(upperdir|workdir)=(.*)$/.exec(o);
      if (kv) up.push(cmd('/bin/mkdir', '-p', kv[2]));
    }
  }
  const args = ['/bin/mount'];
  if (m.type && !bind) args.push('-t', m.type);
  if (rest.length > 0) args.push('-o', rest.join(','));
  args.push(m.source ?? m.type ?? 'none', dest);
  up.push(cmd(...args));
  for (const p of prop) up.push(cmd('/bin/mount', `--make-${p}`, dest));
  return { up, down: cmd('/bin/umount', '-l', dest) };
}

/** What runtime.json asks that a systemd host cannot do, in words (for a warning). */
export function unsupportedRuntime(b: PlannedBundle): string[] {
  const r = b.runtime;
  const out: string[] = [];
  if (r.interfaces.length > 0) out.push('runtime.interfaces');
  if (Object.values(r.bindNS).some((v) => v !== '')) out.push('runtime.bindNS');
  if (r.namespace !== '') out.push('runtime.namespace');
  if (r.cgroups.length > 0) out.push('runtime.cgroups');
  return out;
}

export function containerUnits(pkgName: string, bundles: PlannedBundle[]): ContainerUnit[] {
  const out: ContainerUnit[] = [];
  const runcRoot = `/run/${pkgName}/runc`;
  const onboot: string[] = [];
  for (const b of bundles) {
    const base = b.dir.slice(b.dir.lastIndexOf('/') + 1);
    const unit = b.section === 'services' ? `${pkgName}-${b.name}.service` : `${pkgName}-${b.section}-${base}.service`;
    const id = b.section === 'services' ? `${pkgName}-${b.name}` : `${pkgName}-${b.section}-${base}`;
    const dir = `/${b.dir}`;
    const ups: string[] = [];
    const downs: string[] = [];
    for (const d of b.runtime.mkdir) ups.push(cmd('/bin/mkdir', '-p', d));
    for (const m of b.runtime.mounts) {
      const c = mountCommands(m);
      ups.push(...c.up);
      if (c.down) downs.unshift(c.down);
    }
    const run = cmd(RUNC, '--root', runcRoot, 'run', '--bundle', dir, id);
    const lines = ['[Unit]', `Description=${pkgName}: ${b.section} container ${b.name} (dockyard)`];
    if (b.section === 'onboot') {
      lines.push('DefaultDependencies=no', 'After=local-fs.target', ...(onboot.length ? [`After=${onboot[onboot.length - 1]}`] : []), 'Before=multi-user.target');
    } else if (b.section === 'services') {
      lines.push('After=local-fs.target network.target', ...onboot.map((u) => `After=${u}`));
    } else {
      lines.push('After=local-fs.target', 'DefaultDependencies=no', 'Before=shutdown.target');
    }
    lines.push('', '[Service]');
    if (b.section === 'services') {
      lines.push('Type=simple', 'Restart=on-failure', 'RestartSec=2');
      for (const u of ups) lines.push(`ExecStartPre=${u}`);
      lines.push(`ExecStartPre=-${cmd(RUNC, '--root', runcRoot, 'delete', '-f', id)}`, `ExecStart=${run}`);
    } else if (b.section === 'onboot') {
      lines.push('Type=oneshot', 'RemainAfterExit=yes');
      for (const u of ups) lines.push(`ExecStartPre=${u}`);
      lines.push(`ExecStartPre=-${cmd(RUNC, '--root', runcRoot, 'delete', '-f', id)}`, `ExecStart=${run}`);
    } else {
      // onshutdown: nothing at start; the container runs when the unit is stopped at shutdown.
      lines.push('Type=oneshot', 'RemainAfterExit=yes', 'ExecStart=/bin/true');
      for (const u of ups) lines.push(`ExecStop=${u}`);
      lines.push(`ExecStop=-${cmd(RUNC, '--root', runcRoot, 'delete', '-f', id)}`, `ExecStop=${run}`);
    }
    lines.push(`ExecStopPost=-${cmd(RUNC, '--root', runcRoot, 'delete', '-f', id)}`);
    for (const d of downs) lines.push(`ExecStopPost=-${d}`);
    lines.push('', '[Install]', 'WantedBy=multi-user.target', '');
    out.push({ name: unit, text: lines.join('\n') });
    if (b.section === 'onboot') onboot.push(unit);
  }
  return out;
}
