/**
 * Unpacking the small, flat tars that carry image layouts (`oci-archive`,
 * `docker save`): regular files and directories only, names kept inside `dir`.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, normalize, isAbsolute } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { DockyardError } from '../errors.js';
import { streamRegular } from '../fsutil.js';

/** Unpack `file` (a regular file: a device or FIFO would never end) into `dir`. */
export async function extractTar(file: string, dir: string, signal?: AbortSignal): Promise<void> {
  const { stream } = await streamRegular(file, file, 'E_IMAGE_NOT_FOUND');
  const ex = tar.extract();
  const done = (async () => {
    for await (const entry of ex) {
      signal?.throwIfAborted();
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
        // A name seen twice replaces the first; a name below a file is an error of mkdir.
        await pipeline(entry, createWriteStream(dest));
      } else entry.resume();
    }
  })();
  try {
    await Promise.all([pipeline(stream, ex), done]);
  } catch (e) {
    stream.destroy();
    ex.destroy();
    if (e instanceof DockyardError) throw e;
    if ((e as Error)?.name === 'AbortError') throw new DockyardError('E_INTERRUPTED', 'interrupted', { cause: e });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS') throw new DockyardError('E_CACHE', `cannot unpack ${file}: ${code === 'ENOSPC' ? 'no space left on device' : (e as Error).message}`, { cause: e });
    throw new DockyardError('E_LAYER_FORMAT', `${file}: not a readable tar archive (${(e as Error).message})`, { cause: e });
  }
}
