/**
 * Distro packages from a spec and its images (-f deb, rpm, pacman), judged
 * by the ecosystems' own tools — dpkg-deb and lintian, rpm -qp/-K and
 * rpmlint, pacman -Qip/-Qlp — built twice for identical bytes, and the bad
 * inputs of the issue: one clear line each, nothing written.
 *
 * Images: the conformance corpus (test/data/conformance/images), imported
 * into a fresh cache; the engine packages of examples/engine.yml are judged
 * in engine.test.ts (they need the fixture images).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { dockyard, dataDir } from '../harness/cli.js';

const busybox = '127.0.0.1:5000/fixtures/busybox:1';
const layered = '127.0.0.1:5000/fixtures/layered:1';

const spec = `
onboot:
  - name: hello
    image: ${busybox}
    command: ["/bin/sh", "-c", "echo hello"]
services:
  - name: svc
    image: ${busybox}
    command: ["/bin/sh", "-c", "sleep 1000"]
files:
  - path: etc/hello/motd
    contents: "hi\\n"
    mode: "0644"
package:
  name: hello-appliance
  version: 1.0.0
  release: 2
  maintainer: Dockyard Tests <tests@dockyard.invalid>
  summary: a test appliance
  description: |
    Services of a LinuxKit spec, run by systemd through runc.
  homepage: https://example.org/hello
  license: Apache-2.0
  depends: [libc6]
  overrides:
    rpm:
      depends: [glibc]
    pacman:
      depends: [glibc]
  groups: [hello]
  contents:
    - image: ${busybox}
      src: /bin/busybox
      dst: /usr/lib/hello-appliance/bin/busybox
    - image: ${busybox}
      src: /usr/share/fixture
      dst: /usr/share/hello-appliance
      type: tree
    - dst: /etc/hello/config.json
      content: "{}\\n"
      type: config|noreplace
    - dst: /usr/bin/hello-busybox
      src: /usr/lib/hello-appliance/bin/busybox
      type: symlink
    - dst: /var/lib/hello
      type: dir
      file_info: { mode: "0750" }
  changelog:
    - version: 1.0.0-2
      date: 2026-11-30T12:00:00Z
      changes: [Second release.]
    - version: 1.0.0-1
      date: 2026-11-01T12:00:00Z
      changes: [First release.]
`;

let work: string;
let cache: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-packages-'));
  cache = join(work, 'cache');
  const r = await dockyard(['cache', '--cache', cache, 'import', join(dataDir, 'conformance/images')]);
  expect(r.exitCode, r.stderr).toBe(0);
  await writeFile(join(work, 'hello.yml'), spec);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const sha = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');

async function build(dir: string, formats: string, file = join(work, 'hello.yml'), extra: string[] = []) {
  return dockyard(['build', '--cache', cache, '--offline', '--dir', join(work, dir), '-f', formats, '--arch', 'amd64,arm64', ...extra, file]);
}

describe('packages from a spec', () => {
  it('deb: fields, files, conffiles and lintian without errors, both arches', async () => {
    const r = await build('deb', 'deb');
    expect(r.exitCode, r.stderr).toBe(0);
    for (const arch of ['amd64', 'arm64']) {
      const deb = join(work, 'deb', arch, `hello-appliance_1.0.0-2_${arch}.deb`);
      const field = async (k: string) => (await execa('dpkg-deb', ['--field', deb, k])).stdout;
      expect(await field('Architecture')).toBe(arch);
      expect(await field('Version')).toBe('1.0.0-2');
      expect(await field('Depends')).toBe('libc6, runc');
      const list = (await execa('dpkg-deb', ['--contents', deb])).stdout;
      expect(list).toMatch(/-rwxr-xr-x root\/root\s+\d+ 2026-11-30 12:00 \.\/usr\/lib\/hello-appliance\/bin\/busybox\n/);
      expect(list).toContain('./usr/share/hello-appliance/busybox.txt');
      expect(list).toMatch(/drwxr-x--- root\/root\s+0 \S+ \S+ \.\/var\/lib\/hello\/(\n|$)/);
      expect(list).toContain('./usr/lib/systemd/system/hello-appliance-svc.service');
      expect(list).toContain('./usr/lib/systemd/system/hello-appliance-onboot-000-hello.service');
      expect(list).toContain('./usr/lib/hello-appliance/containers/services/svc/config.json');
      expect(list).toContain('./etc/hello/motd');
      const ctl = join(work, `ctl-${arch}`);
      await execa('dpkg-deb', ['--control', deb, ctl]);
      // Every file in /etc is a conffile, as debhelper makes them.
      expect((await readFile(join(ctl, 'conffiles'), 'utf8')).trim().split('\n')).toEqual(['/etc/hello/config.json', '/etc/hello/motd']);
      expect(await readFile(join(ctl, 'postinst'), 'utf8')).toMatch(/groupadd --system hello[\s\S]*systemctl enable hello-appliance-onboot-000-hello.service hello-appliance-svc.service/);
      const lint = await execa('lintian', ['--no-tag-display-limit', deb], { reject: false });
      expect(lint.stdout.split('\n').filter((l) => l.startsWith('E:')), lint.stdout).toEqual([]);
    }
  });

  it('pacman: pacman -Qip and -Qlp read it, both arches', async () => {
    const r = await build('pacman', 'pacman');
    expect(r.exitCode, r.stderr).toBe(0);
    for (const [arch, parch] of [['amd64', 'x86_64'], ['arm64', 'aarch64']]) {
      const pkg = join(work, 'pacman', arch, `hello-appliance-1.0.0-2-${parch}.pkg.tar.gz`);
      const info = (await execa('pacman', ['-Qip', pkg])).stdout;
      expect(info).toMatch(/^Name\s+: hello-appliance$/m);
      expect(info).toMatch(/^Version\s+: 1\.0\.0-2$/m);
      expect(info).toMatch(/^Architecture\s+: /m);
      expect(info).toMatch(new RegExp(`^Architecture\\s+: ${parch}$`, 'm'));
      expect(info).toMatch(/^Depends On\s+: glibc\s+runc$/m);
      expect(info).toMatch(/^Install Script\s+: Yes$/m);
      const files = (await execa('pacman', ['-Qlp', pkg])).stdout;
      expect(files).toContain('hello-appliance /usr/lib/hello-appliance/bin/busybox\n');
      expect(files).toContain('hello-appliance /usr/lib/systemd/system/hello-appliance-svc.service\n');
    }
  });

  it('rpm: rpm -qp reads it, rpm -K finds its digests OK, rpmlint finds nothing but the signature missing, both arches', async () => {
    const r = await build('rpm', 'rpm');
    expect(r.exitCode, r.stderr).toBe(0);
    for (const [arch, rarch] of [['amd64', 'x86_64'], ['arm64', 'aarch64']]) {
      const rpm = join(work, 'rpm', arch, `hello-appliance-1.0.0-2.${rarch}.rpm`);
      const q = async (...a: string[]) => (await execa('rpm', ['-qp', ...a, rpm])).stdout;
      expect(await q('--queryformat', '%{NAME} %{VERSION} %{RELEASE} %{ARCH}')).toBe(`hello-appliance 1.0.0 2 ${rarch}`);
      expect((await q('--requires')).split('\n')).toEqual(expect.arrayContaining(['glibc', 'runc', '/bin/sh']));
      const dump = await q('--dump');
      expect(dump).toMatch(/^\/usr\/lib\/hello-appliance\/bin\/busybox \d+ \d+ [0-9a-f]{64} 0100755 root root 0 0 0 X$/m);
      expect(dump).toMatch(/^\/etc\/hello\/config\.json 3 \d+ [0-9a-f]{64} 0100644 root root 1 0 0 X$/m);
      expect(dump).toContain('/usr/lib/systemd/system/hello-appliance-svc.service');
      expect(dump).not.toMatch(/^\/usr \d/m); // system directories belong to the distro's filesystem package
      const scripts = await q('--scripts');
      expect(scripts).toMatch(/preinstall scriptlet \(using \/bin\/sh\):\ngetent group hello/);
      expect(scripts).toMatch(/postinstall scriptlet[\s\S]*systemctl enable hello-appliance-onboot-000-hello.service hello-appliance-svc.service/);
      expect((await execa('rpm', ['-K', rpm])).stdout).toMatch(/: digests OK$/);
      const lint = await execa('rpmlint', [rpm], { reject: false });
      const errors = lint.stdout.split('\n').filter((l) => / E: /.test(l)).map((l) => l.replace(/^.*? E: /, ''));
      // Explained (README, "Engine packages"): the package is unsigned; this one holds no ELF file (the
      // conformance busybox is a script); a container's root keeps its image's modes; /var/lib/hello is 0750 as asked.
      const explained = (e: string) => /^(no-signature|no-binary)$/.test(e) || / \/usr\/lib\/hello-appliance\/containers\//.test(e) || e === 'non-standard-dir-perm /var/lib/hello 750';
      expect(errors.filter((e) => !explained(e)), lint.stdout).toEqual([]);
    }
  });

  it('the same bytes when built again', async () => {
    const again = await build('again', 'deb,rpm,pacman');
    expect(again.exitCode, again.stderr).toBe(0);
    for (const arch of ['amd64', 'arm64']) {
      const deb = `hello-appliance_1.0.0-2_${arch}.deb`;
      expect(await sha(join(work, 'again', arch, deb))).toBe(await sha(join(work, 'deb', arch, deb)));
      const pac = `hello-appliance-1.0.0-2-${arch === 'amd64' ? 'x86_64' : 'aarch64'}.pkg.tar.gz`;
      expect(await sha(join(work, 'again', arch, pac))).toBe(await sha(join(work, 'pacman', arch, pac)));
      const rpm = `hello-appliance-1.0.0-2.${arch === 'amd64' ? 'x86_64' : 'aarch64'}.rpm`;
      expect(await sha(join(work, 'again', arch, rpm))).toBe(await sha(join(work, 'rpm', arch, rpm)));
    }
  });

  it('sysext: the package as a system extension (unsquashfs; EROFS read by fsck.erofs), the same bytes again; a path outside /usr and /opt is one line naming it', async () => {
    // The spec as written puts files in /etc and /var: refused, naming them.
    const bad = await build('sysext-bad', 'sysext');
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr.trim().split('\n').filter((l) => l.startsWith('dockyard:'))).toEqual([
      expect.stringMatching(/^dockyard: sysext: a system extension holds only \/usr and \/opt, but the package has \/etc\/hello\/config\.json, \/etc\/hello\/motd, \/var\/lib\/hello \(limit them to other formats with packager: \[deb, rpm, pacman\]\)$/),
    ]);
    expect((await readdir(join(work, 'sysext-bad'), { recursive: true }).catch(() => [])).filter((f) => String(f).includes('.'))).toEqual([]);
    // Limited to the packages, the rest is a sysext.
    const only = (s: string) =>
      s
        .replace(/files:\n(?: {2}.*\n)+/, '')
        .replace('      type: config|noreplace\n', '      type: config|noreplace\n      packager: [deb, rpm, pacman]\n')
        .replace('      file_info: { mode: "0750" }\n', '      file_info: { mode: "0750" }\n      packager: [deb, rpm, pacman]\n');
    await writeFile(join(work, 'ext.yml'), only(spec));
    await writeFile(join(work, 'ext-erofs.yml'), only(spec) + '  sysext: { filesystem: erofs, id: debian, version_id: "12" }\n');
    for (const run of ['ext', 'ext-again']) {
      const r = await build(run, 'sysext', join(work, 'ext.yml'));
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const e = await build('ext-erofs', 'sysext', join(work, 'ext-erofs.yml'));
    expect(e.exitCode, e.stderr).toBe(0);
    for (const arch of ['amd64', 'arm64']) {
      const raw = join(work, 'ext', arch, 'ext.raw');
      expect(await sha(join(work, 'ext-again', arch, 'ext.raw'))).toBe(await sha(raw));
      const list = (await execa('unsquashfs', ['-lln', raw])).stdout;
      expect(list).toMatch(/^-rwxr-xr-x 0\/0 .* squashfs-root\/usr\/lib\/hello-appliance\/bin\/busybox$/m);
      expect(list).toMatch(/^lrwxrwxrwx 0\/0 .* squashfs-root\/usr\/bin\/hello-busybox -> \/usr\/lib\/hello-appliance\/bin\/busybox$/m);
      expect(list).toMatch(/squashfs-root\/usr\/lib\/hello-appliance\/containers\/services\/svc\/config\.json$/m);
      expect(list).not.toMatch(/squashfs-root\/(etc|var)/);
      const release = (await execa('unsquashfs', ['-cat', raw, 'usr/lib/extension-release.d/extension-release.ext'])).stdout;
      expect(release).toBe(`ID=_any\nARCHITECTURE=${arch === 'amd64' ? 'x86-64' : 'arm64'}\nIMAGE_ID=ext\nIMAGE_VERSION=1.0.0-2`);
      expect((await execa('unsquashfs', ['-cat', raw, 'usr/lib/sysusers.d/ext.conf'])).stdout).toMatch(/^g hello -$/m);

      const ef = join(work, 'ext-erofs', arch, 'ext-erofs.raw');
      const x = join(work, `erofs-x-${arch}`);
      await execa('fsck.erofs', [`--extract=${x}`, ef]);
      expect(await readFile(join(x, 'usr/lib/extension-release.d/extension-release.ext-erofs'), 'utf8')).toMatch(/^ID=debian\nVERSION_ID=12\nARCHITECTURE=/);
      const sq = join(work, `sq-x-${arch}`);
      await execa('unsquashfs', ['-d', sq, raw]);
      expect(await sha(join(x, 'usr/lib/hello-appliance/bin/busybox'))).toBe(await sha(join(sq, 'usr/lib/hello-appliance/bin/busybox')));
    }
  });

  describe('bad input: one line, nothing written', () => {
    const cases: [string, string, RegExp][] = [
      ['invalid name', spec.replace('name: hello-appliance', 'name: Hello_Appliance'), /^dockyard: .*bad\.yml:\d+:\d+: package\.name: package name "Hello_Appliance" is not a valid Debian package name/m],
      ['invalid version', spec.replace('version: 1.0.0\n', 'version: 1.0-beta\n'), /^dockyard: .*bad\.yml:\d+:\d+: package\.version: version "1\.0-beta" is not a valid Debian upstream version/m],
      ['a source missing from its image', spec.replace('src: /bin/busybox', 'src: /bin/nothere'), /^dockyard: .*bad\.yml:\d+:\d+: package\.contents \/usr\/lib\/hello-appliance\/bin\/busybox: \/bin\/nothere is not in image 127\.0\.0\.1:5000\/fixtures\/busybox:1$/m],
      [
        'two images claiming one path',
        spec.replace('    - dst: /etc/hello/config.json', `    - image: ${layered}\n      src: /bin/tool\n      dst: /usr/lib/hello-appliance/bin/busybox\n    - dst: /etc/hello/config.json`),
        /^dockyard: .*both provide \/usr\/lib\/hello-appliance\/bin\/busybox$/m,
      ],
      ['package: in the wrong place', spec.replace('    command: ["/bin/sh", "-c", "echo hello"]', '    command: ["/bin/sh", "-c", "echo hello"]\n    package: { name: x }'), /^dockyard: .*bad\.yml:\d+:\d+: unknown key "package" in onboot\[0\] \(hello\)$/m],
    ];
    for (const [what, text, want] of cases) {
      it(what, async () => {
        const dir = `bad-${what.replace(/\W+/g, '-')}`;
        await writeFile(join(work, 'bad.yml'), text);
        const r = await build(dir, 'deb', join(work, 'bad.yml'));
        expect(r.exitCode, r.stderr).not.toBe(0);
        const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('dockyard:'));
        expect(lines, r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(want);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        const left = await readdir(join(work, dir), { recursive: true }).catch(() => []);
        expect(left.filter((f) => String(f).endsWith('.deb'))).toEqual([]);
      });
    }
  });
});
