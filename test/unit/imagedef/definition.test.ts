/**
 * Image definitions (schemas/image.schema.json): the repository's example
 * is valid, defaults are filled, and each problem is reported at its
 * file:line:col.
 */
import { describe, it, expect } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packagesFor, parseDefinition } from '../../../pkg/imagedef/definition.js';
import { BUSYBOX_APPLETS } from '../../fixtures/build.js';
import { repoRoot } from '../../harness/cli.js';

const BASE = 'repositories:\n  - uri: http://deb.debian.org/debian/\n    suites: [bookworm]\n    components: [main]\nkeyring: [keys/debian.gpg]\n';

describe('image definitions', () => {
  it('examples/init-image.yml is valid', async () => {
    const f = join(repoRoot, 'examples/init-image.yml');
    const { def, problems } = parseDefinition(await readFile(f, 'utf8'), f);
    expect(problems).toEqual([]);
    expect(def?.name).toBe('init-image');
    expect(def?.packages).toEqual([{ name: 'runc' }, { name: 'busybox-static' }]);
  });

  it('defaults: name from the file, both archs, keyring paths from the definition\'s folder, the URI without its trailing /', () => {
    const { def } = parseDefinition(`${BASE}packages: ["libc6 (>= 2.36)", runc]\narchs: [arm64, amd64]\n`, '/d/x/engine.yaml');
    expect(def).toMatchObject({
      name: 'engine',
      archs: ['amd64', 'arm64'],
      keyring: ['/d/x/keys/debian.gpg'],
      essential: false,
      exclude: [],
      layout: 'rootfs',
      packages: [{ name: 'libc6', op: '>=', version: '2.36' }, { name: 'runc' }],
    });
    expect(def?.repositories[0].uri).toBe('http://deb.debian.org/debian');
  });

  it('problems at their line and column', () => {
    const at = (text: string) => parseDefinition(text, 'd.yml').problems.map((p) => `${p.line}:${p.col}: ${p.message}`);
    expect(at(`${BASE}packages: [runc, kmod, runc]\n`)).toEqual(['6:24: packages: runc is listed twice (first as item 1)']);
    expect(at(`${BASE}packages: [runc]\nexclude: [runc]\n`)).toEqual(['7:11: exclude: runc is also in packages']);
    expect(at(`${BASE}packages: [runc]\ncolour: red\n`)).toEqual(['7:1: unknown key "colour"']);
    expect(at(`${BASE}packages: []\n`)).toEqual(['6:1: packages: must list at least 1 item']);
    expect(at(`${BASE}packages: [runc]\narchs: [riscv64]\n`)[0]).toMatch(/^7:9: archs\[0\]: must be one of "amd64", "arm64"/);
    expect(at(`${BASE}packages: [runc\n`)[0]).toMatch(/^\d+:\d+: invalid YAML: \[ opened here is never closed/);
    expect(at('repositories: []\n')[0]).toMatch(/missing required key "keyring"|repositories: /);
  });
});

describe('image definitions: architectures, merged /usr, kernel', () => {
  it('a dpkg architecture restriction keeps a package to some archs; packagesFor gives each arch its requests', () => {
    const { def, problems } = parseDefinition(`${BASE}packages: ["linux-image-amd64 [amd64]", "linux-image-arm64 [ arm64 ]", "grub-pc-bin [!arm64]", "libc6 (>= 2.36) [amd64 arm64]"]\n`, '/d/k.yml');
    expect(problems).toEqual([]);
    expect(packagesFor(def!, 'amd64')).toEqual([{ name: 'linux-image-amd64' }, { name: 'grub-pc-bin' }, { name: 'libc6', op: '>=', version: '2.36' }]);
    expect(packagesFor(def!, 'arm64')).toEqual([{ name: 'linux-image-arm64' }, { name: 'libc6', op: '>=', version: '2.36' }]);
    expect(def?.mergedUsr).toBe(true);
    expect(def?.kernel).toEqual({});
  });

  it('the same name for two archs is no duplicate; for one arch it is, once; mixed negation, an arch left with nothing, kernel: without layout: kernel are problems', () => {
    const at = (text: string) => parseDefinition(text, 'd.yml').problems.map((p) => `${p.line}:${p.col}: ${p.message}`);
    expect(at(`${BASE}packages: ["linux [amd64]", "linux [arm64]"]\n`)).toEqual([]);
    expect(at(`${BASE}packages: [linux, "linux [arm64]"]\n`)).toEqual(['6:19: packages: linux is listed twice for arm64 (first as item 1)']);
    expect(at(`${BASE}packages: [runc, runc]\n`)).toEqual(['6:18: packages: runc is listed twice (first as item 1)']);
    expect(at(`${BASE}packages: ["runc [amd64 !arm64]"]\n`)).toEqual(['6:12: packages: runc [amd64 !arm64]: an architecture list is all positive or all negated ([amd64 arm64] or [!arm64])']);
    expect(at(`${BASE}packages: ["runc [amd64]"]\n`)).toEqual(['6:1: packages: none of them is for arm64, one of the archs']);
    expect(at(`${BASE}packages: ["runc [riscv64]"]\n`)[0]).toMatch(/^6:12: packages\[0\]: "runc \[riscv64\]" is not a Debian package name, optionally with a version and architectures/);
    expect(at(`${BASE}packages: [runc]\nkernel: { modules: [overlay] }\n`)).toEqual(['7:1: kernel: only for layout: kernel']);
    expect(at(`${BASE}packages: [runc]\nlayout: kernel\nkernel: { modules: [over/lay] }\n`)[0]).toMatch(/^8:21: kernel\.modules\[0\]: "over\/lay" is not a module name/);
  });

  it('merged-usr: false and kernel: are kept', () => {
    const { def } = parseDefinition(`${BASE}packages: [linux-image-amd64]\nmerged-usr: false\nlayout: kernel\nkernel: { modules: [overlay], dtbs: ["broadcom/*.dtb"] }\n`, '/d/k.yml');
    expect(def).toMatchObject({ mergedUsr: false, layout: 'kernel', kernel: { modules: ['overlay'], dtbs: ['broadcom/*.dtb'] } });
  });

  it('the fixture definitions are valid, and busybox.yml links the applets the harness knows', async () => {
    for (const n of ['kernel', 'kernel-full', 'busybox', 'init']) {
      const f = join(repoRoot, `test/fixtures/images/${n}.yml`);
      const { def, problems } = parseDefinition(await readFile(f, 'utf8'), f);
      expect(problems, n).toEqual([]);
      expect(def?.archs, n).toEqual(['amd64', 'arm64']);
    }
    const f = join(repoRoot, 'test/fixtures/images/busybox.yml');
    const { def } = parseDefinition(await readFile(f, 'utf8'), f);
    const links = def!.paths.filter((p) => p.type === 'symlink' && p.target === 'busybox').map((p) => p.path.replace(/^\/bin\//, ''));
    expect(links).toEqual(BUSYBOX_APPLETS);
  });
});

describe('image definitions: config.runtime', () => {
  it('is checked by the spec schema\'s image config, problems at their line and column', () => {
    const at = (text: string) => parseDefinition(text, 'd.yml').problems.map((p) => `${p.line}:${p.col}: ${p.message}`);
    expect(at(`${BASE}packages: [runc]\nconfig:\n  runtime:\n    capabilities: [CAP_SYS_ADMIN]\n    net: host\n`)).toEqual([]);
    const bad = at(`${BASE}packages: [runc]\nconfig:\n  runtime:\n    net: 7\n    colour: red\n`);
    expect(bad.length).toBe(2);
    expect(bad.some((l) => /^9:5: .*net/.test(l)), bad.join('\n')).toBe(true);
    expect(bad.some((l) => /^10:5: .*colour/.test(l)), bad.join('\n')).toBe(true);
  });
});

describe('image definitions: move', () => {
  it('is kept; a path moved twice is a problem at its line', () => {
    const { def } = parseDefinition(`${BASE}packages: [runc]\nmove:\n  - { from: /usr/sbin/runc, to: /runc }\n`, '/d/m.yml');
    expect(def?.move).toEqual([{ from: '/usr/sbin/runc', to: '/runc' }]);
    const at = (text: string) => parseDefinition(text, 'd.yml').problems.map((p) => `${p.line}:${p.col}: ${p.message}`);
    expect(at(`${BASE}packages: [runc]\nmove:\n  - { from: /usr/sbin/runc, to: /runc }\n  - { from: /usr/sbin/runc, to: /r }\n`)).toEqual(['9:7: move: /usr/sbin/runc is moved twice (first as item 1)']);
    expect(at(`${BASE}packages: [runc]\nmove:\n  - { from: usr/sbin/runc, to: /runc }\n`)[0]).toMatch(/^8:7: move\[0\]\.from: "usr\/sbin\/runc" is not /);
  });
});

describe('image definitions: paths written into the image', () => {
  it('"..", "." and empty parts in paths, files and move are problems at their line, so no layer entry leaves the root', () => {
    const at = (text: string) => parseDefinition(text, 'd.yml').problems.map((p) => `${p.line}:${p.col}: ${p.message}`);
    expect(at(`${BASE}packages: [runc]\npaths:\n  - { path: /../etc/evil, type: directory }\n`)).toEqual(['8:7: paths[0].path: /../etc/evil is not a plain absolute path (no ".", ".." or empty parts)']);
    expect(at(`${BASE}packages: [runc]\nfiles:\n  - { source: x, path: /a/./b }\n`)).toEqual(['8:18: files[0].path: /a/./b is not a plain absolute path (no ".", ".." or empty parts)']);
    expect(at(`${BASE}packages: [runc]\nmove:\n  - { from: /usr/sbin/runc, to: /x//y }\n`)).toEqual(['8:29: move[0].to: /x//y is not a plain absolute path (no ".", ".." or empty parts)']);
    expect(at(`${BASE}packages: [runc]\nmove:\n  - { from: /usr/sbin/runc, to: /runc }\n`)).toEqual([]);
  });
});
