/**
 * The package plan: a spec's `package:` section and its images → metadata,
 * contents, scripts; made once per build and architecture, then encoded by
 * each packaging format (deb, rpm, pacman).
 *
 * The spec's onboot/onshutdown/services become the same bundles the OS build
 * writes (pkg/plan, placed below the package's prefix) plus a systemd unit
 * each (units.ts); its `files:` land on the host at their paths.
 */
import { DockyardError } from '../errors.js';
import { readRegular } from '../fsutil.js';
import { MaxCollectedBytes } from '../archive/sink.js';
import { plan as planRootfs, type PlanInput } from '../plan/plan.js';
import { containerIds } from '../plan/ociconfig.js';
import { filesSegment } from '../rootfs/index.js';
import { RELATION_KEYS, type PackageContentSpec, type PackagerName, type RelationKey, type Spec } from '../spec/types.js';
import { resolveContents, type ExtraSource } from './contents.js';
import { renderScripts } from './scripts.js';
import { containerUnits, RUNC, unsupportedRuntime } from './units.js';
import type { Account, PackageMeta, PackagePlan, Relations } from './types.js';

export type PackagePlanInput = Omit<PlanInput, 'containersDir' | 'derivedDir'> & { arch: 'amd64' | 'arm64'; derivedDir: string };

export interface PackagePlans {
  /** The plan one format encodes (its overrides and `packager:` entries applied). */
  plan(f: PackagerName): PackagePlan;
  warnings: string[];
  close(): Promise<void>;
}

/** Image references a package build reads: its containers' and its contents'. */
export function packageImageRefs(spec: Spec): string[] {
  return [...new Set([...spec.onboot, ...spec.onshutdown, ...spec.services].map((i) => i.image).concat((spec.package?.contents ?? []).flatMap((c) => (c.image ? [c.image] : []))))];
}

/** Where packaged systemd units go: systemd's own path on every distro (Debian's /lib is /usr/lib since merged-/usr). */
export const UNIT_DIR = '/usr/lib/systemd/system';

const camel: Record<RelationKey, keyof Relations> = {
  depends: 'depends',
  'pre-depends': 'preDepends',
  recommends: 'recommends',
  suggests: 'suggests',
  conflicts: 'conflicts',
  breaks: 'breaks',
  replaces: 'replaces',
  provides: 'provides',
};

