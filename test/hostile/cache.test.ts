/**
 * A cache that is not what it says, and layers that are not what they say
 * (issue 7, rows 2, 3, 12, 14 and their neighbours): changed, truncated and
 * flipped blobs and derived files, hard links out through symlinks, layers
 * that inflate without end, headers that lie about sizes, a read-only cache,
 * a full one. Every blob is hashed as it is read; what fails is removed and
 * named in one line; the next pull or import repairs it; derived files are
 * made again with a warning.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { execa } from 'execa';
import { cp, mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  expectNothingLeft,
  expectOneLine,
  expectRecovers,
  flipByte,
  freshDigests,
  hostileLayout,
  imageBlobs,
  importImages,
  inMountNamespaceThen,
  isRoot,
  referenceBuild,
  run,
  sandbox,
  snapshot,
  type Sandbox,
} from './harness.js';

const R = (n: string) => `127.0.0.1:5000/fixtures/${n}:1`;

/** A sandbox with the conformance images imported into its cache. */
async function withImages(name: string): Promise<Sandbox> {
  const sb = await sandbox(name);
  await importImages(sb);
  return sb;
}

/** Build the reference spec offline; `before` to check nothing was left. */
async function refBuild(sb: Sandbox, extra: string[] = []) {
  const before = await snapshot(sb.root, ['out', 'cache']);
  const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar,kernel+initrd', '--dir', sb.out, '--name', 'ref', ...extra, 'ref.yml']);
  await expectNothingLeft(sb, before);
  return r;
}

