/**
 * `dockyard pkg lock|build|show DEFINITION.yml`: images from Debian packages
 * (pkg/imagedef). lock resolves the definition against the archive
 * (InRelease verified with its keyring) and writes NAME.lock.json beside
 * it; show prints what the lock (or, without one, a fresh resolution)
 * installs.
 */
import type { Command } from 'commander';
import { join, resolve } from 'node:path';
import { scratchFor } from '../pkg/cache/scratch.js';
import { loadDefinition } from '../pkg/imagedef/definition.js';
import { inputsDigest, lockPath, readLock, resolveLock, writeLock, type Lock } from '../pkg/imagedef/lock.js';
import { buildImage } from '../pkg/imagedef/build.js';
import type { ImageDefinition } from '../pkg/imagedef/definition.js';
import type { FetchOptions } from '../pkg/debian/archive.js';
import { Cache } from '../pkg/cache/index.js';
import { OciLayout } from '../pkg/oci/layout.js';
import { RegistryClient } from '../pkg/oci/registry/client.js';
import { pushImage } from '../pkg/oci/registry/push.js';
import { parseReference } from '../pkg/oci/reference.js';
import { DockyardError } from '../pkg/errors.js';

export interface PkgContext {
  defaultCacheDir: () => string;
  /** SOURCE_DATE_EPOCH or 0 (checked by the caller). */
  epoch: () => number;
  signal: AbortSignal;
}

export function registerPkg(program: Command, c: PkgContext): void {
  const pkg = program.command('pkg').description('images from Debian packages: an image definition (schemas/image.schema.json) resolved, locked and shown');
  const fetchOpts = async (o: { cache: string; offline?: boolean }) => {
    const cacheDir = resolve(o.cache);
    const scratch = await scratchFor(cacheDir);
    return { cacheDir: join(cacheDir, 'debian'), tmpDir: scratch.dir, offline: o.offline, signal: c.signal };
  };

  pkg
    .command('lock')
    .description('resolve DEFINITION for each of its archs as apt would (no Recommends) and write NAME.lock.json beside it; an up-to-date lock is kept')
    .argument('<definition>', 'image definition (YAML)')
    .option('--update', 'resolve again even if the lock is up to date (newer packages)')
    .option('--cache <dir>', 'cache directory: indices are kept in DIR/debian (env DOCKYARD_CACHE)', c.defaultCacheDir())
    .option('--offline', 'use only cached indices')
    .action(async (file: string, o: { update?: boolean; cache: string; offline?: boolean }) => {
      const def = await loadDefinition(file);
      const old = await readLock(def);
      if (old && !o.update && old.inputs === inputsDigest(def)) {
        process.stdout.write(`${lockPath(def)}: up to date (${summary(old)})\n`);
        return;
      }
      const lock = await resolveLock(def, await fetchOpts(o));
      const path = await writeLock(def, lock);
      process.stdout.write(`wrote ${path} (${summary(lock)})\n`);
    });

  pkg
    .command('build')
    .description('build DEFINITION into the cache as one image per arch (an OCI index) from its locked packages (locked first if there is no up-to-date lock)')
    .argument('<definition>', 'image definition (YAML)')
    .option('-t, --tag <ref>', 'reference to store it under (default dockyard.local/NAME:latest)')
    .option('-o, --output <file>', 'also write it as an OCI image layout tar')
    .option('--push <ref>', 'also push it (the index and every arch) to a registry as REF (credentials from ~/.docker/config.json)')
    .option('--insecure-registry <host>', 'allow plain HTTP for HOST when pushing (repeatable; loopback hosts always may)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--cache <dir>', 'cache directory (env DOCKYARD_CACHE)', c.defaultCacheDir())
    .option('--offline', 'use only cached indices and packages')
    .action(async (file: string, o: { tag?: string; output?: string; push?: string; insecureRegistry?: string[]; cache: string; offline?: boolean }) => {
      if (o.push !== undefined) {
        let transport: string;
        try {
          transport = parseReference(o.push).transport;
        } catch (e) {
          throw new DockyardError('E_USAGE', `--push ${o.push}: ${(e as Error).message}`);
        }
        if (transport !== 'registry') throw new DockyardError('E_USAGE', `--push ${o.push}: not a registry reference (HOST/NAME:TAG)`);
      }
      const def = await loadDefinition(file);
      const log = (l: string) => process.stderr.write(`${l}\n`);
      const opts = await fetchOpts(o);
      const lock = await currentLock(def, async () => opts, log);
      const cache = new Cache(resolve(o.cache));
      const built = await buildImage(def, lock, { cache, cacheDir: opts.cacheDir, tmpDir: opts.tmpDir, ref: o.tag ?? `dockyard.local/${def.name}:latest`, epoch: c.epoch(), offline: o.offline, signal: c.signal, log });
      if (o.output) await cache.export(built.ref, resolve(o.output), c.signal);
      if (o.push !== undefined) {
        const client = new RegistryClient({ insecureRegistries: o.insecureRegistry, signal: c.signal });
        const digest = await pushImage(new OciLayout(resolve(o.cache)), built.ref, client, o.push);
        log(`pushed ${o.push}@${digest}`);
      }
      process.stdout.write(`${built.ref}\t${built.digest}\t${built.manifests.map((m) => `${m.arch}: ${m.packages} packages`).join(', ')}\n`);
    });

  pkg
    .command('show')
    .description('print what DEFINITION installs, per arch: from its lock when up to date, else resolved now (nothing written)')
    .argument('<definition>', 'image definition (YAML)')
    .option('--cache <dir>', 'cache directory: indices are kept in DIR/debian (env DOCKYARD_CACHE)', c.defaultCacheDir())
    .option('--offline', 'use only cached indices')
    .option('--json', 'print the lock JSON')
    .action(async (file: string, o: { cache: string; offline?: boolean; json?: boolean }) => {
      const def = await loadDefinition(file);
      const old = await readLock(def);
      const lock = old && old.inputs === inputsDigest(def) ? old : await resolveLock(def, await fetchOpts(o));
      if (o.json) {
        process.stdout.write(`${JSON.stringify(lock, null, 2)}\n`);
        return;
      }
      for (const arch of def.archs) {
        for (const p of lock.packages[arch] ?? []) process.stdout.write(`${arch}\t${p.name}\t${p.version}\t${p.reason}\n`);
      }
    });
}

/** The lock of a definition: the one beside it when up to date, else resolved now and written. */
async function currentLock(def: ImageDefinition, fetch: () => Promise<Omit<FetchOptions, 'keyring'>>, log: (l: string) => void): Promise<Lock> {
  const old = await readLock(def);
  if (old && old.inputs === inputsDigest(def)) return old;
  const lock = await resolveLock(def, await fetch());
  log(`wrote ${await writeLock(def, lock)} (${summary(lock)})`);
  return lock;
}

function summary(lock: Lock): string {
  return Object.entries(lock.packages)
    .map(([arch, list]) => `${arch}: ${list.length} packages`)
    .join(', ');
}
