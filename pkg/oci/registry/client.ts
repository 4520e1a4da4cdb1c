/**
 * A registry client on the distribution API (OCI distribution-spec v1) over
 * ./http.ts (timeouts, bounded bodies, redirects that drop credentials when
 * they change origin). Auth: anonymous, Basic, and Bearer tokens obtained
 * from the `WWW-Authenticate` challenge (realm/service/scope, docker token
 * spec). HTTPS unless the host is loopback or listed as insecure.
 *
 * Credentials go only where they were configured for: they are looked up by
 * the host actually contacted (a mirror's own host, never the registry it
 * stands in for), sent in clear only to loopback hosts and hosts named by
 * --insecure-registry, and sent to a token service only when it is the
 * registry's own host or a host of the same site (auth.docker.io for
 * registry-1.docker.io).
 */
import { pipeline, type Readable } from 'node:stream';
import { isIP } from 'node:net';
import { DockyardError } from '../../errors.js';
import { sha256Digest, VerifyDigest } from '../digest.js';
import { manifestAccept } from '../manifest.js';
import { apiHost, isLoopbackHost, parseReference, type RegistryReference } from '../reference.js';
import { MaxDocumentBytes, resolveFrom, type ManifestSource, type RawManifest } from '../source.js';
import type { Descriptor, ImageHandle, Platform } from '../types.js';
import { dockerConfigCredentials, type CredentialLookup, type Credentials } from './credentials.js';
import { defaultTimeouts, NetworkError, request as httpRequest, type HttpResponse, type Timeouts } from './http.js';

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
  /** Connect, response-header and body-idle timeouts of every request. */
  timeouts?: Timeouts;
  signal?: AbortSignal;
}

type ReqBody = Buffer | (() => Readable);

export const defaultRegistryOptions = { attempts: 4, backoffMs: 250 } as const;

/** Largest token-service answer and error body read. */
const MaxTokenBytes = 1 << 20;
const MaxErrorBytes = 64 << 10;

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

/**
 * Whether a token service at `realmHost` belongs to the registry at
 * `registryHost` (host names, no ports): the same host, a host under it, or
 * a host under its parent domain (registry-1.docker.io → auth.docker.io;
 * registry.gitlab.com → gitlab.com), unless that parent is a public suffix
 * (a two-letter country code under a short second level: co.uk, com.au).
 * IP addresses match only themselves.
 */
