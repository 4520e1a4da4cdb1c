/**
 * The temp files and directories of this process. Each is registered when
 * made and removed when the process exits, however it exits (success, an
 * error, SIGINT/SIGTERM handled by the CLI). A SIGKILL leaves them: their
 * names carry the run's host tag and pid, so the next run can tell them
 * from a live run's and sweep them (pkg/cache/scratch.ts, pkg/formats/output.ts).
 */
import { appendFileSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';

const live = new Set<string>();
let hooked = false;
/** A file in this run's scratch directory listing temp files made elsewhere (beside outputs), for the sweep after a SIGKILL. */
let journal: string | undefined;

/** Where temp files made outside the scratch directory are recorded (pkg/cache/scratch.ts sets it). */
export function setTempJournal(path: string): void {
  journal = path;
}

export const JOURNAL_NAME = 'elsewhere';

/** Eight hex digits naming this host (a cache may be shared between machines). */
export const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);

/** `HOSTTAG-PID`: what a temp name carries to say which run made it. */
export const runTag = `${hostTag}-${process.pid}`;

export function trackTemp(path: string): void {
  live.add(path);
  if (journal && !path.startsWith(dirname(journal) + '/')) {
    try {
      appendFileSync(journal, path + '\n');
    } catch {
      /* the sweep of this output's directory still finds it */
    }
  }
  if (!hooked) {
    hooked = true;
    process.once('exit', removeTempsSync);
  }
}

export function untrackTemp(path: string): void {
  live.delete(path);
}

/** Remove every registered temp path now (synchronous: it runs in 'exit'). */
export function removeTempsSync(): void {
  for (const p of live) {
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      /* best effort at exit */
    }
  }
  live.clear();
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a temp name written by `runTag` belongs to a run that is gone:
 * same host and a dead pid, or another host's and older than `staleMs`.
 * Names without a run tag are not judged here (undefined).
 */
export function tempIsStale(name: string, mtimeMs: number, staleMs = 24 * 3600_000): boolean | undefined {
  const m = /(?:^|[.-])([0-9a-f]{8})-(\d+)(?:[.-]|$)/.exec(name);
  if (!m) return undefined;
  if (m[1] === hostTag) return !pidAlive(Number(m[2]));
  return Date.now() - mtimeMs > staleMs;
}
