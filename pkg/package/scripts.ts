/**
 * Maintainer scripts, generated in each format's idiom to do what Debian's
 * debhelper (dh_installsystemd, dh_installsysusers) and Fedora's
 * %systemd_post/%systemd_preun/%systemd_postun_with_restart do for units:
 * system groups and users made before the files land; on install the units
 * enabled and started; on upgrade the running ones restarted; on remove
 * stopped and disabled; daemon-reload whenever unit files came or went.
 * systemctl is only asked to start or stop things when systemd runs (not in
 * a chroot: /run/systemd/system is absent there); enabling works anyway.
 * Groups and users are kept on purge, as Debian policy asks (files may
 * still belong to them).
 *
 * The user's own scripts run after dockyard's steps, each in a subshell so
 * an `exit` in them ends only their part.
 */
import type { Account, RenderedScripts } from './types.js';

export interface ScriptInput {
  /** Units to enable, start, restart and stop, in start order. */
  units: string[];
  accounts: Account[];
  /** Contents of the user's scripts. */
  user: Partial<Record<'preinstall' | 'postinstall' | 'preremove' | 'postremove', string>>;
}

const SYSTEMD = '[ -d /run/systemd/system ]';

function accountLines(accounts: Account[]): string[] {
  const out: string[] = [];
  for (const a of accounts) {
    if (a.kind === 'group') out.push(`getent group ${a.name} >/dev/null || groupadd --system ${a.name}`);
  }
  for (const a of accounts) {
    if (a.kind !== 'user') continue;
    const g = a.group ?? a.name;
    out.push(`getent group ${g} >/dev/null || groupadd --system ${g}`);
    out.push(`getent passwd ${a.name} >/dev/null || useradd --system --gid ${g} --home-dir ${a.home ?? '/nonexistent'} --no-create-home --shell ${a.shell ?? '/usr/sbin/nologin'} ${a.name}`);
  }
  return out;
}

function user(text: string | undefined): string[] {
  if (text === undefined) return [];
  return ['# the package\'s own script', '(', text.replace(/\n?$/, ''), ')'];
}

function indent(lines: string[], by = '  '): string[] {
  return lines.map((l) => (l === '' ? l : by + l));
}

function sh(lines: string[]): string | undefined {
  if (lines.length === 0) return undefined;
  return ['#!/bin/sh', 'set -e', ...lines, ''].join('\n');
}

export function renderScripts(s: ScriptInput): RenderedScripts {
  const units = s.units.join(' ');
  const accounts = accountLines(s.accounts);
  const has = s.units.length > 0;
  const enableStart = has ? [`systemctl enable ${units} >/dev/null 2>&1 || true`, `if ${SYSTEMD}; then systemctl daemon-reload; systemctl start ${units}; fi`] : [];
  // On upgrade the running services restart with the new binaries; sockets stay (restarting one stops the service behind it).
  const services = s.units.filter((u) => !u.endsWith('.socket'));
  const restart = has ? [`if ${SYSTEMD}; then systemctl daemon-reload; ${services.length ? `systemctl try-restart ${services.join(' ')} || true; ` : ''}fi`] : [];
  const stopDisable = has ? [`if ${SYSTEMD}; then systemctl stop ${[...s.units].reverse().join(' ')} || true; fi`, `systemctl disable ${units} >/dev/null 2>&1 || true`] : [];
  const reload = has ? [`if ${SYSTEMD}; then systemctl daemon-reload || true; fi`] : [];

  // deb: preinst install|upgrade; postinst configure OLD; prerm remove|upgrade; postrm remove|purge|upgrade.
  const deb = {
    preinst: sh([...(accounts.length ? ['case "$1" in', '  install|upgrade)', ...indent(accounts, '    '), '    ;;', 'esac'] : []), ...user(s.user.preinstall)]),
    postinst: sh([
      ...(has || accounts.length
        ? ['if [ "$1" = configure ]; then', ...indent(accounts), ...(has ? ['  if [ -z "$2" ]; then', ...indent(enableStart, '    '), '  else', ...indent(restart, '    '), '  fi'] : []), 'fi']
        : []),
      ...user(s.user.postinstall),
    ]),
    prerm: sh([...(has ? ['if [ "$1" = remove ]; then', ...indent(stopDisable), 'fi'] : []), ...user(s.user.preremove)]),
    postrm: sh([...(has ? ['case "$1" in', '  remove|purge)', ...indent(reload, '    '), '    ;;', 'esac'] : []), ...user(s.user.postremove)]),
  };

  // rpm: $1 counts the installed instances after the operation (1 install, 2 upgrade, 0 erase).
  const body = (lines: string[]) => (lines.length ? lines.join('\n') + '\n' : undefined);
  const rpm = {
    pre: body([...accounts, ...user(s.user.preinstall)]),
    post: body([...(has ? ['if [ "$1" -eq 1 ]; then', ...indent(enableStart), 'fi'] : []), ...user(s.user.postinstall)]),
    preun: body([...(has ? ['if [ "$1" -eq 0 ]; then', ...indent(stopDisable), 'fi'] : []), ...user(s.user.preremove)]),
    postun: body([...(has ? [...reload, 'if [ "$1" -ge 1 ]; then', ...indent(restart), 'fi'] : []), ...user(s.user.postremove)]),
  };

  // pacman: .INSTALL functions, called with the new (and old) version.
  const fns: [string, string[]][] = [
    ['pre_install', [...accounts, ...user(s.user.preinstall)]],
    ['post_install', [...enableStart, ...user(s.user.postinstall)]],
    ['pre_upgrade', [...accounts, ...user(s.user.preinstall)]],
    ['post_upgrade', [...restart, ...user(s.user.postinstall)]],
    ['pre_remove', [...stopDisable, ...user(s.user.preremove)]],
    ['post_remove', [...reload, ...user(s.user.postremove)]],
  ];
  const used = fns.filter(([, l]) => l.length > 0);
  const pacman = used.length ? used.map(([n, l]) => [`${n}() {`, ...indent(l), '}', ''].join('\n')).join('\n') : undefined;
  const clean = <T extends Record<string, string | undefined>>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  return { deb: clean(deb), rpm: clean(rpm), pacman };
}
