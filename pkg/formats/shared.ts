/**
 * Work shared by the formats of one build: the boot parts, the UKI, the raw
 * EFI disk and its spooled copy are made once per build and arch, whichever
 * format asks first, and released when the build ends. The scope is the
 * build's segment list (one per build and arch), which every FormatContext
 * of that build carries.
 */
interface Scope {
  values: Map<string, Promise<unknown>>;
  cleanups: (() => Promise<void>)[];
}

const scopes = new WeakMap<object, Scope>();

export function shared<T>(ctx: { segments: object }, key: string, make: () => Promise<T>, cleanup?: (v: T) => Promise<void>): Promise<T> {
  let s = scopes.get(ctx.segments);
  if (!s) {
    s = { values: new Map(), cleanups: [] };
    scopes.set(ctx.segments, s);
  }
  const scope = s;
  let p = scope.values.get(key) as Promise<T> | undefined;
  if (!p) {
    p = make();
    scope.values.set(key, p);
    p.then(
      (v) => {
        if (cleanup) scope.cleanups.push(() => cleanup(v));
      },
      () => scope.values.delete(key),
    );
  }
  return p;
}

/** End of the build: release everything its formats shared (latest first). */
export async function releaseShared(segments: object): Promise<void> {
  const s = scopes.get(segments);
  scopes.delete(segments);
  if (!s) return;
  await Promise.allSettled([...s.values.values()]);
  for (const c of s.cleanups.reverse()) await c().catch(() => {});
}
