/** The CLI as a user meets it: validate, bad inputs, clear one-line errors, nothing left behind. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readdir, writeFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { dockyard, dataDir } from '../harness/cli.js';

const examplesDir = join(dataDir, 'linuxkit-examples');
// Part of the repository: missing, it fails here rather than skipping.
const examples = (await readdir(examplesDir)).filter((f) => f.endsWith('.yml')).sort();

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-cli-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function expectOneCleanError(stderr: string) {
  expect(stderr).toMatch(/^dockyard: /);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('validate LinuxKit examples', () => {
  it.each(examples.filter((e) => e !== 'static-ip.yml'))('%s is valid', async (f) => {
    const r = await dockyard(['validate', join(examplesDir, f)]);
    expect(r.exitCode, r.stderr).toBe(0);
  });
  it('static-ip.yml is not valid YAML: the error names line 27', async () => {
    const r = await dockyard(['validate', join(examplesDir, 'static-ip.yml')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/static-ip\.yml:27:\d+: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('bad inputs give one clear line', () => {
  const cases: [string, string, RegExp][] = [
    ['malformed.yml', 'onboot:\n  - name: x\n    image: [unclosed\n', /malformed\.yml:\d+:\d+: /],
    ['unknown.yml', 'onboot:\n  - name: x\n    image: busybox\n    colour: red\n', /unknown\.yml:4:5: .*colour/],
    ['wrongtype.yml', 'onboot:\n  - name: x\n    image: busybox\n    readonly: "yes"\n', /wrongtype\.yml:4:\d+: .*readonly/],
    ['component.yml', 'components:\n  grub: x\nonboot:\n  - name: x\n    image: busybox\n', /component\.yml:2:3: .*grub/],
    // LinuxKit accepts a read-only volume only bound with exactly ":ro".
    ['rovolume.yml', 'volumes:\n  - name: data\n    readonly: true\nonboot:\n  - name: x\n    image: busybox\n    binds:\n      - data:/d:ro,rshared\n', /rovolume\.yml:8:\d+: .*read-only.*"data:\/d:ro"/],
  ];
  it.each(cases)('%s', async (name, text, re) => {
    const f = join(work, name);
    await writeFile(f, text);
    for (const cmd of [['validate', f], ['build', '--cache', join(work, 'c'), '--dir', join(work, 'o'), f]]) {
      const r = await dockyard(cmd);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(re);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(existsSync(join(work, 'o'))).toBe(false);
  });

  it('unknown format', async () => {
    const f = join(work, 'ok.yml');
    await writeFile(f, 'onboot:\n  - name: x\n    image: busybox\n');
    const out = join(work, 'fmt');
    const r = await dockyard(['build', '--cache', join(work, 'c'), '--dir', out, '-f', 'floppy', f]);
    expect(r.exitCode).toBe(1);
    expectOneCleanError(r.stderr);
    expect(r.stderr).toMatch(/floppy/);
    expect(existsSync(join(out, 'ok.tar'))).toBe(false);
  });

  it('a format for an architecture it does not exist for (rpi3 on amd64) is refused before anything else', async () => {
    const f = join(work, 'ok.yml');
    await writeFile(f, 'onboot:\n  - name: x\n    image: 127.0.0.1:1/nothing/here:1\n');
    const r = await dockyard(['build', '--cache', join(work, 'c'), '--offline', '--arch', 'amd64', '--dir', join(work, 'sq'), '-f', 'rpi3', f]);
    expect(r.exitCode).toBe(1);
    expectOneCleanError(r.stderr);
    expect(r.stderr).toMatch(/format rpi3 does not exist for amd64 \(it does for arm64\)/);
    expect(existsSync(join(work, 'sq'))).toBe(false);
  });

  it('two formats writing the same file are refused', async () => {
    const f = join(work, 'ok.yml');
    await writeFile(f, 'onboot:\n  - name: x\n    image: busybox\n');
    const r = await dockyard(['build', '--cache', join(work, 'c'), '--dir', join(work, 'dup'), '-f', 'vhd,dynamic-vhd', f]);
    expect(r.exitCode).toBe(2);
    expectOneCleanError(r.stderr);
    expect(r.stderr).toMatch(/vhd and dynamic-vhd both write ok\.vhd/);
    expect(existsSync(join(work, 'dup'))).toBe(false);
  });

  it('a missing image with --offline names the image', async () => {
    const f = join(work, 'missing.yml');
    await writeFile(f, 'onboot:\n  - name: x\n    image: 127.0.0.1:1/nothing/here:1\n');
    const out = join(work, 'missing-out');
    const r = await dockyard(['build', '--cache', join(work, 'c'), '--offline', '--dir', out, '-f', 'tar', f]);
    expect(r.exitCode).toBe(1);
    expectOneCleanError(r.stderr);
    expect(r.stderr).toMatch(/nothing\/here/);
    expect(existsSync(join(out, 'missing.tar'))).toBe(false);
  });

  it('--dry-run prints the merged spec of several files, - reads stdin', async () => {
    const a = join(work, 'a.yml');
    await writeFile(a, 'onboot:\n  - name: first\n    image: busybox\n');
    const r = await dockyard(['build', '--dry-run', a, '-'], { input: 'onboot:\n  - name: second\n    image: busybox\n' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/first[\s\S]*second/);
  });
});
