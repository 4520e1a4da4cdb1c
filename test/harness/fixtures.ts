/** What the boot tests share: the fixture images in a fresh cache, and file digests. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { dockyard } from './cli.js';
import { buildFixtures } from '../fixtures/build.js';

/**
 * A temp work dir holding a cache loaded with the fixture images (kernel,
 * busybox, init, bootloader components; not kernel-full), as a user gets it
 * with `npm run fixtures` and `dockyard cache import`.
 */
export async function fixtureCache(prefix: string): Promise<{ work: string; cache: string }> {
  const work = await mkdtemp(join(tmpdir(), prefix));
  const cache = join(work, 'cache');
  const layout = join(work, 'layout');
  await buildFixtures(layout, { full: false });
  const r = await dockyard(['cache', '--cache', cache, 'import', layout]);
  if (r.exitCode !== 0) throw new Error(`cache import of the fixtures failed: ${r.stderr}`);
  return { work, cache };
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}
