/**
 * apt as the judge of the package solver: `apt-get install --simulate
 * --no-install-recommends` on a throwaway, empty system whose lists are the
 * very index bytes dockyard read (pkg/debian/archive.ts), for one
 * architecture as the native one. Its own configuration (APT_CONFIG) keeps
 * the host's sources, preferences, apt.conf.d and dpkg status out.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { LoadedSuite } from '../../pkg/debian/archive.js';

/** apt's list file name of a URL (apt-pkg/acquire-item.cc URItoFileName: scheme dropped, '/' → '_'). */
function listName(url: string): string {
  return url.replace(/^[a-z]+:\/\//, '').replace(/\/+$/, '').replace(/\//g, '_');
}

export interface AptJudge {
  /** name → version apt would install. Throws with apt's stderr if apt refuses. */
  simulate(packages: string[]): Promise<Map<string, string>>;
  /** `apt-get download NAME=VERSION...` into `dir` (made writable for apt's _apt user). */
  download(pkgs: { name: string; version: string }[], dir: string): Promise<void>;
  /** `apt-cache show NAME=VERSION`'s Filename, Size and SHA256. */
  record(name: string, version: string): Promise<{ filename: string; size: number; sha256: string }>;
  close(): Promise<void>;
}

export async function aptJudge(arch: string, suites: LoadedSuite[]): Promise<AptJudge> {
  const root = await mkdtemp(join(tmpdir(), 'dockyard-apt-'));
  for (const d of ['etc/apt.conf.d', 'etc/sources.list.d', 'etc/preferences.d', 'lists/partial', 'cache/archives/partial', 'state']) await mkdir(join(root, d), { recursive: true });
  await writeFile(join(root, 'status'), '');
  const sources: string[] = [];
  for (const s of suites) {
    const base = `${s.uri.replace(/\/+$/, '')}/dists/${s.suite}`;
    await writeFile(join(root, 'lists', listName(`${base}/InRelease`)), s.inRelease);
    for (const [comp, bytes] of s.packages) await writeFile(join(root, 'lists', listName(`${base}/${comp}/binary-${arch}/Packages`)), bytes);
    sources.push(`Types: deb\nURIs: ${s.uri}\nSuites: ${s.suite}\nComponents: ${[...s.packages.keys()].join(' ')}\nArchitectures: ${arch}\nTrusted: yes\n`);
  }
  await writeFile(join(root, 'etc/sources.list.d/judge.sources'), sources.join('\n'));
  const conf = [
    `Dir::Etc "${root}/etc";`,
    `Dir::Etc::Parts "${root}/etc/apt.conf.d";`,
    'Dir::Etc::SourceList "/dev/null";',
    `Dir::Etc::SourceParts "${root}/etc/sources.list.d";`,
    'Dir::Etc::Preferences "/dev/null";',
    `Dir::Etc::PreferencesParts "${root}/etc/preferences.d";`,
    `Dir::State "${root}/state";`,
    `Dir::State::Lists "${root}/lists";`,
    `Dir::State::status "${root}/status";`,
    `Dir::Cache "${root}/cache";`,
    `APT::Architecture "${arch}";`,
    `APT::Architectures { "${arch}"; };`,
    'APT::Install-Recommends "false";',
    'APT::Install-Suggests "false";',
    'Debug::NoLocking "true";',
    'Acquire::Languages "none";',
    '',
  ].join('\n');
  await writeFile(join(root, 'apt.conf'), conf);
  return {
    async simulate(packages) {
      const r = await execa('apt-get', ['-s', '-q', 'install', ...packages], { env: { APT_CONFIG: join(root, 'apt.conf'), LC_ALL: 'C' }, reject: false });
      if (r.exitCode !== 0) throw new Error(`apt-get -s install ${packages.join(' ')} failed: ${r.stderr || r.stdout}`);
      const out = new Map<string, string>();
      for (const line of r.stdout.split('\n')) {
        const m = /^Inst (\S+) \((\S+) /.exec(line);
        if (m) out.set(m[1].replace(/:[a-z0-9]+$/, ''), m[2]);
      }
      return out;
    },
    async download(pkgs, dir) {
      await execa('chmod', ['0777', dir]);
      await execa('apt-get', ['-q', 'download', ...pkgs.map((p) => `${p.name}=${p.version}`)], { cwd: dir, env: { APT_CONFIG: join(root, 'apt.conf'), LC_ALL: 'C' } });
    },
    async record(name, version) {
      const r = await execa('apt-cache', ['show', `${name}=${version}`], { env: { APT_CONFIG: join(root, 'apt.conf'), LC_ALL: 'C' } });
      const field = (f: string) => new RegExp(`^${f}: (.*)$`, 'm').exec(r.stdout)?.[1] ?? '';
      return { filename: field('Filename'), size: Number(field('Size')), sha256: field('SHA256') };
    },
    close: () => rm(root, { recursive: true, force: true }),
  };
}