export async function makePackagePlans(input: PackagePlanInput): Promise<PackagePlans> {
  const { spec } = input;
  const pkg = spec.package;
  if (!pkg) throw new DockyardError('E_PACKAGE', `${spec.sources.join(', ')}: no package: section (name, version, maintainer and contents of the package)`);
  if (spec.volumes.length > 0) {
    const v = spec.volumes[0];
    throw new DockyardError('E_PACKAGE', `${v.pos ? `${v.pos.file}:${v.pos.line}:${v.pos.col}: ` : ''}volumes are not packaged (volume ${v.name}): bind a host directory instead`);
  }
  const warnings: string[] = [];
  if (spec.kernel || spec.init.length > 0) warnings.push(`${spec.sources[0]}: kernel and init are not part of a package; they are left out`);
  const prefix = pkg.containersPrefix ?? `/usr/lib/${pkg.name}`;

  const rootfs = await planRootfs({
    ...input,
    spec: { ...spec, kernel: undefined, init: [], files: [], volumes: [] },
    containersDir: `${prefix.slice(1)}/containers`,
  });
  warnings.push(...rootfs.warnings);
  for (const b of rootfs.bundles) {
    const no = unsupportedRuntime(b);
    if (no.length > 0) warnings.push(`${b.section} ${b.name}: ${no.join(', ')} of its runtime config are not applied by the generated systemd unit`);
  }
  const units = containerUnits(pkg.name, rootfs.bundles);
  const generated: PackageContentSpec[] = units.map((u) => ({ dst: `${UNIT_DIR}/${u.name}`, content: u.text, type: 'file' as const, mode: 0o644, baseDir: '' }));

  const extra: ExtraSource[] = rootfs.segments.map((s) => ({ what: s.name, entries: () => s.entries(), prefix: '/' }));
  if (spec.files.length > 0) {
    const ids = containerIds(spec);
    const seg = await filesSegment({
      files: spec.files,
      resolveId: (v) => (v === undefined || v === '' || v === 'root' ? 0 : typeof v === 'number' ? v : (ids.get(v) ?? 0)),
      metadata: input.renderMetadata,
      epoch: input.epoch,
      signal: input.signal,
    });
    extra.push({ what: 'files:', entries: () => seg.entries(), prefix: '/' });
  }

  const resolved = await resolveContents({
    contents: [...pkg.contents, ...generated],
    extra,
    images: input.images,
    store: input.store,
    epoch: input.epoch,
    tmpDir: input.tmpDir,
    maxLayerBytes: input.maxLayerBytes,
    signal: input.signal,
  });
  try {
    const user: Record<string, string> = {};
    for (const [k, path] of Object.entries(pkg.scripts)) user[k] = (await readRegular(path, MaxCollectedBytes, `package.scripts.${k} ${path}`, 'E_PACKAGE')).toString('utf8');
    const accounts: Account[] = [...pkg.groups.map((name) => ({ kind: 'group' as const, name })), ...pkg.users.map((u) => ({ kind: 'user' as const, ...u }))];
    const allUnits = [...pkg.units, ...units.map((u) => u.name)];
    const scripts = renderScripts({ units: allUnits, accounts, user });
    const version = String(pkg.version);
    const release = pkg.release ?? '1';
    const epoch = pkg.epoch ?? 0;
    // Without a summary, the description's first line is the summary (as in a Debian control file).
    const written = (pkg.description ?? '').replace(/\s+$/, '');
    const summary = pkg.summary ?? (written.split('\n')[0] || pkg.name);
    const description = pkg.summary === undefined ? written.split('\n').slice(1).join('\n').replace(/^\s*\n/, '') : written;
    const full = `${epoch > 0 ? `${epoch}:` : ''}${version}-${release}`;
    const changelog = (pkg.changelog.length > 0 ? pkg.changelog : [{ version: full, changes: [`Built by dockyard from ${spec.sources.map((s) => s.slice(s.lastIndexOf('/') + 1)).join(', ')}.`] }]).map((c) => ({
      version: c.version,
      date: 'date' in c && c.date !== undefined ? c.date : input.epoch,
      author: ('author' in c && c.author) || pkg.maintainer,
      changes: c.changes,
    }));
    return {
      plan(f: PackagerName): PackagePlan {
        const contents = resolved.forFormat(f);
        const relations = Object.fromEntries(Object.values(camel).map((k) => [k, [] as string[]])) as unknown as Relations;
        for (const k of RELATION_KEYS) relations[camel[k]] = [...(pkg.overrides[f]?.[k] ?? pkg.relations[k] ?? [])];
        // Containers are run by runc: the host's, unless the package brings its own.
        if (rootfs.bundles.length > 0 && !contents.files.some((x) => x.path === RUNC) && !relations.depends.some((d) => /^runc\b/.test(d))) relations.depends.push('runc');
        const meta: PackageMeta = {
          name: pkg.name,
          version,
          epoch,
          release,
          arch: input.arch,
          summary,
          description,
          maintainer: pkg.maintainer,
          vendor: pkg.vendor,
          homepage: pkg.homepage,
          license: pkg.license,
          section: pkg.section ?? 'misc',
          priority: pkg.priority ?? 'optional',
          relations,
          changelog,
        };
        return { meta, contents, scripts, accounts, units: allUnits, time: input.epoch, containersDir: rootfs.bundles.length > 0 ? `${prefix}/containers` : undefined };
      },
      warnings,
      close: () => resolved.close(),
    };
  } catch (e) {
    await resolved.close();
    throw e;
  }
}
