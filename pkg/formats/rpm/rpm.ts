/**
 * The rpm encoder: a binary rpm v4 package as rpm 4.18 reads it and as
 * rpmbuild 4.18 writes it ("RPM File Format"; LSB Core "Package File
 * Format" §22.2; rpm's docs/manual/format.md and signatures_digests.md), with
 * no rpm tools:
 *
 *   lead (96 bytes, lead.ts)
 *   signature header (header structure, region 62), zero-padded to 8 bytes
 *   main header (header structure, region 63)
 *   payload (gzip of a cpio archive, payload.ts)
 *
 * The signature header holds the digests rpm -K checks: SHA-1 and SHA-256 of
 * the main header's bytes, MD5 of header + payload, and the sizes. The
 * main header holds the payload's SHA-256 (compressed: PAYLOADDIGEST;
 * uncompressed: PAYLOADDIGESTALT). So the payload is made first, spooled
 * compressed to a temp file (never held in memory), then the main header,
 * then the MD5 over header + spooled payload, then everything is written out
 * in order. The output depends only on the plan: no clock, no host name, no
 * randomness (the temp file's name is random but is not in the output).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { PackageFile, PackagePlan } from '../../package/types.js';
import { archName } from '../../package/types.js';
import { Sink, type ByteSink } from '../../archive/sink.js';
import { DockyardError } from '../../errors.js';
import { trackTemp, untrackTemp } from '../../tempfiles.js';
import { encodeLead } from './lead.js';
import { HeaderBuilder } from './header.js';
import { FileFlag, HASH_SHA256, HEADER_IMMUTABLE, HEADER_SIGNATURES, Sense, SigTag, Tag, Verify } from './tags.js';
import { fileMode, LARGE_FILE, GZIP_LEVEL, writePayload, type PayloadResult } from './payload.js';
import { checkRpmVersion, evrOf, isPackageName, parseRelation, type RpmDep } from './version.js';

/** Written as BUILDHOST: fixed, so the package does not depend on the machine that built it. */
export const BUILD_HOST = 'dockyard';
/** Written as RPMVERSION: the rpm release whose format and tag set this encoder follows (rpm reads the tag for display only). */
export const RPM_FORMAT_VERSION = '4.18.0';
/** rpmbuild's reserved signature space (32 + %__gpg_reserved_space 4096): rpmsign can sign the package in place. */
const RESERVED_SPACE = 4128;
const U32_LIMIT = 0xffffffff;

/**
 * Directories the distributions' base packages own (Fedora/RHEL/openSUSE
 * `filesystem`, and systemd's unit directories). A package that also owns one
 * with other metadata is a file conflict for rpm (rpmfilesCompare(): any mode
 * difference, e.g. Fedora's 0555 /usr/bin against a plan's 0755), so these
 * are left out of the header and the payload, whether the plan added them as
 * parents (`implicit`) or the spec declared them: rpm creates a missing
 * parent directory itself when it installs a file below it. Every other
 * directory is owned, implicit parents included, as the Fedora guidelines
 * ask ("packages must own all directories they put files in", except the
 * filesystem's): so that erasing the package removes /usr/lib/NAME or
 * /etc/NAME again.
 */
export const SYSTEM_DIRS: ReadonlySet<string> = new Set([
  '/bin', '/boot', '/dev', '/etc', '/etc/opt', '/etc/systemd', '/etc/systemd/system', '/etc/sysconfig', '/etc/profile.d', '/etc/logrotate.d',
  '/home', '/lib', '/lib64', '/media', '/mnt', '/opt', '/proc', '/root', '/run', '/sbin', '/srv', '/sys', '/tmp',
  '/usr', '/usr/bin', '/usr/include', '/usr/lib', '/usr/lib64', '/usr/libexec', '/usr/sbin', '/usr/src',
  '/usr/lib/systemd', '/usr/lib/systemd/system', '/usr/lib/systemd/user', '/usr/lib/sysusers.d', '/usr/lib/tmpfiles.d', '/usr/lib/debug',
  '/usr/local', '/usr/local/bin', '/usr/local/etc', '/usr/local/include', '/usr/local/lib', '/usr/local/lib64', '/usr/local/libexec', '/usr/local/sbin', '/usr/local/share', '/usr/local/src',
  '/usr/share', '/usr/share/applications', '/usr/share/doc', '/usr/share/icons', '/usr/share/info', '/usr/share/licenses', '/usr/share/man', '/usr/share/pixmaps',
  ...Array.from({ length: 9 }, (_, i) => `/usr/share/man/man${i + 1}`),
  '/var', '/var/cache', '/var/lib', '/var/local', '/var/lock', '/var/log', '/var/opt', '/var/run', '/var/spool', '/var/tmp',
]);

