/** Resolve every image a build needs, pulling what the cache lacks, in parallel. */
import type { ImageHandle, Platform } from '../oci/types.js';
import { DockyardError } from '../errors.js';
import type { Cache, PullOptions } from './cache.js';

export interface ResolveAllOptions {
  cache: Cache;
  arch: 'amd64' | 'arm64';
  pull?: boolean;
  offline?: boolean;
  insecureRegistries?: string[];
  mirrors?: Record<string, string>;
  credentials?: PullOptions['credentials'];
  timeouts?: PullOptions['timeouts'];
  onProgress?: PullOptions['onProgress'];
  signal?: AbortSignal;
  /** Pulls at once. */
  concurrency?: number;
}

export const defaultResolveConcurrency = 3;

export function platformFor(arch: 'amd64' | 'arm64'): Platform {
  return arch === 'arm64' ? { os: 'linux', architecture: 'arm64', variant: 'v8' } : { os: 'linux', architecture: 'amd64' };
}

/** Each distinct ref once; the map is keyed by the refs as given, in their order. */
export async function resolveAll(refs: string[], opts: ResolveAllOptions): Promise<Map<string, ImageHandle>> {
  const unique = [...new Set(refs)];
  const platform = platformFor(opts.arch);
  const results = new Map<string, ImageHandle>();
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < unique.length && failed === undefined) {
      if (opts.signal?.aborted) throw new DockyardError('E_INTERRUPTED', 'interrupted');
      const ref = unique[next++];
      try {
        results.set(
          ref,
          await opts.cache.pull(ref, platform, {
            pull: opts.pull,
            offline: opts.offline,
            insecureRegistries: opts.insecureRegistries,
            mirrors: opts.mirrors,
            credentials: opts.credentials,
            timeouts: opts.timeouts,
            onProgress: opts.onProgress,
            signal: opts.signal,
          }),
        );
      } catch (e) {
        failed ??= e;
      }
    }
  };
  const n = Math.max(1, Math.min(opts.concurrency ?? defaultResolveConcurrency, unique.length));
  await Promise.all(Array.from({ length: n }, worker));
  if (failed !== undefined) throw failed;
  return new Map(unique.map((r) => [r, results.get(r)!]));
}
