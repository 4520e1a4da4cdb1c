/**
 * A Debian binary package (deb(5)): an ar archive of `debian-binary`
 * ("2.0\n"), `control.tar.gz` and `data.tar.gz`, in that order, as
 * dpkg-deb --build writes them. The data member is compressed on every core
 * and spooled to a scratch file (ar wants its size first); the control
 * member is small and made in memory.
 *
 * Data tar entries are named `./usr/bin/x` with `./` first, owners by name
 * and id (dpkg looks names up first), mtimes SOURCE_DATE_EPOCH. Ghost files
 * are not shipped. Each package gets /usr/share/doc/NAME/copyright and
 * changelog.Debian.gz (Policy §12.5, §12.7) unless its contents bring them.
 */
import { createReadStream } from 'node:fs';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ParallelGzip } from '../../archive/pgzip.js';
import { Sink, type ByteSink } from '../../archive/sink.js';
import { END_OF_ARCHIVE, writeTarEntry } from '../../archive/tarwrite.js';
import { DockyardError } from '../../errors.js';
import { fsError } from '../../fsutil.js';
import type { Entry } from '../../rootfs/entry.js';
import { trackTemp, untrackTemp } from '../../tempfiles.js';
import type { PackageFile, PackagePlan } from '../../package/types.js';
import { arMemberHeader, arPad, AR_MAGIC } from './ar.js';
import { changelogText, controlFile, copyrightText, gzipDoc } from './control.js';
import { createHash } from 'node:crypto';

interface DebFile extends PackageFile {
  /** Generated here (documentation), not in the plan. */
  bytes?: Buffer;
}

/** What dpkg-gencontrol counts as Installed-Size: KiB per file rounded up, 1 per other entry. */
function installedKiB(files: DebFile[]): number {
  return files.reduce((n, f) => n + (f.type === 'file' ? Math.ceil(f.size / 1024) : 1), 0);
}

function docFile(path: string, bytes: Buffer, mtime: number): DebFile {
  return {
    path,
    type: 'file',
    mode: 0o644,
    user: 'root',
    group: 'root',
    uid: 0,
    gid: 0,
    size: bytes.length,
    mtime,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    md5: createHash('md5').update(bytes).digest('hex'),
    bytes,
  };
}

/**
 * Container roots are shipped as their images hold them: owners from the
 * image (uid 1000 for a user's home), its modes (1777 /tmp, 0640 shadow),
 * its binaries. Debian's checks for the host's own files do not apply
 * below the bundles, and the package says so the way Debian packages do.
 */
function lintianOverrides(name: string, containersDir: string): string {
  const where = `[${containersDir.slice(1)}/*]`;
  const tags = ['wrong-file-owner-uid-or-gid', 'non-standard-dir-perm', 'non-standard-file-perm', 'executable-not-elf-or-script', 'elevated-privileges', 'setuid-binary', 'setgid-binary', 'shell-script-fails-syntax-check', 'statically-linked-binary', 'embedded-library', 'file-in-unusual-dir', 'package-contains-empty-directory'];
  return ['# A container root filesystem, as its image holds it (dockyard).', ...tags.map((t) => `${name}: ${t} * ${where}`), ''].join('\n');
}