/** rpm's %__docdir_path: a file below one of these is %doc (RPMFILE_DOC), as rpmbuild marks it (build/files.c isDoc()). */
const DOC_DIRS = ['/usr/share/doc/', '/usr/share/man/', '/usr/share/info/', '/usr/share/gtk-doc/html/', '/usr/share/gnome/help/', '/usr/doc/', '/usr/man/', '/usr/info/', '/usr/X11R6/man/'];

/** %{_isa} of each architecture: rpmbuild adds `NAME%{_isa} = EVR` to the provides of an arch-specific package. */
const ISA: Record<string, string> = { x86_64: '(x86-64)', aarch64: '(aarch-64)' };
/** %{_target_platform} (PLATFORM), with the autoconf vendors of a generic rpm build. */
const PLATFORM: Record<string, string> = { x86_64: 'x86_64-pc-linux-gnu', aarch64: 'aarch64-unknown-linux-gnu' };

/**
 * GROUP from the Debian-style section: the common sections as the classic
 * rpm groups (rpm's former GROUPS list), anything else as written. Not
 * rpmbuild's "Unspecified": rpmlint reads that as no group at all and
 * reports the error no-group-tag.
 */
const GROUPS: Record<string, string> = {
  admin: 'Applications/System',
  comm: 'Applications/Communications',
  database: 'Applications/Databases',
  devel: 'Development/Tools',
  doc: 'Documentation',
  editors: 'Applications/Editors',
  games: 'Amusements/Games',
  graphics: 'Applications/Multimedia',
  httpd: 'Applications/Internet',
  kernel: 'System Environment/Kernel',
  libdevel: 'Development/Libraries',
  libs: 'System Environment/Libraries',
  mail: 'Applications/Internet',
  net: 'Applications/Internet',
  science: 'Applications/Engineering',
  shells: 'System Environment/Shells',
  sound: 'Applications/Multimedia',
  text: 'Applications/Text',
  utils: 'Applications/System',
  video: 'Applications/Multimedia',
  web: 'Applications/Internet',
  x11: 'User Interface/X',
};
export function rpmGroup(section: string): string {
  const s = section.trim();
  return GROUPS[s] ?? (s || 'misc');
}

/**
 * The plan's files this package owns: every one but the SYSTEM_DIRS
 * directories, in byte order of the path, which is rpmbuild's (strcmp,
 * build/files.c) and lets rpm binary-search the list (lib/rpmfi.c
 * rpmfnFindFN()). The plan already sorts; sorting again costs nothing and
 * keeps the header right whatever the order given.
 */
