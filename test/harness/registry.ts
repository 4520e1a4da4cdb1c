/**
 * A real registry for integration tests: Debian's `docker-registry`
 * (distribution 2.8) on 127.0.0.1, filesystem storage in a temp dir.
 * Variants: anonymous, htpasswd Basic auth, and token auth with a small
 * token issuer (RS256 JWTs, x5c header carrying a self-signed cert made with
 * openssl that the registry trusts through `rootcertbundle`).
 */
import { execa, type ResultPromise } from 'execa';
import { createServer as createNetServer } from 'node:net';
import { createServer, type Server } from 'node:http';
import { createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

export interface RegistryStartOptions {
  auth?: 'none' | 'htpasswd' | 'token';
  /** user → password, for htpasswd and token. */
  users?: Record<string, string>;
  /** Reuse a storage directory (e.g. to restart after a kill). */
  storage?: string;
  port?: number;
}

export interface TestRegistry {
  url: string;
  /** host:port, as used in references. */
  host: string;
  port: number;
  storage: string;
  pid: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createNetServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

async function startTokenIssuer(dir: string, users: Record<string, string>, service: string, issuer: string): Promise<{ realm: string; certPath: string; server: Server }> {
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=dockyard-test-token']);
  const key = createPrivateKey(await readFile(keyPath));
  const der = new X509Certificate(await readFile(certPath)).raw;
  const server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const h = req.headers.authorization ?? '';
    const m = /^Basic (.+)$/.exec(h);
    const [user, pass] = m ? Buffer.from(m[1], 'base64').toString().split(/:(.*)/s) : [];
    if (!user || users[user] === undefined || users[user] !== pass) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const access = u.searchParams.getAll('scope').flatMap((s) => {
      const [type, name, actions] = [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1, s.lastIndexOf(':')), s.slice(s.lastIndexOf(':') + 1)];
      return type ? [{ type, name, actions: actions.split(',') }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] };
    const claims = { iss: issuer, sub: user, aud: service, exp: now + 600, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: 600 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return { realm: `http://127.0.0.1:${port}/token`, certPath, server };
}

export async function startRegistry(opts: RegistryStartOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'dy-registry-'));
  const storage = opts.storage ?? join(dir, 'storage');
  await mkdir(storage, { recursive: true });
  const port = opts.port ?? (await freePort());
  const users = opts.users ?? { tester: 'secret' };
  let authYaml = '';
  let tokenServer: Server | undefined;
  if (opts.auth === 'htpasswd') {
    const lines: string[] = [];
    for (const [u, p] of Object.entries(users)) lines.push((await execa('htpasswd', ['-Bbn', u, p])).stdout.trim());
    await writeFile(join(dir, 'htpasswd'), lines.join('\n') + '\n');
    authYaml = `auth:\n  htpasswd:\n    realm: dockyard-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (opts.auth === 'token') {
    const t = await startTokenIssuer(dir, users, 'dockyard-test-registry', 'dockyard-test-issuer');
    tokenServer = t.server;
    authYaml = `auth:\n  token:\n    realm: ${t.realm}\n    service: dockyard-test-registry\n    issuer: dockyard-test-issuer\n    rootcertbundle: ${t.certPath}\n`;
  }
  const config = `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:${port}
${authYaml}`;
  const cfgPath = join(dir, 'config.yml');
  await writeFile(cfgPath, config);
  const proc: ResultPromise = execa('docker-registry', ['serve', cfgPath], { reject: false, stdio: ['ignore', 'pipe', 'pipe'], buffer: true });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null && proc.exitCode !== undefined) {
      const r = await proc;
      throw new Error(`docker-registry exited: ${String(r.stderr).slice(0, 500)}`);
    }
    try {
      const res = await fetch(`${url}/v2/`);
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) break;
    } catch {
      /* not yet listening */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error('docker-registry did not start in 15 s');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = proc.pid!;
  let stopped = false;
  return {
    url,
    host: `127.0.0.1:${port}`,
    port,
    storage,
    pid,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await proc;
      await new Promise<void>((r) => (tokenServer ? tokenServer.close(() => r()) : r()));
      await rm(join(dir, 'htpasswd'), { force: true });
    },
  };
}
