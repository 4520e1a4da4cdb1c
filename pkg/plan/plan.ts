/**
 * The plan stage: a normalised Spec plus its resolved images become the
 * ordered list of segments every format writes, laid out as LinuxKit lays
 * them out (moby/build/build.go: kernel, init, volumes, onboot, onshutdown,
 * services, files).
 */
import { createHash } from 'node:crypto';
import type { Spec, ImageSpec, ImageConfig, VolumeSpec } from '../spec/types.js';
import type { BlobStore, ImageHandle } from '../oci/types.js';
import type { Entry, Segment } from '../rootfs/entry.js';
import { DockyardError } from '../errors.js';
import { containerIds, convertConfig, describeRefusal, encodeJson } from './ociconfig.js';
import { imageSegment, kernelSegment, filesSegment, ociVolumeSegment, staticSegment, initApkDbSegment, prefixDirs } from '../rootfs/index.js';

export type Section = 'onboot' | 'onshutdown' | 'services';

export interface PlanInput {
  spec: Spec;
  /** Resolved images keyed by the reference as written in the spec. */
  images: Map<string, ImageHandle>;
  store: BlobStore;
  /** Parses an image's `org.mobyproject.config` label (schema-checked). */
  parseLabel(text: string, ref: string): ImageConfig;
  /** Renders the merged spec for `files:` entries with `metadata:`. */
  renderMetadata(format: 'yaml' | 'json'): string;
  epoch: number;
  /** This run's scratch directory (inside the cache when it is writable, never the output dir). */
  tmpDir: string;
  /** Where derived files (the spooled kernel) are kept between builds. */
  derivedDir: string;
  /** `--decompress-kernel`. */
  decompressKernel?: boolean;
  /** Decompressed bytes of one layer. */
  maxLayerBytes?: number;
  /** Non-fatal findings (a derived file found corrupt and made again). */
  warn?: (message: string) => void;
  signal?: AbortSignal;
  /** Where bundles go, relative to the output root: `containers` (LinuxKit), or below a package's prefix. */
  containersDir?: string;
}

/** What was placed where: for --json, the SBOM and error messages. */
export interface PlannedComponent {
  kind: 'kernel' | 'init' | 'volume' | Section | 'files';
  name: string;
  ref?: string;
  digest?: string;
  path: string;
}

/** A container bundle as planned: packages start it with a generated systemd unit. */
export interface PlannedBundle {
  section: Section;
  name: string;
  /** The bundle directory, relative to the output root. */
  dir: string;
  /** What LinuxKit's runtime does before `runc run`: the runtime.json of the bundle. */
  runtime: { mounts: { destination: string; type?: string; source?: string; options?: string[] }[]; mkdir: string[]; interfaces: unknown[]; bindNS: Record<string, string>; namespace: string; cgroups: string[] };
}

export interface Plan {
  segments: Segment[];
  components: PlannedComponent[];
  bundles: PlannedBundle[];
  /** `file:line:col: name: …` for settings runc will refuse at boot (LinuxKit builds them). */
  warnings: string[];
}

const LABEL = 'org.mobyproject.config';

function image(input: PlanInput, ref: string): ImageHandle {
  const h = input.images.get(ref);
  if (!h) throw new DockyardError('E_INTERNAL', `image ${ref} was not resolved before planning`);
  return h;
}

function dir(path: string, mode = 0o755): Entry {
  return { path, type: 'dir', mode, uid: 0, gid: 0, size: 0 };
}

function file(path: string, body: Buffer, mode = 0o644): Entry {
  return { path, type: 'file', mode, uid: 0, gid: 0, size: body.length, body };
}

function labelOf(input: PlanInput, h: ImageHandle): ImageConfig | undefined {
  const text = h.config.config?.Labels?.[LABEL];
  return text === undefined ? undefined : input.parseLabel(text, h.ref);
}

function volumeSegments(input: PlanInput, vol: VolumeSpec, components: PlannedComponent[]): Segment[] {
  const base = `containers/volumes/${vol.name}`;
  const out: Segment[] = [];
  if (vol.image) {
    const h = image(input, vol.image);
    const seg =
      vol.format === 'oci'
        ? ociVolumeSegment({ name: `volume ${vol.name}`, image: h, store: input.store, prefix: `${base}/lower`, platforms: vol.platforms })
        : imageSegment({ name: `volume ${vol.name}`, image: h, store: input.store, prefix: `${base}/lower`, kind: 'volume', maxLayerBytes: input.maxLayerBytes });
    out.push(seg);
    components.push({ kind: 'volume', name: vol.name, ref: vol.image, digest: h.digest, path: base });
  } else {
    components.push({ kind: 'volume', name: vol.name, path: base });
  }
  out.push(
    staticSegment(`volume ${vol.name} dirs`, [
      ...(vol.image ? [] : prefixDirs(`${base}/lower`)),
      dir(`${base}/tmp`),
      dir(`${base}/merged`),
    ]),
  );
  return out;
}

