/**
 * vitest globalSetup: one temp directory for the whole run, removed when the
 * run ends, pass or fail. Test files, the CLI they start and the tools those
 * start all make their temp dirs under TMPDIR, so a test that dies before its
 * afterAll (a killed build, a failed assertion in a hook) leaves nothing
 * behind in the system's /tmp: a suite run over and over on one machine does
 * not fill its disk.
 *
 * A run that was itself killed (no teardown) leaves its directory; the next
 * run removes the directories of runs whose process is gone.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PREFIX = 'dockyard-test-run-';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function removeStale(parent: string): Promise<void> {
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(parent, name);
    const pid = Number((await readFile(join(dir, 'pid'), 'utf8').catch(() => '')).trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export default async function setup(): Promise<() => Promise<void>> {
  const parent = tmpdir();
  await removeStale(parent);
  const dir = await mkdtemp(join(parent, PREFIX));
  await writeFile(join(dir, 'pid'), `${process.pid}\n`);
  const before = process.env.TMPDIR;
  process.env.TMPDIR = dir;
  return async () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    await rm(dir, { recursive: true, force: true });
  };
}
