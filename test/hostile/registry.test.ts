/**
 * Hostile registries (issue 7, rows 4, 5, 6, 13 and their neighbours): blobs
 * that are not what their digest says, longer or shorter than announced; a
 * manifest that never ends; answers that never come or come a trickle at a
 * time; token services and redirects on other hosts that would collect our
 * credentials. A real registry (Debian's docker-registry) for what an honest
 * one does, and a small hostile server for the rest.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { OciLayout } from '../../pkg/oci/layout.js';
import { RegistryClient } from '../../pkg/oci/registry/client.js';
import { pushImage } from '../../pkg/oci/registry/push.js';
import { conformanceImages, expectNothingLeft, expectOneLine, flipByte, imageBlobs, run, sandbox, sha256File, snapshot, type Sandbox } from './harness.js';
import { hostileRegistry, type HostileRegistry } from './server.js';

let hostile: HostileRegistry;
beforeAll(async () => {
  hostile = await hostileRegistry(conformanceImages);
});
afterAll(async () => hostile?.close());

/** `cache pull` and `build` of `BEHAVIOUR/NAME:1` on the hostile registry, both one line, nothing left. */
async function both(sb: Sandbox, ref: string, re: RegExp, extra: string[] = [], caps: { maxSeconds?: number; maxRssMB?: number } = {}) {
  await writeFile(join(sb.work, 'h.yml'), `onboot:\n  - name: x\n    image: ${ref}\n`);
  const before = await snapshot(sb.root, ['out', 'cache']);
  const pull = await run(sb, ['cache', '--cache', sb.cache, 'pull', ...extra, ref], { cap: 60 });
  expectOneLine(pull, re, caps);
  await expectNothingLeft(sb, before);
  const build = await run(sb, ['build', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, ...extra, 'h.yml'], { cap: 60 });
  expectOneLine(build, re, caps);
  await expectNothingLeft(sb, before);
  expect(await readdir(sb.out)).toEqual([]);
  // Nothing that failed was committed: the cache holds no reference and no blob of it.
  const idx = await import('node:fs/promises').then((f) => f.readFile(join(sb.cache, 'index.json'), 'utf8')).catch(() => '{"manifests":[]}');
  expect(JSON.parse(idx).manifests).toEqual([]);
}

describe('blobs that are not what they say (row 4)', () => {
  for (const [behaviour, re] of [
    ['mismatch', /blob sha256:[0-9a-f]{64}: content hashes to sha256:[0-9a-f]{64}, expected sha256:/],
    ['short', /blob sha256:[0-9a-f]{64}: \d+ bytes, expected \d+ for sha256:|content hashes to/],
    ['long', /blob sha256:[0-9a-f]{64}: more than the \d+ bytes announced for sha256:/],
  ] as const) {
    it(behaviour, async () => {
      const sb = await sandbox(`blob-${behaviour}`);
      await both(sb, `${hostile.host}/${behaviour}/layered:1`, re);
    });
  }
});

describe('answers that never end or never come (rows 5, 6)', () => {
  it('a manifest sent chunked that never ends: refused at 8 MiB, memory bounded', async () => {
    const sb = await sandbox('endless');
    await both(sb, `${hostile.host}/endless/layered:1`, /manifest 1 of endless\/layered is larger than 8 MiB; refused/, [], { maxSeconds: 15, maxRssMB: 250 });
  });
  it('a registry that never answers: --timeout, every attempt, one line', async () => {
    const sb = await sandbox('slowheaders');
    await both(sb, `${hostile.host}/slowheaders/layered:1`, /manifest 1 failed after 4 attempts \(no response to GET \/v2\/slowheaders\/layered\/manifests\/1 within 1 s \(--timeout\)\)/, ['--timeout', '1'], { maxSeconds: 12 });
  });
  it('a blob that stops half way', async () => {
    const sb = await sandbox('stall');
    await both(sb, `${hostile.host}/stallblob/layered:1`, /stalled: less than 64 KiB in 1 s \(--timeout\)/, ['--timeout', '1'], { maxSeconds: 12 });
  });
  it('a blob trickled a few bytes at a time counts as stalled', async () => {
    const sb = await sandbox('trickle');
    await both(sb, `${hostile.host}/slowblob/init:1`, /stalled: less than 64 KiB in 1 s \(--timeout\)/, ['--timeout', '1'], { maxSeconds: 12 });
  });
});