export async function plan(input: PlanInput): Promise<Plan> {
  const { spec } = input;
  const segments: Segment[] = [];
  const components: PlannedComponent[] = [];
  const bundles: PlannedBundle[] = [];
  const warnings: string[] = [];
  const containersDir = input.containersDir ?? 'containers';

  if (spec.kernel) {
    const h = image(input, spec.kernel.image);
    segments.push(
      kernelSegment({
        image: h,
        store: input.store,
        kernel: spec.kernel,
        tmpDir: input.tmpDir,
        derivedDir: input.derivedDir,
        decompress: input.decompressKernel,
        maxLayerBytes: input.maxLayerBytes,
        warn: input.warn,
      }),
    );
    components.push({ kind: 'kernel', name: 'kernel', ref: spec.kernel.image, digest: h.digest, path: 'boot' });
  }

  const inits = spec.init.map((ref) => image(input, ref));
  spec.init.forEach((ref, i) => {
    segments.push(imageSegment({ name: `init[${i}] ${ref}`, image: inits[i], store: input.store, prefix: '', kind: 'init', maxLayerBytes: input.maxLayerBytes }));
    components.push({ kind: 'init', name: `init[${i}]`, ref, digest: inits[i].digest, path: '/' });
  });
  if (inits.length > 1) {
    const apk = initApkDbSegment({ images: inits, store: input.store, maxLayerBytes: input.maxLayerBytes });
    if (apk) segments.push(apk);
  }

  for (const vol of spec.volumes) segments.push(...volumeSegments(input, vol, components));

  const ids = containerIds(spec);
  const volumes = new Map(spec.volumes.map((v) => [v.name, { readonly: v.readonly === true }]));
  // LinuxKit's dupMap: an image reference unpacked once; later bundles point at that root.
  const unpacked = new Map<string, string>();
  const sections: [Section, ImageSpec[]][] = [
    ['onboot', spec.onboot],
    ['onshutdown', spec.onshutdown],
    ['services', spec.services],
  ];
  for (const [section, list] of sections) {
    list.forEach((entry, i) => {
      const h = image(input, entry.image);
      const bundle = section === 'services' ? `${containersDir}/services/${entry.name}` : `${containersDir}/${section}/${String(i).padStart(3, '0')}-${entry.name}`;
      const sharedRoot = unpacked.get(h.canonical);
      const converted = convertConfig({
        image: entry,
        imageConfig: h.config,
        label: labelOf(input, h),
        ids,
        placement: { dir: bundle, sharedWith: sharedRoot },
        volumes,
      });
      for (const r of converted.refusals) warnings.push(describeRefusal(entry, `${section}[${i}]`, r));
      const root = `${bundle}/${converted.readonly ? 'rootfs' : 'lower'}`;
      const generated: Entry[] = [];
      if (sharedRoot === undefined) {
        segments.push(imageSegment({ name: `${section}[${i}] ${entry.name}`, image: h, store: input.store, prefix: root, kind: 'container', maxLayerBytes: input.maxLayerBytes }));
        unpacked.set(h.canonical, root);
      } else {
        generated.push(...prefixDirs(bundle));
      }
      generated.push(file(`${bundle}/config.json`, encodeJson(converted.config)));
      if (!converted.readonly) generated.push(dir(`${bundle}/tmp`), dir(`${bundle}/rootfs`));
      else if (sharedRoot !== undefined) generated.push(dir(`${bundle}/rootfs`));
      generated.push(file(`${bundle}/runtime.json`, encodeJson(converted.runtime)));
      segments.push(staticSegment(`${section}[${i}] ${entry.name} bundle`, generated));
      components.push({ kind: section, name: entry.name, ref: entry.image, digest: h.digest, path: bundle });
      bundles.push({ section, name: entry.name, dir: bundle, runtime: converted.runtime as PlannedBundle['runtime'] });
    });
  }

  if (spec.files.length > 0) {
    segments.push(
      await filesSegment({
        files: spec.files,
        resolveId: (v) => resolveId(v, ids),
        metadata: input.renderMetadata,
        epoch: input.epoch,
        signal: input.signal,
      }),
    );
    components.push({ kind: 'files', name: 'files', path: '/' });
  }
  return { segments, components, bundles, warnings };
}

/** A files uid/gid: a number (range-checked by the schema), `root`, or a container's name (LinuxKit's config.go). */
function resolveId(v: number | string | undefined, ids: Map<string, number>): number {
  if (v === undefined || v === '' || v === 'root') return 0;
  if (typeof v === 'number') return v;
  const id = ids.get(v);
  if (id === undefined) throw new DockyardError('E_SPEC_INVALID', `files: uid/gid "${v}" is neither root nor the name of a container`);
  return id;
}

/** A digest over the whole plan: equal keys ⇒ equal outputs. */
export function planKey(p: Plan): string {
  const h = createHash('sha256');
  for (const s of p.segments) h.update(s.key + '\n');
  return h.digest('hex');
}
