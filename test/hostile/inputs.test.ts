/**
 * Hostile specs and command lines (issue 7, rows 7, 9, 10, 11, 15 and their
 * neighbours): values that would wrap to root, names and paths that climb
 * out, NUL, sources that never end, specs too big to hold, flags that point
 * outputs elsewhere. Each fails with one line naming the problem, within the
 * time and memory caps, writing nothing outside the output directory and the
 * cache; the next normal build on the same cache gives the fresh-cache bytes.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execa } from 'execa';
import { mkdir, readFile, writeFile, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { expectNothingLeft, expectOneLine, expectRecovers, importImages, isRoot, run, sandbox, snapshot, type Sandbox } from './harness.js';

let sb: Sandbox;
beforeAll(async () => {
  sb = await sandbox('inputs');
  await importImages(sb);
  if (isRoot) {
    await mkdir(join(sb.root, 'dev'));
    // Private device nodes: the host's /dev is never touched.
    await execa('mknod', [join(sb.root, 'dev/zero'), 'c', '1', '5']);
    await execa('mknod', [join(sb.root, 'dev/urandom'), 'c', '1', '9']);
  }
  await execa('mkfifo', [join(sb.root, 'fifo')]);
}, 120_000);

/** Build `spec` (written to the work dir) to a tar; returns the run and checks nothing was left. */
async function build(spec: string, extra: string[] = [], o: { env?: Record<string, string>; input?: string } = {}) {
  await writeFile(join(sb.work, 'case.yml'), spec);
  const before = await snapshot(sb.root, ['out', 'cache']);
  const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, ...extra, 'case.yml'], o);
  await expectNothingLeft(sb, before);
  expect(await readFileOrNull(join(sb.out, 'case.tar'))).toBeNull();
  return r;
}

async function readFileOrNull(p: string): Promise<Buffer | null> {
  return readFile(p).catch(() => null);
}

const onboot = (extra: string) => `onboot:\n  - name: one\n    image: 127.0.0.1:5000/fixtures/busybox:1\n${extra}`;

describe('ids are 0..2^32-2: nothing wraps to root (row 10)', () => {
  const cases: [string, string, RegExp][] = [
    ['uid 2^32', onboot('    uid: 4294967296\n'), /case\.yml:4:5: onboot\[0\]\.uid: 4294967296 is out of range \(at most 4294967294\)/],
    ['gid 1e308', onboot('    gid: 1e308\n'), /case\.yml:4:5: onboot\[0\]\.gid: 1e\+308 is out of range/],
    ['uid -1', onboot('    uid: -1\n'), /case\.yml:4:5: onboot\[0\]\.uid: -1 is out of range \(at least 0\)/],
    ['additionalGids 2^40', onboot('    additionalGids: [1099511627776]\n'), /additionalGids\[0\]: 1099511627776 is out of range/],
    ['files uid 2^53+1', 'files:\n  - path: etc/x\n    contents: x\n    uid: 9007199254740993\n', /case\.yml:4:5: files\[0\]\.uid: 9007199254740992 is out of range/],
    ['uidMappings hostID 2^32', onboot('    uidMappings:\n      - {containerID: 0, hostID: 4294967296, size: 1}\n'), /hostID: 4294967296 is out of range/],
    ['oomScoreAdj 5000', onboot('    oomScoreAdj: 5000\n'), /oomScoreAdj: 5000 is out of range \(at most 1000\)/],
    ['memory limit 1e308', onboot('    resources:\n      memory:\n        limit: 1e308\n'), /memory\.limit: 1e\+308 is out of range/],
  ];
  for (const [name, spec, re] of cases) {
    it(name, async () => {
      expectOneLine(await build(spec), re);
      const v = await run(sb, ['validate', 'case.yml']);
      expectOneLine(v, re);
    });
  }
  it('a layer whose PAX uid is 2^40 is refused, not written as root', async () => {
    const { hostileLayout } = await import('./harness.js');
    const layout = await hostileLayout(sb, 'paxuid', [
      { ref: 'dockyard.test/hostile/paxuid:1', layers: [{ entries: [{ name: 'etc', type: 'dir' }, { name: 'etc/owned', data: 'x', pax: { uid: '1099511627776' } }] }] },
    ]);
    const cache = join(sb.root, 'cache-paxuid');
    await importImages(sb, cache, layout);
    await writeFile(join(sb.work, 'pax.yml'), 'init:\n  - dockyard.test/hostile/paxuid:1\n');
    const before = await snapshot(sb.root, ['out', 'cache', 'cache-paxuid']);
    const r = await run(sb, ['build', '--offline', '--cache', cache, '-f', 'tar', '--dir', sb.out, 'pax.yml']);
    expectOneLine(r, /dockyard\.test\/hostile\/paxuid:1: entry "etc\/owned" has uid 1099511627776, outside 0\.\.4294967294/);
    await expectNothingLeft(sb, before, { cache });
  });
});

