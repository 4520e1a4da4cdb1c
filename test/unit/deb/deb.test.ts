/**
 * The deb encoder, judged by dpkg's own tools: dpkg-deb reads the control
 * stanza and the file list, dpkg installs it into a throwaway root (--root,
 * --force-not-root… not needed: the tests run as root), lintian finds no
 * errors. Also: the ar layout as deb(5) orders it, byte-identical output,
 * Debian-style relations from rpm-style input.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat, readlink, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { Sink } from '../../../pkg/archive/sink.js';
import { encodeDeb } from '../../../pkg/formats/deb/deb.js';
import { arMembers } from '../../../pkg/formats/deb/ar.js';
import { debRelation } from '../../../pkg/formats/deb/control.js';
import { checkDebNames } from '../../../pkg/formats/deb/names.js';
import { fakePlan } from '../package/fakeplan.js';
import type { PackagePlan } from '../../../pkg/package/types.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-debunit-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function writeDeb(plan: PackagePlan, name: string): Promise<{ path: string; sha: string }> {
  const path = join(work, name);
  const sink = new Sink([createWriteStream(path)]);
  await encodeDeb(plan, sink, { tmpDir: work, mtime: 1700000000 });
  await sink.end();
  return { path, sha: sink.sha256() };
}

const hasTool = async (t: string) => (await execa('sh', ['-c', `command -v ${t}`], { reject: false })).exitCode === 0;

describe('deb', () => {
  it('is an ar archive of debian-binary, control.tar.gz, data.tar.gz', async () => {
    const { path } = await writeDeb(fakePlan(), 'a.deb');
    const b = await readFile(path);
    const m = arMembers(b);
    expect(m.map((x) => x.name)).toEqual(['debian-binary', 'control.tar.gz', 'data.tar.gz']);
    expect(b.subarray(m[0].offset, m[0].offset + 4).toString()).toBe('2.0\n');
    expect(m.every((x) => x.mtime === 1700000000)).toBe(true);
  });

  it('reads back with dpkg-deb: fields, files, conffiles, scripts', async () => {
    const { path } = await writeDeb(fakePlan(), 'b.deb');
    const f = (k: string) => execa('dpkg-deb', ['--field', path, k]).then((r) => r.stdout);
    expect(await f('Package')).toBe('hello');
    expect(await f('Version')).toBe('1.2.3-1');
    expect(await f('Architecture')).toBe('amd64');
    expect(await f('Depends')).toBe('libc6 (>= 2.34)');
    expect(await f('Conflicts')).toBe('hello-old');
    expect(await f('Provides')).toBe('hello-world');
    const contents = (await execa('dpkg-deb', ['--contents', path])).stdout;
    expect(contents).toMatch(/-rwxr-xr-x root\/root\s+\d+ \S+ \S+ \.\/usr\/bin\/hello\n/);
    expect(contents).toMatch(/lrwxrwxrwx root\/root\s+0 \S+ \S+ \.\/usr\/bin\/hi -> hello/);
    expect(contents).toContain('./usr/share/doc/hello/copyright');
    expect(contents).toContain('./usr/share/doc/hello/changelog.Debian.gz');
    expect(contents).not.toContain('hello.log'); // a ghost is not shipped
    const ctl = join(work, 'ctl');
    await execa('dpkg-deb', ['--control', path, ctl]);
    expect((await readFile(join(ctl, 'conffiles'), 'utf8')).trim()).toBe('/etc/hello.conf');
    expect(await readFile(join(ctl, 'md5sums'), 'utf8')).toContain('  usr/bin/hello\n');
    expect(await readFile(join(ctl, 'md5sums'), 'utf8')).not.toContain('etc/hello.conf');
    expect((await stat(join(ctl, 'postinst'))).mode & 0o777).toBe(0o755);
  });

  it('installs with dpkg into a throwaway root and removes again', async () => {
    const { path } = await writeDeb(fakePlan({ scripts: { deb: {}, rpm: {} } }), 'c.deb');
    const root = join(work, 'root');
    await mkdir(join(root, 'var/lib/dpkg/info'), { recursive: true });
    await mkdir(join(root, 'var/lib/dpkg/updates'), { recursive: true });
    await writeFile(join(root, 'var/lib/dpkg/status'), '');
    await execa('dpkg', ['--root', root, '--force-depends', '--force-script-chrootless', '--force-not-root', '-i', path]);
    expect(await readFile(join(root, 'usr/bin/hello'), 'utf8')).toBe('#!/bin/sh\necho hello\n');
    expect((await stat(join(root, 'usr/bin/hello'))).mode & 0o777).toBe(0o755);
    expect(await readlink(join(root, 'usr/bin/hi'))).toBe('hello');
    const st = await execa('dpkg', ['--root', root, '-s', 'hello']);
    expect(st.stdout).toContain('Status: install ok installed');
    await execa('dpkg', ['--root', root, '--force-script-chrootless', '--force-not-root', '-P', 'hello']);
    await expect(stat(join(root, 'usr/bin/hello'))).rejects.toThrow();
  });

  it('lintian finds no errors', async () => {
    if (!(await hasTool('lintian'))) return expect.fail('lintian is not installed (scripts/install-deps.sh installs it)');
    const { path } = await writeDeb(fakePlan(), 'hello_1.2.3-1_amd64.deb');
    const r = await execa('lintian', ['--no-tag-display-limit', path], { reject: false });
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('E:'));
    expect(errors, r.stdout).toEqual([]);
  });

  it('is byte-identical when encoded twice', async () => {
    const a = await writeDeb(fakePlan(), 'r1.deb');
    const b = await writeDeb(fakePlan(), 'r2.deb');
    expect(a.sha).toBe(b.sha);
  });

  it('writes relations in Debian syntax and checks names', () => {
    expect(debRelation('glibc >= 2.34')).toBe('glibc (>= 2.34)');
    expect(debRelation('a (>=1) | b')).toBe('a (>= 1) | b');
    expect(debRelation('foo < 2')).toBe('foo (<< 2)');
    expect(() => debRelation('Foo_Bar')).toThrow(/not a Debian relation/);
    expect(checkDebNames({ name: 'Hello', version: '1', release: '1' })?.key).toBe('name');
    expect(checkDebNames({ name: 'hello', version: '1-2', release: '1' })?.key).toBe('version');
    expect(checkDebNames({ name: 'hello', version: '1.0~rc1', release: '1+b1' })).toBeUndefined();
  });
});
