/**
 * HTTP/1.1 for the registry client, on node:http and node:https, with the
 * bounds a client of an untrusted server needs (RFC 9110, RFC 9112):
 *
 * - three timeouts on every request: connecting (TCP and TLS), waiting for
 *   the response headers, and a body that stops moving (less than 64 KiB in
 *   a window: a trickle is a stall);
 * - bodies read into memory only up to a cap, counted as bytes arrive (a
 *   Content-Length header is never trusted, a chunked body may never end);
 * - redirects (RFC 9110 §15.4) followed for GET and HEAD only, at most
 *   `maxRedirects`, the `authorization` header dropped whenever the origin
 *   (scheme, host, port) changes, so credentials never follow a redirect to
 *   another server;
 * - every stream has an error listener from the start: a reset connection
 *   or a timeout reaches the reader of the body as an error, never as an
 *   unhandled 'error' event.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { DockyardError } from '../../errors.js';
import { collectBody } from '../../archive/sink.js';

export interface Timeouts {
  /** TCP connect plus TLS handshake. */
  connectMs: number;
  /** From sending the request to the end of the response headers. */
  headersMs: number;
  /** Longest pause between two pieces of a response body. */
  idleMs: number;
}

export const defaultTimeouts: Timeouts = { connectMs: 30_000, headersMs: 30_000, idleMs: 30_000 };

/** Every timer at `seconds` (the CLI's --timeout). */
export function timeoutsOf(seconds: number): Timeouts {
  const ms = Math.round(seconds * 1000);
  return { connectMs: ms, headersMs: ms, idleMs: ms };
}

/** A failure of the connection (refused, reset, timed out): worth another attempt. */
export class NetworkError extends DockyardError {
  constructor(message: string, cause?: unknown) {
    super('E_NETWORK', message, { cause });
  }
}

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** Bytes, or a stream sent once (set content-length in `headers`). */
  body?: Buffer | Readable;
}

export interface HttpOptions {
  timeouts: Timeouts;
  signal?: AbortSignal;
  maxRedirects?: number;
  /** Names the server in messages: `registry 127.0.0.1:5000`. */
  label: string;
}

export interface HttpResponse {
  status: number;
  /** The URL that answered (after redirects). */
  url: string;
  header(name: string): string | undefined;
  /** The body as it arrives, under the idle timeout. Consume it, or call discard(). */
  body: Readable;
  /** The whole body, refused past `limit` bytes. */
  read(limit: number, what: string): Promise<Buffer>;
  /** Drop the body (closes the connection if it is still arriving). */
  discard(): void;
}

const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 16 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 16 }),
};

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** What a body must deliver per idle window to count as moving. */
const PROGRESS_BYTES = 64 << 10;
export const defaultMaxRedirects = 10;

function seconds(ms: number): string {
  return `${+(ms / 1000).toFixed(3)} s`;
}

function interrupted(cause?: unknown): DockyardError {
  return new DockyardError('E_INTERRUPTED', 'interrupted', { cause });
}

