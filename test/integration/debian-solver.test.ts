/**
 * The package solver agrees with apt: Debian bookworm's indices (main,
 * -updates, -security; InRelease verified with Debian's archive keyring,
 * Packages checked against it) read by pkg/debian, and for a dozen package
 * sets on amd64 and arm64 the resolved set — names and versions — equals
 * what `apt-get install --simulate --no-install-recommends` picks on an
 * empty system from the very same index bytes (test/harness/aptsim.ts).
 * With Essential, apt is given the Essential: yes packages on its command
 * line (on an empty system it would not add them itself).
 *
 * The indices are downloaded once into ~/.cache/dockyard-debian-indices.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadIndex, type LoadedSuite, type Repository } from '../../pkg/debian/archive.js';
import { readKeyring } from '../../pkg/debian/release.js';
import { solve } from '../../pkg/debian/solve.js';
import type { PackageIndex } from '../../pkg/debian/packages.js';
import { aptJudge, type AptJudge } from '../harness/aptsim.js';

const REPOS: Repository[] = [
  { uri: 'http://deb.debian.org/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
  { uri: 'http://deb.debian.org/debian-security', suites: ['bookworm-security'], components: ['main'] },
];

const SETS: { pkgs: string[]; essential?: boolean }[] = [
  { pkgs: ['runc'] },
  { pkgs: ['containerd'] },
  { pkgs: ['docker.io'] },
  { pkgs: ['openssh-server'] },
  { pkgs: ['systemd'] },
  { pkgs: ['iproute2', 'iptables'] },
  { pkgs: ['python3-minimal'] },
  { pkgs: ['curl', 'ca-certificates'] },
  { pkgs: ['busybox-static'] },
  { pkgs: ['e2fsprogs', 'kmod'] },
  { pkgs: ['nftables', 'dnsmasq-base'] },
  { pkgs: ['mutt'] },
  { pkgs: ['default-jre-headless'] },
  { pkgs: ['apache2', 'libapache2-mod-php'] },
  { pkgs: ['gnome-shell'] },
  { pkgs: ['openssh-server'], essential: true },
  { pkgs: ['systemd'], essential: true },
  { pkgs: ['python3-minimal'], essential: true },
  { pkgs: ['docker.io'], essential: true },
];

const ARCHES = ['amd64', 'arm64'] as const;
const loaded = new Map<string, { index: PackageIndex; suites: LoadedSuite[]; apt: AptJudge }>();

beforeAll(async () => {
  const keyring = await readKeyring(await readFile('/usr/share/keyrings/debian-archive-keyring.gpg'), 'debian-archive-keyring.gpg');
  const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dockyard-debian-indices');
  const tmpDir = join(cacheDir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  for (const arch of ARCHES) {
    const { index, suites } = await loadIndex(REPOS, arch, { keyring, cacheDir, tmpDir });
    loaded.set(arch, { index, suites, apt: await aptJudge(arch, suites) });
  }
}, 600_000);

afterAll(async () => {
  for (const l of loaded.values()) await l.apt.close();
});

describe('the solver agrees with apt', () => {
  for (const arch of ARCHES) {
    for (const set of SETS) {
      it(`${arch}: ${set.pkgs.join(' ')}${set.essential ? ' + Essential' : ''}`, async () => {
        const { index, apt } = loaded.get(arch)!;
        const ours = solve(index, set.pkgs.map((name) => ({ name })), { essential: set.essential });
        const essentials = set.essential ? [...index.names()].filter((n) => index.candidate(n)!.essential).sort() : [];
        const theirs = await apt.simulate([...essentials, ...set.pkgs]);
        const mine = new Map(ours.packages.map((p) => [p.name, p.version]));
        const only = (a: Map<string, string>, b: Map<string, string>) => [...a].filter(([n, v]) => b.get(n) !== v).map(([n, v]) => `${n} ${v}`).sort();
        expect({ onlyOurs: only(mine, theirs), onlyApt: only(theirs, mine) }).toEqual({ onlyOurs: [], onlyApt: [] });
        expect(mine.size).toBeGreaterThan(0);
      });
    }
  }
});
