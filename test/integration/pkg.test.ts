/**
 * `dockyard pkg lock|show`: an image definition resolved against Debian's
 * archive into NAME.lock.json. Judged by apt: for both archs the locked
 * set is what `apt-get install --simulate` picks from the same index
 * bytes, and each package's file, size and SHA256 are apt-cache's. The
 * lock is deterministic (two caches, same bytes), kept when up to date,
 * and every failure is one line: a schema error at its file:line:col, an
 * unsatisfiable request, a keyring that did not sign the archive, an
 * offline run with nothing cached.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { dockyard } from '../harness/cli.js';
import { aptJudge } from '../harness/aptsim.js';
import { startRegistry } from '../harness/registry.js';
import { loadIndex } from '../../pkg/debian/archive.js';
import { readKeyring } from '../../pkg/debian/release.js';
import type { Lock } from '../../pkg/imagedef/lock.js';

let work: string;
const REPOS = `repositories:
  - uri: http://deb.debian.org/debian
    suites: [bookworm, bookworm-updates]
    components: [main]
  - uri: http://deb.debian.org/debian-security
    suites: [bookworm-security]
    components: [main]
`;
const KEYRING = 'keyring: [/usr/share/keyrings/debian-archive-keyring.gpg]\n';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-pkg-'));
  await writeFile(join(work, 'init.yml'), `${REPOS}${KEYRING}packages: [runc, busybox-static, "libc6 (>= 2.36)"]\n`);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const lock = (args: string[]) => dockyard(['pkg', 'lock', ...args]);

describe('pkg lock', () => {
  it('writes NAME.lock.json: for amd64 and arm64 what apt-get install --simulate picks from the same indices, with apt-cache\'s file, size and SHA256', async () => {
    const r = await lock(['--cache', join(work, 'c1'), join(work, 'init.yml')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^wrote .*init\.lock\.json \(amd64: \d+ packages, arm64: \d+ packages\)$/m);
    const l = JSON.parse(await readFile(join(work, 'init.lock.json'), 'utf8')) as Lock;
    const keyring = await readKeyring(await readFile('/usr/share/keyrings/debian-archive-keyring.gpg'), 'k');
    const repos = [
      { uri: 'http://deb.debian.org/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
      { uri: 'http://deb.debian.org/debian-security', suites: ['bookworm-security'], components: ['main'] },
    ];
    for (const arch of ['amd64', 'arm64'] as const) {
      // The indices the CLI cached (offline: the very same InRelease and Packages bytes).
      await mkdir(join(work, 'c1/tmp'), { recursive: true });
      const { suites } = await loadIndex(repos, arch, { keyring, cacheDir: join(work, 'c1/debian'), tmpDir: join(work, 'c1/tmp'), offline: true });
      const apt = await aptJudge(arch, suites);
      try {
        const theirs = await apt.simulate(['runc', 'busybox-static', 'libc6']);
        expect(new Map(l.packages[arch].map((p) => [p.name, p.version]))).toEqual(theirs);
        for (const p of l.packages[arch]) {
          expect({ filename: p.filename, size: p.size, sha256: p.sha256 }, p.name).toEqual(await apt.record(p.name, p.version));
          expect(p.repository).toMatch(/^http:\/\/deb\.debian\.org\/debian(-security)?$/);
        }
        expect(l.packages[arch].find((p) => p.name === 'runc')?.reason).toBe('requested');
        expect(l.packages[arch].find((p) => p.name === 'libseccomp2')?.reason).toBe('runc');
      } finally {
        await apt.close();
      }
    }
  });

  it('an up-to-date lock is kept; --update and another cache give the same bytes; show prints it', async () => {
    const before = await readFile(join(work, 'init.lock.json'), 'utf8');
    const again = await lock(['--cache', join(work, 'c1'), join(work, 'init.yml')]);
    expect(again.stdout).toMatch(/init\.lock\.json: up to date/);
    const fresh = await lock(['--update', '--cache', join(work, 'c2'), join(work, 'init.yml')]);
    expect(fresh.exitCode, fresh.stderr).toBe(0);
    expect(await readFile(join(work, 'init.lock.json'), 'utf8')).toBe(before);
    const show = await dockyard(['pkg', 'show', '--cache', join(work, 'c1'), '--offline', join(work, 'init.yml')]);
    expect(show.exitCode, show.stderr).toBe(0);
    const l = JSON.parse(before) as Lock;
    expect(show.stdout.trim().split('\n')).toEqual([...l.packages.amd64, ...l.packages.arm64].map((p, i) => `${i < l.packages.amd64.length ? 'amd64' : 'arm64'}\t${p.name}\t${p.version}\t${p.reason}`));
  });

  it('a changed definition is resolved again', async () => {
    await writeFile(join(work, 'more.yml'), `${REPOS}${KEYRING}packages: [runc]\narchs: [arm64]\n`);
    const a = await lock(['--cache', join(work, 'c1'), '--offline', join(work, 'more.yml')]);
    expect(a.stdout).toMatch(/\(arm64: \d+ packages\)/);
    await writeFile(join(work, 'more.yml'), `${REPOS}${KEYRING}packages: [runc, kmod]\narchs: [arm64]\n`);
    const b = await lock(['--cache', join(work, 'c1'), '--offline', join(work, 'more.yml')]);
    expect(b.stdout).toMatch(/^wrote /);
    const l = JSON.parse(await readFile(join(work, 'more.lock.json'), 'utf8')) as Lock;
    expect(l.packages.arm64.some((p) => p.name === 'kmod')).toBe(true);
    expect(Object.keys(l.packages)).toEqual(['arm64']);
  });

  const oneLine = (r: { exitCode?: number; stderr: string }) => {
    expect(r.exitCode).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    return lines[0];
  };

  it('a schema error is one line at its file:line:col; nothing written', async () => {
    const f = join(work, 'bad.yml');
    await writeFile(f, `${REPOS}${KEYRING}packages:\n  - runc\n  - Not_A_Name\n`);
    expect(oneLine(await lock(['--cache', join(work, 'c1'), f]))).toMatch(new RegExp(`^dockyard: ${f.replace(/[.]/g, '\\.')}:11:5: packages\\[1\\]: "Not_A_Name" is not a Debian package name, optionally with a version`));
    expect(existsSync(join(work, 'bad.lock.json'))).toBe(false);
  });

  it('an unsatisfiable request names the arch and why; a foreign keyring is refused; offline with nothing cached says so', async () => {
    const f = join(work, 'nope.yml');
    await writeFile(f, `${REPOS}${KEYRING}packages: ["libc6 (>= 99)"]\narchs: [amd64]\n`);
    expect(oneLine(await lock(['--cache', join(work, 'c1'), '--offline', f]))).toMatch(/nope\.yml: amd64: libc6 \(>= 99\) is requested but libc6 has 2\.36-/);
    const g = join(work, 'foreign.yml');
    await writeFile(g, `${REPOS}keyring: [/usr/share/keyrings/nodesource.gpg]\npackages: [runc]\n`);
    expect(oneLine(await lock(['--cache', join(work, 'c3'), g]))).toMatch(/bookworm\/InRelease: signed by key IDs? [0-9A-F, ]+, none of which is in the keyring$/);
    expect(existsSync(join(work, 'foreign.lock.json'))).toBe(false);
    expect(oneLine(await lock(['--cache', join(work, 'c4'), '--offline', join(work, 'init.yml'), '--update']))).toMatch(/bookworm\/InRelease is not cached \(run once without --offline\)/);
  });

  /** The layer of each arch of an exported image, unpacked by GNU tar: arch → root directory. */
  async function unpack(tarFile: string, into: string): Promise<Record<string, string>> {
    const lay = join(into, 'layout');
    await mkdir(lay, { recursive: true });
    await execa('tar', ['-xf', tarFile, '-C', lay]);
    const blob = (d: string) => join(lay, 'blobs/sha256', d.split(':')[1]);
    const idx = JSON.parse(await readFile(join(lay, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const top = JSON.parse(await readFile(blob(idx.manifests[0].digest), 'utf8')) as { manifests: { digest: string; platform: { architecture: string } }[] };
    const out: Record<string, string> = {};
    for (const m of top.manifests) {
      const man = JSON.parse(await readFile(blob(m.digest), 'utf8')) as { layers: { digest: string }[] };
      const root = join(into, m.platform.architecture);
      await mkdir(root);
      for (const l of man.layers) await execa('tar', ['-xzf', blob(l.digest), '-C', root]);
      out[m.platform.architecture] = root;
    }
    return out;
  }

  it('pkg build: dpkg-query on each unpacked arch lists exactly the locked packages, dpkg --verify finds every file as shipped, the SBOM lists them, the binaries run', async () => {
    const r = await dockyard(['pkg', 'build', '--cache', join(work, 'c1'), '-o', join(work, 'init.tar'), join(work, 'init.yml')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^dockyard\.local\/init:latest\tsha256:[0-9a-f]{64}\tamd64: \d+ packages, arm64: \d+ packages\n$/);
    expect(r.stderr).toMatch(/maintainer scripts not run .*libc6/);
    const roots = await unpack(join(work, 'init.tar'), join(work, 'u1'));
    const l = JSON.parse(await readFile(join(work, 'init.lock.json'), 'utf8')) as Lock;
    for (const arch of ['amd64', 'arm64'] as const) {
      const root = roots[arch];
      const q = await execa('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-W', '-f', '${Package} ${Version} ${db:Status-Abbrev}\n']);
      expect(q.stdout.split('\n'), arch).toEqual(l.packages[arch].map((p) => `${p.name} ${p.version} ii `));
      const v = await execa('dpkg', [`--root=${root}`, '--verify']);
      expect(v.stdout + v.stderr, arch).toBe('');
      // The SBOM: SPDX 2.3, each locked package with its version, purl and the .deb's SHA256.
      const sbom = JSON.parse(await readFile(join(root, 'var/lib/db/sbom/init.spdx.json'), 'utf8')) as {
        spdxVersion: string;
        packages: { name: string; versionInfo: string; checksums: { checksumValue: string }[]; externalRefs: { referenceLocator: string }[] }[];
      };
      expect(sbom.spdxVersion).toBe('SPDX-2.3');
      expect(sbom.packages.map((p) => [p.name, p.versionInfo, p.checksums[0].checksumValue, p.externalRefs[0].referenceLocator])).toEqual(
        l.packages[arch].map((p) => [p.name, p.version, p.sha256, `pkg:deb/debian/${p.name}@${encodeURIComponent(p.version)}?arch=${p.architecture}&distro=bookworm`]),
      );
    }
    // Merged /usr as Debian lays it out, and the image works: busybox runs, runc finds its libraries.
    const amd = roots.amd64;
    expect((await execa('readlink', [join(amd, 'bin')])).stdout).toBe('usr/bin');
    expect((await execa(join(amd, 'bin/busybox'), ['echo', 'hello from the image'])).stdout).toBe('hello from the image');
    const runc = await execa(join(amd, 'lib64/ld-linux-x86-64.so.2'), ['--library-path', join(amd, 'lib/x86_64-linux-gnu'), join(amd, 'usr/sbin/runc'), '--version']);
    expect(runc.stdout).toMatch(/^runc version /);
    // A file changed after the build is what dpkg --verify reports.
    await writeFile(join(amd, 'usr/sbin/runc'), 'changed');
    expect((await execa('dpkg', [`--root=${amd}`, '--verify'])).stdout).toMatch(/^\?\?5\S*\s+\/usr\/sbin\/runc$/m);
  });

  it('move: a package file written at another path (dpkg still lists it where the package ships it); a path no package ships is one line', async () => {
    const dir = join(work, 'moved');
    await mkdir(dir);
    const def = await readFile(join(work, 'init.yml'), 'utf8');
    await writeFile(join(dir, 'init.yml'), `${def}move:\n  - { from: /usr/sbin/runc, to: /runc }\n  - { from: /bin/busybox, to: /opt/bb/busybox }\n`);
    await writeFile(join(dir, 'init.lock.json'), await readFile(join(work, 'init.lock.json')));
    const r = await dockyard(['pkg', 'build', '--cache', join(work, 'c1'), '-t', 'dockyard.local/moved:1', '-o', join(dir, 'moved.tar'), join(dir, 'init.yml')]);
    expect(r.exitCode, r.stderr).toBe(0);
    const roots = await unpack(join(dir, 'moved.tar'), join(dir, 'u'));
    for (const arch of ['amd64', 'arm64'] as const) {
      const root = roots[arch];
      expect(existsSync(join(root, 'runc')), arch).toBe(true);
      expect(existsSync(join(root, 'usr/sbin/runc')), arch).toBe(false);
      expect(existsSync(join(root, 'opt/bb/busybox')), arch).toBe(true);
      expect(existsSync(join(root, 'usr/bin/busybox')), arch).toBe(false);
      const owner = await execa('dpkg-query', [`--admindir=${root}/var/lib/dpkg`, '-S', '/usr/sbin/runc']);
      // (dpkg on this amd64 host names a foreign package runc:arm64.)
      expect(owner.stdout).toMatch(/^runc(:arm64)?: \/usr\/sbin\/runc$/);
    }
    expect((await execa(join(roots.amd64, 'opt/bb/busybox'), ['echo', 'moved'])).stdout).toBe('moved');
    await writeFile(join(dir, 'init.yml'), `${def}move:\n  - { from: /usr/sbin/nothing-here, to: /x }\n`);
    const bad = await dockyard(['pkg', 'build', '--cache', join(work, 'c1'), '-t', 'dockyard.local/moved:2', join(dir, 'init.yml')]);
    expect(oneLine(bad)).toMatch(/init\.yml: move: no package of amd64 ships \/usr\/sbin\/nothing-here$/);
  });

  it('pkg build is reproducible: another cache, the same lock → the same index digest', async () => {
    const a = await dockyard(['pkg', 'build', '--cache', join(work, 'c1'), join(work, 'init.yml')]);
    const b = await dockyard(['pkg', 'build', '--cache', join(work, 'c5'), join(work, 'init.yml')]);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.stdout.split('\t')[1]).toBe(a.stdout.split('\t')[1]);
  });

  it('pkg build --push: the registry serves the index under the tag with the digest built, and each arch\'s manifest; a spec builds from it on a fresh cache', async () => {
    const reg = await startRegistry();
    try {
      const ref = `${reg.host}/dockyard/init:1`;
      const r = await dockyard(['pkg', 'build', '--cache', join(work, 'c1'), '--push', ref, join(work, 'init.yml')]);
      expect(r.exitCode, r.stderr).toBe(0);
      const digest = r.stdout.split('\t')[1];
      expect(r.stderr).toContain(`pushed ${ref}@${digest}`);
      // The registry's own word (docker-registry, over its HTTP API): the tag resolves to the digest built.
      const accept = 'application/vnd.oci.image.index.v1+json';
      const top = await fetch(`${reg.url}/v2/dockyard/init/manifests/1`, { headers: { accept } });
      expect(top.status).toBe(200);
      expect(top.headers.get('docker-content-digest')).toBe(digest);
      const idx = (await top.json()) as { manifests: { digest: string; platform: { architecture: string } }[] };
      expect(idx.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
      for (const m of idx.manifests) {
        const man = await fetch(`${reg.url}/v2/dockyard/init/manifests/${m.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
        expect(man.status, m.platform.architecture).toBe(200);
        const layers = ((await man.json()) as { layers: { digest: string }[] }).layers;
        const blob = await fetch(`${reg.url}/v2/dockyard/init/blobs/${layers[0].digest}`, { method: 'HEAD' });
        expect(blob.status).toBe(200);
      }
      // A spec pulls it from there into a fresh cache.
      await writeFile(join(work, 'pushed.yml'), `onboot:\n  - name: x\n    image: ${ref}\n`);
      const b = await dockyard(['build', '--cache', join(work, 'c-pull'), '-f', 'tar', '--arch', 'arm64', '--dir', join(work, 'pushed-out'), join(work, 'pushed.yml')]);
      expect(b.exitCode, b.stderr).toBe(0);
      const listed = (await execa('tar', ['-tf', join(work, 'pushed-out/pushed.tar')])).stdout;
      expect(listed).toMatch(/^containers\/onboot\/000-x\/lower\/usr\/sbin\/runc$/m);
      // Not a registry reference: one line, before anything is built.
      const bad = await dockyard(['pkg', 'build', '--cache', join(work, 'c1'), '--push', 'oci-layout:/tmp/x', join(work, 'init.yml')]);
      const usage = (x: { exitCode?: number; stderr: string }) => {
        expect(x.exitCode).toBe(2);
        expect(x.stderr.trim().split('\n'), x.stderr).toHaveLength(1);
        return x.stderr;
      };
      expect(usage(bad)).toMatch(/--push oci-layout:\/tmp\/x: not a registry reference/);
      const worse = await dockyard(['pkg', 'build', '--cache', join(work, 'c1'), '--push', 'Not A Ref', join(work, 'init.yml')]);
      expect(usage(worse)).toMatch(/--push Not A Ref: /);
    } finally {
      await reg.stop();
    }
  });

  it('a .deb that does not match the lock is refused, one line, nothing stored', async () => {
    const dir = join(work, 'tampered');
    await mkdir(dir);
    await writeFile(join(dir, 'init.yml'), await readFile(join(work, 'init.yml'), 'utf8'));
    const l = JSON.parse(await readFile(join(work, 'init.lock.json'), 'utf8')) as Lock;
    const runc = l.packages.amd64.find((p) => p.name === 'runc')!;
    runc.sha256 = '0'.repeat(64);
    await writeFile(join(dir, 'init.lock.json'), JSON.stringify(l, null, 2));
    const r = await dockyard(['pkg', 'build', '--cache', join(work, 'c6'), join(dir, 'init.yml')]);
    expect(oneLine(r)).toMatch(/runc_.*\.deb: \d+ bytes with sha256 [0-9a-f]{64}, the lock says \d+ bytes with sha256 0{64}$/);
    const ls = await dockyard(['cache', 'ls', '--cache', join(work, 'c6')]);
    expect(ls.stdout).toBe('');
  });
});

