/**
 * A Debian archive that lies is refused: `pkg lock`/`pkg build` read Debian's
 * archive through a local HTTP proxy that alters one thing at a time — the
 * bookworm-updates InRelease re-signed by another key, its Packages.xz
 * replaced by another valid index, a .deb replaced by another package —
 * and each run ends with one clear line, no lock, no image, and nothing of
 * the altered bytes in the cache.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import * as openpgp from 'openpgp';
import { dockyard } from '../harness/cli.js';
import { xzBuffer } from '../../pkg/archive/xz.js';

type Tamper = 'none' | 'resign' | 'index' | 'deb' | 'cut';
let mode: Tamper = 'none';
let server: Server;
let port = 0;
let work: string;
const altered = new Set<string>();
/** The Range headers the proxy was sent for .debs, and the body bytes it sent for them. */
const ranges: string[] = [];
let debBytesSent = 0;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function upstream(path: string): Promise<Buffer | undefined> {
  const r = await fetch(`http://deb.debian.org${path}`);
  return r.ok ? Buffer.from(await r.arrayBuffer()) : undefined;
}

async function resign(text: string): Promise<string> {
  const msg = await openpgp.readCleartextMessage({ cleartextMessage: text });
  const { privateKey } = await openpgp.generateKey({ userIDs: [{ name: 'Not Debian', email: 'nobody@example.org' }], format: 'object' });
  return (await openpgp.sign({ message: await openpgp.createCleartextMessage({ text: msg.getText() }), signingKeys: privateKey })) as string;
}

/** Another valid Packages.xz: the same index with one version changed, compressed by xz(1). */
async function otherIndex(xz: Buffer): Promise<Buffer> {
  const text = (await xzBuffer(xz, 'index', 1 << 30)).toString('utf8').replace(/^Version: (.*)$/m, 'Version: $1+tampered');
  const r = await execa('xz', ['-z', '-c'], { input: Buffer.from(text), encoding: 'buffer' });
  return Buffer.from(r.stdout as unknown as Uint8Array);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-tamper-'));
  let swapDeb: Buffer | undefined;
  server = createServer((req, res) => {
    void (async () => {
      const path = req.url ?? '/';
      let body = await upstream(path);
      if (!body) {
        res.writeHead(404).end();
        return;
      }
      const honest = body;
      if (mode === 'resign' && path.endsWith('/dists/bookworm-updates/InRelease')) body = Buffer.from(await resign(body.toString('utf8')));
      if (mode === 'index' && /\/dists\/bookworm-updates\/main\/binary-amd64\/(Packages\.xz|by-hash\/SHA256\/[0-9a-f]+)$/.test(path)) body = await otherIndex(body);
      if (mode === 'deb' && /\/pool\/main\/c\/ca-certificates\/.*\.deb$/.test(path)) {
        swapDeb ??= await upstream('/debian/pool/main/b/base-files/' + (await baseFilesName()));
        body = swapDeb!;
      }
      if (body !== honest) altered.add(sha(body));
      const isDeb = path.endsWith('.deb');
      if (mode === 'cut' && isDeb) {
        // Half the body, then the connection drops.
        res.writeHead(200, { 'content-length': body.length });
        debBytesSent += body.length >> 1;
        res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.destroy(), 50));
        return;
      }
      // Byte ranges, as Debian's mirrors serve them.
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (isDeb && req.headers.range) ranges.push(req.headers.range);
      if (range && Number(range[1]) < body.length) {
        const from = Number(range[1]);
        if (isDeb) debBytesSent += body.length - from;
        res.writeHead(206, { 'content-length': body.length - from, 'content-range': `bytes ${from}-${body.length - 1}/${body.length}` }).end(body.subarray(from));
        return;
      }
      if (isDeb) debBytesSent += body.length;
      res.writeHead(200, { 'content-length': body.length }).end(body);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
  await writeFile(
    join(work, 'certs.yml'),
    `repositories:\n  - uri: http://127.0.0.1:${port}/debian\n    suites: [bookworm, bookworm-updates]\n    components: [main]\nkeyring: [/usr/share/keyrings/debian-archive-keyring.gpg]\npackages: [ca-certificates]\narchs: [amd64]\n`,
  );
  // Fill a shared cache with the honest bookworm indices once (the big one), so each case fetches little.
  mode = 'none';
  const r = await dockyard(['pkg', 'lock', '--cache', join(work, 'warm'), join(work, 'certs.yml')]);
  expect(r.exitCode, r.stderr).toBe(0);
  await rm(join(work, 'certs.lock.json'));
}, 600_000);

afterAll(async () => {
  server?.close();
  await rm(work, { recursive: true, force: true });
});

async function baseFilesName(): Promise<string> {
  const r = await execa('apt-cache', ['show', '--no-all-versions', 'base-files:amd64']);
  return /^Filename: .*\/(base-files_[^/]+\.deb)$/m.exec(r.stdout)![1];
}

/** Files in the cache's debian/ folder whose bytes are the altered ones. */
async function alteredInCache(cache: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['by-hash', 'inrelease', 'debs']) {
    const dir = join(cache, 'debian', sub);
    for (const f of await readdir(dir).catch(() => [] as string[])) if (altered.has(sha(await readFile(join(dir, f))))) out.push(`${sub}/${f}`);
  }
  return out;
}