describe('names and paths stay where they belong (row 11)', () => {
  it('a service named ../../../../tmp/pwned', async () => {
    const r = await build('services:\n  - name: ../../../../tmp/pwned\n    image: 127.0.0.1:5000/fixtures/busybox:1\n');
    expectOneLine(r, /case\.yml:2:5: services\[0\]\.name: "\.\.\/\.\.\/\.\.\/\.\.\/tmp\/pwned" is not a plain name/);
  });
  for (const name of ['..', '.', 'a/b']) {
    it(`an onboot container named "${name}"`, async () => {
      expectOneLine(await build(`onboot:\n  - name: "${name}"\n    image: 127.0.0.1:5000/fixtures/busybox:1\n`), /onboot\[0\]\.name: .* is not a plain name/);
    });
  }
  it('NUL in a name, a path, a command', async () => {
    expectOneLine(await build('onboot:\n  - name: "a\\0b"\n    image: 127.0.0.1:5000/fixtures/busybox:1\n'), /case\.yml:2:5: onboot\[0\]\.name: contains a NUL character/);
    expectOneLine(await build('files:\n  - path: "etc/a\\0b"\n    contents: x\n'), /case\.yml:2:5: files\[0\]\.path: contains a NUL character/);
    expectOneLine(await build(onboot('    command: ["/bin/echo", "x\\0y"]\n')), /onboot\[0\]\.command\[1\]: contains a NUL character/);
  });
  for (const p of ['.', './', '/', './.', '//']) {
    it(`files path "${p}" (the root itself)`, async () => {
      expectOneLine(await build(`files:\n  - path: "${p}"\n    contents: x\n`), /files\[0\]\.path: .* is not a path below the root|path names the root itself/);
    });
  }
  it('files path with ..', async () => {
    expectOneLine(await build('files:\n  - path: etc/../../x\n    contents: x\n'), /case\.yml:2:5: files entry "etc\/\.\.\/\.\.\/x": path contains "\.\."/);
  });
  for (const name of ['../../x', '/abs', '.hidden', 'a/b', '..']) {
    it(`--name ${name}`, async () => {
      const r = await build('files:\n  - path: etc/x\n    contents: x\n', ['--name', name]);
      expectOneLine(r, /--name .* is not a plain name/, { exitCode: 2 });
      expect(await readFileOrNull(join(sb.root, 'x.tar'))).toBeNull();
    });
  }
});

describe('files: source must be a regular file (row 7)', () => {
  const sources = () => [
    ...(isRoot ? [['/dev/zero copy', join(sb.root, 'dev/zero'), 'a character device'], ['/dev/urandom copy', join(sb.root, 'dev/urandom'), 'a character device']] : []),
    ['a FIFO', join(sb.root, 'fifo'), 'a FIFO'],
    ['a directory', sb.home, 'a directory'],
  ];
  it.skipIf(!isRoot)('(device cases need root for mknod)', () => {});
  it('devices, a FIFO and a directory are refused before a byte is read', async () => {
    for (const [, path, kind] of sources()) {
      const spec = `files:\n  - path: etc/x\n    source: ${path}\n`;
      const r = await build(spec);
      expectOneLine(r, new RegExp(`case\\.yml:3:5: files entry "etc/x": source .* is ${kind}, not a regular file`), { maxSeconds: 5, maxRssMB: 200 });
      const v = await run(sb, ['validate', 'case.yml']);
      expectOneLine(v, new RegExp(`is ${kind}, not a regular file`), { maxSeconds: 5 });
    }
  });
  it('a symlink to a device is followed and refused too', async () => {
    const link = join(sb.root, 'link-to-fifo');
    await symlink(join(sb.root, 'fifo'), link).catch(() => {});
    expectOneLine(await build(`files:\n  - path: etc/x\n    source: ${link}\n`), /is a FIFO, not a regular file/, { maxSeconds: 5 });
  });
});

describe('image archives must be regular files (row 8)', () => {
  it.skipIf(!isRoot)('oci-archive: a /dev/zero copy', async () => {
    const r = await build(`init:\n  - oci-archive:${join(sb.root, 'dev/zero')}\n`, [], {});
    expectOneLine(r, /is a character device, not a regular file/, { maxSeconds: 5, maxRssMB: 200 });
  });
  it('docker-archive: a FIFO; oci-layout: a FIFO', async () => {
    expectOneLine(await build(`init:\n  - docker-archive:${join(sb.root, 'fifo')}\n`), /is a FIFO, not a regular file/, { maxSeconds: 5 });
    expectOneLine(await build(`init:\n  - oci-layout:${join(sb.root, 'fifo')}\n`), /is a FIFO, not a regular file/, { maxSeconds: 5 });
    const r = await run(sb, ['cache', '--cache', sb.cache, 'import', join(sb.root, 'fifo')]);
    expectOneLine(r, /is a FIFO, not a regular file/, { maxSeconds: 5 });
  });
});

