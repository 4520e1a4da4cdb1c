/**
 * Arch Linux packages, `NAME-[EPOCH:]VERSION-RELEASE-ARCH.pkg.tar.gz`, as
 * makepkg builds them and pacman 6 (libalpm 13/14) installs them: a
 * gzip-compressed tar (ustar, pax headers where a value does not fit) of
 *
 *   .PKGINFO        metadata (pkginfo.ts), first: libalpm stops reading
 *                   the archive once it has it (be_package.c
 *                   _alpm_pkg_load_internal, full=0: `pacman -Qip`, -U)
 *   .INSTALL        the scriptlet, if the plan has one
 *   .MTREE          gzip'd mtree of everything else (mtree.ts); libalpm
 *                   takes the file list from it and, when it comes before
 *                   the files, stops reading there too (full=1: -Qlp)
 *   usr/…           the files, directories (`usr/bin/`) and symlinks, sorted
 *
 * makepkg orders the dot files by name (.BUILDINFO .INSTALL .MTREE
 * .PKGINFO, a glob in the C locale); libalpm takes them in any order.
 *
 * No .BUILDINFO: it records how makepkg built the package (the PKGBUILD's
 * sha256, build and start directories, the build host's installed
 * packages, makepkg.conf's BUILDENV/OPTIONS) for rebuilders such as
 * archlinux-repro; none of that exists here, libalpm never reads it, and a
 * made-up one would mislead those tools.
 *
 * All digests are in the plan, so the .MTREE is written before the files
 * and the archive in one pass; each body's sha256 is checked as it streams
 * so a body that changed since planning cannot ship under a stale .MTREE.
 * Entries carry the owner and group names besides the ids (as bsdtar
 * writes them): pacman extracts with libarchive, which maps names first, so
 * a file owned by a user the scriptlet creates gets that user's id.
 *
 * Compression: gzip members of about 4 MiB compressed on every core
 * (pgzip.ts); libarchive, which pacman, bsdtar and repo-add read with,
 * reads concatenated members as one stream, as does gzip -d.
 */
import { createHash } from 'node:crypto';
import type { PackageFile, PackagePlan } from '../../package/types.js';
import type { Entry } from '../../rootfs/entry.js';
import { BLOCK, END_OF_ARCHIVE, tarHeader } from '../../archive/tarwrite.js';
import type { ByteSink } from '../../archive/sink.js';
import { ParallelGzip } from '../../archive/pgzip.js';
import { DockyardError } from '../../errors.js';
import { encodeMtree, type MtreeEntry } from './mtree.js';
import { pkginfoText } from './pkginfo.js';
import { checkPacmanName } from './version.js';

const GZIP_LEVEL = 6; // makepkg's COMPRESSGZ: gzip -c -f -n (level 6)

export interface PacmanOptions {
  signal?: AbortSignal;
  /** .PKGINFO builddate and the metadata files' mtime (SOURCE_DATE_EPOCH); default plan.time. */
  mtime?: number;
  /** Unused: the package is written in one pass, nothing is spooled. (PackageEncoder passes it.) */
  tmpDir?: string;
}

/** tar's uname/gname fields hold 32 bytes; tarwrite.ts keeps a NUL, so 31. A longer name is refused, never cut (ownership would change). */
const MAX_OWNER_NAME = 31;

function ownerName(name: string, path: string, what: string): string {
  if (Buffer.byteLength(name) > MAX_OWNER_NAME) throw new DockyardError('E_PACKAGE', `${path}: ${what} name '${name}' is longer than tar's ${MAX_OWNER_NAME} bytes`);
  return name;
}

const pad = (n: number) => Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);

/** A file of the plan as a tar entry: relative path (`usr/bin/x`), owner names beside the ids (as bsdtar writes them). */
function toEntry(f: PackageFile): Entry {
  return {
    path: f.path.replace(/^\/+/, ''),
    type: f.type,
    mode: f.mode & 0o7777,
    uid: f.uid,
    gid: f.gid,
    uname: ownerName(f.user, f.path, 'user'),
    gname: ownerName(f.group, f.path, 'group'),
    size: f.type === 'file' ? f.size : 0,
    linkname: f.type === 'symlink' ? f.linkname : undefined,
    mtime: f.mtime,
  };
}

