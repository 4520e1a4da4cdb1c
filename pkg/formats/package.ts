/**
 * The packaging formats (deb, rpm, pacman) behind the one Format interface:
 * each is an encoder of the package plan (pkg/package) and the rules its
 * ecosystem has for names and versions, checked before anything is pulled.
 */
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';
import { packageFileName, type PackageFormat, type PackageMeta, type PackagePlan } from '../package/types.js';
import type { Format, FormatContext, OutputFile, OutputTarget } from './format.js';
import { Outputs } from './output.js';

export interface PackageEncoder {
  name: PackageFormat;
  /** A bad name or version: the key at fault and one line saying why. */
  checkNames(meta: Pick<PackageMeta, 'name' | 'version' | 'release' | 'epoch'>): { key: 'name' | 'version' | 'release'; message: string } | undefined;
  encode(plan: PackagePlan, sink: ByteSink, o: { tmpDir: string; mtime: number; signal?: AbortSignal }): Promise<void>;
}

function metaOf(t: OutputTarget): Pick<PackageMeta, 'name' | 'version' | 'release' | 'epoch' | 'arch'> {
  const p = t.spec.package;
  if (!p) throw new DockyardError('E_PACKAGE', `${t.spec.sources.join(', ')}: no package: section: a package needs at least name, version and maintainer`);
  return { name: p.name, version: String(p.version), release: p.release ?? '1', epoch: p.epoch ?? 0, arch: t.arch };
}

export function packageFormat(enc: PackageEncoder): Format {
  return {
    name: enc.name,
    input: 'package',
    files: (_name, t) => [packageFileName(enc.name, metaOf(t))],
    check(t) {
      const bad = enc.checkNames(metaOf(t));
      if (!bad) return;
      const pos = t.spec.package?.keyPos[bad.key] ?? t.spec.package?.pos;
      throw new DockyardError('E_SPEC_INVALID', `${pos ? `${pos.file}:${pos.line}:${pos.col}: ` : ''}package.${bad.key}: ${bad.message} (-f ${enc.name})`);
    },
    async write(ctx: FormatContext): Promise<OutputFile[]> {
      if (!ctx.packagePlan) throw new DockyardError('E_INTERNAL', `${enc.name}: no package plan`);
      const plan = ctx.packagePlan(enc.name);
      const outs = new Outputs(ctx);
      try {
        const o = await outs.create(packageFileName(enc.name, plan.meta), true);
        ctx.emit({ kind: 'output-start', format: enc.name, file: o.path });
        await enc.encode(plan, o.sink, { tmpDir: ctx.tmpDir ?? ctx.dir, mtime: plan.time, signal: ctx.signal });
        return await outs.commit(enc.name);
      } catch (e) {
        await outs.abort();
        throw e;
      }
    },
  };
}