export function sameSite(registryHost: string, realmHost: string): boolean {
  const a = registryHost.toLowerCase().replace(/^\[|\]$/g, '');
  const b = realmHost.toLowerCase().replace(/^\[|\]$/g, '');
  if (a === b) return true;
  if (isIP(a) || isIP(b)) return false;
  if (b.endsWith(`.${a}`)) return true;
  const labels = a.split('.');
  if (labels.length < 3) return false;
  const parent = labels.slice(1);
  if (parent.length === 2 && parent[1].length === 2 && parent[0].length <= 3) return false;
  const p = parent.join('.');
  return b === p || b.endsWith(`.${p}`);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((res, rej) => {
    if (signal?.aborted) return rej(new DockyardError('E_INTERRUPTED', 'interrupted'));
    const onAbort = () => {
      clearTimeout(t);
      rej(new DockyardError('E_INTERRUPTED', 'interrupted'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      res();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

function basic(c: Credentials): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}

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
    const plain = isLoopbackHost(host) || this.insecure(domain) || this.insecure(host);
    return `${plain ? 'http' : 'https'}://${host}`;
  }

  private insecure(host: string): boolean {
    return (this.opts.insecureRegistries ?? []).includes(host);
  }

  /** Credentials may be sent to `u`: over HTTPS, or in clear to loopback or a host named insecure. */
  private mayCarryCredentials(u: URL): boolean {
    return u.protocol === 'https:' || isLoopbackHost(u.host) || this.insecure(u.host) || this.insecure(u.hostname);
  }

  /** The key credentials are looked up under: the registry's name, or a mirror's own host. */
  private credentialKey(domain: string): string {
    return this.opts.mirrors?.[domain] ? new URL(this.baseUrl(domain)).host : domain;
  }

  private async send(url: string, method: string, headers: Record<string, string>, body: ReqBody | undefined, what: string, domain: string): Promise<HttpResponse> {
    // A streamed body cannot be sent twice: no retries for it.
    const retryable = typeof body !== 'function';
    const attempts = retryable ? (this.opts.attempts ?? defaultRegistryOptions.attempts) : 1;
    const backoff = this.opts.backoffMs ?? defaultRegistryOptions.backoffMs;
    const label = `registry ${domain}`;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep(backoff * 2 ** (i - 1), this.opts.signal);
      try {
        const res = await httpRequest(
          { method, url, headers, body: typeof body === 'function' ? body() : body },
          { timeouts: this.opts.timeouts ?? defaultTimeouts, signal: this.opts.signal, label },
        );
        if (res.status >= 500 && i + 1 < attempts) {
          res.discard();
          last = new Error(`HTTP ${res.status}`);
          continue;
        }
        return res;
      } catch (e) {
        if (!(e instanceof NetworkError)) throw e;
        last = e;
      }
    }
    const why = last instanceof NetworkError ? last.message.replace(`${label}: `, '') : (last as Error)?.message ?? String(last);
    throw new DockyardError('E_NETWORK', `${label}: ${what} failed after ${attempts} attempts (${why})`, { cause: last });
  }

  private async credentialsFor(domain: string): Promise<Credentials | undefined> {
    return this.creds(this.credentialKey(domain));
  }

  private async authorize(domain: string, scope: string, challenge: Challenge, registryUrl: URL): Promise<string> {
    const creds = await this.credentialsFor(domain);
    if (challenge.scheme === 'basic') {
      if (!creds) throw new DockyardError('E_AUTH', `registry ${domain} requires credentials (docker login ${domain})`);
      if (!this.mayCarryCredentials(registryUrl)) {
        throw new DockyardError('E_AUTH', `registry ${domain} asks for a password over plain HTTP (${registryUrl.host}); refused: name it with --insecure-registry to allow that`);
      }
      return basic(creds);
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) {
      throw new DockyardError('E_AUTH', `registry ${domain} asks for unsupported authentication "${challenge.scheme}"`);
    }
    let u: URL;
    try {
      u = new URL(challenge.params.realm);
    } catch {
      throw new DockyardError('E_AUTH', `registry ${domain}: token realm "${challenge.params.realm.slice(0, 200)}" is not a URL`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new DockyardError('E_AUTH', `registry ${domain}: token realm ${u.protocol} is not http or https`);
    if (challenge.params.service) u.searchParams.set('service', challenge.params.service);
    u.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    // The registry names the token service; our password goes there only if it is the registry's own site, over a safe channel.
    const sendCreds = creds !== undefined && sameSite(registryUrl.hostname, u.hostname) && this.mayCarryCredentials(u);
    if (creds && sendCreds) headers.authorization = basic(creds);
    const res = await this.send(u.toString(), 'GET', headers, undefined, 'token request', domain);
    if (res.status === 401 || res.status === 403) {
      res.discard();
      if (creds && !sendCreds) {
        throw new DockyardError(
          'E_AUTH',
          `registry ${domain}: its token service ${u.host} wants credentials, but ${sameSite(registryUrl.hostname, u.hostname) ? 'it is plain HTTP' : `it is not ${registryUrl.hostname}`}; your credentials for ${this.credentialKey(domain)} were not sent there`,
        );
      }
      throw new DockyardError('E_AUTH', `registry ${domain} refused ${creds ? 'our credentials' : 'anonymous access'} (token service ${u.host})`);
    }
    if (res.status < 200 || res.status > 299) {
      res.discard();
      throw new DockyardError('E_AUTH', `registry ${domain}: token service ${u.host} answered HTTP ${res.status}`);
    }
    let j: { token?: unknown; access_token?: unknown };
    try {
      j = JSON.parse((await res.read(MaxTokenBytes, 'token answer')).toString('utf8'));
    } catch (e) {
      if (e instanceof DockyardError) throw e;
      throw new DockyardError('E_AUTH', `registry ${domain}: token service ${u.host} answered something that is not JSON`, { cause: e });
    }
    const tok = typeof j?.token === 'string' && j.token ? j.token : typeof j?.access_token === 'string' ? j.access_token : undefined;
    if (!tok) throw new DockyardError('E_AUTH', `registry ${domain}: token service ${u.host} sent no token`);
    if (/[\r\n]/.test(tok)) throw new DockyardError('E_AUTH', `registry ${domain}: token service ${u.host} sent a token with a line break`);
    return `Bearer ${tok}`;
  }

  /**
   * One API request with auth. `body` is bytes, or a factory of a stream
   * (sent once: no retry).
   */
  async request(
    r: RegistryReference,
    method: string,
    pathOrUrl: string,
    opts: { headers?: Record<string, string>; body?: ReqBody; push?: boolean; what: string },
  ): Promise<HttpResponse> {
    const scope = `repository:${r.path}:${opts.push ? 'pull,push' : 'pull'}`;
    const key = `${r.domain}|${scope}`;
    const url = /^https?:/.test(pathOrUrl) ? pathOrUrl : `${this.baseUrl(r.domain)}${pathOrUrl}`;
    const registryUrl = new URL(this.baseUrl(r.domain));
    const send = (authz: string | undefined) => {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      // An authorization learnt for this registry is only ever sent to it.
      if (authz && new URL(url).host === registryUrl.host) headers.authorization = authz;
      return this.send(url, method, headers, opts.body, opts.what, r.domain);
    };
    let res = await send(this.auth.get(key));
    if (res.status === 401) {
      const ch = parseChallenge(res.header('www-authenticate') ?? '');
      res.discard();
      if (!ch) throw new DockyardError('E_AUTH', `registry ${r.domain} refused access to ${r.path} without saying how to authenticate`);
      const authz = await this.authorize(r.domain, scope, ch, registryUrl);
      this.auth.set(key, authz);
      res = await send(authz);
      if (res.status === 401 || res.status === 403) {
        res.discard();
        // Docker Hub answers 401 for a repository that does not exist, too.
        const who = (await this.credentialsFor(r.domain)) ? 'our credentials' : `anonymous access (does ${r.path} exist? else docker login ${r.domain})`;
        throw new DockyardError('E_AUTH', `registry ${r.domain} refused ${who} for ${r.path}`);
      }
    }
    if (res.status === 403) {
      res.discard();
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
      res.discard();
      throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${r.raw} not found${digest ? ` (manifest ${digest})` : ''} on ${r.domain}`);
    }
    if (res.status < 200 || res.status > 299) {
      res.discard();
      throw new DockyardError('E_REGISTRY', `registry ${r.domain}: manifest ${want} of ${r.path}: HTTP ${res.status}`);
    }
    const bytes = await res.read(MaxDocumentBytes, `manifest ${want} of ${r.path}`);
    const got = sha256Digest(bytes);
    const named = digest ?? r.digest;
    if (named && got !== named) throw new DockyardError('E_DIGEST_MISMATCH', `${r.raw}: manifest hashes to ${got}, expected ${named}`);
    const mediaType = (res.header('content-type') ?? '').split(';')[0].trim();
    return { bytes, digest: got, mediaType };
  }

  /** The blob's bytes as they arrive, failing with E_DIGEST_MISMATCH at the end if they are not `desc`. */
  async fetchBlob(ref: string, desc: Descriptor): Promise<Readable> {
    const r = this.reg(ref);
    const res = await this.request(r, 'GET', `/v2/${r.path}/blobs/${desc.digest}`, { what: `blob ${desc.digest}` });
    if (res.status === 404) {
      res.discard();
      throw new DockyardError('E_IMAGE_NOT_FOUND', `image ${r.raw}: blob ${desc.digest} not found on ${r.domain}`);
    }
    if (res.status < 200 || res.status > 299) {
      res.discard();
      throw new DockyardError('E_REGISTRY', `registry ${r.domain}: blob ${desc.digest} of ${r.path}: HTTP ${res.status}`);
    }
    const v = new VerifyDigest(desc.digest, desc.size, `${r.raw} blob ${desc.digest}`);
    // Errors of either side end both: the body's reach the reader through v, v's (too many bytes) close the connection.
    pipeline(res.body, v, (e) => {
      if (e) res.discard();
    });
    return v;
  }

  async resolve(ref: string, platform: Platform): Promise<ImageHandle> {
    return (await resolveFrom(this, ref, this.reg(ref).canonical, platform)).handle;
  }

  async hasBlob(ref: string, digest: string): Promise<boolean> {
    const r = this.reg(ref);
    const res = await this.request(r, 'HEAD', `/v2/${r.path}/blobs/${digest}`, { push: true, what: `blob ${digest}` });
    res.discard();
    return res.status >= 200 && res.status <= 299;
  }

  /** Monolithic upload (POST then PUT ?digest=); `open` gives the bytes afresh. */
  async pushBlob(ref: string, desc: Descriptor, open: () => Readable): Promise<void> {
    const r = this.reg(ref);
    if (await this.hasBlob(ref, desc.digest)) return;
    const start = await this.request(r, 'POST', `/v2/${r.path}/blobs/uploads/`, { push: true, what: 'upload start', headers: { 'content-length': '0' } });
    start.discard();
    const loc = start.header('location');
    if (start.status !== 202 || !loc) throw new DockyardError('E_REGISTRY', `registry ${r.domain}: upload to ${r.path} not accepted (HTTP ${start.status})`);
    let u: URL;
    try {
      u = new URL(loc, this.baseUrl(r.domain) + '/');
    } catch {
      throw new DockyardError('E_REGISTRY', `registry ${r.domain}: upload location "${loc.slice(0, 200)}" is not a URL`);
    }
    u.searchParams.set('digest', desc.digest);
    const res = await this.request(r, 'PUT', u.toString(), {
      push: true,
      what: `upload ${desc.digest}`,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: open,
    });
    res.discard();
    if (res.status !== 201) throw new DockyardError('E_REGISTRY', `registry ${r.domain}: upload of ${desc.digest} to ${r.path} failed (HTTP ${res.status})`);
  }

  /** PUT a manifest or index under `tagOrDigest`. */
  async pushManifest(ref: string, tagOrDigest: string, bytes: Buffer, mediaType: string): Promise<string> {
    const r = this.reg(ref);
    const res = await this.request(r, 'PUT', `/v2/${r.path}/manifests/${tagOrDigest}`, {
      push: true,
      what: `manifest ${tagOrDigest}`,
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: bytes,
    });
    const text = (await res.read(MaxErrorBytes, 'answer').catch(() => Buffer.alloc(0))).toString('utf8');
    if (res.status !== 201) throw new DockyardError('E_REGISTRY', `registry ${r.domain}: manifest ${tagOrDigest} for ${r.path} refused (HTTP ${res.status}: ${text.slice(0, 200)})`);
    return sha256Digest(bytes);
  }
}