describe('credentials go only where they were configured for (row 13)', () => {
  const creds = async (sb: Sandbox, hosts: string[]) => {
    await mkdir(join(sb.home, '.docker'), { recursive: true });
    const auth = Buffer.from('tester:s3cret').toString('base64');
    await writeFile(join(sb.home, '.docker/config.json'), JSON.stringify({ auths: Object.fromEntries(hosts.map((h) => [h, { auth }])) }));
  };
  it('a token realm on another host gets no Basic credentials', async () => {
    const sb = await sandbox('realm');
    await creds(sb, [hostile.host]);
    const from = hostile.elsewhere.length;
    const r = await run(sb, ['cache', '--cache', sb.cache, 'pull', `${hostile.host}/token-elsewhere/layered:1`]);
    // The token service gives a token to anyone here: the pull works, and it never saw the password.
    expect(r.exitCode, r.stderr).toBe(0);
    const asked = hostile.elsewhere.slice(from);
    expect(asked.length).toBeGreaterThan(0);
    for (const q of asked) expect(q.authorization, q.url).toBeUndefined();
  });
  it('a blob redirect to another host does not carry the authorization', async () => {
    const sb = await sandbox('redirect');
    await creds(sb, [hostile.host]);
    const from = hostile.elsewhere.length;
    const r = await run(sb, ['cache', '--cache', sb.cache, 'pull', `${hostile.host}/redirect-elsewhere/init:1`]);
    expect(r.exitCode, r.stderr).toBe(0);
    const asked = hostile.elsewhere.slice(from).filter((q) => q.url.startsWith('/blob/'));
    expect(asked.length).toBeGreaterThan(0);
    for (const q of asked) expect(q.authorization, q.url).toBeUndefined();
  });
  it("a mirror does not get the credentials of the registry it stands in for", async () => {
    const sb = await sandbox('mirror');
    await creds(sb, ['docker.io', 'https://index.docker.io/v1/']);
    const from = hostile.seen.length;
    const r = await run(sb, ['cache', '--cache', sb.cache, 'pull', '--mirror', `docker.io=http://${hostile.host}`, 'basic/init:1']);
    expectOneLine(r, /registry docker\.io requires credentials \(docker login docker\.io\)/);
    for (const q of hostile.seen.slice(from)) expect(q.authorization, q.url).toBeUndefined();
  });
  const lan = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  it.skipIf(!lan)('plain HTTP to a host that is not loopback gets credentials only when --insecure-registry names it', async () => {
    const sb = await sandbox('plain');
    const { createServer } = await import('node:http');
    const got: (string | undefined)[] = [];
    const s = createServer((req, res) => {
      got.push(req.headers.authorization);
      res.writeHead(401, { 'www-authenticate': 'Basic realm="lan"' }).end();
    });
    await new Promise<void>((r) => s.listen(0, lan!, r));
    const port = (s.address() as { port: number }).port;
    const host = `${lan}:${port}`;
    await creds(sb, [host]);
    try {
      // Not named insecure: HTTPS is tried, and fails; the password never travels.
      const tls = await run(sb, ['cache', '--cache', sb.cache, 'pull', '--timeout', '2', `${host}/x/y:1`]);
      expect(tls.exitCode).not.toBe(0);
      expect(got.every((a) => a === undefined)).toBe(true);
      // Named insecure: the user asked for plain HTTP to it, credentials included.
      const ok = await run(sb, ['cache', '--cache', sb.cache, 'pull', '--insecure-registry', host, `${host}/x/y:1`]);
      expectOneLine(ok, /registry .* refused our credentials for x\/y/);
      expect(got.filter((a) => a !== undefined)).toEqual([`Basic ${Buffer.from('tester:s3cret').toString('base64')}`]);
    } finally {
      s.close();
    }
  });
});

describe('a real registry repairs a corrupt cache (row 3)', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
    const layout = new OciLayout(conformanceImages);
    for (const n of ['kernel', 'init', 'layered', 'ro']) await pushImage(layout, `127.0.0.1:5000/fixtures/${n}:1`, new RegistryClient(), `${reg.host}/fixtures/${n}:1`);
  }, 120_000);
  afterAll(async () => reg?.stop());

  it('a build finds a changed layer, removes it, pulls it again, and writes the bytes of a fresh cache', async () => {
    const sb = await sandbox('repair');
    const spec = `kernel:\n  image: ${reg.host}/fixtures/kernel:1\ninit:\n  - ${reg.host}/fixtures/init:1\nonboot:\n  - name: one\n    image: ${reg.host}/fixtures/layered:1\n`;
    await writeFile(join(sb.work, 'reg.yml'), spec);
    const build = async (cache: string, out: string) => {
      const r = await run(sb, ['build', '--cache', cache, '-f', 'tar', '--dir', out, 'reg.yml']);
      expect(r.exitCode, r.stderr).toBe(0);
      return { r, sha: await sha256File(join(out, 'reg.tar')) };
    };
    const fresh = await build(join(sb.root, 'fresh-cache'), join(sb.root, 'fresh-out'));
    await build(sb.cache, join(sb.root, 'first'));
    const { layers } = await imageBlobs(sb.cache, `${reg.host}/fixtures/layered:1`);
    await flipByte(layers[0]);
    // The segments would hide it: a cold build reads the layers.
    await import('node:fs/promises').then((f) => f.rm(join(sb.cache, 'segments'), { recursive: true }));
    const again = await build(sb.cache, sb.out);
    expect(again.r.stderr).toMatch(/^warning: image .*layered:1.*the cache's copy is corrupt.*; building again$/m);
    expect(again.sha).toBe(fresh.sha);
    // And `cache pull` checks what it already has.
    const { layers: l2 } = await imageBlobs(sb.cache, `${reg.host}/fixtures/init:1`);
    await flipByte(l2[0]);
    const p = await run(sb, ['cache', '--cache', sb.cache, 'pull', `${reg.host}/fixtures/init:1`]);
    expect(p.exitCode, p.stderr).toBe(0);
    expect(await sha256File(l2[0])).toBe(l2[0].split('/').pop());
  });
});


