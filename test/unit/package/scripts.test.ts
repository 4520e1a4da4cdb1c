/**
 * The generated maintainer scripts: valid shell for every format (sh -n),
 * each phase doing what debhelper and Fedora's systemd macros do, and the
 * package's own scripts run after dockyard's steps.
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { renderScripts } from '../../../pkg/package/scripts.js';

const input = {
  units: ['containerd.service', 'docker.socket', 'docker.service'],
  accounts: [
    { kind: 'group' as const, name: 'docker' },
    { kind: 'user' as const, name: 'svc', group: 'svc', home: '/var/lib/svc' },
  ],
  user: { postinstall: 'echo my-postinstall\nexit 0\n', preremove: 'echo my-preremove\n' },
};

const syntax = async (text: string) => (await execa('sh', ['-n'], { input: text, reject: false })).exitCode;

describe('maintainer scripts', () => {
  const s = renderScripts(input);

  it('are valid shell in every format', async () => {
    for (const text of Object.values(s.deb)) expect(await syntax(text!)).toBe(0);
    for (const text of Object.values(s.rpm)) expect(await syntax(text!)).toBe(0);
    expect(await syntax(s.pacman!)).toBe(0);
  });

  it('deb: groups and users before the files, enable and start on install, try-restart services on upgrade, stop and disable on remove', () => {
    expect(s.deb.preinst).toMatch(/install\|upgrade\)\n\s+getent group docker >\/dev\/null \|\| groupadd --system docker/);
    expect(s.deb.preinst).toContain('useradd --system --gid svc --home-dir /var/lib/svc --no-create-home --shell /usr/sbin/nologin svc');
    expect(s.deb.postinst).toMatch(/if \[ -z "\$2" \]; then\n\s+systemctl enable containerd.service docker.socket docker.service/);
    expect(s.deb.postinst).toContain('systemctl try-restart containerd.service docker.service');
    expect(s.deb.postinst).not.toMatch(/try-restart[^\n]*docker\.socket/);
    expect(s.deb.prerm).toMatch(/if \[ "\$1" = remove \]; then\n\s+if \[ -d \/run\/systemd\/system \]; then systemctl stop docker.service docker.socket containerd.service/);
    // The package's own script runs last, in a subshell: its exit ends only its part.
    expect(s.deb.postinst!.trimEnd()).toMatch(/\(\necho my-postinstall\nexit 0\n\)$/);
  });

  it('rpm: by the instance count in $1', () => {
    expect(s.rpm.post).toMatch(/^if \[ "\$1" -eq 1 \]; then\n\s+systemctl enable/);
    expect(s.rpm.preun).toMatch(/^if \[ "\$1" -eq 0 \]; then\n/);
    expect(s.rpm.postun).toMatch(/if \[ "\$1" -ge 1 \]; then\n\s+if \[ -d \/run\/systemd\/system \]; then systemctl daemon-reload; systemctl try-restart/);
    expect(s.rpm.pre).toContain('groupadd --system docker');
  });

  it('pacman: the .INSTALL functions', () => {
    for (const f of ['pre_install', 'post_install', 'pre_upgrade', 'post_upgrade', 'pre_remove', 'post_remove']) expect(s.pacman).toContain(`${f}() {`);
  });

  it('nothing to do: no scripts at all', () => {
    const none = renderScripts({ units: [], accounts: [], user: {} });
    expect(none).toEqual({ deb: {}, rpm: {}, pacman: undefined });
  });
});