describe('a changed blob in the cache is never trusted (rows 2, 3)', () => {
  it('a flipped byte in a gzip layer: one line naming the blob, removed; cache import repairs it', async () => {
    const sb = await withImages('flip-gzip');
    const { layers } = await imageBlobs(sb.cache, R('layered'));
    await flipByte(layers[0]);
    const r = await refBuild(sb);
    expectOneLine(r, new RegExp(`image ${R('layered').replace(/[.:/]/g, '\\$&')} layer 0: blob sha256:[0-9a-f]{64}: the cache's copy is corrupt \\(it hashes to sha256:[0-9a-f]{64}\\); removed it from .*: pulling or importing the image again restores it \\(image .* is not in the cache and --offline forbids pulling it\\)`));
    expect(r.stderr).toMatch(/^warning: .*corrupt.*; building again$/m);
    expect(await readdir(sb.out)).toEqual([]);
    await expect(stat(layers[0])).rejects.toThrow();
    await importImages(sb);
    await expectRecovers(sb);
  });

  it('a truncated gzip layer, and a layer cut to nothing', async () => {
    const sb = await withImages('trunc-gzip');
    const { layers } = await imageBlobs(sb.cache, R('init'));
    const size = (await stat(layers[0])).size;
    await truncate(layers[0], Math.floor(size / 2));
    expectOneLine(await refBuild(sb), /init:1 layer 0: blob sha256:[0-9a-f]{64}: the cache's copy is corrupt|init:1: blob sha256:[0-9a-f]{64}: the cache's copy is corrupt/);
    await importImages(sb);
    const again = await imageBlobs(sb.cache, R('init'));
    await truncate(again.layers[0], 0);
    expectOneLine(await refBuild(sb), /the cache's copy is corrupt/);
    await importImages(sb);
    await expectRecovers(sb);
  });

  it('an uncompressed layer changed inside a file: it decodes fine, and the digest still catches it before any output', async () => {
    const sb = await sandbox('flip-plain');
    const layout = await hostileLayout(sb, 'plain', [
      { ref: 'dockyard.test/hostile/plain:1', layers: [{ gzip: false, entries: [{ name: 'etc', type: 'dir' }, { name: 'etc/secret', data: 'A'.repeat(4096) }] }] },
    ]);
    await importImages(sb, sb.cache, layout);
    const { layers } = await imageBlobs(sb.cache, 'dockyard.test/hostile/plain:1');
    const b = await readFile(layers[0]);
    const at = b.indexOf('AAAA');
    b[at + 100] = 'B'.charCodeAt(0);
    await writeFile(layers[0], b);
    await writeFile(join(sb.work, 'plain.yml'), 'init:\n  - dockyard.test/hostile/plain:1\n');
    const before = await snapshot(sb.root, ['out', 'cache']);
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'plain.yml']);
    expectOneLine(r, /plain:1: blob sha256:[0-9a-f]{64}: the cache's copy is corrupt/);
    expect(await readdir(sb.out)).toEqual([]);
    // No encoded segment was kept from the tampered bytes.
    expect((await readdir(join(sb.cache, 'segments')).catch(() => [] as string[])).filter((f) => f.endsWith('.tar'))).toEqual([]);
    await expectNothingLeft(sb, before);
    await importImages(sb, sb.cache, layout);
    const ok = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'plain.yml']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect((await execa('tar', ['-xOf', join(sb.out, 'plain.tar'), 'etc/secret'])).stdout).toBe('A'.repeat(4096));
  });

  it('a changed manifest, config or index in the cache', async () => {
    const sb = await withImages('flip-docs');
    const { config, manifest } = await imageBlobs(sb.cache, R('busybox'));
    await writeFile(join(sb.work, 'bb.yml'), `onboot:\n  - name: x\n    image: ${R('busybox')}\n`);
    for (const [what, path] of [['config', config], ['manifest', manifest]] as const) {
      await flipByte(path, 0.3);
      const before = await snapshot(sb.root, ['out', 'cache']);
      const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'bb.yml']);
      expectOneLine(r, /blob sha256:[0-9a-f]{64}: the cache's copy is corrupt/);
      await expectNothingLeft(sb, before);
      await importImages(sb);
      void what;
    }
    // The index of a multi-platform image.
    const idx = JSON.parse(await readFile(join(sb.cache, 'index.json'), 'utf8'));
    const top = idx.manifests.find((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'] === R('multiarch'));
    await flipByte(join(sb.cache, 'blobs/sha256', top.digest.slice(7)), 0.5);
    await writeFile(join(sb.work, 'ma.yml'), `init:\n  - ${R('multiarch')}\n`);
    expectOneLine(await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'ma.yml']), /the cache's copy is corrupt/);
    await importImages(sb);
    await expectRecovers(sb);
  });

  it('cache export never copies a corrupt blob into its archive', async () => {
    const sb = await withImages('export');
    const { layers } = await imageBlobs(sb.cache, R('init'));
    await flipByte(layers[0]);
    const out = join(sb.out, 'init.tar');
    const r = await run(sb, ['cache', '--cache', sb.cache, 'export', R('init'), '-o', out]);
    expectOneLine(r, /the cache's copy is corrupt/);
    expect(await readdir(sb.out)).toEqual([]);
  });
});

describe('derived files are checked before use and made again (row 2)', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await withImages('segments');
    expect(await referenceBuild(sb)).toEqual(await freshDigests());
  });
  const segments = async () => (await readdir(join(sb.cache, 'segments'))).map((f) => join(sb.cache, 'segments', f));

  it('every encoded segment truncated: a warning each, the same bytes as a fresh cache', async () => {
    const files = (await segments()).filter((f) => /\.(tar|cpio\.gz)$/.test(f));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) await truncate(f, Math.floor((await stat(f)).size / 3));
    const r = await refBuild(sb);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: the cached (tar|cpio\.gz) of .* was corrupt \(.*\); removed it and encoded it again/);
    expect(await referenceBuild(sb)).toEqual(await freshDigests());
  });

  it('a byte flipped in a segment, its trailer intact', async () => {
    const f = (await segments()).find((x) => x.endsWith('.cpio.gz'))!;
    await flipByte(f, 0.2);
    const r = await refBuild(sb);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: the cached cpio\.gz of .* was corrupt \(its content hashes to sha256:[0-9a-f]{64}, its trailer says/);
    await expectRecovers(sb);
  });

  it('the spooled kernel changed', async () => {
    const f = (await segments()).find((x) => x.endsWith('.kernel'))!;
    await flipByte(f, 0.1);
    const r = await refBuild(sb);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: kernel image .*: the spooled kernel in the cache was corrupt/);
    await expectRecovers(sb);
  });
});

