/**
 * NAME.lock.json: what an image definition resolved to — every package of
 * every architecture with its version, file and SHA256, and the signed
 * InRelease each suite was read from. `pkg build` installs exactly this
 * (each .deb checked against it) until `pkg lock --update`; a definition
 * whose resolution inputs changed (repositories, packages, exclude,
 * essential, archs) is resolved again.
 *
 * Deterministic: packages sorted by name, fixed key order, two-space JSON,
 * a final newline; no time of resolution (the suites' own Date fields say
 * how recent the archive was).
 */
import { createHash } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockyardError } from '../errors.js';
import { loadIndex, type FetchOptions } from '../debian/archive.js';
import { readKeyring, type Keyring } from '../debian/release.js';
import { solve } from '../debian/solve.js';
import { checkOutputPath, fsError, isMissing, outputTemp, readRegular } from '../fsutil.js';
import { packagesFor, type Arch, type ImageDefinition } from './definition.js';

export const LOCK_VERSION = 1;

export interface LockedPackage {
  name: string;
  version: string;
  architecture: string;
  /** Archive base URL and the path below it (pool/...). */
  repository: string;
  filename: string;
  size: number;
  sha256: string;
  /** Why it is in: requested, essential, or the package whose dependency pulled it. */
  reason: string;
}

export interface LockedSuite {
  repository: string;
  suite: string;
  /** SHA256 of the InRelease file as fetched, and its Date field. */
  inReleaseSha256: string;
  date?: string;
}

export interface Lock {
  lockVersion: number;
  /** SHA256 of the resolution inputs of the definition (see inputsDigest). */
  inputs: string;
  suites: Record<Arch, LockedSuite[]>;
  packages: Record<Arch, LockedPackage[]>;
}

/** The definition's inputs to resolution, as a digest: a lock made from other inputs is stale. */
export function inputsDigest(def: ImageDefinition): string {
  const inputs = {
    repositories: def.repositories,
    packages: def.packages,
    exclude: [...def.exclude].sort(),
    essential: def.essential,
    archs: def.archs,
  };
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex');
}

export function lockPath(def: ImageDefinition): string {
  return join(def.dir, `${def.name}.lock.json`);
}

export async function readKeyrings(def: ImageDefinition): Promise<Keyring> {
  const parts: Buffer[] = [];
  for (const k of def.keyring) parts.push(await readRegular(k, 16 * 1024 * 1024, 'keyring', 'E_SPEC_READ'));
  // Concatenated binary keyrings are one keyring; armored files are read block by block.
  const armored = parts.filter((p) => p.subarray(0, 4096).toString('latin1').includes('-----BEGIN PGP'));
  const binary = parts.filter((p) => !armored.includes(p));
  const rings: Keyring[] = [];
  if (binary.length) rings.push(await readKeyring(Buffer.concat(binary), def.keyring.join(', ')));
  for (const a of armored) rings.push(await readKeyring(a, def.keyring.join(', ')));
  return { keys: rings.flatMap((r) => r.keys), fingerprints: rings.flatMap((r) => r.fingerprints) };
}

/** Resolves the definition for each of its architectures. */
export async function resolveLock(def: ImageDefinition, o: Omit<FetchOptions, 'keyring'>): Promise<Lock> {
  const keyring = await readKeyrings(def);
  const lock: Lock = { lockVersion: LOCK_VERSION, inputs: inputsDigest(def), suites: {} as Lock['suites'], packages: {} as Lock['packages'] };
  for (const arch of def.archs) {
    const { index, suites } = await loadIndex(def.repositories, arch, { ...o, keyring });
    let solution;
    try {
      solution = solve(index, packagesFor(def, arch), { essential: def.essential, exclude: def.exclude });
    } catch (e) {
      if (e instanceof DockyardError) throw new DockyardError(e.code, `${def.file}: ${arch}: ${e.message}`, { cause: e });
      throw e;
    }
    const requested = new Set(packagesFor(def, arch).map((p) => p.name));
    const uriOf = new Map(suites.map((s) => [s.suite, s.uri]));
    lock.suites[arch] = suites.map((s) => ({
      repository: s.uri,
      suite: s.suite,
      inReleaseSha256: createHash('sha256').update(s.inRelease).digest('hex'),
      ...(s.release.date ? { date: s.release.date.toISOString() } : {}),
    }));
    lock.packages[arch] = solution.packages.map((p) => ({
      name: p.name,
      version: p.version,
      architecture: p.arch,
      repository: uriOf.get(p.suite)!,
      filename: p.filename,
      size: p.size,
      sha256: p.sha256,
      reason: requested.has(p.name) ? 'requested' : solution.reasons.get(p.name)?.by ?? (p.essential ? 'essential' : 'requested'),
    }));
  }
  return lock;
}

export function renderLock(lock: Lock): string {
  return `${JSON.stringify(lock, null, 2)}\n`;
}

/** Writes the lock beside the definition (atomically: a temp file renamed over it). */
export async function writeLock(def: ImageDefinition, lock: Lock): Promise<string> {
  const path = lockPath(def);
  await checkOutputPath(path, 'lock file');
  const tmp = await outputTemp(path);
  try {
    await writeFile(tmp, renderLock(lock), { flag: 'wx', mode: 0o644 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw fsError('E_OUTPUT', `cannot write ${path}`, e);
  }
  return path;
}

/** The lock beside the definition, if any; a malformed one is an error naming it. */
export async function readLock(def: ImageDefinition): Promise<Lock | undefined> {
  const path = lockPath(def);
  let text: string;
  try {
    text = (await readRegular(path, 256 * 1024 * 1024, 'lock file', 'E_SPEC_READ')).toString('utf8');
  } catch (e) {
    if (isMissing(e)) return undefined;
    throw e;
  }
  let lock: Lock;
  try {
    lock = JSON.parse(text) as Lock;
  } catch (e) {
    throw new DockyardError('E_SPEC_INVALID', `${path}: not JSON (${(e as Error).message}); remove it or run dockyard pkg lock --update`);
  }
  if (lock.lockVersion !== LOCK_VERSION || typeof lock.packages !== 'object' || lock.packages === null) {
    throw new DockyardError('E_SPEC_INVALID', `${path}: not a version ${LOCK_VERSION} lock file; run dockyard pkg lock --update`);
  }
  return lock;
}
