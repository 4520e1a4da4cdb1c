/**
 * `dockyard build` as a library call: load → resolve → plan → formats.
 * Emits progress through `emit`; never prints.
 */
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DockyardError, formatProblem, type SpecProblem } from '../errors.js';
import { loadSpecs, nothingToBuild, parseImageLabel, renderMetadata } from '../spec/index.js';
import type { Spec } from '../spec/types.js';
import { Cache, resolveAll } from '../cache/index.js';
import { plan, type PlanInput, type PlannedComponent } from '../plan/plan.js';
import { getFormat } from '../formats/index.js';
import { releaseShared } from '../formats/shared.js';
import { staticSegment } from '../rootfs/index.js';
import { renderSbom, sbomPath } from '../sbom/sbom.js';
import type { Format, OutputFile, ProgressEvent } from '../formats/format.js';
import { checkOutputPath, fsError } from '../fsutil.js';
import type { Limits } from '../limits.js';
import type { Timeouts } from '../oci/registry/http.js';
import { Components, componentRef } from '../components/components.js';
import { makePackagePlans, packageImageRefs, type PackagePlans } from '../package/plan.js';

export type Arch = 'amd64' | 'arm64';

export interface BuildOptions {
  inputs: { file: string; text: string }[];
  formats: string[];
  /** Base name of outputs; defaults to the first spec file's base name. */
  name: string;
  dir: string;
  outFile?: string;
  stdout?: NodeJS.WritableStream;
  arch: Arch;
  cacheDir: string;
  pull?: boolean;
  offline?: boolean;
  insecureRegistries?: string[];
  mirrors?: Record<string, string>;
  /** Seconds since the epoch used for every timestamp (SOURCE_DATE_EPOCH). */
  epoch: number;
  /**
   * The epoch was given (SOURCE_DATE_EPOCH set). When it was not, packages
   * take their time from the newest changelog entry, as dpkg does, else
   * from packageDefaultEpoch: an epoch of 0 would make every file
   * "ancient" to lintian.
   */
  epochGiven?: boolean;
  /** Write sbom.spdx.json into the root filesystem (LinuxKit's default). */
  sbom?: boolean;
  /** Write the kernel uncompressed (gzip Image, or a bzImage's gzip payload). */
  decompressKernel?: boolean;
  /** Component overrides: name → reference (`--component NAME=REF`). */
  components?: Record<string, string>;
  /** `--size` for disk formats, in bytes. */
  diskSize?: number;
  /** Size limits (--max-layer-size, --max-output-size, --max-initrd); defaults in pkg/limits.ts. */
  limits?: Partial<Limits>;
  /** Registry timeouts (--timeout). */
  timeouts?: Timeouts;
  /** Configurations runc refuses at boot are errors, not warnings. */
  strict?: boolean;
  emit?: (ev: ProgressEvent) => void;
  signal?: AbortSignal;
}

export { defaultEpoch } from '../limits.js';

/** 2000-01-01T00:00:00Z: packages' time when neither SOURCE_DATE_EPOCH nor a dated changelog entry gives one. */
export const packageDefaultEpoch = 946684800;

/** The seconds every timestamp of a package carries. */
export function packageEpoch(spec: Spec, opts: Pick<BuildOptions, 'epoch' | 'epochGiven'>): number {
  if (opts.epochGiven) return opts.epoch;
  const dated = (spec.package?.changelog ?? []).flatMap((c) => (c.date === undefined ? [] : [c.date]));
  return dated.length > 0 ? Math.max(...dated) : packageDefaultEpoch;
}

/** Formats of one build written at the same time, at most. */
const FORMATS_AT_ONCE = 16;

export interface BuildResult {
  outputs: (OutputFile & { format: string })[];
  components: PlannedComponent[];
  timings: Record<string, number>;
  warnings: string[];
}

export class SpecInvalidError extends DockyardError {
  readonly problems: SpecProblem[];
  constructor(problems: SpecProblem[]) {
    super('E_SPEC_INVALID', problems.map(formatProblem).join('\n'));
    this.problems = problems;
  }
}

/** Every image reference a spec needs, each once, in spec order. */
export function imageRefs(spec: Spec): string[] {
  const refs = [
    ...(spec.kernel ? [spec.kernel.image] : []),
    ...spec.init,
    ...spec.volumes.flatMap((v) => (v.image ? [v.image] : [])),
    ...spec.onboot.map((i) => i.image),
    ...spec.onshutdown.map((i) => i.image),
    ...spec.services.map((i) => i.image),
  ];
  return [...new Set(refs)];
}

export function loadOrThrow(inputs: { file: string; text: string }[]): { spec: Spec; warnings: string[] } {
  const { spec, problems, warnings } = loadSpecs(inputs);
  if (problems.length > 0 || !spec) throw new SpecInvalidError(problems);
  return { spec, warnings };
}