/** One request/response exchange, no redirects. */
function exchange(req: HttpRequest, o: HttpOptions): Promise<HttpResponse> {
  const u = new URL(req.url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return Promise.reject(new DockyardError('E_REGISTRY', `${o.label}: cannot fetch ${req.url} (only http and https)`));
  }
  const { timeouts: t, signal } = o;
  return new Promise<HttpResponse>((resolve, reject) => {
    if (signal?.aborted) return reject(interrupted(signal.reason));
    const mod = u.protocol === 'https:' ? https : http;
    const cr = mod.request(u, { method: req.method, headers: req.headers, agent: agents[u.protocol as 'http:' | 'https:'] });
    let settled = false;
    let body: PassThrough | undefined;
    const timers = new Set<NodeJS.Timeout>();
    const timer = (ms: number, why: () => Error) => {
      const h = setTimeout(() => fail(why()), ms);
      timers.add(h);
      return h;
    };
    const clear = (h: NodeJS.Timeout | undefined) => {
      if (!h) return;
      clearTimeout(h);
      timers.delete(h);
    };
    const onAbort = () => fail(interrupted(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = () => {
      for (const x of timers) clearTimeout(x);
      timers.clear();
      signal?.removeEventListener('abort', onAbort);
    };
    // Before the response: reject; after it: the error goes to whoever reads the body.
    function fail(e: Error): void {
      if (!settled) {
        settled = true;
        finish();
        cr.destroy();
        reject(e);
      } else if (body && !body.destroyed) {
        finish();
        body.destroy(e);
        cr.destroy();
      }
    }
    const headersTimer = timer(t.headersMs, () => new NetworkError(`${o.label}: no response to ${req.method} ${u.pathname} within ${seconds(t.headersMs)} (--timeout)`));
    cr.on('socket', (s: Socket) => {
      if (!s.connecting) return;
      const h = timer(t.connectMs, () => new NetworkError(`${o.label}: could not connect to ${u.host} within ${seconds(t.connectMs)} (--timeout)`));
      s.once(u.protocol === 'https:' ? 'secureConnect' : 'connect', () => clear(h));
    });
    cr.on('error', (e: NodeJS.ErrnoException) => {
      if (settled && (!body || body.destroyed)) return;
      fail(new NetworkError(`${o.label}: ${req.method} ${u.pathname}: ${e.code ?? e.message}`, e));
    });
    cr.on('response', (res: http.IncomingMessage) => {
      clear(headersTimer);
      settled = true;
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      body = out;
      // The idle timer runs only while we are ready for more (a reader holding
      // the body back pauses it), and only real progress re-arms it: at least
      // PROGRESS_BYTES per window, so a body trickled a byte at a time still
      // times out (a small body must arrive whole within one window).
      let idle: NodeJS.Timeout | undefined;
      let progress = 0;
      const arm = () => {
        clear(idle);
        progress = 0;
        idle = timer(t.idleMs, () => new NetworkError(`${o.label}: the body of ${u.pathname} stalled: less than ${PROGRESS_BYTES >> 10} KiB in ${seconds(t.idleMs)} (--timeout)`));
      };
      arm();
      res.on('data', (c: Buffer) => {
        progress += c.length;
        if (progress >= PROGRESS_BYTES) arm();
      });
      res.on('resume', arm);
      res.on('pause', () => clear(idle));
      res.on('end', () => clear(idle));
      // Not stream.pipeline: it would destroy `out` with the socket's raw
      // error ("aborted") before we could put ours in its place.
      const broke = (e?: Error) => {
        finish();
        if (out.destroyed) return;
        out.destroy(e instanceof DockyardError ? e : new NetworkError(`${o.label}: ${u.pathname}: the connection broke off (${(e as NodeJS.ErrnoException | undefined)?.code ?? e?.message ?? 'closed early'})`, e));
      };
      res.on('error', broke);
      res.on('close', () => {
        if (!res.complete) broke();
      });
      res.on('end', finish);
      out.on('close', () => {
        if (!res.complete) res.destroy();
      });
      res.pipe(out);
      resolve(makeResponse(res.statusCode ?? 0, req.url, res.headers, out, o.label));
    });
    if (req.body === undefined) cr.end();
    else if (Buffer.isBuffer(req.body)) cr.end(req.body);
    else {
      pipeline(req.body, cr, (e) => {
        if (e) fail(e instanceof DockyardError ? e : new NetworkError(`${o.label}: sending ${u.pathname}: ${(e as Error).message}`, e));
      });
    }
  });
}

function makeResponse(status: number, url: string, headers: http.IncomingHttpHeaders, body: PassThrough, label: string): HttpResponse {
  return {
    status,
    url,
    header(name) {
      const v = headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    body,
    read: (limit, what) => collectBody(body, limit, `${label}: ${what}`),
    discard() {
      if (!body.destroyed) body.destroy();
    },
  };
}

function sameOrigin(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.host === b.host;
}

/**
 * A request, following redirects for GET and HEAD. A redirect to another
 * origin loses the `authorization` header.
 */
export async function request(req: HttpRequest, o: HttpOptions): Promise<HttpResponse> {
  const max = o.maxRedirects ?? defaultMaxRedirects;
  let cur = req;
  for (let hop = 0; ; hop++) {
    const res = await exchange(cur, o);
    const location = res.header('location');
    if (!REDIRECTS.has(res.status) || !location || (cur.method !== 'GET' && cur.method !== 'HEAD')) return res;
    res.discard();
    if (hop >= max) throw new DockyardError('E_REGISTRY', `${o.label}: more than ${max} redirects for ${new URL(req.url).pathname}`);
    const from = new URL(cur.url);
    let to: URL;
    try {
      to = new URL(location, from);
    } catch {
      throw new DockyardError('E_REGISTRY', `${o.label}: redirect to an invalid location "${location.slice(0, 200)}"`);
    }
    const headers = { ...(cur.headers ?? {}) };
    if (!sameOrigin(from, to)) delete headers.authorization;
    cur = { method: cur.method, url: to.toString(), headers };
  }
}
