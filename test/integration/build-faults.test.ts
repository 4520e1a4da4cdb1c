/**
 * `dockyard build` against a real registry, and its faults: a build pulling
 * through the registry; a pull interrupted by SIGINT (exit 130, one line, no
 * output, and the next build on that cache works); four builds at once on
 * one cache (all succeed with identical outputs, the cache stays readable).
 * A small proxy in front of the registry slows blobs down on request so the
 * interrupt lands mid-pull.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { createServer, type Server } from 'node:http';
import { mkdtemp, writeFile, readFile, readdir, mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { dockyard, cliPath, dataDir } from '../harness/cli.js';
import { OciLayout } from '../../pkg/oci/layout.js';
import { RegistryClient } from '../../pkg/oci/registry/client.js';
import { pushImage } from '../../pkg/oci/registry/push.js';

const images = join(dataDir, 'conformance/images');
const names = ['kernel', 'init', 'busybox', 'layered', 'ro'];
let reg: TestRegistry;
let proxy: Server;
let proxyHost: string;
let slow = false;
let work: string;

const spec = (host: string) => `
kernel:
  image: ${host}/fixtures/kernel:1
  cmdline: "console=ttyS0"
init:
  - ${host}/fixtures/init:1
onboot:
  - name: one
    image: ${host}/fixtures/layered:1
services:
  - name: ro
    image: ${host}/fixtures/ro:1
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-build-faults-'));
  reg = await startRegistry();
  const layout = new OciLayout(images);
  for (const n of names) await pushImage(layout, `127.0.0.1:5000/fixtures/${n}:1`, new RegistryClient(), `${reg.host}/fixtures/${n}:1`);
  // A pass-through proxy; with `slow` it trickles blob bodies (512 bytes / 100 ms).
  proxy = createServer(async (req, res) => {
    try {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host') headers[k] = v;
      const up = await fetch(`${reg.url}${req.url}`, { method: req.method, headers, redirect: 'manual' });
      const out: Record<string, string> = {};
      up.headers.forEach((v, k) => {
        if (k !== 'content-encoding' && k !== 'transfer-encoding') out[k] = v;
      });
      res.writeHead(up.status, out);
      const body = Buffer.from(await up.arrayBuffer());
      if (slow && req.url?.includes('/blobs/') && req.method === 'GET') {
        for (let i = 0; i < body.length && !res.destroyed; i += 512) {
          res.write(body.subarray(i, i + 512));
          await sleep(100);
        }
        res.end();
      } else res.end(body);
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const a = proxy.address();
  proxyHost = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  await writeFile(join(work, 'direct.yml'), spec(reg.host));
  await writeFile(join(work, 'proxied.yml'), spec(proxyHost));
}, 120_000);

afterAll(async () => {
  proxy?.close();
  await reg?.stop();
});

const sha = async (f: string) => createHash('sha256').update(await readFile(f)).digest('hex');

describe('build from a registry', () => {
  it('pulls every image and writes the system', async () => {
    const cache = join(work, 'c-direct');
    const out = join(work, 'o-direct');
    const r = await dockyard(['build', '--cache', cache, '-f', 'tar', '-f', 'kernel+initrd', '--dir', out, '--json', join(work, 'direct.yml')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['direct-cmdline', 'direct-initrd.img', 'direct-kernel', 'direct.tar']);
    const list = (await execa('tar', ['-tf', join(out, 'direct.tar')])).stdout;
    expect(list).toMatch(/containers\/services\/ro\/rootfs\/bin\/busybox/);
    // the cache is an OCI layout skopeo reads
    await execa('skopeo', ['inspect', `oci:${cache}:${reg.host}/fixtures/layered:1`]);
  });
});

describe('SIGINT during a pull', () => {
  it('exits 130 with one line and no output; the next build on the cache works', async () => {
    const cache = join(work, 'c-sigint');
    const out = join(work, 'o-sigint');
    slow = true;
    const child = execa('node', [cliPath, 'build', '--cache', cache, '-f', 'tar', '--dir', out, join(work, 'proxied.yml')], { reject: false });
    await sleep(2500);
    child.kill('SIGINT');
    const r = await child;
    slow = false;
    expect(r.exitCode, r.stderr).toBe(130);
    const errs = r.stderr.split('\n').filter((l) => l.startsWith('dockyard: '));
    expect(errs, r.stderr).toHaveLength(1);
    expect(errs[0]).toMatch(/interrupt/i);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(out).catch(() => [])).toEqual([]);
    // The same cache, the same spec: completes.
    const again = await dockyard(['build', '--cache', cache, '-f', 'tar', '--dir', out, join(work, 'proxied.yml')]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await readdir(out)).toEqual(['proxied.tar']);
  }, 120_000);
});

describe('four builds at once on one cache', () => {
  it('all succeed with identical outputs; a fifth, offline, works', async () => {
    const cache = join(work, 'c-four');
    const runs = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const out = join(work, `o-four-${i}`);
        await mkdir(out, { recursive: true });
        return { out, r: await dockyard(['build', '--cache', cache, '-f', 'tar,kernel+initrd', '--dir', out, '--name', 'sys', join(work, 'direct.yml')]) };
      }),
    );
    for (const { r } of runs) expect(r.exitCode, r.stderr).toBe(0);
    for (const f of ['sys.tar', 'sys-initrd.img', 'sys-kernel']) {
      const digests = await Promise.all(runs.map(({ out }) => sha(join(out, f))));
      expect(new Set(digests).size, f).toBe(1);
    }
    const out5 = join(work, 'o-four-offline');
    const r5 = await dockyard(['build', '--offline', '--cache', cache, '-f', 'tar', '--dir', out5, '--name', 'sys', join(work, 'direct.yml')]);
    expect(r5.exitCode, r5.stderr).toBe(0);
    expect(await sha(join(out5, 'sys.tar'))).toBe(await sha(join(runs[0].out, 'sys.tar')));
    const idx = JSON.parse(await readFile(join(cache, 'index.json'), 'utf8'));
    expect(idx.manifests).toHaveLength(4);
  }, 180_000);
});
