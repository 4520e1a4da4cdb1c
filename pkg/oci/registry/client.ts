/**
 * A registry client on the distribution API (OCI distribution-spec v1) over
 * Node's global fetch. Auth: anonymous, Basic, and Bearer tokens obtained
 * from the `WWW-Authenticate` challenge (realm/service/scope, docker token
 * spec). HTTPS unless the host is loopback or listed as insecure.
 */
import { Readable } from 'node:stream';
import { DockyardError } from '../../errors.js';
import { sha256Digest, VerifyDigest } from '../digest.js';
import { manifestAccept } from '../manifest.js';
import { apiHost, isLoopbackHost, parseReference, type RegistryReference } from '../reference.js';
import { MaxDocumentBytes, resolveFrom, type ManifestSource, type RawManifest } from '../source.js';
import type { Descriptor, ImageHandle, Platform } from '../types.js';
import { dockerConfigCredentials, type CredentialLookup, type Credentials } from './credentials.js';

export interface RegistryOptions {
  /** Hosts (host[:port]) reached over plain HTTP. */
  insecureRegistries?: string[];
  /** Registry host → base URL to use instead (e.g. `docker.io` → `http://127.0.0.1:5001`). */
  mirrors?: Record<string, string>;
  /** Defaults to docker's config.json. */
  credentials?: CredentialLookup;
  /** Attempts for a request failing with 5xx or a connection error. */
  attempts?: number;
  backoffMs?: number;
  signal?: AbortSignal;
}

type ReqBody = NonNullable<RequestInit['body']>;

