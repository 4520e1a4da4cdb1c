/**
 * `pkg build`: an image per architecture from the locked .deb files, with
 * no apt, no dpkg and nothing unpacked on the host, stored in dockyard's
 * cache as one OCI index:
 *
 *   layer   every package's data.tar entries (packages in name order, each
 *           in its archive's order) under merged /usr as Debian bookworm
 *           lays it out (bin, sbin, lib, lib64… are symlinks into usr/;
 *           entries under them land in usr/; `merged-usr: false` keeps
 *           them as the packages ship them), directories once; then the
 *           dpkg database, so dpkg-query and image scanners see exactly the
 *           installed packages:
 *             var/lib/dpkg/status           each package's control stanza,
 *                                            Status: install ok installed,
 *                                            Conffiles with their MD5
 *             var/lib/dpkg/info/P.list      the paths as the package ships them
 *             var/lib/dpkg/info/P.*         md5sums, conffiles, maintainer scripts
 *             var/lib/dpkg/info/format      "1": the multiarch layout
 *           (P is NAME:ARCH for Multi-Arch: same packages, as dpkg names them);
 *           then the image's SBOM (SPDX 2.3, every package with its purl and
 *           the .deb's SHA256) at var/lib/db/sbom/NAME.spdx.json, where apko
 *           keeps it; then the definition's accounts (/etc/passwd,
 *           /etc/group), paths and files.
 *   config  entrypoint, cmd, env, workdir, user, labels (LinuxKit's
 *           org.mobyproject.config from `config.runtime`), created =
 *           SOURCE_DATE_EPOCH, no history.
 *
 * Maintainer scripts are not run (there is no system to run them in): the
 * packages that have preinst/postinst are reported so the user can judge.
 * Every .deb is fetched into CACHE/debian/debs by its SHA256, checked
 * against the lock (size and SHA256) as it is written and again when read.
 * Same lock, same epoch → same bytes, same digests. A layer built before
 * from the same inputs (CACHE/debian/layers/KEY.json, its blob still in
 * the cache and hashing right) is used again without reading a .deb.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { pidAlive } from '../tempfiles.js';
import { readRegular } from '../fsutil.js';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DockyardError } from '../errors.js';
import type { Cache } from '../cache/cache.js';
import { bodyChunks, collectBody, Sink } from '../archive/sink.js';
import { ParallelGzip } from '../archive/pgzip.js';
import { tarHeader, writeTarEntry, END_OF_ARCHIVE } from '../archive/tarwrite.js';
import type { Entry } from '../rootfs/entry.js';
import { MediaType, type Descriptor } from '../oci/types.js';
import { readDeb } from '../debian/deb.js';
import { xzPrewarm } from '../archive/xz.js';
import { tarEntries } from '../rootfs/layers.js';
import { moduleSymbols, modulesDep, type ModuleSymbols } from '../debian/kmod.js';
import { packageSbomPath, renderPackageSbom, type DebianPackageRecord } from '../sbom/sbom.js';
import { httpOpen } from '../debian/archive.js';
import type { Arch, ImageDefinition } from './definition.js';
import type { Lock, LockedPackage } from './lock.js';

export interface BuildOptions {
  cache: Cache;
  /** CACHE/debian (where .debs are kept) and a scratch directory on the same file system. */
  cacheDir: string;
  tmpDir: string;
  ref: string;
  epoch: number;
  offline?: boolean;
  signal?: AbortSignal;
  /** Progress and warnings, one line each (the CLI prints them). */
  log?: (line: string) => void;
}

export interface BuiltImage {
  ref: string;
  digest: string;
  manifests: { arch: Arch; digest: string; packages: number }[];
  /** Packages whose maintainer scripts were not run. */
  scripts: string[];
}

const LABEL = 'org.mobyproject.config';
const PARALLEL_DOWNLOADS = 8;
const sha256hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
/** Changes whenever the layer's bytes for the same inputs would: built layers of another format are not reused. */
const LAYER_FORMAT = 5;
const LAYER_GZIP_LEVEL = 1;

// ---- fetching ----