function oneLine(r: { exitCode?: number; stderr: string }): string {
  expect(r.exitCode, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  return lines[0];
}

describe('a lying archive', () => {
  it('an InRelease signed by another key: E_ARCHIVE_SIGNATURE, no lock, nothing cached', async () => {
    mode = 'resign';
    altered.clear();
    const cache = join(work, 'c-resign');
    await execa('cp', ['-a', join(work, 'warm'), cache]);
    const line = oneLine(await dockyard(['pkg', 'lock', '--cache', cache, join(work, 'certs.yml')]));
    expect(line).toMatch(new RegExp(`^dockyard: http://127\\.0\\.0\\.1:${port}/debian/dists/bookworm-updates/InRelease: signed by key ID [0-9A-F]{16}, which is not in the keyring$`));
    expect(existsSync(join(work, 'certs.lock.json'))).toBe(false);
    expect(await alteredInCache(cache)).toEqual([]);
  });

  it('a Packages.xz that does not match the Release file: E_ARCHIVE_CHECKSUM, no lock, nothing cached', async () => {
    mode = 'index';
    altered.clear();
    const cache = join(work, 'c-index');
    await execa('cp', ['-a', join(work, 'warm'), cache]);
    await rm(join(cache, 'debian/by-hash'), { recursive: true }); // fetched again, through the liar
    const line = oneLine(await dockyard(['pkg', 'lock', '--cache', cache, join(work, 'certs.yml')]));
    expect(line).toMatch(/bookworm-updates\/InRelease: main\/binary-amd64\/Packages\.xz is \d+ bytes with sha256 [0-9a-f]{64}, the Release file says \d+ bytes with sha256 [0-9a-f]{64}$/);
    expect(existsSync(join(work, 'certs.lock.json'))).toBe(false);
    expect(await alteredInCache(cache)).toEqual([]);
  });

  it('a .deb that does not match the index and lock: E_ARCHIVE_CHECKSUM, no image, nothing cached', async () => {
    mode = 'none';
    const cache = join(work, 'c-deb');
    await execa('cp', ['-a', join(work, 'warm'), cache]);
    expect((await dockyard(['pkg', 'lock', '--cache', cache, join(work, 'certs.yml')])).exitCode).toBe(0);
    mode = 'deb';
    altered.clear();
    const line = oneLine(await dockyard(['pkg', 'build', '--cache', cache, join(work, 'certs.yml')]));
    expect(line).toMatch(/pool\/main\/c\/ca-certificates\/ca-certificates_.*\.deb: \d+ bytes with sha256 [0-9a-f]{64}, the lock says \d+ bytes with sha256 [0-9a-f]{64}$/);
    expect((await dockyard(['cache', 'ls', '--cache', cache])).stdout).toBe('');
    expect(await alteredInCache(cache)).toEqual([]);
    // Honest again: the same lock builds.
    mode = 'none';
    const ok = await dockyard(['pkg', 'build', '--cache', cache, join(work, 'certs.yml')]);
    expect(ok.exitCode, ok.stderr).toBe(0);
  });

  it('a download cut off is kept and resumed with a Range request: only the rest is sent, the image is the one an unbroken build makes', async () => {
    mode = 'none';
    const honest = join(work, 'c-honest');
    await execa('cp', ['-a', join(work, 'warm'), honest]);
    expect((await dockyard(['pkg', 'lock', '--cache', honest, join(work, 'certs.yml')])).exitCode).toBe(0);
    const want = await dockyard(['pkg', 'build', '--cache', honest, join(work, 'certs.yml')]);
    expect(want.exitCode, want.stderr).toBe(0);
    const lock = JSON.parse(await readFile(join(work, 'certs.lock.json'), 'utf8')) as { packages: { amd64: { name: string; sha256: string; size: number }[] } };
    const total = lock.packages.amd64.reduce((a, p) => a + p.size, 0);

    const cache = join(work, 'c-cut');
    await execa('cp', ['-a', join(work, 'warm'), cache]);
    mode = 'cut';
    debBytesSent = 0;
    const line = oneLine(await dockyard(['pkg', 'build', '--cache', cache, join(work, 'certs.yml')]));
    expect(line).toMatch(/the connection broke off/);
    const parts = (await readdir(join(cache, 'debian/debs'))).filter((f) => f.endsWith('.deb.part'));
    expect(parts.length).toBeGreaterThan(0);
    expect((await readdir(join(cache, 'debian/debs'))).filter((f) => f.endsWith('.deb'))).toEqual([]);
    let kept = 0;
    for (const f of parts) {
      const p = lock.packages.amd64.find((x) => `${x.sha256}.deb.part` === f)!;
      const bytes = await readFile(join(cache, 'debian/debs', f));
      expect(bytes.length, f).toBeGreaterThan(0);
      expect(bytes.length, f).toBeLessThan(p.size);
      kept += bytes.length;
    }

    mode = 'none';
    ranges.length = 0;
    debBytesSent = 0;
    const again = await dockyard(['pkg', 'build', '--cache', cache, join(work, 'certs.yml')]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout.split('\t')[1]).toBe(want.stdout.split('\t')[1]);
    expect(ranges.length).toBe(parts.length);
    expect(debBytesSent).toBe(total - kept);
    expect((await readdir(join(cache, 'debian/debs'))).filter((f) => f.includes('.part'))).toEqual([]);

    // A part that is not a prefix of the file: found by the hash, fetched once more whole, the build goes on.
    const p0 = lock.packages.amd64[0];
    const cache2 = join(work, 'c-badpart');
    await execa('cp', ['-a', join(work, 'warm'), cache2]);
    await execa('mkdir', ['-p', join(cache2, 'debian/debs')]);
    await writeFile(join(cache2, 'debian/debs', `${p0.sha256}.deb.part`), Buffer.alloc(1000, 0x55));
    const fixed = await dockyard(['pkg', 'build', '--cache', cache2, join(work, 'certs.yml')]);
    expect(fixed.exitCode, fixed.stderr).toBe(0);
    expect(fixed.stdout.split('\t')[1]).toBe(want.stdout.split('\t')[1]);
  });
});