export const defaultRegistryOptions = { attempts: 4, backoffMs: 250 } as const;

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** `Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-param list). */
export function parseChallenge(h: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(h);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]))) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme: m[1].toLowerCase(), params };
}

function isNetworkError(e: unknown): boolean {
  if (e instanceof DockyardError) return false;
  if ((e as Error)?.name === 'AbortError') return false;
  return true;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      rej(new DockyardError('E_INTERRUPTED', 'interrupted'));
    });
  });

export class RegistryClient implements ManifestSource {
  private readonly opts: RegistryOptions;
  private readonly creds: CredentialLookup;
  /** Authorization header per `domain|scope`, learnt from challenges. */
  private readonly auth = new Map<string, string>();

  constructor(opts: RegistryOptions = {}) {
    this.opts = opts;
    this.creds = opts.credentials ?? dockerConfigCredentials();
  }

  baseUrl(domain: string): string {
    const mirror = this.opts.mirrors?.[domain];
    if (mirror) return mirror.replace(/\/+$/, '');
    const host = apiHost(domain);
    const plain = isLoopbackHost(host) || (this.opts.insecureRegistries ?? []).includes(domain) || (this.opts.insecureRegistries ?? []).includes(host);
    return `${plain ? 'http' : 'https'}://${host}`;
  }

  private async fetchRetrying(url: string, init: RequestInit, what: string, domain: string, retryable: boolean): Promise<Response> {
    const attempts = retryable ? (this.opts.attempts ?? defaultRegistryOptions.attempts) : 1;
    const backoff = this.opts.backoffMs ?? defaultRegistryOptions.backoffMs;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(backoff * 2 ** (i - 1), this.opts.signal);
      try {
        const res = await fetch(url, { ...init, redirect: 'follow', signal: this.opts.signal });
        if (res.status >= 500 && i + 1 < attempts) {
          await res.body?.cancel();
          last = new Error(`HTTP ${res.status}`);
          continue;
        }
        return res;
      } catch (e) {
        if ((e as Error)?.name === 'AbortError' || this.opts.signal?.aborted) throw new DockyardError('E_INTERRUPTED', 'interrupted', { cause: e });
        if (!isNetworkError(e)) throw e;
        last = e;
      }
    }
    const cause = (last as { cause?: { code?: string; message?: string } })?.cause;
    const why = cause?.code ?? cause?.message ?? (last as Error)?.message ?? String(last);
    throw new DockyardError('E_NETWORK', `registry ${domain}: ${what} failed after ${attempts} attempts (${why})`, { cause: last });
  }

  private async credentialsFor(domain: string): Promise<Credentials | undefined> {
    return this.creds(domain);
  }

  private async authorize(domain: string, scope: string, challenge: Challenge): Promise<string> {
    const creds = await this.credentialsFor(domain);
    if (challenge.scheme === 'basic') {
      if (!creds) throw new DockyardError('E_AUTH', `registry ${domain} requires credentials (docker login ${domain})`);
      return 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) {
      throw new DockyardError('E_AUTH', `registry ${domain} asks for unsupported authentication "${challenge.scheme}"`);
    }
    const u = new URL(challenge.params.realm);
    if (challenge.params.service) u.searchParams.set('service', challenge.params.service);
    u.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    if (creds) headers.authorization = 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    const res = await this.fetchRetrying(u.toString(), { headers }, 'token request', domain, true);
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new DockyardError('E_AUTH', `registry ${domain} refused ${creds ? 'our credentials' : 'anonymous access'} (token service ${u.host})`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new DockyardError('E_AUTH', `registry ${domain}: token service ${u.host} answered HTTP ${res.status}`);
    }
    const j = (await res.json()) as { token?: string; access_token?: string };
    const tok = j.token ?? j.access_token;
    if (!tok) throw new DockyardError('E_AUTH', `registry ${domain}: token service ${u.host} sent no token`);
    return `Bearer ${tok}`;
  }

  /**
   * One API request with auth. `body` is a factory so a retried request
   * (after a 401 challenge) can send it again.
   */
  async request(
    r: RegistryReference,
    method: string,
    pathOrUrl: string,
    opts: { headers?: Record<string, string>; body?: () => ReqBody | undefined; push?: boolean; what: string },
  ): Promise<Response> {
    const scope = `repository:${r.path}:${opts.push ? 'pull,push' : 'pull'}`;
    const key = `${r.domain}|${scope}`;
    const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${this.baseUrl(r.domain)}${pathOrUrl}`;
    const send = (authz: string | undefined) => {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (authz) headers.authorization = authz;
      const body = opts.body?.();
      const init: RequestInit & { duplex?: 'half' } = { method, headers, body };
      if (body instanceof ReadableStream) init.duplex = 'half';
      // A streamed body cannot be sent twice: no retries for it.
      return this.fetchRetrying(url, init, opts.what, r.domain, !(body instanceof ReadableStream));
    };
    let res = await send(this.auth.get(key));
    if (res.status === 401) {
      const ch = parseChallenge(res.headers.get('www-authenticate') ?? '');
      await res.body?.cancel();
      if (!ch) throw new DockyardError('E_AUTH', `registry ${r.domain} refused access to ${r.path} without saying how to authenticate`);
      const authz = await this.authorize(r.domain, scope, ch);
      this.auth.set(key, authz);
      res = await send(authz);
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel();
        // Docker Hub answers 401 for a repository that does not exist, too.
        const who = (await this.credentialsFor(r.domain)) ? 'our credentials' : `anonymous access (does ${r.path} exist? else docker login ${r.domain})`;
        throw new DockyardError('E_AUTH', `registry ${r.domain} refused ${who} for ${r.path}`);
      }
    }
    if (res.status === 403) {
      await res.body?.cancel();
      throw new DockyardError('E_AUTH', `registry ${r.domain} denied access to ${r.path}`);
    }
    return res;
  }

  private reg(ref: string): RegistryReference {
    const r = parseReference(ref);
    if (r.transport !== 'registry') throw new DockyardError('E_IMAGE_REF', `${ref} is not a registry reference`);
    return r;
  }

  async getManifest(ref: string, digest?: string): Promise<RawManifest> {
    const r = this.reg(ref);
    const want = digest ?? r.digest ?? r.tag!;
    const res = await this.request(r, 'GET', `/v2/${r.path}/manifests/${want}`, { headers: { accept: manifestAccept.join(', ') }, what: `manifest ${want}` });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${r.raw} not found${digest ? ` (manifest ${digest})` : ''} on ${r.domain}`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new DockyardError('E_REGISTRY', `registry ${r.domain}: manifest ${want} of ${r.path}: HTTP ${res.status}`);
    }
    const len = Number(res.headers.get('content-length') ?? 0);
    if (len > MaxDocumentBytes) throw new DockyardError('E_REGISTRY', `registry ${r.domain}: manifest of ${r.path} is ${len} bytes, too large`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const got = sha256Digest(bytes);
    const named = digest ?? r.digest;
    if (named && got !== named) throw new DockyardError('E_DIGEST_MISMATCH', `${r.raw}: manifest hashes to ${got}, expected ${named}`);
    const mediaType = (res.headers.get('content-type') ?? '').split(';')[0].trim();
    return { bytes, digest: got, mediaType };
  }

  /** The blob's bytes as they arrive, failing with E_DIGEST_MISMATCH at the end if they are not `desc`. */
  async fetchBlob(ref: string, desc: Descriptor): Promise<Readable> {
    const r = this.reg(ref);
    const res = await this.request(r, 'GET', `/v2/${r.path}/blobs/${desc.digest}`, { what: `blob ${desc.digest}` });
    if (res.status === 404) {
      await res.body?.cancel();
      throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${r.raw}: blob ${desc.digest} not found on ${r.domain}`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new DockyardError('E_REGISTRY', `registry ${r.domain}: blob ${desc.digest} of ${r.path}: HTTP ${res.status}`);
    }
    const src = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    const v = new VerifyDigest(desc.digest, desc.size, `${r.raw} blob ${desc.digest}`);
    src.on('error', (e) =>
      v.destroy(e instanceof DockyardError ? e : new DockyardError('E_NETWORK', `registry ${r.domain}: download of ${desc.digest} broke off (${(e as Error).message})`, { cause: e })),
    );
    return src.pipe(v);
  }

  async resolve(ref: string, platform: Platform): Promise<ImageHandle> {
    return (await resolveFrom(this, ref, this.reg(ref).canonical, platform)).handle;
  }

  async hasBlob(ref: string, digest: string): Promise<boolean> {
    const r = this.reg(ref);
    const res = await this.request(r, 'HEAD', `/v2/${r.path}/blobs/${digest}`, { push: true, what: `blob ${digest}` });
    await res.body?.cancel();
    return res.ok;
  }

  /** Monolithic upload (POST then PUT ?digest=); `open` gives the bytes afresh. */
  async pushBlob(ref: string, desc: Descriptor, open: () => Readable): Promise<void> {
    const r = this.reg(ref);
    if (await this.hasBlob(ref, desc.digest)) return;
    const start = await this.request(r, 'POST', `/v2/${r.path}/blobs/uploads/`, { push: true, what: 'upload start' });
    await start.body?.cancel();
    const loc = start.headers.get('location');
    if (start.status !== 202 || !loc) throw new DockyardError('E_REGISTRY', `registry ${r.domain}: upload to ${r.path} not accepted (HTTP ${start.status})`);
    const u = new URL(loc, this.baseUrl(r.domain) + '/');
    u.searchParams.set('digest', desc.digest);
    const res = await this.request(r, 'PUT', u.toString(), {
      push: true,
      what: `upload ${desc.digest}`,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: () => Readable.toWeb(open()) as unknown as ReqBody,
    });
    await res.body?.cancel();
    if (res.status !== 201) throw new DockyardError('E_REGISTRY', `registry ${r.domain}: upload of ${desc.digest} to ${r.path} failed (HTTP ${res.status})`);
  }

  /** PUT a manifest or index under `tagOrDigest`. */
  async pushManifest(ref: string, tagOrDigest: string, bytes: Buffer, mediaType: string): Promise<string> {
    const r = this.reg(ref);
    const res = await this.request(r, 'PUT', `/v2/${r.path}/manifests/${tagOrDigest}`, {
      push: true,
      what: `manifest ${tagOrDigest}`,
      headers: { 'content-type': mediaType },
      body: () => bytes,
    });
    const text = await res.text();
    if (res.status !== 201) throw new DockyardError('E_REGISTRY', `registry ${r.domain}: manifest ${tagOrDigest} for ${r.path} refused (HTTP ${res.status}: ${text.slice(0, 200)})`);
    return sha256Digest(bytes);
  }
}