describe('specs too big to hold (rows 9, 15)', () => {
  it('a 50 MB spec is refused at once by build and validate', async () => {
    const big = join(sb.work, 'big.yml');
    const entry = '  - path: d/f\n    contents: x\n';
    await writeFile(big, 'files:\n' + entry.repeat(Math.ceil(50e6 / entry.length)));
    for (const cmd of [['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out], ['validate']]) {
      const before = await snapshot(sb.root, ['out', 'cache']);
      const r = await run(sb, [...cmd, 'big.yml']);
      expectOneLine(r, /spec big\.yml is larger than 1 MiB \(large contents belong in files: source:\)/, { maxSeconds: 5, maxRssMB: 200 });
      await expectNothingLeft(sb, before);
    }
    // From standard input too.
    const r = await run(sb, ['validate', '-'], { input: (await readFile(big, 'utf8')).slice(0, 2e6) });
    expectOneLine(r, /spec on standard input is larger than 1 MiB/, { maxSeconds: 5 });
  });
  it('a spec just under the cap with ~30k files entries builds within the caps', async () => {
    const entry = (i: number) => `  - path: d/f${i}\n    contents: x\n`;
    let spec = 'files:\n';
    for (let i = 0; spec.length + 40 < 1 << 20; i++) spec += entry(i);
    await writeFile(join(sb.work, 'many.yml'), spec);
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', join(sb.root, 'many-out'), 'many.yml']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.rssMB).toBeLessThan(450);
    const list = (await execa('tar', ['-tf', join(sb.root, 'many-out/many.tar')])).stdout.split('\n');
    expect(list.filter((l) => l.startsWith('d/f')).length).toBeGreaterThan(25_000);
  }, 120_000);
});

describe('image configs are input too (row 9)', () => {
  it('Entrypoint: 42, Env: "x", Labels of numbers', async () => {
    const { hostileLayout } = await import('./harness.js');
    const layout = await hostileLayout(sb, 'configs', [
      { ref: 'dockyard.test/hostile/entry42:1', config: { Entrypoint: 42 }, layers: [{ entries: [{ name: 'bin', type: 'dir' }] }] },
      { ref: 'dockyard.test/hostile/envstr:1', config: { Env: 'PATH=/bin' }, layers: [{ entries: [{ name: 'bin', type: 'dir' }] }] },
      { ref: 'dockyard.test/hostile/labels:1', config: { Labels: { 'org.mobyproject.config': 7 } }, layers: [{ entries: [{ name: 'bin', type: 'dir' }] }] },
    ]);
    const cache = join(sb.root, 'cache-configs');
    await importImages(sb, cache, layout);
    for (const [img, re] of [
      ['entry42', /entry42:1: image config config\.Entrypoint must be a list of strings or null/],
      ['envstr', /envstr:1: image config config\.Env must be a list of strings or null/],
      ['labels', /labels:1: image config config\.Labels must be a map of strings/],
    ] as const) {
      await writeFile(join(sb.work, 'cfg.yml'), `onboot:\n  - name: x\n    image: dockyard.test/hostile/${img}:1\n`);
      const before = await snapshot(sb.root, ['out', 'cache', 'cache-configs']);
      const r = await run(sb, ['build', '--offline', '--cache', cache, '-f', 'tar', '--dir', sb.out, 'cfg.yml']);
      expectOneLine(r, re);
      await expectNothingLeft(sb, before, { cache });
    }
  });
});

describe('the command line (row 9 and the rest)', () => {
  it('SOURCE_DATE_EPOCH out of range or not a number', async () => {
    for (const v of ['99999999999999', '-1', '1.5', '0x10', '4294967296']) {
      const r = await build('files:\n  - path: etc/x\n    contents: x\n', [], { env: { SOURCE_DATE_EPOCH: v } });
      expectOneLine(r, /SOURCE_DATE_EPOCH must be a whole number of seconds from 0 to 4294967295/, { exitCode: 2 });
    }
  });
  it('-o onto a directory; --dir onto a file', async () => {
    expectOneLine(await build('files:\n  - path: etc/x\n    contents: x\n', ['-o', sb.home]), /-o .*home exists and is a directory/);
    const file = join(sb.root, 'a-file');
    await writeFile(file, 'keep');
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', file, 'ref.yml']);
    expectOneLine(r, /--dir .*a-file exists and is not a directory/);
    expect(await readFile(file, 'utf8')).toBe('keep');
  });
  it('--mirror with something that is not a URL', async () => {
    for (const m of ['docker.io=notaurl', 'docker.io=ftp://x', 'docker.io=http://u:p@host', '=http://x']) {
      expectOneLine(await build('files:\n  - path: etc/x\n    contents: x\n', ['--mirror', m]), /--mirror/, { exitCode: 2 });
    }
  });
  it('limits and timeouts that are not sizes', async () => {
    expectOneLine(await build('files:\n  - path: etc/x\n    contents: x\n', ['--max-layer-size', 'lots']), /--max-layer-size wants a size like 512M or 2G, got "lots"/, { exitCode: 2 });
    expectOneLine(await build('files:\n  - path: etc/x\n    contents: x\n', ['--timeout', '-3']), /--timeout wants seconds/, { exitCode: 2 });
  });
  it('an empty spec, an empty stdin, a spec of comments: nothing to build', async () => {
    expectOneLine(await build(''), /nothing to build/);
    expectOneLine(await build('# just a comment\n'), /nothing to build/);
    const before = await snapshot(sb.root, ['out', 'cache']);
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, '-'], { input: '' });
    expectOneLine(r, /<stdin>: nothing to build/);
    await expectNothingLeft(sb, before);
    expectOneLine(await run(sb, ['validate', '-'], { input: '' }), /nothing to build/);
  });
  it('a spec given as a pipe (`<(…)`) is read, with the cap', async () => {
    const r = await run(sb, ['validate', '/dev/fd/3'], { wrap: ['bash', '-c', 'exec 3< <(printf "files:\\n  - path: etc/x\\n    contents: x\\n"); exec "$@"', 'bash'] });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\/dev\/fd\/3: ok/);
  });
});

