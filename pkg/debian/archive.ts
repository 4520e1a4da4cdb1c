/**
 * A Debian archive's indices for one architecture, as apt fetches them
 * (Debian wiki DebianRepository/Format): dists/SUITE/InRelease, its
 * OpenPGP signature verified with the keyring, then each component's
 * binary-ARCH/Packages.xz (or .gz), fetched by hash when the Release says
 * Acquire-By-Hash (a mirror updating meanwhile cannot mix two releases),
 * checked against the Release's SHA256 and size, and parsed.
 *
 * Indices are kept in `cacheDir` by their SHA256 (read back only if they
 * still hash to it); InRelease files by URL, used again only with
 * `offline`. Nothing is written before it is verified.
 */
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { isMissing, readRegular } from '../fsutil.js';
import { defaultTimeouts, request, type HttpResponse } from '../oci/registry/http.js';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { xzBuffer } from '../archive/xz.js';
import { DockyardError } from '../errors.js';
import { parseDeb822 } from './deb822.js';
import { PackageIndex, defaultPin, type IndexSource } from './packages.js';
import { checkFresh, checkIndex, parseRelease, verifyInRelease, type Keyring, type Release } from './release.js';

export interface Repository {
  /** Base URL, e.g. http://deb.debian.org/debian */
  uri: string;
  suites: string[];
  components: string[];
}

export interface FetchOptions {
  keyring: Keyring;
  /** Where indices are kept (dockyard's cache: CACHE/debian). */
  cacheDir: string;
  /** Scratch directory on the same file system (files are written there, then renamed into cacheDir). */
  tmpDir: string;
  /** Use cached InRelease files; fail if one is missing. */
  offline?: boolean;
  /** Bytes of a URL, at most `limit` (default: httpGet); throws DockyardError on failure. */
  get?: (url: string, limit: number) => Promise<Buffer>;
  now?: Date;
  signal?: AbortSignal;
}

export interface LoadedSuite {
  uri: string;
  suite: string;
  release: Release;
  /** The signed InRelease text as fetched (for a lock and for apt lists). */
  inRelease: string;
  /** component -> uncompressed Packages bytes. */
  packages: Map<string, Buffer>;
}

/** Largest Packages index, compressed or not (bookworm main amd64: 8.8 MB as xz, 50 MB plain). */
const MAX_INDEX = 1024 * 1024 * 1024;
/** Largest InRelease (bookworm's: 150 KB). */
const MAX_INRELEASE = 16 * 1024 * 1024;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The project's HTTP client (timeouts on connect, headers and a stalled body; redirects), for an archive host. */
export async function httpOpen(url: string, signal?: AbortSignal, headers?: Record<string, string>): Promise<HttpResponse> {
  const res = await request({ method: 'GET', url, headers }, { timeouts: defaultTimeouts, signal, label: `archive ${new URL(url).host}` });
  // 206: the part asked for with a Range header.
  if (res.status !== 200 && !(res.status === 206 && headers?.range)) {
    res.discard();
    throw new DockyardError(res.status === 404 ? 'E_ARCHIVE_FORMAT' : 'E_NETWORK', `${url}: HTTP ${res.status}`);
  }
  return res;
}

/** A whole response body, refused past `limit` bytes. */
export async function httpGet(url: string, limit: number, signal?: AbortSignal): Promise<Buffer> {
  return (await httpOpen(url, signal)).read(limit, url);
}