/** The plan's files plus the documentation Debian asks for, sorted, parents listed. */
export function debFiles(plan: PackagePlan, mtime: number): DebFile[] {
  const files: DebFile[] = plan.contents.files.filter((f) => !f.ghost);
  const have = new Set(files.map((f) => f.path));
  const doc = `/usr/share/doc/${plan.meta.name}`;
  const extra: DebFile[] = [];
  if (!have.has(`${doc}/copyright`)) extra.push(docFile(`${doc}/copyright`, Buffer.from(copyrightText(plan.meta), 'utf8'), mtime));
  if (!have.has(`${doc}/changelog.Debian.gz`) && !have.has(`${doc}/changelog.gz`)) extra.push(docFile(`${doc}/changelog.Debian.gz`, gzipDoc(changelogText(plan.meta)), mtime));
  const overrides = `/usr/share/lintian/overrides/${plan.meta.name}`;
  if (plan.containersDir && !have.has(overrides)) extra.push(docFile(overrides, Buffer.from(lintianOverrides(plan.meta.name, plan.containersDir), 'utf8'), mtime));
  for (const e of extra) {
    for (let p = e.path.slice(0, e.path.lastIndexOf('/')); p !== ''; p = p.slice(0, p.lastIndexOf('/'))) {
      if (have.has(p)) continue;
      have.add(p);
      extra.push({ path: p, type: 'dir', mode: 0o755, user: 'root', group: 'root', uid: 0, gid: 0, size: 0, mtime, implicit: true });
    }
  }
  return [...files, ...extra].sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

function tarEntry(f: DebFile, body?: Buffer | AsyncIterable<Buffer>): Entry {
  return {
    path: `.${f.path}`,
    type: f.type,
    mode: f.mode,
    uid: f.uid,
    gid: f.gid,
    // A numeric owner (a container's files) has no name to look up.
    uname: /^\d+$/.test(f.user) ? undefined : f.user,
    gname: /^\d+$/.test(f.group) ? undefined : f.group,
    size: f.type === 'file' ? f.size : 0,
    linkname: f.linkname,
    mtime: f.mtime,
    body,
  };
}

/** control.tar.gz: ./, then conffiles, control, md5sums and the scripts, sorted by name. */
async function controlTar(plan: PackagePlan, files: DebFile[], mtime: number): Promise<Buffer> {
  const members = new Map<string, { body: Buffer; mode: number }>();
  members.set('control', { body: controlFile(plan.meta, installedKiB(files)), mode: 0o644 });
  const conf = files.filter((f) => f.config && f.type === 'file').map((f) => f.path);
  if (conf.length > 0) members.set('conffiles', { body: Buffer.from(conf.join('\n') + '\n'), mode: 0o644 });
  // dh_md5sums leaves conffiles out: dpkg records their digests itself.
  const sums = files.filter((f) => f.type === 'file' && !f.config).map((f) => `${f.md5}  ${f.path.slice(1)}\n`);
  if (sums.length > 0) members.set('md5sums', { body: Buffer.from(sums.join('')), mode: 0o644 });
  for (const [k, v] of Object.entries(plan.scripts.deb)) if (v !== undefined) members.set(k, { body: Buffer.from(v, 'utf8'), mode: 0o755 });
  const parts: Buffer[] = [];
  const sink: ByteSink = { write: async (b) => void parts.push(b) };
  await writeTarEntry(sink, { path: '.', type: 'dir', mode: 0o755, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 0, mtime }, mtime);
  for (const name of [...members.keys()].sort()) {
    const m = members.get(name)!;
    await writeTarEntry(sink, { path: `./${name}`, type: 'file', mode: m.mode, uid: 0, gid: 0, uname: 'root', gname: 'root', size: m.body.length, mtime, body: m.body }, mtime);
  }
  parts.push(END_OF_ARCHIVE);
  return gzipSync(Buffer.concat(parts), { level: 9 });
}

export interface DebOptions {
  tmpDir: string;
  /** Seconds: mtime of the ar members and generated files. */
  mtime: number;
  signal?: AbortSignal;
}

export async function encodeDeb(plan: PackagePlan, out: ByteSink, o: DebOptions): Promise<void> {
  const files = debFiles(plan, o.mtime);
  const control = await controlTar(plan, files, o.mtime);
  const spool = join(o.tmpDir, `deb-data-${process.pid}-${Math.floor(performance.now() * 1000)}.tar.gz`);
  trackTemp(spool);
  try {
    const stream = createWriteStream(spool, { flags: 'wx', mode: 0o600 });
    const file = new Sink([stream], { hash: false, onError: (e) => fsError('E_CACHE', `cannot write ${spool}`, e) });
    const gz = new ParallelGzip(file, 9);
    await writeTarEntry(gz, { path: '.', type: 'dir', mode: 0o755, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 0, mtime: o.mtime }, o.mtime);
    for (const f of files) {
      o.signal?.throwIfAborted();
      await writeTarEntry(gz, tarEntry(f, f.type === 'file' ? (f.bytes ?? plan.contents.body(f)) : undefined), o.mtime);
      await gz.boundary();
    }
    await gz.write(END_OF_ARCHIVE);
    await gz.end();
    await file.end();
    const dataSize = file.bytes;

    await out.write(AR_MAGIC);
    const member = async (name: string, size: number, body: () => Promise<void>) => {
      await out.write(arMemberHeader(name, size, o.mtime));
      await body();
      await out.write(arPad(size));
    };
    await member('debian-binary', 4, () => out.write(Buffer.from('2.0\n')));
    await member('control.tar.gz', control.length, () => out.write(control));
    await member('data.tar.gz', dataSize, async () => {
      let n = 0;
      for await (const c of createReadStream(spool, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        o.signal?.throwIfAborted();
        n += c.length;
        await out.write(c);
      }
      if (n !== dataSize) throw new DockyardError('E_INTERNAL', `deb: data.tar.gz is ${n} bytes, expected ${dataSize}`);
    });
  } finally {
    await rm(spool, { force: true });
    untrackTemp(spool);
  }
}
