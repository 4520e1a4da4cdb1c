/**
 * The .deb reader against dpkg-deb: real Debian packages (busybox-static,
 * libc6, runc) and packages dpkg-deb builds here with each compressor —
 * control fields as `dpkg-deb -f` prints them, control files as its
 * --ctrl-tarfile holds them, and the data entries (type, mode, owner, size,
 * link) as GNU tar lists its --fsys-tarfile, every file's bytes as
 * `dpkg-deb -x` writes them. Damaged and unsupported packages are one
 * clear error.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { readDeb } from '../../../pkg/debian/deb.js';
import { bodyChunks } from '../../../pkg/archive/sink.js';
import type { Entry } from '../../../pkg/rootfs/entry.js';
import { aptShow, fetchDeb } from '../../fixtures/debs.js';
import { fixturesCacheDir } from '../../fixtures/build.js';
import { DockyardError } from '../../../pkg/errors.js';

let work: string;
const debs: Record<string, string> = {};

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-deb-'));
  const want: [string, 'amd64' | 'arm64'][] = [['busybox-static', 'amd64'], ['libc6', 'arm64'], ['runc', 'amd64']];
  const shown = await aptShow(want);
  const dir = join(fixturesCacheDir(), 'debs');
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < want.length; i++) debs[want[i][0]] = await fetchDeb({ name: want[i][0], arch: want[i][1], version: shown[i].get('Version')! }, dir);
  // Packages dpkg-deb builds with each compressor, holding a file, an executable, a symlink, a hard link and a directory.
  const root = join(work, 'pkgroot');
  await mkdir(join(root, 'DEBIAN'), { recursive: true });
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await mkdir(join(root, 'etc/demo'), { recursive: true });
  await writeFile(join(root, 'DEBIAN/control'), 'Package: demo\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Dockyard <dockyard@example.org>\nDescription: a test package\n with a second line\n');
  await writeFile(join(root, 'DEBIAN/postinst'), '#!/bin/sh\nexit 0\n');
  await chmod(join(root, 'DEBIAN/postinst'), 0o755);
  await writeFile(join(root, 'usr/bin/demo'), '#!/bin/sh\necho demo\n');
  await chmod(join(root, 'usr/bin/demo'), 0o755);
  await writeFile(join(root, 'etc/demo/conf'), 'x=1\n'.repeat(1000));
  await execa('ln', [join(root, 'etc/demo/conf'), join(root, 'etc/demo/conf.hard')]);
  await symlink('demo', join(root, 'usr/bin/demo-link'));
  for (const z of ['xz', 'gzip', 'none', 'zstd']) {
    const out = join(work, `demo-${z}.deb`);
    await execa('dpkg-deb', ['--root-owner-group', `-Z${z}`, '--build', root, out]);
    debs[`demo-${z}`] = out;
  }
}, 300_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const chunks = (path: string) => createReadStream(path, { highWaterMark: 64 * 1024 }) as AsyncIterable<Buffer>;

/** tar's mode string of an entry. */
function modeString(e: Entry): string {
  const t = { file: '-', dir: 'd', symlink: 'l', hardlink: 'h', char: 'c', block: 'b', fifo: 'p' }[e.type];
  const bits = 'rwxrwxrwx'.split('').map((c, i) => ((e.mode >> (8 - i)) & 1 ? c : '-'));
  if (e.mode & 0o4000) bits[2] = bits[2] === 'x' ? 's' : 'S';
  if (e.mode & 0o2000) bits[5] = bits[5] === 'x' ? 's' : 'S';
  if (e.mode & 0o1000) bits[8] = bits[8] === 'x' ? 't' : 'T';
  return t + bits.join('');
}