export function rpmFiles(files: PackageFile[]): PackageFile[] {
  const keyed = files.filter((f) => !(f.type === 'dir' && SYSTEM_DIRS.has(f.path))).map((f) => ({ f, key: Buffer.from(f.path, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  for (let i = 1; i < keyed.length; i++) if (keyed[i].key.equals(keyed[i - 1].key)) throw new DockyardError('E_PACKAGE', `rpm: ${keyed[i].f.path} is listed twice`);
  return keyed.map((k) => k.f);
}

export async function encodeRpm(plan: PackagePlan, sink: ByteSink, o: { tmpDir: string; signal?: AbortSignal }): Promise<void> {
  const { meta } = plan;
  const problem = checkRpmVersion(meta);
  if (problem) throw new DockyardError('E_PACKAGE', problem);
  const arch = archName('rpm', meta.arch);
  const files = rpmFiles(plan.contents.files);
  checkFiles(files);
  // rpmbuild's switch to 64-bit file sizes and the stripped cpio form (build/files.c: a regular file of UINT32_MAX bytes or more).
  const large = files.some((f) => f.type === 'file' && f.size >= LARGE_FILE);
  o.signal?.throwIfAborted();

  const dir = await mkdtemp(join(o.tmpDir, 'rpm-payload-'));
  trackTemp(dir);
  try {
    const spooled = join(dir, 'payload.gz');
    const out = createWriteStream(spooled);
    const spool = new Sink([out], { hash: false });
    let payload: PayloadResult;
    try {
      payload = await writePayload({
        contents: plan.contents,
        files: files.map((file, fx) => ({ fx, file })).filter((p) => !p.file.ghost),
        stripped: large,
        out: spool,
        signal: o.signal,
      });
      await spool.end();
    } catch (e) {
      out.destroy();
      throw e;
    }

    const header = mainHeader(plan, files, payload, large, arch).encode(HEADER_IMMUTABLE);
    // RPMSIGTAG_MD5 covers header + compressed payload (build/pack.c writeRPM()): a second read of the spool.
    const md5 = createHash('md5').update(header);
    for await (const c of createReadStream(spooled)) {
      o.signal?.throwIfAborted();
      md5.update(c as Buffer);
    }
    const signature = signatureHeader({ header, payloadSize: payload.size, archiveSize: payload.archiveSize, md5: md5.digest() });

    await sink.write(encodeLead({ nevr: `${meta.name}-${evrOf(meta)}`, arch }));
    await sink.write(signature);
    await sink.write(header);
    let copied = 0;
    for await (const c of createReadStream(spooled)) {
      o.signal?.throwIfAborted();
      copied += (c as Buffer).length;
      await sink.write(c as Buffer);
    }
    if (copied !== payload.size) throw new DockyardError('E_INTERNAL', `rpm: the spooled payload has ${copied} bytes, ${payload.size} were written`);
  } finally {
    await rm(dir, { recursive: true, force: true });
    untrackTemp(dir);
  }
}

/** What the header and the payload need of each path and owner; the plan should already guarantee it. */
function checkFiles(files: PackageFile[]): void {
  for (const f of files) {
    if (!f.path.startsWith('/') || f.path === '/' || f.path.endsWith('/') || f.path.includes('\0') || f.path.slice(1).split('/').some((c) => c === '' || c === '.' || c === '..'))
      throw new DockyardError('E_PACKAGE', `rpm: ${JSON.stringify(f.path)} is not an absolute path of a file`);
    if (!f.user || !f.group) throw new DockyardError('E_PACKAGE', `rpm: ${f.path} has no owner or group name`);
  }
}

/** `header` SHA-1/SHA-256, header + payload MD5 and the sizes, as rpmGenerateSignature() (lib/signature.c) writes them; padded to 8 bytes. */
function signatureHeader(o: { header: Buffer; payloadSize: number; archiveSize: number; md5: Buffer }): Buffer {
  const s = new HeaderBuilder();
  s.string(SigTag.SHA1, createHash('sha1').update(o.header).digest('hex'));
  s.string(SigTag.SHA256, createHash('sha256').update(o.header).digest('hex'));
  s.bin(SigTag.MD5, o.md5);
  const size = o.header.length + o.payloadSize;
  if (size >= U32_LIMIT || o.archiveSize >= U32_LIMIT) {
    // rpm writes both 64-bit variants in place of both 32-bit ones when either does not fit.
    s.int64(SigTag.LONGSIZE, size);
    s.int64(SigTag.LONGARCHIVESIZE, o.archiveSize);
  } else {
    s.int32(SigTag.SIZE, size);
    s.int32(SigTag.PAYLOADSIZE, o.archiveSize);
  }
  s.bin(SigTag.RESERVEDSPACE, Buffer.alloc(RESERVED_SPACE));
  const b = s.encode(HEADER_SIGNATURES);
  // The main header must start 8-byte aligned in the file (lib/signature.c rpmWriteSignature() pads, rpmReadSignature() skips).
  return Buffer.concat([b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
}

/** strcmp order of UTF-8 bytes (rpm sorts dependency sets with strcmp: lib/rpmds.c doFind()). */
const byteCompare = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/** A dependency set as rpmds keeps it: no duplicates, sorted by name, then version, then flags. */
function depSet(list: RpmDep[]): RpmDep[] {
  const seen = new Map<string, RpmDep>();
  for (const d of list) seen.set(`${d.name}\0${d.version}\0${d.flags}`, d);
  return [...seen.values()].sort((a, b) => byteCompare(a.name, b.name) || byteCompare(a.version, b.version) || a.flags - b.flags);
}

function putDeps(h: HeaderBuilder, tags: { name: number; flags: number; version: number }, deps: RpmDep[]): void {
  const set = depSet(deps);
  if (set.length === 0) return;
  h.stringArray(tags.name, set.map((d) => d.name));
  h.int32(tags.flags, set.map((d) => d.flags >>> 0));
  h.stringArray(tags.version, set.map((d) => d.version));
}

function rpmlib(feature: string, version: string): RpmDep {
  return { name: `rpmlib(${feature})`, flags: Sense.RPMLIB | Sense.LESS | Sense.EQUAL, version };
}

/** `(dir/, base)` of every path and the directory list: rpm's compressed file names (lib/legacy.c compressFilelist()). */
function splitPaths(files: PackageFile[]): { dirNames: string[]; dirIndexes: number[]; baseNames: string[] } {
  const dirNames: string[] = [];
  const index = new Map<string, number>();
  const dirIndexes: number[] = [];
  const baseNames: string[] = [];
  for (const f of files) {
    const cut = f.path.lastIndexOf('/') + 1;
    const dir = f.path.slice(0, cut);
    let i = index.get(dir);
    if (i === undefined) {
      i = dirNames.push(dir) - 1;
      index.set(dir, i);
    }
    dirIndexes.push(i);
    baseNames.push(f.path.slice(cut));
  }
  return { dirNames, dirIndexes, baseNames };
}

/**
 * BUILDTIME: the plan's time, SOURCE_DATE_EPOCH (else the newest changelog
 * date), which every mtime of the package carries too: what rpmbuild's
 * %use_source_date_epoch_as_buildtime writes.
 */
function buildTime(plan: PackagePlan): number {
  return Math.min(U32_LIMIT, Math.max(0, Math.floor(plan.time)));
}

function mainHeader(plan: PackagePlan, files: PackageFile[], payload: PayloadResult, large: boolean, arch: string): HeaderBuilder {
  const { meta, scripts } = plan;
  const evr = evrOf(meta);
  const h = new HeaderBuilder();

  // Package identity and description. SUMMARY, DESCRIPTION and GROUP are I18NSTRINGs in locale "C", as rpmbuild writes them.
  h.stringArray(Tag.HEADERI18NTABLE, ['C']);
  h.string(Tag.NAME, meta.name);
  h.string(Tag.VERSION, meta.version);
  h.string(Tag.RELEASE, meta.release);
  if (meta.epoch > 0) h.int32(Tag.EPOCH, meta.epoch);
  const summary = meta.summary.trim() || meta.name;
  h.i18n(Tag.SUMMARY, summary);
  h.i18n(Tag.DESCRIPTION, meta.description.trim() ? meta.description : summary);
  h.int32(Tag.BUILDTIME, buildTime(plan));
  h.string(Tag.BUILDHOST, BUILD_HOST);
  if (meta.vendor) h.string(Tag.VENDOR, meta.vendor);
  h.string(Tag.LICENSE, meta.license || 'unknown');
  h.string(Tag.PACKAGER, meta.maintainer);
  h.i18n(Tag.GROUP, rpmGroup(meta.section));
  if (meta.homepage) h.string(Tag.URL, meta.homepage);
  h.string(Tag.OS, 'linux');
  h.string(Tag.ARCH, arch);
  h.string(Tag.SOURCERPM, `${meta.name}-${meta.version}-${meta.release}.src.rpm`);
  h.string(Tag.RPMVERSION, RPM_FORMAT_VERSION);
  h.string(Tag.PLATFORM, PLATFORM[arch] ?? `${arch}-unknown-linux-gnu`);
  h.string(Tag.ENCODING, 'utf-8');

  // Scriptlets: the body, its interpreter, and a requirement on the interpreter flagged for that scriptlet (build/parseScript.c).
  const requires: RpmDep[] = [];
  const scriptTags = [
    [scripts.rpm.pre, Tag.PREIN, Tag.PREINPROG, Sense.SCRIPT_PRE],
    [scripts.rpm.post, Tag.POSTIN, Tag.POSTINPROG, Sense.SCRIPT_POST],
    [scripts.rpm.preun, Tag.PREUN, Tag.PREUNPROG, Sense.SCRIPT_PREUN],
    [scripts.rpm.postun, Tag.POSTUN, Tag.POSTUNPROG, Sense.SCRIPT_POSTUN],
  ] as const;
  for (const [body, tag, progTag, sense] of scriptTags) {
    if (body === undefined) continue;
    // rpmbuild keeps a scriptlet without its trailing blank lines (build/parseScript.c stripTrailingBlanksStringBuf()).
    h.string(tag, body.replace(/\s+$/, ''));
    h.string(progTag, '/bin/sh');
    requires.push({ name: '/bin/sh', flags: Sense.INTERP | sense, version: '' });
  }

  // Files.
  let totalSize = 0;
  let haveConfig = false;
  if (files.length > 0) {
    const { dirNames, dirIndexes, baseNames } = splitPaths(files);
    const sizes: number[] = [];
    const flags: number[] = [];
    const verify: number[] = [];
    const digests: string[] = [];
    files.forEach((f, fx) => {
      const link = f.type === 'symlink' ? Buffer.byteLength(f.linkname ?? '', 'utf8') : 0;
      const size = f.type === 'file' ? f.size : link;
      sizes.push(size);
      // SIZE: what installing writes, as rpmbuild counts it (regular files and symlinks).
      if (!f.ghost) totalSize += size;
      let fl = 0;
      if (f.config && f.type !== 'dir') fl |= FileFlag.CONFIG | FileFlag.NOREPLACE;
      if (f.ghost) fl |= FileFlag.GHOST;
      if (f.type !== 'dir' && DOC_DIRS.some((d) => f.path.startsWith(d))) fl |= FileFlag.DOC;
      haveConfig ||= (fl & FileFlag.CONFIG) !== 0;
      flags.push(fl);
      // A ghost has no content, size, target or mtime to verify (build/files.c).
      verify.push(f.ghost ? (Verify.ALL & ~(Verify.FILEDIGEST | Verify.FILESIZE | Verify.LINKTO | Verify.MTIME)) >>> 0 : Verify.ALL);
      const digest = payload.fileDigests.get(fx);
      if (f.type === 'file' && !f.ghost && digest === undefined) throw new DockyardError('E_INTERNAL', `rpm: no digest for ${f.path}`);
      digests.push(digest ?? '');
    });
    h.stringArray(Tag.BASENAMES, baseNames);
    h.stringArray(Tag.DIRNAMES, dirNames);
    h.int32(Tag.DIRINDEXES, dirIndexes);
    if (large) h.int64(Tag.LONGFILESIZES, sizes);
    else h.int32(Tag.FILESIZES, sizes);
    h.int16(Tag.FILEMODES, files.map(fileMode));
    h.int16(Tag.FILERDEVS, files.map(() => 0));
    h.int32(Tag.FILEMTIMES, files.map((f) => Math.min(U32_LIMIT, Math.max(0, Math.floor(f.mtime)))));
    h.stringArray(Tag.FILEDIGESTS, digests);
    h.stringArray(Tag.FILELINKTOS, files.map((f) => (f.type === 'symlink' ? (f.linkname ?? '') : '')));
    h.int32(Tag.FILEFLAGS, flags);
    h.stringArray(Tag.FILEUSERNAME, files.map((f) => f.user));
    h.stringArray(Tag.FILEGROUPNAME, files.map((f) => f.group));
    h.int32(Tag.FILEVERIFYFLAGS, verify);
    // rpmbuild flattens inodes to index + 1 on one device (build/files.c): only hard-link detection reads them.
    h.int32(Tag.FILEDEVICES, files.map(() => 1));
    h.int32(Tag.FILEINODES, files.map((_, fx) => fx + 1));
    h.stringArray(Tag.FILELANGS, files.map(() => ''));
  }
  if (totalSize >= U32_LIMIT) h.int64(Tag.LONGSIZE, totalSize);
  else h.int32(Tag.SIZE, totalSize);
  h.int32(Tag.FILEDIGESTALGO, HASH_SHA256);

  // Dependencies.
  const r = meta.relations;
  const parsed = (items: string[], what: string, rich: boolean) => items.map((i) => parseRelation(i, what, rich));
  const depends = parsed(r.depends, 'Depends', true);
  const preDepends = parsed(r.preDepends, 'Pre-Depends', true).map((d) => ({ ...d, flags: d.flags | Sense.SCRIPT_PRE })); // Requires(pre)
  const recommends = parsed(r.recommends, 'Recommends', true);
  const suggests = parsed(r.suggests, 'Suggests', true);
  const conflicts = [...parsed(r.conflicts, 'Conflicts', true), ...parsed(r.breaks, 'Breaks', true)];
  const obsoletes = parsed(r.replaces, 'Replaces', false);
  for (const d of obsoletes) if (!isPackageName(d.name)) throw new DockyardError('E_PACKAGE', `rpm: Replaces ${JSON.stringify(d.name)}: only package names are allowed in Obsoletes`);
  const provides: RpmDep[] = parsed(r.provides, 'Provides', false);
  // rpmbuild's own provides: the package itself, arch-qualified too (build/parseSpec.c addPackageProvides()).
  provides.push({ name: meta.name, flags: Sense.EQUAL, version: evr });
  const isa = ISA[arch];
  if (isa) provides.push({ name: `${meta.name}${isa}`, flags: Sense.EQUAL, version: evr });
  if (haveConfig) {
    // rpmbuild's config(N) = EVR pair for packages with %config files (build/rpmfc.c).
    provides.push({ name: `config(${meta.name})`, flags: Sense.EQUAL | Sense.CONFIG, version: evr });
    requires.push({ name: `config(${meta.name})`, flags: Sense.EQUAL | Sense.CONFIG, version: evr });
  }
  requires.push(...depends, ...preDepends);

  // rpmlib() features the package needs, as rpmbuild adds them (build/files.c, build/pack.c finalizeDeps()).
  requires.push(rpmlib('CompressedFileNames', '3.0.4-1'), rpmlib('FileDigests', '4.6.0-1'), rpmlib('PayloadFilesHavePrefix', '4.0-1'));
  if (large) requires.push(rpmlib('LargeFiles', '4.12.0-1'));
  if ([...depends, ...preDepends, ...recommends, ...suggests, ...conflicts].some((d) => d.rich)) requires.push(rpmlib('RichDependencies', '4.12.0-1'));
  const all = [...requires, ...provides, ...conflicts, ...obsoletes, ...recommends, ...suggests];
  const inVersions = (c: string) => all.some((d) => (d.version || (d.name.startsWith('(') ? d.name : '')).includes(c));
  if (inVersions('~')) requires.push(rpmlib('TildeInVersions', '4.10.0-1'));
  if (inVersions('^')) requires.push(rpmlib('CaretInVersions', '4.15.0-1'));
  // (No rpmlib(PayloadDigest): rpm 4.18 has no such feature (lib/rpmds.c rpmlibProvides); an older rpm ignores the digest tags.)

  putDeps(h, { name: Tag.PROVIDENAME, flags: Tag.PROVIDEFLAGS, version: Tag.PROVIDEVERSION }, provides);
  putDeps(h, { name: Tag.REQUIRENAME, flags: Tag.REQUIREFLAGS, version: Tag.REQUIREVERSION }, requires);
  putDeps(h, { name: Tag.CONFLICTNAME, flags: Tag.CONFLICTFLAGS, version: Tag.CONFLICTVERSION }, conflicts);
  putDeps(h, { name: Tag.OBSOLETENAME, flags: Tag.OBSOLETEFLAGS, version: Tag.OBSOLETEVERSION }, obsoletes);
  putDeps(h, { name: Tag.RECOMMENDNAME, flags: Tag.RECOMMENDFLAGS, version: Tag.RECOMMENDVERSION }, recommends);
  putDeps(h, { name: Tag.SUGGESTNAME, flags: Tag.SUGGESTFLAGS, version: Tag.SUGGESTVERSION }, suggests);

  // Changelog, newest first as the plan has it: "* DATE NAME - VERSION" lines with "- change" items, as rpm -q --changelog prints them.
  if (meta.changelog.length > 0) {
    h.int32(Tag.CHANGELOGTIME, meta.changelog.map((c) => Math.min(U32_LIMIT, Math.max(0, Math.floor(c.date)))));
    h.stringArray(Tag.CHANGELOGNAME, meta.changelog.map((c) => `${c.author} - ${c.version}`));
    h.stringArray(Tag.CHANGELOGTEXT, meta.changelog.map((c) => c.changes.map((l) => `- ${l}`).join('\n')));
  }

  // Payload description and digests (build/pack.c getIOFlags(), writeRPM()).
  h.string(Tag.PAYLOADFORMAT, 'cpio');
  h.string(Tag.PAYLOADCOMPRESSOR, 'gzip');
  h.string(Tag.PAYLOADFLAGS, String(GZIP_LEVEL));
  h.stringArray(Tag.PAYLOADDIGEST, [payload.sha256]);
  h.int32(Tag.PAYLOADDIGESTALGO, HASH_SHA256);
  h.stringArray(Tag.PAYLOADDIGESTALT, [payload.archiveSha256]);
  return h;
}
