/**
 * A hostile registry on 127.0.0.1: the distribution API over the images of
 * an OCI layout, with a misbehaviour chosen by the first component of the
 * repository path (`HOST/BEHAVIOUR/NAME:1` serves the layout's
 * `127.0.0.1:5000/fixtures/NAME:1`). A second listener on 127.0.0.2 plays
 * "another host" (a token service, a redirect target) and records every
 * request it gets, headers included.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { OciLayout, blobPath } from '../../pkg/oci/layout.js';

export type Behaviour =
  | 'ok'
  | 'slowblob' // blob bodies trickled: 64 bytes every 200 ms
  | 'stallblob' // half a blob, then nothing, the connection kept open
  | 'slowheaders' // never answers
  | 'endless' // a manifest sent chunked that never ends
  | 'mismatch' // blob bytes with one byte changed
  | 'short' // a blob cut short, the response ended cleanly
  | 'long' // a blob with bytes added
  | 'token-elsewhere' // 401: Bearer realm on the other host
  | 'basic' // 401: Basic
  | 'redirect-elsewhere'; // blobs 307 to the other host

export interface Recorded {
  method: string;
  url: string;
  authorization?: string;
}

export interface HostileRegistry {
  host: string;
  /** Requests the registry got. */
  seen: Recorded[];
  /** Requests "another host" (127.0.0.2) got. */
  elsewhere: Recorded[];
  close(): Promise<void>;
}

const listen = (s: Server, host: string) =>
  new Promise<number>((res, rej) => {
    s.once('error', rej);
    s.listen(0, host, () => {
      const a = s.address();
      res(typeof a === 'object' && a ? a.port : 0);
    });
  });

export async function hostileRegistry(layoutDir: string): Promise<HostileRegistry> {
  const layout = new OciLayout(layoutDir);
  const seen: Recorded[] = [];
  const elsewhere: Recorded[] = [];
  const open = new Set<ServerResponse>();
  const record = (list: Recorded[], req: IncomingMessage) => list.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });

  const other = createServer((req, res) => {
    record(elsewhere, req);
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/token') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"from-elsewhere"}');
    const m = /^\/blob\/(sha256:[0-9a-f]{64})$/.exec(u.pathname);
    if (m) return void readFile(blobPath(layoutDir, m[1])).then((b) => res.writeHead(200).end(b), () => res.writeHead(404).end());
    res.writeHead(404).end();
  });
  const otherPort = await listen(other, '127.0.0.2');

  const server = createServer(async (req, res) => {
    record(seen, req);
    open.add(res);
    res.on('close', () => open.delete(res));
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') return void res.writeHead(200).end('{}');
    const m = /^\/v2\/([a-z-]+)\/([a-z0-9]+)\/(manifests|blobs)\/([^/?]+)/.exec(url);
    if (!m) return void res.writeHead(404).end();
    const [, behaviour, name, kind, ref] = m as unknown as [string, Behaviour, string, string, string];
    if (behaviour === 'slowheaders') return; // never answers
    if (behaviour === 'token-elsewhere' && req.headers.authorization !== 'Bearer from-elsewhere') {
      return void res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.2:${otherPort}/token",service="hostile"` }).end();
    }
    if (behaviour === 'basic' && !req.headers.authorization?.startsWith('Basic ')) {
      return void res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"' }).end();
    }
    if (kind === 'manifests') {
      if (behaviour === 'endless') {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        const chunk = Buffer.alloc(64 << 10, 0x20);
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        pump();
        return;
      }
      try {
        const raw = ref.startsWith('sha256:') ? await layout.getManifest(`127.0.0.1:5000/fixtures/${name}:1`, ref) : await layout.getManifest(`127.0.0.1:5000/fixtures/${name}:${ref}`);
        const mt = JSON.parse(raw.bytes.toString()).mediaType;
        return void res.writeHead(200, { 'content-type': mt, 'docker-content-digest': raw.digest }).end(raw.bytes);
      } catch {
        return void res.writeHead(404).end();
      }
    }
    const bytes = await readFile(blobPath(layoutDir, ref)).catch(() => undefined);
    if (!bytes) return void res.writeHead(404).end();
    // Configs are served as they are: the misbehaviour is for layers (gzip).
    const layer = bytes[0] === 0x1f && bytes[1] === 0x8b;
    if (!layer || behaviour === 'ok' || behaviour === 'token-elsewhere' || behaviour === 'basic') return void res.writeHead(200, { 'content-length': String(bytes.length) }).end(bytes);
    switch (behaviour) {
      case 'redirect-elsewhere':
        return void res.writeHead(307, { location: `http://127.0.0.2:${otherPort}/blob/${ref}` }).end();
      case 'mismatch': {
        const b = Buffer.from(bytes);
        b[b.length >> 1] ^= 0xff;
        return void res.writeHead(200, { 'content-length': String(b.length) }).end(b);
      }
      case 'short':
        return void res.writeHead(200).end(bytes.subarray(0, bytes.length >> 1));
      case 'long':
        return void res.writeHead(200).end(Buffer.concat([bytes, Buffer.alloc(4096, 7)]));
      case 'stallblob':
        res.writeHead(200, { 'content-length': String(bytes.length) });
        res.write(bytes.subarray(0, bytes.length >> 1));
        return;
      case 'slowblob': {
        res.writeHead(200, { 'content-length': String(bytes.length) });
        let at = 0;
        const t = setInterval(() => {
          if (res.destroyed || at >= bytes.length) {
            clearInterval(t);
            if (!res.destroyed) res.end();
            return;
          }
          res.write(bytes.subarray(at, at + 64));
          at += 64;
        }, 200);
        return;
      }
      default:
        return void res.writeHead(500).end();
    }
  });
  const port = await listen(server, '127.0.0.1');
  return {
    host: `127.0.0.1:${port}`,
    seen,
    elsewhere,
    async close() {
      for (const r of open) r.destroy();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => other.close(r))]);
    },
  };
}

/** sha256 hex of a buffer. */
export function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