async function hashFile(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) {
    h.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

/**
 * The .deb of `p` in the cache, fetched first if missing or damaged.
 *
 * Resumable: bytes are appended to CACHE/debian/debs/SHA256.deb.part as
 * they arrive, and a download cut short (network, timeout, Ctrl-C) leaves
 * that file. The next fetch claims it (a rename, so two builds never write
 * one file), hashes what it holds and asks for the rest with an HTTP Range
 * request; a server that answers 200 instead of 206 sends the whole file
 * again. The result is checked against the lock's size and SHA256 either
 * way; a resumed file that does not match (a wrong part) is fetched once
 * more, whole.
 */
async function fetchDeb(p: LockedPackage, o: BuildOptions, fresh = false): Promise<string> {
  const dir = join(o.cacheDir, 'debs');
  const path = join(dir, `${p.sha256}.deb`);
  const have = await stat(path).catch(() => undefined);
  if (have) {
    const h = await hashFile(path);
    if (h.sha256 === p.sha256 && h.size === p.size) return path;
    await rm(path, { force: true });
  }
  if (o.offline) throw new DockyardError('E_OFFLINE', `${p.name} ${p.version} (${p.filename}) is not cached (run once without --offline)`);
  await mkdir(dir, { recursive: true });
  const url = `${p.repository}/${p.filename}`;
  const part = `${path}.part`;
  const mine = `${path}.part-${process.pid}-${++fetchSeq}`;
  // Claim an earlier part, if there is one and no other build has it.
  let from = 0;
  const h = createHash('sha256');
  if (fresh) await rm(part, { force: true });
  else if (await rename(part, mine).then(() => true, () => false)) {
    const st = await stat(mine);
    if (st.size > 0 && st.size < p.size) {
      for await (const c of createReadStream(mine, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
      from = st.size;
    } else await writeFile(mine, '');
  }
  let res;
  try {
    res = await httpOpenRange(url, from, o.signal);
  } catch (e) {
    await keepPart(mine, part, from);
    throw e;
  }
  // 206: the rest, after what the part holds; 200: the whole file again.
  const resumed = res.status === 206;
  let n = resumed ? from : 0;
  const hash = resumed ? h : createHash('sha256');
  const check = new Transform({
    transform(c: Buffer, _e, cb) {
      n += c.length;
      if (n > p.size) return cb(new DockyardError('E_ARCHIVE_CHECKSUM', `${url}: more than ${p.size} bytes, the lock says ${p.size} bytes with sha256 ${p.sha256}`));
      hash.update(c);
      cb(null, c);
    },
  });
  try {
    await pipeline(res.body, check, createWriteStream(mine, { flags: resumed ? 'a' : 'w' }));
  } catch (e) {
    res.discard();
    // What arrived is kept for the next try, unless it is already wrong.
    if (e instanceof DockyardError && e.code === 'E_ARCHIVE_CHECKSUM') await rm(mine, { force: true });
    else await keepPart(mine, part, n);
    throw e;
  }
  // (A body that ends cleanly but short is a whole response of the wrong file, not a cut one.)
  const got = hash.digest('hex');
  if (got !== p.sha256 || n !== p.size) {
    await rm(mine, { force: true });
    // A resumed file may be wrong only in the part kept before: fetched once more, whole.
    if (resumed && !fresh) return fetchDeb(p, o, true);
    throw new DockyardError('E_ARCHIVE_CHECKSUM', `${url}: ${n} bytes with sha256 ${got}, the lock says ${p.size} bytes with sha256 ${p.sha256}`);
  }
  await rename(mine, path);
  return path;
}

let fetchSeq = 0;

/** An interrupted download's bytes, left where the next fetch looks (nothing kept when nothing came). */
async function keepPart(mine: string, part: string, bytes: number): Promise<void> {
  if (bytes > 0) await rename(mine, part).catch(() => rm(mine, { force: true }));
  else await rm(mine, { force: true });
}

/**
 * GET `url` from byte `from` on: 206 with the matching Content-Range, or
 * 200 (the whole file; also what a server without ranges answers).
 */
async function httpOpenRange(url: string, from: number, signal?: AbortSignal) {
  if (from === 0) return httpOpen(url, signal);
  const res = await httpOpen(url, signal, { range: `bytes=${from}-` });
  if (res.status === 206 && !new RegExp(`^bytes ${from}-`).test(res.header('content-range') ?? '')) {
    res.discard();
    return httpOpen(url, signal);
  }
  return res;
}

/**
 * The .debs of `pkgs`, PARALLEL_DOWNLOADS at a time in the order given:
 * a promise per SHA256 that settles when that one is in the cache, so the
 * layers start on the first packages while later ones still download.
 * `all` settles when every fetch has; after a failure no other starts, and
 * every promise not yet settled rejects with that failure.
 */
function fetchAll(pkgs: LockedPackage[], o: BuildOptions): { debs: Map<string, Promise<string>>; all: Promise<void> } {
  const debs = new Map<string, Promise<string>>();
  const settle = new Map<string, { resolve: (path: string) => void; reject: (e: unknown) => void }>();
  for (const p of pkgs) {
    const promise = new Promise<string>((resolve, reject) => settle.set(p.sha256, { resolve, reject }));
    promise.catch(() => {}); // awaited by the layer that needs it, if any; the failure is reported through `all`
    debs.set(p.sha256, promise);
  }
  const all = (async () => {
    try {
      // Parts claimed by builds that were killed before they could put them back.
      const dir = join(o.cacheDir, 'debs');
      for (const f of await readdir(dir).catch(() => [] as string[])) {
        const m = /\.part-(\d+)-\d+$/.exec(f);
        if (m && !pidAlive(Number(m[1]))) await rm(join(dir, f), { force: true });
      }
      let next = 0;
      let failed = false;
      const worker = async () => {
        while (next < pkgs.length && !failed) {
          const p = pkgs[next++];
          try {
            o.signal?.throwIfAborted();
            settle.get(p.sha256)!.resolve(await fetchDeb(p, o));
          } catch (e) {
            failed = true;
            throw e;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(PARALLEL_DOWNLOADS, pkgs.length) }, worker));
    } catch (e) {
      for (const s of settle.values()) s.reject(e); // (a settled promise stays as it is)
      throw e;
    }
  })();
  all.catch(() => {}); // the caller awaits it
  return { debs, all };
}

// ---- the layer ----

/** Top-level directories that are symlinks into usr/ on a merged-/usr system. */
const MERGED = new Set(['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']);

function mergedPath(path: string): { path: string; alias?: string } {
  const top = path.split('/', 1)[0];
  return MERGED.has(top) ? { path: `usr/${path}`, alias: top } : { path };
}

/** Where a package's path lands: under usr/ on a merged-/usr image, as it is otherwise (`merged-usr: false`). */
function usrLayout(def: ImageDefinition): (path: string) => { path: string; alias?: string } {
  return def.mergedUsr ? mergedPath : (path) => ({ path });
}

/**
 * gzip'd tar into a scratch file, hashed before (diff_id) and after
 * (digest) compression. gzip level 1, go-containerregistry's default
 * for the layers it makes from tarballs (tarball.LayerFromOpener): the layer is
 * about 7% larger than at level 6 and takes half the CPU, which matters
 * here because every byte was just xz-decoded on the same cores. On every
 * core: members of about 4 MiB cut at entry boundaries (a gzip file is a
 * series of members; Go's and GNU tar's readers take them all), the same
 * bytes whatever the parallelism.
 */
class LayerFile {
  private readonly raw = createHash('sha256');
  private readonly file: Sink;
  private readonly gz: ParallelGzip;

  constructor(readonly path: string) {
    this.file = new Sink([createWriteStream(path, { flags: 'wx' })]);
    this.gz = new ParallelGzip(this.file, LAYER_GZIP_LEVEL);
  }

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    this.raw.update(b);
    await this.gz.write(b);
  }

  async entry(e: Entry, epoch: number, body?: Buffer | AsyncIterable<Buffer>): Promise<void> {
    await this.write(tarHeader(e, epoch));
    if (e.type === 'file') {
      let n = 0;
      for await (const c of bodyChunks(body)) {
        n += c.length;
        await this.write(c);
      }
      if (n !== e.size) throw new DockyardError('E_INTERNAL', `${e.path}: ${n} bytes, header says ${e.size}`);
      await this.write(Buffer.alloc((512 - (e.size % 512)) % 512));
    }
    await this.gz.boundary();
  }

  async finish(): Promise<{ diffId: string; desc: Descriptor }> {
    await this.write(END_OF_ARCHIVE);
    await this.gz.end();
    await this.file.end();
    return {
      diffId: `sha256:${this.raw.digest('hex')}`,
      desc: { mediaType: MediaType.OciLayerGzip, digest: `sha256:${this.file.sha256()}`, size: this.file.bytes },
    };
  }
}

const dirEntry = (path: string, mode = 0o755, uid = 0, gid = 0): Entry => ({ path, type: 'dir', mode, uid, gid, size: 0 });
const fileEntry = (path: string, data: Buffer, mode = 0o644, uid = 0, gid = 0): Entry => ({ path, type: 'file', mode, uid, gid, size: data.length, body: data });

/** dpkg's name of a package in its database: NAME, or NAME:ARCH when Multi-Arch: same. */
function dbName(fields: Record<string, string>): string {
  return (fields['multi-arch'] ?? '').toLowerCase() === 'same' ? `${fields.package}:${fields.architecture}` : fields.package;
}

const SCRIPTS = new Set(['preinst', 'postinst', 'prerm', 'postrm', 'config']);

async function writeLayer(def: ImageDefinition, arch: Arch, distro: string, pkgs: LockedPackage[], debs: Map<string, Promise<string>>, layer: LayerFile, o: BuildOptions): Promise<string[]> {
  const dirs = new Set<string>();
  const aliases = new Set<string>();
  const status: string[] = [];
  const info: Entry[] = [];
  const scripts: string[] = [];
  const records: DebianPackageRecord[] = [];
  const merged = usrLayout(def);
  const moves = new Map(def.move.map((m) => [m.from, { ...m, done: false }]));
  const movedTo = new Map<string, string>();
  const emitDir = async (e: Entry) => {
    if (dirs.has(e.path)) return;
    dirs.add(e.path);
    await layer.entry(e, o.epoch);
  };
  for (const p of [...pkgs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    o.signal?.throwIfAborted();
    const what = `${p.name} ${p.version}`;
    const deb = await readDeb(createReadStream(await debs.get(p.sha256)!, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>, what);
    const f = deb.control.fields;
    if (f.package !== p.name || f.version !== p.version) throw new DockyardError('E_ARCHIVE_CHECKSUM', `${what}: the .deb says it is ${f.package} ${f.version}`);
    const conffiles = new Set((deb.control.files.get('conffiles')?.toString('utf8') ?? '').split('\n').map((l) => l.trim()).filter((l) => l.startsWith('/')));
    const confMd5 = new Map<string, string>();
    const list: string[] = ['/.'];
    for await (const e of deb.data) {
      list.push(`/${e.path}`);
      const m = merged(e.path);
      if (m.alias && !aliases.has(m.alias)) {
        aliases.add(m.alias);
        await emitDir(dirEntry('usr'));
        await layer.entry({ path: m.alias, type: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, linkname: `usr/${m.alias}` }, o.epoch);
      }
      const out: Entry = { ...m.alias ? { ...e, path: m.path } : e };
      if (out.type === 'hardlink' && out.linkname) {
        out.linkname = merged(out.linkname).path;
        out.linkname = movedTo.get(out.linkname) ?? out.linkname;
      }
      if (out.type === 'dir') {
        await emitDir(out);
        continue;
      }
      const move = moves.get(`/${out.path}`) ?? moves.get(`/${e.path}`);
      if (move) {
        if (move.done) throw new DockyardError('E_SPEC_INVALID', `${def.file}: move: ${move.from} is shipped by two packages`);
        move.done = true;
        const to = merged(move.to.replace(/^\/+/, '')).path;
        const parts = to.split('/');
        for (let i = 1; i < parts.length; i++) await emitDir(dirEntry(parts.slice(0, i).join('/')));
        movedTo.set(out.path, to);
        out.path = to;
      }
      if (out.type === 'file' && conffiles.has(`/${e.path}`)) {
        const md5 = createHash('md5');
        const parts: Buffer[] = [];
        for await (const c of bodyChunks(e.body)) {
          md5.update(c);
          parts.push(Buffer.from(c));
        }
        confMd5.set(`/${e.path}`, md5.digest('hex'));
        await layer.entry(out, o.epoch, Buffer.concat(parts));
        continue;
      }
      await layer.entry(out, o.epoch, e.body);
    }
    // The status stanza: the control file as shipped, with Status after Package and the conffiles' sums.
    const control = deb.control.files.get('control')!.toString('utf8').replace(/\n+$/, '');
    const lines = control.split('\n');
    const at = lines.findIndex((l) => /^package:/i.test(l));
    lines.splice(at + 1, 0, 'Status: install ok installed');
    if (conffiles.size) lines.push('Conffiles:', ...[...conffiles].map((c) => ` ${c} ${confMd5.get(c) ?? 'newconffile'}`));
    status.push(lines.join('\n'));
    const name = dbName(f);
    info.push(fileEntry(`var/lib/dpkg/info/${name}.list`, Buffer.from(list.join('\n') + '\n')));
    for (const [file, bytes] of [...deb.control.files].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (file === 'control') continue;
      info.push(fileEntry(`var/lib/dpkg/info/${name}.${file}`, bytes, SCRIPTS.has(file) ? 0o755 : 0o644));
    }
    if (deb.control.files.has('preinst') || deb.control.files.has('postinst')) scripts.push(p.name);
    records.push({ name: p.name, version: p.version, architecture: p.architecture, url: `${p.repository}/${p.filename}`, sha256: p.sha256, maintainer: f.maintainer, source: f.source?.split(/\s/)[0] });
  }
  const missing = [...moves.values()].filter((m) => !m.done).map((m) => m.from);
  if (missing.length) throw new DockyardError('E_SPEC_INVALID', `${def.file}: move: no package of ${arch} ships ${missing.join(', ')}`);
  for (const d of ['var', 'var/lib', 'var/lib/dpkg', 'var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'var/lib/dpkg/alternatives']) await emitDir(dirEntry(d));
  const statusText = Buffer.from(status.map((s) => `${s}\n`).join('\n'));
  // info/format "1": the multiarch database layout (NAME:ARCH files for Multi-Arch: same), as dpkg ≥ 1.16.2 writes it.
  const db = [fileEntry('var/lib/dpkg/status', statusText), fileEntry('var/lib/dpkg/available', Buffer.alloc(0)), fileEntry('var/lib/dpkg/info/format', Buffer.from('1\n')), ...info];
  for (const e of db.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    await layer.entry(e, o.epoch, e.body);
  }
  // The SBOM (SPDX 2.3) of the packages, where apko keeps it.
  const sbom = renderPackageSbom(def.name, arch, distro, records, o.epoch);
  for (const d of ['var/lib/db', 'var/lib/db/sbom']) await emitDir(dirEntry(d));
  await layer.entry(fileEntry(packageSbomPath(def.name), sbom), o.epoch, sbom);
  await writeExtras(def, layer, emitDir, o);
  return scripts;
}

/**
 * `layout: kernel`: LinuxKit's kernel image shape from the linux-image
 * package of the lock (the one named linux-image-VERSION; what it depends
 * on — kmod, initramfs-tools — is not part of a kernel image):
 *   kernel       boot/vmlinuz-VERSION
 *   kernel.tar   lib/modules/VERSION/ (and modules.dep made from the
 *                modules' symbols, pkg/debian/kmod.ts), and the device trees
 *                of usr/lib/linux-image-VERSION/ as boot/dtb/ (LinuxKit's place)
 *   System.map   boot/System.map-VERSION
 * plus the SBOM. `kernel: modules:` keeps only the named modules and what
 * they need (the tree is written whole to a scratch file, then read again
 * less the rest); `kernel: dtbs:` only the device trees it names. Nothing
 * is unpacked on the host: kernel.tar is written to a scratch file as the
 * package streams by (its size goes in the layer's header).
 */
async function writeKernelLayer(def: ImageDefinition, arch: Arch, distro: string, pkgs: LockedPackage[], debs: Map<string, Promise<string>>, layer: LayerFile, o: BuildOptions): Promise<string[]> {
  const images = pkgs.filter((p) => /^linux-image-\d/.test(p.name));
  if (images.length !== 1) {
    throw new DockyardError('E_SPEC_INVALID', `${def.file}: layout: kernel wants exactly one linux-image-VERSION package for ${arch}, the lock has ${images.length ? images.map((p) => p.name).join(', ') : 'none'}`);
  }
  const p = images[0];
  const what = `${p.name} ${p.version}`;
  const deb = await readDeb(createReadStream(await debs.get(p.sha256)!, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>, what);
  const tarPath = join(o.tmpDir, `kernel-${arch}-${process.pid}.tar`);
  const kernelPath = join(o.tmpDir, `kernel-${arch}-${process.pid}.bin`);
  const mapPath = join(o.tmpDir, `kernel-${arch}-${process.pid}.map`);
  const fullPath = join(o.tmpDir, `kernel-${arch}-${process.pid}.all.tar`);
  let inner = new Sink([createWriteStream(tarPath, { flags: 'wx' })], { hash: false });
  // Every entry's parents come first: the kernel's initramfs unpacker makes no missing directory.
  const made = new Set<string>();
  const put = async (e: Entry) => {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!made.has(d)) {
        made.add(d);
        await writeTarEntry(inner, dirEntry(d), o.epoch);
      }
    }
    if (e.type === 'dir') {
      if (made.has(e.path)) return;
      made.add(e.path);
    }
    await writeTarEntry(inner, e, o.epoch);
  };
  const dtbWanted = def.kernel.dtbs ? globMatcher(def.kernel.dtbs) : undefined;
  try {
    const modules = new Map<string, ModuleSymbols>();
    let version: string | undefined;
    let order: string[] = [];
    let kernelSeen = false;
    let mapSeen = false;
    for await (const e of deb.data) {
      const m = /^(?:usr\/)?lib\/modules\/([^/]+)(?:\/(.*))?$/.exec(e.path);
      const dtb = /^usr\/lib\/linux-image-[^/]+\/(.+)$/.exec(e.path);
      if (m) {
        version ??= m[1];
        const rel = m[2] ?? '';
        const out: Entry = { ...e, path: `lib/modules/${m[1]}${rel ? `/${rel}` : ''}` };
        if (e.type === 'file' && rel.endsWith('.ko')) {
          const bytes = await collectBody(e.body, 256 * 1024 * 1024, `${what}: ${e.path}`);
          modules.set(rel, moduleSymbols(bytes, `${what}: ${e.path}`));
          await put({ ...out, body: bytes });
        } else if (e.type === 'file' && rel === 'modules.order') {
          const bytes = await collectBody(e.body, 64 * 1024 * 1024, `${what}: ${e.path}`);
          order = bytes.toString('utf8').split('\n').filter(Boolean);
          await put({ ...out, body: bytes });
        } else await put(out);
      } else if (dtb && (e.type === 'dir' ? !dtbWanted : e.path.endsWith('.dtb') && (!dtbWanted || dtbWanted(dtb[1])))) {
        await put({ ...e, path: `boot/dtb/${dtb[1]}` });
      } else if (e.type === 'file' && /^boot\/vmlinu[xz]-/.test(e.path)) {
        await pipeline(Readable.from(bodyChunks(e.body)), createWriteStream(kernelPath, { flags: 'wx' }));
        kernelSeen = true;
      } else if (e.type === 'file' && /^boot\/System\.map-/.test(e.path)) {
        await pipeline(Readable.from(bodyChunks(e.body)), createWriteStream(mapPath, { flags: 'wx' }));
        mapSeen = true;
      } else {
        for await (const _ of bodyChunks(e.body)) void _;
      }
    }
    if (!kernelSeen || !version) throw new DockyardError('E_KERNEL', `${what}: no boot/vmlinuz-* or lib/modules/VERSION in the package`);
    const named = new Set(order);
    const all = [...order.filter((x) => modules.has(x)), ...[...modules.keys()].filter((x) => !named.has(x)).sort()];
    const depText = modulesDep(modules, all);
    if (def.kernel.modules) {
      // Only the named modules and what they need: the tree written so far is read again, less what is left out.
      await inner.write(END_OF_ARCHIVE);
      await inner.end();
      const keep = moduleClosure(depText, def.kernel.modules, `${def.file}: kernel: modules: ${what}`);
      const dep = Buffer.from(depText.split('\n').filter((l) => keep.has(l.slice(0, l.indexOf(':')))).map((l) => `${l}\n`).join(''));
      await rename(tarPath, fullPath);
      inner = new Sink([createWriteStream(tarPath, { flags: 'wx' })], { hash: false });
      made.clear();
      const prefix = `lib/modules/${version}/`;
      for await (const { entry: e } of tarEntries(createReadStream(fullPath, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>, `${what}: kernel.tar`, Number.MAX_SAFE_INTEGER)) {
        const rel = e.path.startsWith(prefix) ? e.path.slice(prefix.length) : undefined;
        if (rel !== undefined && (e.type === 'dir' || (rel.endsWith('.ko') && !keep.has(rel)))) {
          for await (const _ of bodyChunks(e.body)) void _;
          continue;
        }
        await put(e.type === 'file' ? { ...e, body: await collectBody(e.body, 256 * 1024 * 1024, `${what}: ${e.path}`) } : e);
      }
      await put(fileEntry(`lib/modules/${version}/modules.dep`, dep));
    } else {
      await put(fileEntry(`lib/modules/${version}/modules.dep`, Buffer.from(depText)));
    }
    await inner.write(END_OF_ARCHIVE);
    await inner.end();
    for (const [name, path, present] of [['kernel', kernelPath, true], ['kernel.tar', tarPath, true], ['System.map', mapPath, mapSeen]] as const) {
      if (!present) continue;
      const size = (await stat(path)).size;
      await layer.entry({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size }, o.epoch, createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>);
    }
  } finally {
    for (const f of [tarPath, fullPath, kernelPath, mapPath]) await rm(f, { force: true });
  }
  const sbom = renderPackageSbom(def.name, arch, distro, [{ name: p.name, version: p.version, architecture: p.architecture, url: `${p.repository}/${p.filename}`, sha256: p.sha256, maintainer: deb.control.fields.maintainer, source: deb.control.fields.source?.split(/\s/)[0] }], o.epoch);
  for (const d of ['var', 'var/lib', 'var/lib/db', 'var/lib/db/sbom']) await layer.entry(dirEntry(d), o.epoch);
  await layer.entry(fileEntry(packageSbomPath(def.name), sbom), o.epoch, sbom);
  return [];
}

/** `kernel: dtbs:` patterns: * matches within one path part. */
function globMatcher(patterns: string[]): (path: string) => boolean {
  const res = patterns.map((p) => new RegExp(`^${p.split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`));
  return (path) => res.some((r) => r.test(path));
}

/** The module paths (relative to lib/modules/VERSION) of the named modules and every one they depend on, by modules.dep's lines. */
function moduleClosure(depText: string, names: string[], where: string): Set<string> {
  const byName = new Map<string, { path: string; deps: string[] }>();
  for (const line of depText.split('\n')) {
    const at = line.indexOf(':');
    if (at < 0) continue;
    const path = line.slice(0, at);
    byName.set(modName(path), { path, deps: line.slice(at + 1).trim().split(/\s+/).filter(Boolean) });
  }
  const keep = new Set<string>();
  const missing: string[] = [];
  const queue: string[] = [];
  for (const n of names) {
    const m = byName.get(n.replace(/-/g, '_'));
    if (m) queue.push(m.path);
    else missing.push(n);
  }
  if (missing.length) throw new DockyardError('E_SPEC_INVALID', `${where} has no module ${missing.join(', ')}`);
  while (queue.length) {
    const path = queue.pop()!;
    if (keep.has(path)) continue;
    keep.add(path);
    queue.push(...(byName.get(modName(path))?.deps ?? []));
  }
  return keep;
}

/** A module's name as the kernel and modprobe know it: the file name without .ko, - as _. */
const modName = (path: string): string => path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\.[gx]z|\.zst)?$/, '').replace(/-/g, '_');

/** Largest file of a definition's `files:` (held in memory while it is written). */
const MAX_SOURCE = 64 * 1024 * 1024;

/** A `files:` source: a regular file of the definition's folder, bounded. */
function readSource(def: ImageDefinition, source: string): Promise<Buffer> {
  return readRegular(join(def.dir, source), MAX_SOURCE, `${def.file}: files: ${source}`, 'E_SPEC_READ');
}

/** The definition's accounts, paths and files. */
async function writeExtras(def: ImageDefinition, layer: LayerFile, emitDir: (e: Entry) => Promise<void>, o: BuildOptions): Promise<void> {
  const merged = usrLayout(def);
  const parents = async (path: string) => {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) await emitDir(dirEntry(merged(parts.slice(0, i).join('/')).path));
  };
  const { groups, users } = def.accounts;
  if (groups.length || users.length) {
    const g = [{ name: 'root', gid: 0 }, ...groups.filter((x) => x.name !== 'root')];
    const u = [{ name: 'root', uid: 0, gid: 0, home: '/root', shell: '/bin/sh' }, ...users.filter((x) => x.name !== 'root')];
    await emitDir(dirEntry('etc'));
    const group = Buffer.from(g.map((x) => `${x.name}:x:${x.gid}:\n`).join(''));
    await layer.entry(fileEntry('etc/group', group), o.epoch, group);
    const passwd = Buffer.from(u.map((x) => `${x.name}:x:${x.uid}:${x.gid ?? x.uid}::${x.home ?? '/nonexistent'}:${x.shell ?? '/usr/sbin/nologin'}\n`).join(''));
    await layer.entry(fileEntry('etc/passwd', passwd), o.epoch, passwd);
  }
  for (const p of def.paths) {
    const path = merged(p.path.replace(/^\/+/, '')).path;
    await parents(path);
    const mode = p.mode ? parseInt(p.mode, 8) : p.type === 'directory' ? 0o755 : 0o777;
    if (p.type === 'directory') {
      // A package's directory may be listed again here: tar keeps the later owner and mode.
      await layer.entry(dirEntry(path, mode, p.uid ?? 0, p.gid ?? 0), o.epoch);
    } else {
      if (!p.target) throw new DockyardError('E_SPEC_INVALID', `${def.file}: paths: ${p.path} is a symlink without a target`);
      await layer.entry({ path, type: 'symlink', mode: 0o777, uid: p.uid ?? 0, gid: p.gid ?? 0, size: 0, linkname: p.target }, o.epoch);
    }
  }
  for (const f of def.files) {
    const data = await readSource(def, f.source);
    const path = merged(f.path.replace(/^\/+/, '')).path;
    await parents(path);
    await layer.entry(fileEntry(path, data, f.mode ? parseInt(f.mode, 8) : 0o644, f.uid ?? 0, f.gid ?? 0), o.epoch, data);
  }
}

// ---- layers already built ----

type BuiltLayer = { diffId: string; desc: Descriptor; scripts: string[] };

/** Everything a layer's bytes depend on (the packages by SHA256, the definition's extras, the epoch), as a digest. */
async function layerKey(def: ImageDefinition, arch: Arch, distro: string, pkgs: LockedPackage[], epoch: number): Promise<string> {
  const files = [];
  for (const f of def.files) files.push({ ...f, sha256: sha256hex(await readSource(def, f.source)) });
  const inputs = {
    v: LAYER_FORMAT,
    arch,
    distro,
    epoch,
    name: def.name,
    layout: def.layout,
    mergedUsr: def.mergedUsr,
    kernel: def.kernel,
    move: def.move,
    packages: [...pkgs].sort((a, b) => (a.name < b.name ? -1 : 1)).map((p) => [p.name, p.version, p.architecture, p.repository, p.filename, p.sha256]),
    accounts: def.accounts,
    paths: def.paths,
    files,
  };
  return sha256hex(JSON.stringify(inputs));
}

/** A layer built before from the same inputs, if its blob is still in the cache and intact. */
async function memoized(key: string, o: BuildOptions): Promise<BuiltLayer | undefined> {
  const text = await readRegular(join(o.cacheDir, 'layers', `${key}.json`), 1 << 20, 'built layer', 'E_CACHE').then((b) => b.toString('utf8'), () => undefined);
  if (!text) return undefined;
  try {
    const b = JSON.parse(text) as BuiltLayer;
    if (!(await o.cache.has(b.desc.digest))) return undefined;
    await o.cache.verify(b.desc.digest);
    return b;
  } catch {
    return undefined; // unreadable or evicted as corrupt: built again
  }
}

async function memoize(key: string, b: BuiltLayer, o: BuildOptions): Promise<void> {
  const dir = join(o.cacheDir, 'layers');
  await mkdir(dir, { recursive: true });
  const tmp = join(o.tmpDir, `layer-${key}-${process.pid}.json`);
  await writeFile(tmp, JSON.stringify(b));
  await rename(tmp, join(dir, `${key}.json`));
}

// ---- config, manifest, index ----

function imageConfig(def: ImageDefinition, arch: Arch, diffId: string, epoch: number): Buffer {
  const c = def.config;
  const env = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...Object.entries(c.env ?? {}).filter(([k]) => k !== 'PATH').map(([k, v]) => `${k}=${v}`)];
  if (c.env?.PATH !== undefined) env[0] = `PATH=${c.env.PATH}`;
  const labels: Record<string, string> = { ...(c.labels ?? {}) };
  if (c.runtime) labels[LABEL] = JSON.stringify(c.runtime);
  const config: Record<string, unknown> = { Env: env };
  if (c.entrypoint) config.Entrypoint = c.entrypoint;
  if (c.cmd) config.Cmd = c.cmd;
  if (c.workdir) config.WorkingDir = c.workdir;
  if (c.user) config.User = c.user;
  if (Object.keys(labels).length) config.Labels = Object.fromEntries(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
  const doc = {
    created: new Date(epoch * 1000).toISOString().replace(/\.000Z$/, 'Z'),
    architecture: arch,
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: [diffId] },
  };
  return Buffer.from(JSON.stringify(doc));
}

async function putJson(cache: Cache, mediaType: string, bytes: Buffer): Promise<Descriptor> {
  const digest = `sha256:${sha256hex(bytes)}`;
  await cache.writeBlobBytes(digest, bytes);
  return { mediaType, digest, size: bytes.length };
}

export async function buildImage(def: ImageDefinition, lock: Lock, o: BuildOptions): Promise<BuiltImage> {
  const log = o.log ?? (() => {});
  const manifests: (Descriptor & { platform: { architecture: string; os: string } })[] = [];
  const summary: BuiltImage['manifests'] = [];
  const scripts = new Set<string>();
  const keys = new Map<Arch, string>();
  const wanted = new Map<string, LockedPackage>();
  const queues: LockedPackage[][] = [];
  const prebuilt = new Map<Arch, BuiltLayer>();
  for (const arch of def.archs) {
    const pkgs = lock.packages[arch];
    if (!pkgs) throw new DockyardError('E_SPEC_INVALID', `${def.file}: the lock has no ${arch} packages; run dockyard pkg lock --update`);
    const key = await layerKey(def, arch, lock.suites[arch]?.[0]?.suite ?? 'debian', pkgs, o.epoch);
    keys.set(arch, key);
    // A kernel image is made of the linux-image package alone (what it depends on is not fetched).
    const needed = def.layout === 'kernel' ? pkgs.filter((p) => /^linux-image-\d/.test(p.name)) : pkgs;
    const done = await memoized(key, o);
    if (done) prebuilt.set(arch, done);
    else queues.push([...needed].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
  }
  // In the order the layers read them: each arch's in name order, the archs taken in turn (arch: all ones once).
  for (let i = 0; queues.some((q) => i < q.length); i++) for (const q of queues) if (i < q.length && !wanted.has(q[i].sha256)) wanted.set(q[i].sha256, q[i]);
  // The archs' layers are written side by side (their xz streams decode on worker threads, their gzip on libuv's pool)
  // while the packages download.
  const stop = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  // Decoding threads boot while the first packages download (one per arch whose layer is to be written).
  if (queues.length) xzPrewarm(queues.length);
  const fetched = fetchAll([...wanted.values()], { ...o, signal });
  const debs = fetched.debs;
  const layerOf = async (arch: Arch): Promise<BuiltLayer> => {
    const pkgs = lock.packages[arch];
    const distro = lock.suites[arch]?.[0]?.suite ?? 'debian';
    const key = keys.get(arch)!;
    const done = prebuilt.get(arch);
    if (done) return done;
    const layer = new LayerFile(join(o.tmpDir, `layer-${arch}-${process.pid}.tar.gz`));
    const lo = { ...o, signal };
    let built: BuiltLayer;
    try {
      const s = def.layout === 'kernel' ? await writeKernelLayer(def, arch, distro, pkgs, debs, layer, lo) : await writeLayer(def, arch, distro, pkgs, debs, layer, lo);
      built = { ...(await layer.finish()), scripts: s };
      signal.throwIfAborted();
      await o.cache.adoptBlob(built.desc, layer.path);
    } finally {
      await rm(layer.path, { force: true });
    }
    await memoize(key, built, o);
    return built;
  };
  // Settled, not raced, and reported in arch order, so the error is the same whichever arch finishes first: an arch's
  // own failure does not stop the others; a download's failure stops them all (they would wait on it).
  const settled = await Promise.allSettled([
    ...def.archs.map((arch) => layerOf(arch)),
    fetched.all.catch((e: unknown) => {
      stop.abort(e);
      throw e;
    }),
  ]);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const layers = settled.slice(0, def.archs.length).map((r) => (r as PromiseFulfilledResult<BuiltLayer>).value);
  def.archs.forEach((arch, i) => {
    for (const s of layers[i].scripts) scripts.add(s);
  });
  for (const [i, arch] of def.archs.entries()) {
    const built = layers[i];
    const config = await putJson(o.cache, MediaType.OciConfig, imageConfig(def, arch, built.diffId, o.epoch));
    const manifest = await putJson(o.cache, MediaType.OciManifest, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [built.desc] })));
    manifests.push({ ...manifest, platform: { architecture: arch, os: 'linux' } });
    summary.push({ arch, digest: manifest.digest, packages: lock.packages[arch].length });
  }
  const index = await putJson(o.cache, MediaType.OciIndex, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests })));
  const ref = await o.cache.tag(o.ref, index);
  if (scripts.size) log(`warning: maintainer scripts not run (no system to run them in): ${[...scripts].sort().join(', ')}`);
  return { ref, digest: index.digest, manifests: summary, scripts: [...scripts].sort() };
}