describe('hard links that lead out (row 12)', () => {
  const cases: [string, unknown[], RegExp][] = [
    [
      'through a symlink to the host',
      [{ name: 'lnk', type: 'symlink', linkname: '/etc' }, { name: 'grab', type: 'hardlink', linkname: 'lnk/shadow' }],
      /hard link "grab" points through the symlink "lnk" \(at "lnk\/shadow"\)/,
    ],
    ['dangling', [{ name: 'etc', type: 'dir' }, { name: 'etc/x', type: 'hardlink', linkname: 'nowhere' }], /hard link "etc\/x" points at "nowhere", which is not an earlier file of the same image/],
    ['to a directory', [{ name: 'etc', type: 'dir' }, { name: 'x', type: 'hardlink', linkname: 'etc' }], /hard link "x" points at "etc", which is not an earlier file/],
    ['to a later entry', [{ name: 'x', type: 'hardlink', linkname: 'later' }, { name: 'later', data: 'y' }], /hard link "x" points at "later", which is not an earlier file/],
    ['out with ..', [{ name: 'x', type: 'hardlink', linkname: '../../etc/passwd' }], /"\.\.\/\.\.\/etc\/passwd" climbs out of the root with "\.\."/],
  ];
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await sandbox('hardlinks');
    const layout = await hostileLayout(
      sb,
      'links',
      cases.map(([, entries], i) => ({ ref: `dockyard.test/hostile/link${i}:1`, layers: [{ entries }] })),
    );
    await importImages(sb, sb.cache, layout);
  });
  cases.forEach(([name, , re], i) => {
    it(name, async () => {
      await writeFile(join(sb.work, `l${i}.yml`), `onboot:\n  - name: x\n    image: dockyard.test/hostile/link${i}:1\n`);
      const before = await snapshot(sb.root, ['out', 'cache']);
      const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, `l${i}.yml`]);
      expectOneLine(r, re);
      expect(await readdir(sb.out)).toEqual([]);
      await expectNothingLeft(sb, before);
    });
  });
  it('a hard link to an earlier file is kept, and GNU tar extracts it as one', async () => {
    const layout = await hostileLayout(sb, 'goodlink', [
      { ref: 'dockyard.test/hostile/goodlink:1', layers: [{ entries: [{ name: 'bin', type: 'dir' }, { name: 'bin/busybox', data: 'bb' }, { name: 'bin/sh', type: 'hardlink', linkname: 'bin/busybox' }] }] },
    ]);
    await importImages(sb, sb.cache, layout);
    await writeFile(join(sb.work, 'good.yml'), 'init:\n  - dockyard.test/hostile/goodlink:1\n');
    const r = await run(sb, ['build', '--offline', '--no-sbom', '--cache', sb.cache, '-f', 'tar', '--dir', join(sb.root, 'good'), 'good.yml']);
    expect(r.exitCode, r.stderr).toBe(0);
    const x = join(sb.root, 'good-x');
    await mkdir(x);
    await execa('tar', ['-xf', join(sb.root, 'good/good.tar'), '-C', x]);
    expect((await stat(join(x, 'bin/sh'))).ino).toBe((await stat(join(x, 'bin/busybox'))).ino);
  });
});