async function judge(name: string): Promise<void> {
  const deb = debs[name];
  const d = await readDeb(chunks(deb), name);
  // Control fields: dpkg-deb -f prints "Field: value" with continuation lines.
  const f = await execa('dpkg-deb', ['-f', deb]);
  const fields = Object.fromEntries(
    f.stdout
      .replace(/\n[ \t]/g, '\u0000')
      .split('\n')
      .map((l) => {
        const i = l.indexOf(':');
        return [l.slice(0, i).toLowerCase(), l.slice(i + 1).trim().split('\u0000').map((s) => s.trim()).join('\n')];
      }),
  );
  expect(d.control.fields, name).toEqual(fields);
  const ctrl = await execa('sh', ['-c', `dpkg-deb --ctrl-tarfile "${deb}" | tar -tf - | sed -n 's#^\\./##p' | grep -v '/$' | grep -v '^$' | sort`]);
  expect([...d.control.files.keys()].sort(), name).toEqual(ctrl.stdout.split('\n').filter(Boolean));

  const x = join(work, `x-${name}`);
  await execa('dpkg-deb', ['-x', deb, x]);
  const listed = await execa('sh', ['-c', `dpkg-deb --fsys-tarfile "${deb}" | tar --numeric-owner -tvf -`]);
  const theirs = listed.stdout
    .split('\n')
    .map((l) => {
      const m = /^(\S+) (\d+)\/(\d+)\s+(\d+|\d+,\s*\d+) \S+ \S+ \.\/(.*?)(?: -> (.*)| link to \.\/(.*))?$/.exec(l);
      if (!m) throw new Error(`tar line: ${l}`);
      const path = m[5].replace(/\/$/, '');
      return path === '' ? '' : `${path} ${m[1]} ${m[2]}/${m[3]} ${m[1].startsWith('-') ? m[4] : 0}${m[6] ? ` -> ${m[6]}` : ''}${m[7] ? ` link ${m[7]}` : ''}`;
    })
    .filter(Boolean);
  const ours: string[] = [];
  let files = 0;
  for await (const e of d.data) {
    ours.push(`${e.path} ${modeString(e)} ${e.uid}/${e.gid} ${e.type === 'file' ? e.size : 0}${e.type === 'symlink' ? ` -> ${e.linkname}` : ''}${e.type === 'hardlink' ? ` link ${e.linkname}` : ''}`);
    if (e.type === 'file') {
      const h = createHash('sha256');
      for await (const c of bodyChunks(e.body)) h.update(c);
      expect(h.digest('hex'), e.path).toBe(createHash('sha256').update(await readFile(join(x, e.path))).digest('hex'));
      files++;
    }
  }
  expect(ours, name).toEqual(theirs);
  expect(files, name).toBeGreaterThan(0);
}

describe('.deb reader', () => {
  for (const name of ['busybox-static', 'libc6', 'runc']) {
    it(`${name} (Debian's): control fields, control files, data entries and bytes as dpkg-deb and GNU tar see them`, () => judge(name), 120_000);
  }
  for (const z of ['xz', 'gzip', 'none']) {
    it(`a package dpkg-deb built with -Z${z}: the same, hard link and symlink included`, () => judge(`demo-${z}`), 60_000);
  }

  it('zstd, a damaged signature, a truncated package: one clear E_ARCHIVE_FORMAT line', async () => {
    const err = async (src: AsyncIterable<Buffer>, what: string) => {
      try {
        const d = await readDeb(src, what);
        for await (const e of d.data) for await (const _ of bodyChunks(e.body)) void _;
      } catch (e) {
        expect(e).toBeInstanceOf(DockyardError);
        return (e as DockyardError).message;
      }
      throw new Error('no error');
    };
    expect(await err(chunks(debs['demo-zstd']), 'z.deb')).toMatch(/^z\.deb: (control|data)\.tar\.zst: zst compression is not supported \(xz and gzip are\)$/);
    const whole = await readFile(debs['runc']);
    const flipped = Buffer.from(whole);
    flipped[1] = 0x3f;
    expect(await err((async function* () { yield flipped; })(), 'f.deb')).toBe('f.deb: not a .deb (no ar archive signature)');
    const cut = whole.subarray(0, Math.floor(whole.length * 0.6));
    expect(await err((async function* () { yield cut; })(), 't.deb')).toMatch(/^t\.deb: (truncated \.deb|data\.tar\.xz: truncated tar archive \(the body of .* ends early\))$/);
  });
});
