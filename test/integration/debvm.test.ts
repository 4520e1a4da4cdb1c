/**
 * The Debian test VM (test/harness/debvm.ts) boots under systemd, runs a
 * script from its run disk, reports the status, and hands back out/; its
 * image has rpm and pacman, the dependencies of Debian's docker.io (a local
 * .deb depending on them installs offline with apt-get) and no docker.io,
 * containerd, runc or tini. The docker archive (test/harness/dockerarchive.ts)
 * is checked on the host: `docker save` layout, digests, same bytes twice.
 * Cold, the VM image is built first (mmdebstrap: a few minutes); warm, the
 * boot is well under a minute under TCG.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { debianVm, debVmMissing, runInVm, type DebVm } from '../harness/debvm.js';
import { writeBusyboxArchive } from '../harness/dockerarchive.js';

const missing = await debVmMissing('amd64');
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-debvm-test-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** A .deb that depends on what Debian's docker.io depends on (minus what the engine package brings). */
async function dependentDeb(): Promise<string> {
  const root = join(work, 'deb');
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'usr/share/dockyard-probe'), { recursive: true });
  await writeFile(join(root, 'usr/share/dockyard-probe/hello'), 'hello-from-probe\n');
  await writeFile(
    join(root, 'DEBIAN/control'),
    [
      'Package: dockyard-probe',
      'Version: 1.0',
      'Architecture: amd64',
      'Maintainer: dockyard tests <tests@dockyard.invalid>',
      'Depends: libc6 (>= 2.34), libdevmapper1.02.1 (>= 2:1.02.97), libsystemd0, libseccomp2, adduser, iptables, lsb-base, init-system-helpers, ca-certificates, procps, xz-utils',
      'Description: depends on the engine package dependencies',
      '',
    ].join('\n'),
  );
  const deb = join(work, 'dockyard-probe.deb');
  await execa('dpkg-deb', ['--root-owner-group', '-Zxz', '-b', root, deb]);
  return deb;
}

describe.skipIf(missing !== undefined)(`Debian test VM${missing ? ` (skipped: ${missing})` : ''}`, () => {
  let vm: DebVm;

  beforeAll(async () => {
    vm = await debianVm('amd64', (m) => process.stderr.write(`${m}\n`));
  }, 1_800_000);

  it('boots systemd, runs the script with its files, reports status and out/', async () => {
    const deb = await dependentDeb();
    const out = join(work, 'out');
    const script = [
      'systemctl is-system-running --wait || true',
      'systemctl --version | head -1',
      'dpkg -l systemd | tail -1',
      'rpm --version',
      'pacman --version | head -3',
      'for p in docker.io containerd runc tini; do dpkg -s "$p" >/dev/null 2>&1 && echo "present: $p" || echo "absent: $p"; done',
      'apt-get install -y ./dockyard-probe.deb >apt.log 2>&1 && echo "probe: $(cat /usr/share/dockyard-probe/hello)" || tail -20 apt.log',
      'cat note.txt',
      'echo result-in-out > out/result.txt',
      'exit 7',
    ].join('\n');
    const r = await runInVm(vm, {
      files: [
        { name: 'note.txt', content: 'note-from-host\n' },
        { name: 'dockyard-probe.deb', path: deb },
      ],
      script,
      timeoutMs: 300_000,
      outDir: out,
    });
    const log = r.log;
    expect(r.status, log).toBe(7);
    expect(r.reason, log).toBe('exit');
    expect(log).toMatch(/^running$/m);
    expect(log).toMatch(/^systemd 252 /m);
    expect(log).toMatch(/^ii\s+systemd\s+252/m);
    expect(log).toMatch(/^RPM version 4\./m);
    expect(log).toMatch(/Pacman v6\./);
    for (const p of ['docker.io', 'containerd', 'runc', 'tini']) expect(log).toContain(`absent: ${p}`);
    expect(log).toMatch(/^probe: hello-from-probe$/m);
    expect(log).toMatch(/^note-from-host$/m);
    expect(await readFile(join(out, 'result.txt'), 'utf8')).toBe('result-in-out\n');
  }, 600_000);
});

describe('docker save archive of busybox', () => {
  it('has the layout docker load reads, consistent digests, and the same bytes twice', async () => {
    const a = join(work, 'a.tar');
    const b = join(work, 'b.tar');
    const ra = await writeBusyboxArchive(a, { arch: 'amd64', tag: 'dockyard.test/bb:1', cmd: ['/bin/echo', 'hi'] });
    await writeBusyboxArchive(b, { arch: 'amd64', tag: 'dockyard.test/bb:1', cmd: ['/bin/echo', 'hi'] });
    const bytesA = await readFile(a);
    expect(bytesA.equals(await readFile(b))).toBe(true);

    const x = join(work, 'x');
    await mkdir(x);
    await execa('tar', ['-xf', a, '-C', x]);
    const manifest = JSON.parse(await readFile(join(x, 'manifest.json'), 'utf8')) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(manifest).toHaveLength(1);
    expect(manifest[0].RepoTags).toEqual(['dockyard.test/bb:1']);
    const configBytes = await readFile(join(x, manifest[0].Config));
    const sha = (buf: Buffer): string => `sha256:${createHash('sha256').update(buf).digest('hex')}`;
    expect(sha(configBytes)).toBe(ra.imageId);
    const config = JSON.parse(configBytes.toString('utf8')) as { architecture: string; os: string; config: { Cmd: string[] }; rootfs: { diff_ids: string[] } };
    expect(config.architecture).toBe('amd64');
    expect(config.config.Cmd).toEqual(['/bin/echo', 'hi']);
    const layer = await readFile(join(x, manifest[0].Layers[0]));
    expect(config.rootfs.diff_ids).toEqual([sha(layer)]);
    const list = (await execa('tar', ['-tvf', join(x, manifest[0].Layers[0])])).stdout;
    expect(list).toMatch(/^-rwxr-xr-x 0\/0 .* bin\/busybox$/m);
    expect(list).toMatch(/ bin\/sh -> busybox$/m);
    const repos = JSON.parse(await readFile(join(x, 'repositories'), 'utf8')) as Record<string, Record<string, string>>;
    expect(Object.keys(repos)).toEqual(['dockyard.test/bb']);
  });
});