describe('layers that inflate without end, headers that lie (rows 9, 14)', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await sandbox('bombs');
    const layout = await hostileLayout(sb, 'bombs', [
      { ref: 'dockyard.test/hostile/bomb:1', layers: [{ zeros: 1 << 30, name: 'zeros' }] },
      { ref: 'dockyard.test/hostile/liar:1', layers: [{ shortBody: { name: 'huge', size: 10 * 1024 ** 3, body: 'abc' } }] },
      { ref: 'dockyard.test/hostile/short:1', layers: [{ shortBody: { name: 'short', size: 1 << 20, body: 'abc' } }] },
      { ref: 'dockyard.test/hostile/nulname:1', layers: [{ entries: [{ name: 'etc', type: 'dir' }, { name: 'etc/x', data: 'x', pax: { path: 'etc/a\u0000b' } }] }] },
    ]);
    await importImages(sb, sb.cache, layout);
    await importImages(sb);
  }, 120_000);
  const build = async (image: string, extra: string[] = []) => {
    await writeFile(join(sb.work, 'b.yml'), `onboot:\n  - name: x\n    image: dockyard.test/hostile/${image}:1\n`);
    const before = await snapshot(sb.root, ['out', 'cache']);
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar,kernel+initrd', '--dir', sb.out, ...extra, 'b.yml']);
    expect(await readdir(sb.out)).toEqual([]);
    await expectNothingLeft(sb, before);
    return r;
  };
  it('a 1 GiB layer of zeros (1 MB compressed) past --max-layer-size 64M: stops at the limit, caches nothing', async () => {
    const r = await build('bomb', ['--max-layer-size', '64M']);
    expectOneLine(r, /bomb:1: layer sha256:[0-9a-f]{64} is larger than 64 MiB uncompressed \(--max-layer-size raises the limit\)|bomb:1: entry "zeros" \(1 GiB\) is larger than 64 MiB uncompressed \(--max-layer-size raises the limit\)/, { maxSeconds: 10, maxRssMB: 250 });
    expect((await readdir(join(sb.cache, 'segments')).catch(() => [] as string[])).filter((f) => !f.startsWith('kernel-'))).toEqual([]);
  });
  it('a header declaring 10 GiB over 3 bytes: over the default limit, one line', async () => {
    expectOneLine(await build('liar'), /liar:1: entry "huge" \(10 GiB\) is larger than 8 GiB uncompressed \(--max-layer-size raises the limit\)/, { maxSeconds: 10 });
  });
  it('a header declaring 1 MiB over 3 bytes: a truncated layer, one line', async () => {
    expectOneLine(await build('short'), /short:1(: layer sha256:[0-9a-f]{64})?: truncated tar archive \(the body of "short" ends early\)|short:1.*truncated/, { maxSeconds: 10 });
  });
  it('a PAX path with NUL in it', async () => {
    expectOneLine(await build('nulname'), /nulname:1: entry "etc\/a\0b" has a NUL byte in its name or link|NUL byte/);
  });
  it('an output past --max-output-size', async () => {
    const before = await snapshot(sb.root, ['out', 'cache']);
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, '--max-output-size', '20K', 'ref.yml']);
    expectOneLine(r, /output .*ref\.tar would be larger than 20 KiB \(--max-output-size raises the limit\)/);
    expect(await readdir(sb.out)).toEqual([]);
    await expectNothingLeft(sb, before);
  });
  it('a root filesystem past --max-initrd: one line naming kernel+squashfs and kernel+erofs, cold and from cached segments', async () => {
    for (const round of ['cold', 'cached']) {
      if (round === 'cached') {
        const ok = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'kernel+initrd', '--dir', sb.out + '-ok', 'ref.yml']);
        expect(ok.exitCode, ok.stderr).toBe(0);
      }
      const before = await snapshot(sb.root, ['out', 'cache']);
      const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'kernel+initrd', '--dir', sb.out, '--max-initrd', '1K', 'ref.yml']);
      expectOneLine(r, /the root filesystem is over 1 KiB uncompressed .*more than an initramfs holds \(--max-initrd 1 KiB\): build kernel\+squashfs or kernel\+erofs|the root filesystem is [\d.]+ \w+ uncompressed .*--max-initrd 1 KiB.*kernel\+squashfs or kernel\+erofs/);
      expect(await readdir(sb.out), round).toEqual([]);
      await expectNothingLeft(sb, before);
    }
  });
  it('the same cache then builds the reference system byte for byte', async () => {
    await expectRecovers(sb);
  });
});