/** The outputs' places, checked before anything is pulled: --dir a directory, each output free or a regular file. */
async function checkOutputs(opts: BuildOptions, spec: Spec, formats: Format[]): Promise<void> {
  if (opts.outFile === '-') return;
  if (opts.outFile === undefined) {
    const st = await stat(opts.dir).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw fsError('E_OUTPUT', `--dir ${opts.dir}`, e);
    });
    if (st && !st.isDirectory()) throw new DockyardError('E_OUTPUT', `--dir ${opts.dir} exists and is not a directory`);
  }
  for (const f of formats) {
    for (const file of opts.outFile ? [opts.outFile] : f.files(opts.name, { spec, arch: opts.arch })) await checkOutputPath(opts.outFile ? file : join(opts.dir, file), opts.outFile ? '-o' : 'output');
  }
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const emit = opts.emit ?? (() => {});
  const { spec, warnings } = loadOrThrow(opts.inputs);
  for (const w of warnings) emit({ kind: 'warning', message: w });
  const empty = nothingToBuild(spec);
  if (empty) throw new DockyardError('E_SPEC_INVALID', empty);
  // Fail on unknown formats and unusable output places before pulling anything.
  const formats = opts.formats.map((f) => getFormat(f));
  for (const f of formats) {
    if (f.arches && !f.arches.includes(opts.arch)) {
      throw new DockyardError('E_UNSUPPORTED_ARCH', `format ${f.name} does not exist for ${opts.arch} (it does for ${f.arches.join(', ')})`);
    }
  }
  for (const f of formats) f.check?.({ spec, arch: opts.arch });
  if (opts.outFile !== undefined && formats.some((f) => f.input === 'package') && formats.length > 1) throw new DockyardError('E_USAGE', '-o writes one output: give one format');
  const seen = new Map<string, string>();
  for (const f of formats) {
    for (const file of opts.outFile ? [opts.outFile] : f.files(opts.name, { spec, arch: opts.arch })) {
      const other = seen.get(file);
      const same = (g: Format) => !opts.outFile && (g.sameBytes?.(opts.name) ?? []).includes(file);
      if (other !== undefined && other !== f.name && !(same(f) && same(formats.find((g) => g.name === other)!)))
        throw new DockyardError('E_USAGE', `formats ${other} and ${f.name} both write ${file}: build them into different --dir`);
      seen.set(file, f.name);
    }
  }
  await checkOutputs(opts, spec, formats);
  try {
    return await attempt(opts, spec, formats, warnings);
  } catch (e) {
    // A cached blob or file found corrupt was removed: one more go pulls or derives it again.
    // Not to stdout: what was written there cannot be taken back.
    if (!(e instanceof DockyardError) || e.code !== 'E_CACHE_CORRUPT' || opts.outFile === '-') throw e;
    emit({ kind: 'warning', message: `${e.message}; building again` });
    try {
      return await attempt(opts, spec, formats, warnings);
    } catch (again) {
      if (again instanceof DockyardError && (again.code === 'E_OFFLINE' || again.code === 'E_COMPONENT')) {
        throw new DockyardError('E_CACHE_CORRUPT', `${e.message} (${again.message})`, { cause: again });
      }
      throw again;
    }
  }
}

