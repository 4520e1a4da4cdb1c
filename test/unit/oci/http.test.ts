/**
 * The registry's HTTP layer against a small server that misbehaves on
 * purpose: bodies capped as they arrive (whatever Content-Length says),
 * the three timeouts, a trickle counted as a stall, redirects that lose
 * the authorization on another origin, and the credential rules of the
 * client (same site, plain HTTP).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { request, timeoutsOf, NetworkError } from '../../../pkg/oci/registry/http.js';
import { sameSite } from '../../../pkg/oci/registry/client.js';
import { DockyardError } from '../../../pkg/errors.js';

let server: Server;
let other: Server;
let base: string;
let otherBase: string;
const seen: { url: string; auth?: string; host: string }[] = [];

const listen = (s: Server, host: string) => new Promise<string>((r) => s.listen(0, host, () => r(`http://${host}:${(s.address() as { port: number }).port}`)));

beforeAll(async () => {
  const handler = (host: string) => (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    seen.push({ url: req.url ?? '', auth: req.headers.authorization, host });
    const u = req.url ?? '';
    if (u === '/big') {
      // Claims 10 bytes, sends 64 MiB, chunked.
      res.writeHead(200, { 'x-claimed-length': '10' });
      const c = Buffer.alloc(1 << 20, 1);
      let n = 0;
      const pump = () => {
        while (n < 64 && res.write(c)) n++;
        if (n < 64) res.once('drain', pump);
        else res.end();
      };
      pump();
    } else if (u === '/silent') {
      /* no answer */
    } else if (u === '/stall') {
      res.writeHead(200);
      res.write('part');
    } else if (u === '/trickle') {
      res.writeHead(200);
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write('x')), 50);
    } else if (u === '/same') {
      res.writeHead(302, { location: '/ok' }).end();
    } else if (u === '/away') {
      res.writeHead(307, { location: `${otherBase}/ok` }).end();
    } else if (u === '/loop') {
      res.writeHead(302, { location: '/loop' }).end();
    } else res.writeHead(200).end('fine');
  };
  server = createServer(handler('main'));
  other = createServer(handler('other'));
  base = await listen(server, '127.0.0.1');
  otherBase = await listen(other, '127.0.0.2');
});
afterAll(async () => {
  server.closeAllConnections();
  other.closeAllConnections();
  await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => other.close(r))]);
});

const opts = (seconds = 5) => ({ timeouts: timeoutsOf(seconds), label: 'registry test' });

describe('http', () => {
  it('reads a body into memory only up to the cap, counted as it arrives', async () => {
    const res = await request({ method: 'GET', url: `${base}/big` }, opts());
    await expect(res.read(1 << 20, 'the answer')).rejects.toThrow(/registry test: the answer is larger than 1 MiB; refused/);
    const ok = await request({ method: 'GET', url: `${base}/ok` }, opts());
    expect((await ok.read(100, 'x')).toString()).toBe('fine');
  });

  it('a server that never answers times out; so do a stalled and a trickled body', async () => {
    const t0 = Date.now();
    await expect(request({ method: 'GET', url: `${base}/silent` }, opts(0.3))).rejects.toBeInstanceOf(NetworkError);
    expect(Date.now() - t0).toBeLessThan(2000);
    for (const path of ['/stall', '/trickle']) {
      const res = await request({ method: 'GET', url: `${base}${path}` }, opts(0.3));
      const e = await res.read(1 << 20, 'x').catch((x) => x);
      expect(e, path).toBeInstanceOf(DockyardError);
      expect(String(e.message)).toMatch(/stalled: less than 64 KiB in 0\.3 s/);
    }
  });

  it('connecting to nothing is a network error naming the host', async () => {
    const e = await request({ method: 'GET', url: 'http://127.0.0.1:1/x' }, opts(1)).catch((x) => x);
    expect(e).toBeInstanceOf(NetworkError);
    expect(e.message).toMatch(/registry test: GET \/x: ECONNREFUSED/);
  });

  it('redirects keep the authorization on the same origin and drop it on another', async () => {
    seen.length = 0;
    await (await request({ method: 'GET', url: `${base}/same`, headers: { authorization: 'Bearer t' } }, opts())).read(100, 'x');
    await (await request({ method: 'GET', url: `${base}/away`, headers: { authorization: 'Bearer t' } }, opts())).read(100, 'x');
    expect(seen).toEqual([
      { url: '/same', auth: 'Bearer t', host: 'main' },
      { url: '/ok', auth: 'Bearer t', host: 'main' },
      { url: '/away', auth: 'Bearer t', host: 'main' },
      { url: '/ok', auth: undefined, host: 'other' },
    ]);
    await expect(request({ method: 'GET', url: `${base}/loop` }, opts())).rejects.toThrow(/more than 10 redirects/);
  });

  it('an abort ends a request at once', async () => {
    const ac = new AbortController();
    const p = request({ method: 'GET', url: `${base}/silent` }, { ...opts(30), signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: 'E_INTERRUPTED' });
  });
});

describe('sameSite: where a registry may send our password for a token', () => {
  it.each([
    ['registry-1.docker.io', 'auth.docker.io', true],
    ['registry.gitlab.com', 'gitlab.com', true],
    ['ghcr.io', 'ghcr.io', true],
    ['quay.io', 'auth.quay.io', true],
    ['registry.example.com', 'evil.com', false],
    ['ghcr.io', 'evil.io', false],
    ['example.co.uk', 'evil.co.uk', false],
    ['127.0.0.1', '127.0.0.2', false],
    ['127.0.0.1', 'localhost', false],
    ['[::1]', '::1', true],
  ])('%s → %s: %s', (registry, realm, want) => {
    expect(sameSite(registry, realm)).toBe(want);
  });
});