describe('caches that cannot be written (row 9)', () => {
  it.skipIf(!isRoot)('a fully populated read-only cache builds what it holds; pulling into it is one line', async () => {
    const sb = await withImages('readonly');
    await referenceBuild(sb);
    const ro = `mount --bind "${sb.cache}" "${sb.cache}" && mount -o remount,bind,ro "${sb.cache}"`;
    const before = await snapshot(sb.root, ['out', 'cache']);
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar,kernel+initrd', '--dir', sb.out, '--name', 'ref', 'ref.yml'], {
      wrap: inMountNamespaceThen(ro, 'true'),
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const fresh = await freshDigests();
    const { sha256File } = await import('./harness.js');
    for (const [f, d] of Object.entries(fresh)) expect(await sha256File(join(sb.out, f)), f).toBe(d);
    await rm(sb.out, { recursive: true, force: true });
    await mkdir(sb.out);
    await expectNothingLeft(sb, before);
    // Wiped segments: it still builds, deriving everything in a temp dir.
    const bare = await withImages('readonly-bare');
    const r2 = await run(bare, ['build', '--offline', '--cache', bare.cache, '-f', 'tar', '--dir', bare.out, 'ref.yml'], { wrap: inMountNamespaceThen(ro.replaceAll(sb.cache, bare.cache), 'true') });
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(await readdir(bare.tmp)).toEqual([]);
    // An image it does not hold: one line, nothing written.
    await writeFile(join(bare.work, 'other.yml'), 'init:\n  - oci-layout:' + join(bare.root, 'nowhere') + '\n');
    const r3 = await run(bare, ['cache', '--cache', bare.cache, 'import', (await import('./harness.js')).conformanceImages], { wrap: inMountNamespaceThen(ro.replaceAll(sb.cache, bare.cache), 'true') });
    expectOneLine(r3, /the cache .* is read-only: cannot store anything in it/);
  });

  it.skipIf(!isRoot)('a cache on a full file system: one line naming it, nothing left behind, and the next build on room works', async () => {
    const sb = await withImages('enospc-cache');
    const layout = await hostileLayout(sb, 'big', [
      { ref: 'dockyard.test/hostile/rand:1', layers: [{ entries: [{ name: 'blob', data: Array.from({ length: 3 << 20 }, (_, i) => String.fromCharCode(33 + ((i * 7919) % 89))).join('') }] }] },
    ]);
    await importImages(sb, sb.cache, layout);
    await writeFile(join(sb.work, 'big.yml'), 'init:\n  - dockyard.test/hostile/rand:1\n');
    // The cache copied onto a tmpfs with 1 MiB to spare: the segment of the 3 MiB file does not fit.
    const used = Number((await execa('du', ['-sk', sb.cache])).stdout.split('\t')[0]);
    const setup = `mount -t tmpfs -o size=${used + 1024}k tmpfs "${sb.cache}" && cp -a "${sb.root}/cache-copy/." "${sb.cache}/"`;
    await cp(sb.cache, join(sb.root, 'cache-copy'), { recursive: true });
    const before = await snapshot(sb.root, ['out', 'cache']);
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'big.yml'], {
      wrap: inMountNamespaceThen(setup, `echo "LEFT-TMP:$(ls -A "${sb.cache}/tmp" | tr '\\n' ' ')"; echo "LEFT-SEG:$(ls -A "${sb.cache}/segments" | grep -c tmp)"`),
    });
    expectOneLine(r, /no space left on device/);
    expect(r.stdout).toMatch(/LEFT-TMP:\s*$/m);
    expect(r.stdout).toMatch(/LEFT-SEG:0$/m);
    expect(await readdir(sb.out)).toEqual([]);
    await expectNothingLeft(sb, before);
    // Outside the full file system, the same cache builds.
    const ok = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'big.yml']);
    expect(ok.exitCode, ok.stderr).toBe(0);
  });
});