async function attempt(opts: BuildOptions, spec: Spec, formats: Format[], warnings: string[]): Promise<BuildResult> {
  const emit = opts.emit ?? (() => {});
  const timings: Record<string, number> = {};
  let t = performance.now();
  const lap = (k: string) => {
    const now = performance.now();
    timings[k] = Math.round(now - t);
    t = now;
  };
  const componentNames = [...new Set(formats.flatMap((f) => f.components?.(opts.arch) ?? []))];
  lap('load');

  const cache = new Cache(opts.cacheDir);
  const scratch = await cache.scratch();
  const componentRefs = new Map(componentNames.map((n) => [n, componentRef(n, { ...spec.components, ...opts.components })]));
  const resolveOpts = {
    cache,
    arch: opts.arch,
    pull: opts.pull,
    offline: opts.offline,
    insecureRegistries: opts.insecureRegistries,
    mirrors: opts.mirrors,
    timeouts: opts.timeouts,
    onProgress: emit,
    signal: opts.signal,
  };
  const rootfs = formats.some((f) => f.input !== 'package');
  const packaged = formats.some((f) => f.input === 'package');
  const refs = [...new Set([...(rootfs ? imageRefs(spec) : []), ...(packaged ? packageImageRefs(spec) : [])])];
  const images = await resolveAll(refs, resolveOpts);
  for (const [name, ref] of componentRefs) {
    try {
      for (const [r, h] of await resolveAll([ref], resolveOpts)) images.set(r, h);
    } catch (e) {
      if (e instanceof DockyardError && e.code !== 'E_INTERRUPTED' && e.code !== 'E_CACHE_CORRUPT') {
        const needs = formats.filter((f) => f.components?.(opts.arch).includes(name)).map((f) => f.name).join(', ');
        const code = e.code === 'E_IMAGE_NOT_FOUND' || e.code === 'E_OFFLINE' ? 'E_COMPONENT' : e.code;
        throw new DockyardError(code, `${needs} needs the ${name} component ${ref} (${opts.arch}): ${e.message}; load it with \`dockyard cache import\` (npm run fixtures builds it) or name another image with --component ${name}=REF`, { cause: e });
      }
      throw e;
    }
  }
  lap('resolve');

  const components = new Components(new Map([...componentRefs].map(([n, ref]) => [n, images.get(ref)!])), cache);
  // A read-only cache: derived files live in this run's scratch only.
  const derivedDir = scratch.readOnly ? scratch.dir : join(opts.cacheDir, 'segments');
  if (!scratch.readOnly) await mkdir(derivedDir, { recursive: true }).catch((e) => Promise.reject(fsError('E_CACHE', `cannot write to the cache ${opts.cacheDir}`, e)));
  const warn = (message: string) => emit({ kind: 'warning', message });
  const planInput: PlanInput = {
    spec,
    images,
    store: cache,
    parseLabel: parseImageLabel,
    renderMetadata: (f) => renderMetadata(spec, f),
    epoch: opts.epoch,
    tmpDir: scratch.dir,
    derivedDir,
    decompressKernel: opts.decompressKernel,
    maxLayerBytes: opts.limits?.layerBytes,
    warn,
    signal: opts.signal,
  };
  const p = rootfs ? await plan(planInput) : { segments: [], components: [], bundles: [], warnings: [] };
  for (const w of p.warnings) {
    if (opts.strict) throw new DockyardError('E_SPEC_INVALID', `${w} (--strict)`);
    emit({ kind: 'warning', message: w });
  }
  if (opts.sbom !== false && rootfs) {
    const body = renderSbom(p.components, opts.epoch);
    p.segments.push(staticSegment('sbom', [{ path: sbomPath, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, body }]));
  }
  lap('plan');

  const outputs: BuildResult['outputs'] = [];
  let packages: PackagePlans | undefined;
  try {
    if (packaged) {
      const pkgEpoch = packageEpoch(spec, opts);
      packages = await makePackagePlans({ ...planInput, epoch: pkgEpoch, arch: opts.arch });
      for (const w of packages.warnings) {
        if (opts.strict) throw new DockyardError('E_SPEC_INVALID', `${w} (--strict)`);
        emit({ kind: 'warning', message: w });
      }
      lap('package');
    }
    const pkgs = packages;
    if (opts.outFile === undefined) await mkdir(opts.dir, { recursive: true }).catch((e) => Promise.reject(fsError('E_OUTPUT', `cannot make --dir ${opts.dir}`, e)));
    // Formats run side by side: the work they share is made once
    // (pkg/formats/shared.ts), and what each does alone is mostly waiting on
    // the thread pool (compression, file I/O), so more of them than there
    // are cores keep the cores busy.
    const ctx = {
      name: opts.name,
      dir: opts.dir,
      outFile: opts.outFile,
      stdout: opts.stdout,
      arch: opts.arch,
      epoch: opts.epoch,
      segments: p.segments,
      segmentCacheDir: scratch.readOnly ? undefined : derivedDir,
      tmpDir: scratch.dir,
      components,
      diskSize: opts.diskSize,
      maxOutputBytes: opts.limits?.outputBytes,
      maxInitrdBytes: opts.limits?.initrdBytes,
      spec,
      packagePlan: pkgs ? (f: 'deb' | 'rpm' | 'pacman') => pkgs.plan(f) : undefined,
      emit,
      signal: opts.signal,
    };
    const done: (BuildResult['outputs'] | undefined)[] = formats.map(() => undefined);
    // The heavy ones (whole-disk compression) first, so the rest overlaps them; outputs stay in the order asked.
    const order = [...formats.keys()].sort((a, b) => Number(Boolean(formats[b].heavy)) - Number(Boolean(formats[a].heavy)));
    let next = 0;
    const worker = async () => {
      while (next < formats.length) {
        const i = order[next++];
        const t0 = performance.now();
        const files = await formats[i].write(ctx).catch((e: unknown) => {
          next = formats.length; // no new formats once one failed
          throw e;
        });
        done[i] = files.map((o) => ({ ...o, format: formats[i].name }));
        timings[`format:${formats[i].name}`] = Math.round(performance.now() - t0);
      }
    };
    const results = await Promise.allSettled(Array.from({ length: Math.min(formats.length, FORMATS_AT_ONCE) }, worker));
    // A file two formats write with the same bytes (sameBytes) is listed once.
    for (const d of done) if (d) outputs.push(...d.filter((o) => !outputs.some((x) => x.path === o.path)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (e) {
    // No partial outputs: a failed build removes what earlier formats wrote.
    await Promise.all(outputs.map((o) => rm(o.path, { force: true })));
    throw e;
  } finally {
    await releaseShared(p.segments);
    await packages?.close();
  }
  return { outputs, components: p.components, timings, warnings };
}
