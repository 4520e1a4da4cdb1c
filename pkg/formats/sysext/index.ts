/**
 * `sysext`: a systemd system extension image (systemd-sysext(8), the UAPI
 * group's Extension Image specification) of the spec's package — the same
 * contents deb, rpm and pacman ship (`package:` section, its images, units
 * and container bundles) — as NAME.raw: a squashfs (default) or EROFS file
 * system whose /usr and /opt are overlaid on the host's by
 * `systemd-sysext merge`.
 *
 * What the image holds besides the contents:
 *   usr/lib/extension-release.d/extension-release.NAME
 *     ID (default _any), VERSION_ID / SYSEXT_LEVEL when given, ARCHITECTURE
 *     as systemd names it (x86-64, arm64): systemd-sysext refuses an image
 *     whose file name does not match NAME.
 *   usr/lib/sysusers.d/NAME.conf      the package's groups and users
 *     (systemd-sysusers makes them: a sysext has no maintainer scripts)
 *   usr/lib/systemd/system/multi-user.target.d/10-NAME.conf
 *     Wants= the package's units, so a boot with the extension merged
 *     starts them (after a merge on a running system: daemon-reload, start).
 * Only /usr and /opt can be extended: any other path is an error naming
 * the paths (mark /etc files `packager: [deb, rpm, pacman]`).
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import type { Entry } from '../../rootfs/entry.js';
import type { PackagePlan } from '../../package/types.js';
import { DockyardError } from '../../errors.js';
import { Outputs } from '../output.js';
import { writeSquashfs } from '../../squashfs/index.js';
import { writeErofs } from '../../erofs/index.js';

/** systemd's names (src/basic/architecture.h), as ARCHITECTURE= wants them. */
const SYSTEMD_ARCH = { amd64: 'x86-64', arm64: 'arm64' } as const;

const extendable = (p: string) => p === '/usr' || p.startsWith('/usr/') || p === '/opt' || p.startsWith('/opt/');

/** A name systemd-sysext accepts for an image (and its extension-release file). */
const GOOD_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

function releaseFile(plan: PackagePlan, ctx: FormatContext): string {
  const o = ctx.spec.package?.sysext ?? {};
  const lines = [`ID=${o.id ?? '_any'}`];
  if (o.version_id !== undefined) lines.push(`VERSION_ID=${o.version_id}`);
  if (o.sysext_level !== undefined) lines.push(`SYSEXT_LEVEL=${o.sysext_level}`);
  lines.push(`ARCHITECTURE=${SYSTEMD_ARCH[ctx.arch]}`);
  // Informational: what the image is (os-release(5) fields an extension may carry).
  lines.push(`IMAGE_ID=${ctx.name}`, `IMAGE_VERSION=${plan.meta.version}-${plan.meta.release}`);
  return lines.join('\n') + '\n';
}

function sysusers(plan: PackagePlan): string | undefined {
  if (plan.accounts.length === 0) return undefined;
  const lines = plan.accounts.map((a) =>
    a.kind === 'group' ? `g ${a.name} -` : `u ${a.name} -${a.group ? ':' + a.group : ''} "${a.name}" ${a.home ?? '/'} ${a.shell ?? '/usr/sbin/nologin'}`,
  );
  return `# ${plan.meta.name}: the accounts its packages' scripts create (systemd-sysusers)\n${lines.join('\n')}\n`;
}

/** The image's entries: the package contents (sorted, parents first), then what the image adds. */
async function* entries(plan: PackagePlan, extra: { path: string; text: string }[]): AsyncGenerator<Entry> {
  const files = plan.contents.files.filter((f) => !f.ghost);
  for (const f of files) {
    const path = f.path.slice(1);
    if (f.type === 'dir') yield { path, type: 'dir', mode: f.mode, uid: f.uid, gid: f.gid, size: 0, mtime: f.mtime };
    else if (f.type === 'symlink') yield { path, type: 'symlink', mode: 0o777, uid: f.uid, gid: f.gid, size: 0, linkname: f.linkname, mtime: f.mtime };
    else yield { path, type: 'file', mode: f.mode, uid: f.uid, gid: f.gid, size: f.size, body: plan.contents.body(f), mtime: f.mtime };
  }
  for (const x of extra) {
    const body = Buffer.from(x.text, 'utf8');
    yield { path: x.path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: body.length, body, mtime: plan.time };
  }
}

export const sysextFormat: Format = {
  name: 'sysext',
  input: 'package',
  files: (name) => [`${name}.raw`],
  check(t) {
    if (!t.spec.package) throw new DockyardError('E_PACKAGE', `${t.spec.sources.join(', ')}: no package: section: a sysext holds a package's /usr and /opt contents`);
  },
  async write(ctx: FormatContext): Promise<OutputFile[]> {
    if (!ctx.packagePlan) throw new DockyardError('E_INTERNAL', 'sysext: no package plan');
    if (ctx.outFile) throw new DockyardError('E_USAGE', 'sysext is written by position: use --dir and --name, not -o');
    if (!GOOD_NAME.test(ctx.name)) throw new DockyardError('E_USAGE', `sysext: "${ctx.name}" cannot name an extension image (letters, digits, . _ + -): give --name`);
    const plan = ctx.packagePlan('sysext');
    // Named: what lies outside, not the directories above it.
    const out = plan.contents.files.filter((f) => !f.ghost && !f.implicit && !extendable(f.path));
    const outside = out.filter((f) => f.type !== 'dir' || !out.some((g) => g.path.startsWith(`${f.path}/`)));
    if (outside.length > 0) {
      const shown = outside.slice(0, 5).map((f) => f.path);
      throw new DockyardError(
        'E_PACKAGE',
        `sysext: a system extension holds only /usr and /opt, but the package has ${shown.join(', ')}${outside.length > 5 ? ` and ${outside.length - 5} more` : ''} (limit them to other formats with packager: [deb, rpm, pacman])`,
      );
    }
    const extra = [{ path: `usr/lib/extension-release.d/extension-release.${ctx.name}`, text: releaseFile(plan, ctx) }];
    const users = sysusers(plan);
    if (users) extra.push({ path: `usr/lib/sysusers.d/${ctx.name}.conf`, text: users });
    if (plan.units.length > 0) extra.push({ path: `usr/lib/systemd/system/multi-user.target.d/10-${ctx.name}.conf`, text: `[Unit]\nWants=${plan.units.join(' ')}\n` });
    for (const x of extra)
      if (plan.contents.files.some((f) => f.path === `/${x.path}`)) throw new DockyardError('E_PACKAGE', `sysext: the package has /${x.path}, which the extension image writes itself`);
    const fs = ctx.spec.package?.sysext?.filesystem ?? 'squashfs';
    const outs = new Outputs(ctx);
    try {
      const img = await outs.createPositional(`${ctx.name}.raw`);
      ctx.emit({ kind: 'output-start', format: 'sysext', file: img.path });
      // Implicit parents (/usr itself and the like) are root's 0755 in the package; the extension's root directory too.
      const all = entries(plan, extra);
      const o = { epoch: plan.time, signal: ctx.signal };
      const { bytes } = fs === 'erofs' ? await writeErofs(all, img.sink, o) : await writeSquashfs(all, img.sink, o);
      await img.sink.truncate(bytes);
      return await outs.commit('sysext');
    } catch (e) {
      await outs.abort();
      throw e;
    }
  },
};
