/**
 * Unpacking the small, flat tars that carry image layouts (`oci-archive`,
 * `docker save`): regular files and directories only, names kept inside `dir`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, normalize, isAbsolute } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { DockyardError } from '../errors.js';

export async function extractTar(file: string, dir: string): Promise<void> {
  const ex = tar.extract();
  const done = (async () => {
    for await (const entry of ex) {
      const h = entry.header;
      const name = normalize(h.name.replace(/^\.\//, '')).replace(/\/$/, '');
      if (name === '.' || name === '') {
        entry.resume();
        continue;
      }
      if (isAbsolute(name) || name === '..' || name.startsWith('../')) {
        entry.resume();
        throw new DockyardError('E_LAYER_UNSAFE', `${file}: entry "${h.name}" points outside the archive`);
      }
      const dest = join(dir, name);
      if (h.type === 'directory') {
        await mkdir(dest, { recursive: true });
        entry.resume();
      } else if (h.type === 'file' || h.type === 'contiguous-file') {
        await mkdir(dirname(dest), { recursive: true });
        await pipeline(entry, createWriteStream(dest));
      } else entry.resume();
    }
  })();
  try {
    await Promise.all([pipeline(createReadStream(file), ex), done]);
  } catch (e) {
    if (e instanceof DockyardError) throw e;
    throw new DockyardError('E_LAYER_FORMAT', `${file}: not a readable tar archive (${(e as Error).message})`, { cause: e });
  }
}