describe("LinuxKit's own values", () => {
  it('root as a files uid/gid and as a container uid/gid is 0', async () => {
    await writeFile(join(sb.work, 'root.yml'), 'onboot:\n  - name: one\n    image: 127.0.0.1:5000/fixtures/busybox:1\n    uid: root\n    gid: root\nfiles:\n  - path: etc/x\n    contents: x\n    uid: root\n    gid: root\n    mode: "0644"\n');
    const out = join(sb.root, 'root-out');
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', out, 'root.yml']);
    expect(r.exitCode, r.stderr).toBe(0);
    const t = (await execa('tar', ['-tvf', join(out, 'root.tar'), 'etc/x'])).stdout;
    expect(t).toMatch(/^-rw-r--r-- 0\/0 /);
    const cfg = JSON.parse((await execa('tar', ['-xOf', join(out, 'root.tar'), 'containers/onboot/000-one/config.json'])).stdout);
    expect(cfg.process.user).toEqual({ uid: 0, gid: 0 });
  });
  it('what runc refuses at boot: a warning with the key position, an error with --strict', async () => {
    const spec = onboot('    uts: host\n    hostname: box\n    net: host\n    sysctl:\n      net.ipv4.ip_forward: "1"\n      vm.swappiness: "10"\n');
    await writeFile(join(sb.work, 'runc.yml'), spec);
    const v = await run(sb, ['validate', 'runc.yml']);
    expect(v.exitCode, v.stderr).toBe(0);
    expect(v.stderr).toMatch(/warning: runc\.yml:5:5: onboot\[0\] \(one\): hostname "box" needs a UTS namespace of its own/);
    expect(v.stderr).toMatch(/warning: runc\.yml:8:7: onboot\[0\] \(one\): sysctl net\.ipv4\.ip_forward needs a network namespace of its own/);
    expect(v.stderr).toMatch(/warning: runc\.yml:9:7: onboot\[0\] \(one\): sysctl vm\.swappiness belongs to no namespace/);
    const strict = await run(sb, ['validate', '--strict', 'runc.yml']);
    expect(strict.exitCode).toBe(1);
    expect(strict.stderr).toMatch(/^runc\.yml:5:5: .*hostname "box".*\(--strict\)$/m);
    const out = join(sb.root, 'runc-out');
    const b = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', out, 'runc.yml']);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/warning: runc\.yml:5:5: onboot\[0\] \(one\): hostname "box"/);
    const sb2 = await run(sb, ['build', '--strict', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', join(sb.root, 'runc-strict'), 'runc.yml']);
    expectOneLine(sb2, /runc\.yml:5:5: onboot\[0\] \(one\): hostname "box" needs a UTS namespace of its own.*\(--strict\)/);
    expect(await stat(join(sb.root, 'runc-strict/runc.tar')).catch(() => null)).toBeNull();
  });
});

describe('after all of it', () => {
  it('the next normal build on the same cache gives the bytes of a fresh cache', async () => {
    await expectRecovers(sb);
  });
});
