/**
 * An exclusive lock between processes sharing one cache: a file created with
 * O_CREAT|O_EXCL holding `pid host time`. A lock whose process is gone (same
 * host) or that is older than `staleMs` is taken over, so a crashed dockyard
 * never wedges the cache. Read-modify-write of index.json happens only under
 * it (LinuxKit's cache lost entries without such a lock: linuxkit#4131).
 */
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { DockyardError } from '../errors.js';
import { fsError } from '../fsutil.js';
import { pidAlive } from '../tempfiles.js';

export interface LockOptions {
  /** Give up after this long (ms). */
  timeoutMs?: number;
  /** A lock held longer than this is presumed abandoned. */
  staleMs?: number;
}

export const defaultLockOptions = { timeoutMs: 120_000, staleMs: 300_000 } as const;

async function isStale(path: string, staleMs: number): Promise<boolean> {
  try {
    const [text, st] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    if (Date.now() - st.mtimeMs > staleMs) return true;
    const [pid, host] = text.split(' ');
    if (host === hostname() && Number(pid) > 0 && !pidAlive(Number(pid))) return true;
    return false;
  } catch {
    return false; // vanished or half-written: try again
  }
}

let seq = 0;

export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  const timeout = opts.timeoutMs ?? defaultLockOptions.timeoutMs;
  const staleMs = opts.staleMs ?? defaultLockOptions.staleMs;
  const start = Date.now();
  let wait = 5;
  for (;;) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(`${process.pid} ${hostname()} ${Date.now()}`);
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fsError('E_CACHE', `cannot lock the cache (${path})`, e);
    }
    if (await isStale(path, staleMs)) {
      // Move it aside first: of several processes seeing it stale, one wins the rename.
      const aside = `${path}.stale.${process.pid}.${seq++}`;
      try {
        await rename(path, aside);
        await unlink(aside);
      } catch {
        /* someone else took it over */
      }
      continue;
    }
    if (Date.now() - start > timeout) throw new DockyardError('E_CACHE', `cache is locked by another process (${path}); remove it if no dockyard is running`);
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 2, 100);
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => {});
  }
}