/** Check what libalpm and the tar need of the plan's files before writing a byte. */
function checkFiles(files: PackageFile[]): void {
  for (const f of files) {
    if (f.ghost) continue;
    if (!f.path.startsWith('/') || f.path === '/' || f.path.endsWith('/')) throw new DockyardError('E_INTERNAL', `pacman: bad path '${f.path}' in the plan`);
    // libalpm treats every top-level name starting with '.' as package metadata (be_package.c handle_simple_path): never installed.
    if (f.path.startsWith('/.')) throw new DockyardError('E_PACKAGE', `pacman: ${f.path}: top-level names starting with '.' are reserved for package metadata (.PKGINFO, .MTREE, …)`);
    // pacman's database lists files one per line (local/NAME-VER/files): a line break in a name would corrupt it.
    if (/[\r\n]/.test(f.path)) throw new DockyardError('E_PACKAGE', `pacman: ${JSON.stringify(f.path)}: a file name with a line break cannot be recorded in pacman's database`);
    if (f.type === 'file' && (!f.sha256 || !f.md5)) throw new DockyardError('E_INTERNAL', `pacman: ${f.path} has no digests in the plan`);
    if (f.type === 'symlink' && !f.linkname) throw new DockyardError('E_INTERNAL', `pacman: symlink ${f.path} has no target`);
  }
}

/** Metadata file as mtree entry and tar entry (root-owned 0644, the build date, as makepkg's chmod/touch leave them). */
function metaFile(path: string, body: Buffer, mtime: number): { mtree: MtreeEntry; tar: Entry } {
  return {
    mtree: {
      path,
      type: 'file',
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime,
      size: body.length,
      md5: createHash('md5').update(body).digest('hex'),
      sha256: createHash('sha256').update(body).digest('hex'),
    },
    tar: { path, type: 'file', mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', size: body.length, mtime, body },
  };
}

/** Encode `plan` as a pacman package into `sink` (not ended: the caller owns it). */
export async function encodePacman(plan: PackagePlan, sink: ByteSink, o: PacmanOptions = {}): Promise<void> {
  const bad = checkPacmanName(plan.meta);
  if (bad) throw new DockyardError('E_PACKAGE', bad);
  const files = plan.contents.files.filter((f) => !f.ghost);
  checkFiles(files);
  const date = o.mtime ?? plan.time;

  const pkginfo = metaFile('.PKGINFO', Buffer.from(pkginfoText(plan, date), 'utf8'), date);
  const install = plan.scripts.pacman !== undefined ? metaFile('.INSTALL', Buffer.from(plan.scripts.pacman, 'utf8'), date) : undefined;
  const mtreeEntries: MtreeEntry[] = [pkginfo.mtree, ...(install ? [install.mtree] : [])];
  const tarEntries = files.map(toEntry);
  for (const [i, f] of files.entries()) {
    const e = tarEntries[i];
    mtreeEntries.push({ path: e.path, type: f.type, mode: e.mode, uid: f.uid, gid: f.gid, mtime: f.mtime, size: e.size, md5: f.md5, sha256: f.sha256, linkname: e.linkname });
  }
  const mtree = metaFile('.MTREE', encodeMtree(mtreeEntries), date);

  const gz = new ParallelGzip(sink, GZIP_LEVEL);
  for (const m of [pkginfo, install, mtree]) {
    if (!m) continue;
    await gz.write(tarHeader(m.tar, date));
    await gz.write(m.tar.body as Buffer);
    await gz.write(pad(m.tar.size));
  }
  await gz.boundary();

  for (const [i, f] of files.entries()) {
    o.signal?.throwIfAborted();
    await gz.write(tarHeader(tarEntries[i], date));
    if (f.type === 'file') {
      const hash = createHash('sha256');
      let n = 0;
      for await (const chunk of plan.contents.body(f)) {
        o.signal?.throwIfAborted();
        n += chunk.length;
        if (n > f.size) throw new DockyardError('E_INTERNAL', `pacman: ${f.path}: body longer than its planned size ${f.size}`);
        hash.update(chunk);
        await gz.write(chunk);
      }
      if (n !== f.size) throw new DockyardError('E_INTERNAL', `pacman: ${f.path}: body is ${n} bytes, the plan says ${f.size}`);
      if (hash.digest('hex') !== f.sha256) throw new DockyardError('E_INTERNAL', `pacman: ${f.path}: body does not match its planned sha256 (it changed since planning)`);
      await gz.write(pad(f.size));
    }
    // A gzip member may end here, once about 4 MiB are gathered: where depends only on the bytes, never on timing or cores.
    await gz.boundary();
  }
  await gz.write(END_OF_ARCHIVE);
  await gz.end();
}
