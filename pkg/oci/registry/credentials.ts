/**
 * Registry credentials the way the docker CLI stores them in
 * `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`):
 * `auths.<host>.auth` = base64("user:password"), or a credential helper
 * (`credHelpers.<host>`, else `credsStore`) run as `docker-credential-<name> get`
 * with the server on stdin, answering `{"Username","Secret"}`.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DockyardError } from '../../errors.js';
import { isMissing, readRegular } from '../../fsutil.js';
import { MaxDockerConfigBytes } from '../../limits.js';

export interface Credentials {
  username: string;
  password: string;
}

export type CredentialLookup = (domain: string) => Promise<Credentials | undefined>;

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** Keys docker uses for a host: the host itself, URL forms, and Hub's legacy key. */
function keysFor(domain: string): string[] {
  const ks = [domain, `https://${domain}`, `http://${domain}`, `https://${domain}/v1/`, `https://${domain}/v2/`];
  if (domain === 'docker.io') ks.push('https://index.docker.io/v1/', 'index.docker.io', 'registry-1.docker.io');
  return ks;
}

export function dockerConfigCredentials(path = dockerConfigPath()): CredentialLookup {
  let loaded: Promise<DockerConfig> | undefined;
  // Absent or unreadable: no credentials. A device or a huge file in its place is refused (readRegular), not read.
  const load = () =>
    (loaded ??= readRegular(path, MaxDockerConfigBytes, path, 'E_AUTH').then(
      (t) => {
        try {
          const c = JSON.parse(t.toString('utf8')) as DockerConfig;
          return c && typeof c === 'object' ? c : {};
        } catch (e) {
          throw new DockyardError('E_AUTH', `${path} is not JSON`, { cause: e });
        }
      },
      (e) => {
        if (isMissing(e)) return {} as DockerConfig;
        throw e;
      },
    ));
  return async (domain) => {
    const cfg = await load();
    const keys = keysFor(domain);
    const helper = keys.map((k) => cfg.credHelpers?.[k]).find((h) => h) ?? cfg.credsStore;
    for (const k of keys) {
      const a = cfg.auths?.[k];
      if (!a) continue;
      if (a.auth) {
        const dec = Buffer.from(a.auth, 'base64').toString('utf8');
        const i = dec.indexOf(':');
        if (i > 0) return { username: dec.slice(0, i), password: dec.slice(i + 1) };
      }
      if (a.username && a.password) return { username: a.username, password: a.password };
    }
    if (helper) return runHelper(helper, domain === 'docker.io' ? 'https://index.docker.io/v1/' : domain);
    return undefined;
  };
}

async function runHelper(name: string, server: string): Promise<Credentials | undefined> {
  const prog = `docker-credential-${name}`;
  let out: string;
  try {
    // execa is loaded only here: most runs use no helper, and its import is a tenth of a second.
    const { execa } = await import('execa');
    const r = await execa(prog, ['get'], { input: server, reject: false, timeout: 30_000, maxBuffer: 1 << 20 });
    if (r.exitCode !== 0) {
      // Helpers answer "credentials not found in native keychain" for unknown servers.
      if (/not found/i.test(String(r.stdout) + String(r.stderr))) return undefined;
      throw new Error(String(r.stderr || r.stdout).trim().split('\n')[0]);
    }
    out = String(r.stdout);
  } catch (e) {
    throw new DockyardError('E_AUTH', `credential helper ${prog} failed for ${server}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const j = JSON.parse(out) as { Username?: string; Secret?: string };
    if (!j.Secret) return undefined;
    return { username: j.Username ?? '', password: j.Secret };
  } catch (e) {
    throw new DockyardError('E_AUTH', `credential helper ${prog} answered something that is not JSON`, { cause: e });
  }
}