let tmpSeq = 0;
async function atomicWrite(path: string, data: Uint8Array, tmpDir: string): Promise<void> {
  const tmp = join(tmpDir, `debian-index-${process.pid}-${++tmpSeq}`);
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** Fetches and verifies one suite's InRelease and Packages indices for `arch`. */
export async function loadSuite(repo: Repository, suite: string, arch: string, o: FetchOptions): Promise<LoadedSuite> {
  const get = o.get ?? ((u: string, limit: number) => httpGet(u, limit, o.signal));
  const base = `${repo.uri.replace(/\/+$/, '')}/dists/${suite}`;
  const inUrl = `${base}/InRelease`;
  const relDir = join(o.cacheDir, 'inrelease');
  const byHash = join(o.cacheDir, 'by-hash');
  await mkdir(relDir, { recursive: true });
  await mkdir(byHash, { recursive: true });
  const relPath = join(relDir, sha256(Buffer.from(inUrl)).slice(0, 32));
  let raw: string;
  if (o.offline) {
    raw = (
      await readRegular(relPath, MAX_INRELEASE, inUrl, 'E_CACHE').catch((e: unknown) => {
        throw isMissing(e) ? new DockyardError('E_OFFLINE', `${inUrl} is not cached (run once without --offline)`) : e;
      })
    ).toString('utf8');
  } else {
    raw = (await get(inUrl, MAX_INRELEASE)).toString('utf8');
  }
  const verified = await verifyInRelease(raw, o.keyring, inUrl);
  const release = parseRelease(verified.text, inUrl);
  checkFresh(release, o.now ?? new Date(), inUrl);
  if (!o.offline) await atomicWrite(relPath, Buffer.from(raw), o.tmpDir);

  const packages = new Map<string, Buffer>();
  for (const comp of repo.components) {
    // xz (what every suite has: bookworm-updates and -security list only it
    // and the plain file, which the archive does not serve), else gzip.
    const forms = ['Packages.xz', 'Packages.gz'].map((f) => `${comp}/binary-${arch}/${f}`);
    const path = forms.find((f) => release.files.has(f));
    if (!path) {
      if (!release.components.includes(comp) && !release.components.some((c) => c.endsWith(`/${comp}`))) {
        throw new DockyardError('E_ARCHIVE_FORMAT', `${inUrl}: the suite has no component ${comp} (it has ${release.components.join(', ')})`);
      }
      throw new DockyardError('E_ARCHIVE_FORMAT', `${inUrl}: neither ${forms.join(' nor ')} is listed`);
    }
    const entry = release.files.get(path)!;
    const cached = join(byHash, entry.sha256);
    let body: Buffer | undefined = await readRegular(cached, MAX_INDEX, cached, 'E_CACHE').catch(() => undefined);
    if (body && sha256(body) !== entry.sha256) body = undefined;
    if (!body) {
      if (o.offline) throw new DockyardError('E_OFFLINE', `${base}/${path} is not cached (run once without --offline)`);
      // By hash where the archive keeps it (its compressed forms), else by name, as apt falls back.
      const direct = `${base}/${path}`;
      const hashed = `${base}/${comp}/binary-${arch}/by-hash/SHA256/${entry.sha256}`;
      const got = release.acquireByHash ? await get(hashed, MAX_INDEX).catch(() => get(direct, MAX_INDEX)) : await get(direct, MAX_INDEX);
      checkIndex(release, path, got, inUrl);
      await atomicWrite(cached, got, o.tmpDir);
      body = got;
    }
    let text: Buffer;
    try {
      text = path.endsWith('.xz') ? await xzBuffer(body, `${base}/${path}`, MAX_INDEX) : gunzipSync(body, { maxOutputLength: MAX_INDEX });
    } catch (e) {
      throw new DockyardError('E_ARCHIVE_FORMAT', `${base}/${path}: not a valid ${path.endsWith('.xz') ? 'xz' : 'gzip'} stream (${(e as Error).message})`, { cause: e });
    }
    packages.set(comp, text);
  }
  return { uri: repo.uri, suite, release, inRelease: raw, packages };
}

/** The package index of `arch` over every suite of every repository. */
export async function loadIndex(repos: Repository[], arch: string, o: FetchOptions): Promise<{ index: PackageIndex; suites: LoadedSuite[] }> {
  const suites: LoadedSuite[] = [];
  for (const r of repos) for (const s of r.suites) suites.push(await loadSuite(r, s, arch, o));
  const sources: IndexSource[] = [];
  for (const s of suites) {
    const f = s.release;
    const pin = defaultPin(f.notAutomatic ?? false, f.butAutomaticUpgrades ?? false);
    for (const [comp, bytes] of s.packages) {
      const what = `${s.uri}/dists/${s.suite}/${comp}/binary-${arch}/Packages`;
      sources.push({ suite: s.suite, pin, what, paragraphs: parseDeb822(bytes.toString('utf8'), what) });
    }
  }
  return { index: new PackageIndex(arch, sources), suites };
}
