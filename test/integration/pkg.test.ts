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
import { dockyard } from '../harness/cli.js';
import { aptJudge } from '../harness/aptsim.js';
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
});
