/**
 * One scratch directory per run and cache: `CACHE/tmp/run-HOSTTAG-PID-XXXXXX`,
 * on the cache's file system so that what is written there can be renamed
 * into the cache. Removed when the process exits (pkg/tempfiles.ts); the
 * next run that takes the cache's lock sweeps those of runs that are gone.
 *
 * Temp files a run makes beside its outputs are listed in its directory
 * (`elsewhere`): the sweep removes them too, wherever they are.
 *
 * A cache that cannot be written (a read-only mount, no permission) still
 * serves builds of what it holds: the scratch directory is then made under
 * the system's temp directory and nothing is stored in the cache.
 */
import { lstat, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { fsError, readRegular } from '../fsutil.js';
import { JOURNAL_NAME, runTag, setTempJournal, tempIsStale, trackTemp } from '../tempfiles.js';
import { withLock } from './lock.js';

export interface Scratch {
  dir: string;
  /** The cache cannot be written: nothing may be stored in it. */
  readOnly: boolean;
}

const scratches = new Map<string, Promise<Scratch>>();

/** Temp entries of older dockyard versions (no run tag) are theirs for this long. */
const LEGACY_GRACE_MS = 10 * 60_000;

export function scratchFor(cacheDir: string): Promise<Scratch> {
  let p = scratches.get(cacheDir);
  if (!p) {
    p = make(cacheDir);
    scratches.set(cacheDir, p);
    p.catch(() => scratches.delete(cacheDir));
  }
  return p;
}

const READ_ONLY = new Set(['EROFS', 'EACCES', 'EPERM']);

async function make(cacheDir: string): Promise<Scratch> {
  const tmp = join(cacheDir, 'tmp');
  let dir: string;
  try {
    await mkdir(tmp, { recursive: true });
    dir = await mkdtemp(join(tmp, `run-${runTag}-`));
  } catch (e) {
    if (!READ_ONLY.has((e as NodeJS.ErrnoException).code ?? '')) throw fsError('E_CACHE', `cannot use the cache ${cacheDir}`, e);
    dir = await mkdtemp(join(tmpdir(), `dockyard-run-${runTag}-`)).catch((e2) => {
      throw fsError('E_CACHE', `the cache ${cacheDir} is read-only and no temp directory could be made in ${tmpdir()}`, e2);
    });
    trackTemp(dir);
    return { dir, readOnly: true };
  }
  trackTemp(dir);
  setTempJournal(join(dir, JOURNAL_NAME));
  await sweep(cacheDir).catch(() => {});
  return { dir, readOnly: false };
}

/** Remove what runs that are gone left in tmp/ and segments/ (under the cache lock, if it is free soon). */
export async function sweep(cacheDir: string): Promise<string[]> {
  const removed: string[] = [];
  await withLock(
    join(cacheDir, 'index.json.lock'),
    async () => {
      for (const sub of ['tmp', 'segments']) {
        const d = join(cacheDir, sub);
        for (const name of await readdir(d).catch(() => [] as string[])) {
          if (sub === 'segments' && !name.endsWith('.tmp')) continue;
          const p = join(d, name);
          const st = await stat(p).catch(() => undefined);
          if (!st) continue;
          const stale = tempIsStale(name, st.mtimeMs) ?? Date.now() - st.mtimeMs > LEGACY_GRACE_MS;
          if (!stale) continue;
          // The run's temp files beside outputs: only names outputTemp() gives, with this run's tag
          // (the journal is in the cache: whatever else it lists is not removed).
          const tag = /^run-([0-9a-f]{8}-\d+)-/.exec(name)?.[1];
          const elsewhere = tag ? await readRegular(join(p, JOURNAL_NAME), 1 << 20, 'journal', 'E_CACHE').catch(() => Buffer.alloc(0)) : Buffer.alloc(0);
          const ours = new RegExp(`^\\..+\\.${tag}-[0-9a-f]{8}\\.tmp$`);
          for (const f of elsewhere.toString('utf8').split('\n')) {
            if (!isAbsolute(f) || !ours.test(basename(f))) continue;
            const st = await lstat(f).catch(() => undefined);
            if (!st?.isFile()) continue;
            await rm(f, { force: true });
            removed.push(f);
          }
          await rm(p, { recursive: true, force: true });
          removed.push(p);
        }
      }
    },
    { timeoutMs: 5_000 },
  );
  return removed;
}
