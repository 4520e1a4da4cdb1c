/**
 * Against a real registry (Debian's docker-registry): push the conformance
 * images with our client, pull them into a fresh cache, and let skopeo judge
 * both the registry side and the cache (an OCI layout).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile, writeFile, mkdir, chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { Cache, resolveAll } from '../../pkg/cache/index.js';
import { OciLayout } from '../../pkg/oci/layout.js';
import { RegistryClient } from '../../pkg/oci/registry/client.js';
import { pushImage } from '../../pkg/oci/registry/push.js';
import { dockerConfigCredentials } from '../../pkg/oci/registry/credentials.js';

const images = resolve(__dirname, '../data/conformance/images');
const names = ['kernel', 'init', 'init2', 'busybox', 'labelled', 'svc', 'ro', 'layered', 'multiarch', 'badlabel'];
const src = (n: string) => `127.0.0.1:5000/fixtures/${n}:1`;
const amd64 = { os: 'linux', architecture: 'amd64' };
const layout = new OciLayout(images);

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dy-reg-it-'));
});

async function pushAll(reg: TestRegistry, client: RegistryClient, which = names): Promise<void> {
  for (const n of which) await pushImage(layout, src(n), client, `${reg.host}/fixtures/${n}:1`);
}

describe('anonymous registry', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry();
    await pushAll(reg, new RegistryClient());
  });
  afterAll(async () => reg?.stop());

  it('what we pushed is what skopeo reads from the registry', async () => {
    for (const n of ['init', 'multiarch']) {
      const r = await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/fixtures/${n}:1`]);
      const mine = await layout.getManifest(src(n));
      expect(Buffer.from(r.stdout).equals(mine.bytes) || r.stdout === mine.bytes.toString()).toBe(true);
    }
  });

  it('pulls every image into a fresh cache; skopeo reads the cache as an OCI layout', async () => {
    const cache = new Cache(join(work, 'anon'));
    const refs = names.map((n) => `${reg.host}/fixtures/${n}:1`);
    const events: string[] = [];
    const got = await resolveAll(refs, { cache, arch: 'amd64', onProgress: (e) => events.push(e.kind) });
    expect([...got.keys()]).toEqual(refs);
    expect(events.filter((k) => k === 'pull-done')).toHaveLength(refs.length);
    expect((await cache.list()).map((e) => e.ref)).toEqual([...refs].sort());
    for (const n of ['init', 'layered', 'multiarch']) {
      const ref = `${reg.host}/fixtures/${n}:1`;
      const want = await layout.resolve(src(n), amd64);
      const h = got.get(ref)!;
      expect(h.digest).toBe(want.digest);
      expect(h.manifestDigest).toBe(want.manifestDigest);
      expect(h.layers).toEqual(want.layers);
      const r = await execa('skopeo', ['inspect', `oci:${cache.dir}:${ref}`]);
      expect(JSON.parse(r.stdout).Layers).toEqual(want.layers.map((l) => l.digest));
    }
    // skopeo copies the image out of our cache (it checks every blob's digest)
    await execa('skopeo', ['copy', `oci:${cache.dir}:${reg.host}/fixtures/layered:1`, `dir:${join(work, 'copied')}`]);
    const copied = JSON.parse(await readFile(join(work, 'copied', 'manifest.json'), 'utf8'));
    expect(copied.layers).toHaveLength(2);
  });

  it('warm resolve uses no network: it works with the registry gone from the options (offline)', async () => {
    const cache = new Cache(join(work, 'anon'));
    const h = await cache.pull(`${reg.host}/fixtures/init:1`, amd64, { offline: true });
    expect(h.layers.length).toBeGreaterThan(0);
  });

  it('arm64 from the multiarch index', async () => {
    const cache = new Cache(join(work, 'arm'));
    const m = await resolveAll([`${reg.host}/fixtures/multiarch:1`], { cache, arch: 'arm64' });
    const h = [...m.values()][0];
    expect(h.platform.architecture).toBe('arm64');
    expect(h.manifestDigest).toBe((await layout.resolve(src('multiarch'), { os: 'linux', architecture: 'arm64' })).manifestDigest);
  });

  it('unknown repository or tag is E_IMAGE_NOT_FOUND naming the ref', async () => {
    const cache = new Cache(join(work, 'nf'));
    await expect(cache.pull(`${reg.host}/fixtures/nope:1`, amd64)).rejects.toMatchObject({ code: 'E_IMAGE_NOT_FOUND', message: expect.stringContaining(`${reg.host}/fixtures/nope:1`) });
    await expect(cache.pull(`${reg.host}/fixtures/init:2`, amd64)).rejects.toMatchObject({ code: 'E_IMAGE_NOT_FOUND' });
  });

  it('a digest reference pulls and is checked', async () => {
    const cache = new Cache(join(work, 'dg'));
    const want = await layout.resolve(src('svc'), amd64);
    const h = await cache.pull(`${reg.host}/fixtures/svc@${want.digest}`, amd64);
    expect(h.manifestDigest).toBe(want.digest);
  });

  it('mirrors: a ref on another host is fetched from the mirror URL', async () => {
    const cache = new Cache(join(work, 'mirror'));
    const h = await cache.pull('registry.invalid/fixtures/init:1', amd64, { mirrors: { 'registry.invalid': reg.url } });
    expect(h.canonical).toBe('registry.invalid/fixtures/init:1');
    expect((await cache.list()).map((e) => e.ref)).toEqual(['registry.invalid/fixtures/init:1']);
  });

  it('a non-loopback host is HTTPS unless listed insecure', () => {
    const c = new RegistryClient({ insecureRegistries: ['reg.lan:5000'] });
    expect(c.baseUrl('reg.lan:5000')).toBe('http://reg.lan:5000');
    expect(c.baseUrl('other.lan:5000')).toBe('https://other.lan:5000');
    expect(c.baseUrl('docker.io')).toBe('https://registry-1.docker.io');
    expect(c.baseUrl('[::1]:5000')).toBe('http://[::1]:5000');
  });
});

describe('htpasswd (Basic) registry', () => {
  let reg: TestRegistry;
  const good = async () => ({ username: 'tester', password: 'secret' });
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd', users: { tester: 'secret' } });
    await pushAll(reg, new RegistryClient({ credentials: good }), ['init', 'multiarch']);
  });
  afterAll(async () => reg?.stop());

  it('right password pulls', async () => {
    const cache = new Cache(join(work, 'basic-ok'));
    const h = await cache.pull(`${reg.host}/fixtures/multiarch:1`, amd64, { credentials: good });
    expect(h.platform.architecture).toBe('amd64');
  });

  it('wrong or no password is E_AUTH naming the registry, and nothing is recorded', async () => {
    const cache = new Cache(join(work, 'basic-bad'));
    const e = await cache.pull(`${reg.host}/fixtures/init:1`, amd64, { credentials: async () => ({ username: 'tester', password: 'wrong' }) }).catch((x) => x);
    expect(e).toMatchObject({ code: 'E_AUTH' });
    expect(e.message).toContain(reg.host);
    expect(e.message.split('\n')).toHaveLength(1);
    await expect(cache.pull(`${reg.host}/fixtures/init:1`, amd64, { credentials: async () => undefined })).rejects.toMatchObject({ code: 'E_AUTH' });
    expect(await cache.list()).toEqual([]);
  });

  it('credentials from a docker config.json: auths (base64) and a credential helper', async () => {
    const dir = join(work, 'dockercfg');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('tester:secret').toString('base64') } } }));
    const c1 = new Cache(join(work, 'basic-cfg'));
    await c1.pull(`${reg.host}/fixtures/init:1`, amd64, { credentials: dockerConfigCredentials(join(dir, 'config.json')) });
    expect((await c1.list()).length).toBe(1);

    const bin = join(work, 'bin');
    await mkdir(bin, { recursive: true });
    const helper = join(bin, 'docker-credential-dytest');
    await writeFile(helper, `#!/bin/sh\nread server\n[ "$1" = get ] && [ "$server" = "${reg.host}" ] && printf '{"ServerURL":"%s","Username":"tester","Secret":"secret"}' "$server" && exit 0\necho "credentials not found in native keychain"; exit 1\n`);
    await chmod(helper, 0o755);
    await writeFile(join(dir, 'config2.json'), JSON.stringify({ credHelpers: { [reg.host]: 'dytest' } }));
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    try {
      const c2 = new Cache(join(work, 'basic-helper'));
      await c2.pull(`${reg.host}/fixtures/init:1`, amd64, { credentials: dockerConfigCredentials(join(dir, 'config2.json')) });
      expect((await c2.list()).length).toBe(1);
    } finally {
      process.env.PATH = oldPath;
    }
  });
});

describe('token-auth registry', () => {
  let reg: TestRegistry;
  const good = async () => ({ username: 'tok', password: 'en' });
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token', users: { tok: 'en' } });
    await pushAll(reg, new RegistryClient({ credentials: good }), ['layered']);
  });
  afterAll(async () => reg?.stop());

  it('the registry really asks for a Bearer token', async () => {
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="dockyard-test-registry"/);
  });

  it('right credentials get a token and pull; skopeo agrees on the digest', async () => {
    const cache = new Cache(join(work, 'tok-ok'));
    const h = await cache.pull(`${reg.host}/fixtures/layered:1`, amd64, { credentials: good });
    const r = await execa('skopeo', ['inspect', '--tls-verify=false', '--creds', 'tok:en', `docker://${reg.host}/fixtures/layered:1`]);
    expect(JSON.parse(r.stdout).Digest).toBe(h.digest);
  });

  it('wrong credentials are E_AUTH', async () => {
    const cache = new Cache(join(work, 'tok-bad'));
    await expect(cache.pull(`${reg.host}/fixtures/layered:1`, amd64, { credentials: async () => ({ username: 'tok', password: 'no' }) })).rejects.toMatchObject({
      code: 'E_AUTH',
      message: expect.stringContaining(reg.host),
    });
  });
});
