#!/usr/bin/env node
/**
 * The CLI: flag parsing, progress rendering and error printing only. All work
 * happens in pkg/.
 */
import { Command, Option } from 'commander';
import { basename, extname, resolve } from 'node:path';
import { homedir } from 'node:os';
import { rm } from 'node:fs/promises';
import { isDockyardError, formatProblem, DockyardError } from '../pkg/errors.js';
import { readSpecInputs, loadSpecs, nothingToBuild, renderSpecYaml } from '../pkg/spec/index.js';
import { checkImageEntry, describeRefusal, runtimeRefusals } from '../pkg/plan/ociconfig.js';
import type { Arch } from '../pkg/build/build.js';
import { defaultEpoch, defaultLimits, formatSize, MaxEpoch, parseSize } from '../pkg/limits.js';
import { defaultTimeouts, timeoutsOf } from '../pkg/oci/registry/http.js';
import { errnoReason, isErrno } from '../pkg/fsutil.js';
import { removeTempsSync } from '../pkg/tempfiles.js';
import { Cache } from '../pkg/cache/index.js';
import { formatArches, formatNames } from '../pkg/formats/names.js';
import { createReporter } from './progress.js';
import { parseComponentFlags } from '../pkg/components/components.js';
import { registerRun } from './run.js';
import { registerPkg } from './pkg.js';

let debug = false;

function hostArch(): Arch {
  return process.arch === 'arm64' ? 'arm64' : 'amd64';
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.DOCKYARD_CACHE) return env.DOCKYARD_CACHE;
  const base = env.XDG_CACHE_HOME || resolve(homedir(), '.cache');
  return resolve(base, 'dockyard');
}

function epochFromEnv(): number {
  const s = process.env.SOURCE_DATE_EPOCH;
  if (s === undefined || s === '') return defaultEpoch;
  const n = /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > MaxEpoch) {
    throw new DockyardError('E_USAGE', `SOURCE_DATE_EPOCH must be a whole number of seconds from 0 to ${MaxEpoch} (2106-02-07, the last time a cpio header holds), got "${s.slice(0, 40)}"`);
  }
  return n;
}

/** `--name`: the base of output file names, so a plain name (no directories, nothing hidden). */
function parseName(s: string): string {
  if (!/^[A-Za-z0-9_+@][A-Za-z0-9._+@-]{0,199}$/.test(s)) {
    throw new DockyardError('E_USAGE', `--name "${s.slice(0, 60)}" is not a plain name: use letters, digits and . _ + @ - (no "/", not starting with "." or "-"); --dir chooses the directory`);
  }
  return s;
}

/** `--timeout`: seconds (fractions allowed). */
function parseTimeout(s: string): number {
  const n = Number(s);
  if (!/^\d+(\.\d+)?$/.test(s.trim()) || !(n > 0) || n > 86400) throw new DockyardError('E_USAGE', `--timeout wants seconds (e.g. 30), got "${s}"`);
  return n;
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
const collectOne = (v: string, prev: string[] = []) => [...prev, v];

function archesOf(format: string): readonly Arch[] {
  const a = formatArches.get(format);
  if (!a) throw new DockyardError('E_UNSUPPORTED_FORMAT', `unknown output format "${format}" (known: ${formatNames.join(', ')})`);
  return a;
}

/** `--arch amd64`, `--arch amd64,arm64`. */
function parseArches(s: string): Arch[] {
  const list = [...new Set(s.split(',').map((a) => a.trim()).filter(Boolean))];
  for (const a of list) if (a !== 'amd64' && a !== 'arm64') throw new DockyardError('E_UNSUPPORTED_ARCH', `unsupported architecture "${a}" (amd64, arm64)`);
  if (list.length === 0) throw new DockyardError('E_USAGE', '--arch wants amd64, arm64 or amd64,arm64');
  return list as Arch[];
}

function parseMirrors(list: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of list) {
    const i = m.indexOf('=');
    if (i <= 0) throw new DockyardError('E_USAGE', `--mirror takes REGISTRY=URL, got "${m}"`);
    const url = m.slice(i + 1);
    let u: URL | undefined;
    try {
      u = new URL(url);
    } catch {
      /* said below */
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || !u.host || u.search || u.hash || u.username || u.password) {
      throw new DockyardError('E_USAGE', `--mirror ${m.slice(0, i)}=URL: "${url}" is not an http:// or https:// URL of a registry (no query, no credentials in it)`);
    }
    out[m.slice(0, i)] = url;
  }
  return out;
}

/** Signals: the first aborts the command (exit 130 for SIGINT, 143 for SIGTERM); a second, or 5 s without an end, exits at once. */
const controller = new AbortController();
let signalled: NodeJS.Signals | undefined;
const signalExit = (sig: NodeJS.Signals | undefined) => (sig === 'SIGTERM' ? 143 : 130);

function onSignal(sig: NodeJS.Signals): void {
  if (signalled) {
    removeTempsSync();
    process.exit(signalExit(sig));
  }
  signalled = sig;
  controller.abort(new DockyardError('E_INTERRUPTED', `interrupted (${sig})`));
  setTimeout(() => {
    process.stderr.write(`dockyard: interrupted (${sig})\n`);
    removeTempsSync();
    process.exit(signalExit(sig));
  }, 5000).unref();
}

// A reader that went away (`dockyard cache ls | head -1`): end quietly, as a
// process killed by SIGPIPE would (128 + 13), temp files removed.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    removeTempsSync();
    process.exit(e.code === 'EPIPE' ? 141 : 1);
  });
}

function catchSignals(): void {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

const program = new Command();
program
  .name('dockyard')
  .description('Assemble bootable systems from OCI images — LinuxKit specs, no Docker daemon')
  .option('--debug', 'print stack traces and debug detail')
  .showHelpAfterError()
  .hook('preAction', (cmd, action) => {
    debug = Boolean(cmd.opts().debug);
    // `run qemu` passes signals on to qemu itself.
    if (action.name() !== 'qemu') catchSignals();
  });

program
  .command('build')
  .description('build a system from one or more spec files (later files extend earlier ones; - reads stdin)')
  .argument('<file...>', 'spec files')
  .option('-f, --format <formats>', `output formats, repeatable or comma-separated (${formatNames.join(', ')})`, collect)
  .option('-o, --o <file>', 'write the single output to FILE (- for stdout); default format becomes tar')
  .option('--dir <dir>', 'directory for outputs', '.')
  .option('--name <name>', 'base name of outputs (default: first spec file name; packages are named from package: as their ecosystem names them)', parseName)
  .option('--arch <arch>', 'target architecture: amd64, arm64, or both (amd64,arm64: outputs go to DIR/ARCH/)', hostArch())
  .option('--cache <dir>', 'image cache directory (env DOCKYARD_CACHE)', defaultCacheDir())
  .option('--pull', 'always pull images, even when cached')
  .option('--offline', 'never touch the network: every image must be cached')
  .option('--no-sbom', 'do not write an SBOM')
  .option('--dry-run', 'print the merged spec and exit')
  .option('--decompress-kernel', 'write the kernel uncompressed (a gzip Image, or a bzImage with a gzip payload)')
  .option('--insecure-registry <host>', 'allow plain HTTP for HOST (repeatable)', collectOne)
  .option('--mirror <registry=url>', 'pull REGISTRY through URL (repeatable)', collectOne)
  .option('--component <name=ref>', 'use REF for a bootloader or firmware component (systemd-boot, syslinux, grub-efi, u-boot-rpi, raspi-firmware; repeatable)', collectOne)
  .option('--size <size>', 'disk size for disk formats, e.g. 512M, 2G (default: what fits, plus headroom)')
  .option('--max-layer-size <size>', `largest uncompressed image layer accepted (default ${formatSize(defaultLimits.layerBytes)})`)
  .option('--max-output-size <size>', `largest output file written (default ${formatSize(defaultLimits.outputBytes)})`)
  .option('--max-initrd <size>', `largest initramfs, uncompressed; a bigger system wants kernel+squashfs or kernel+erofs (default ${formatSize(defaultLimits.initrdBytes)})`)
  .option('--timeout <seconds>', `registry timeouts, each: connecting, waiting for an answer, a download that stops moving (less than 64 KiB in that time) (default ${defaultTimeouts.headersMs / 1000})`, parseTimeout)
  .option('--strict', 'settings runc refuses at boot (hostname without uts: new, sysctls of a shared namespace) are errors, not warnings')
  .option('--json', 'print outputs, digests and timings as JSON on stdout')
  .action(async (files: string[], o) => {
    // The build pipeline is loaded when a build runs (other commands start faster).
    const { build, loadOrThrow } = await import('../pkg/build/build.js');
    const inputs = await readSpecInputs(files, process.stdin);
    if (o.dryRun) {
      const { spec } = loadOrThrow(inputs);
      process.stdout.write(renderSpecYaml(spec));
      return;
    }
    let formats: string[] = o.format ?? [];
    if (o.o !== undefined) {
      if (formats.length === 0) formats = ['tar'];
      if (formats.length > 1) throw new DockyardError('E_USAGE', '-o writes one output: give exactly one --format');
      if (o.o === '-' && o.json) throw new DockyardError('E_USAGE', '--json and -o - both want stdout');
    } else if (formats.length === 0) formats = ['kernel+initrd'];
    // The first spec's name, made plain (it names the outputs when --name is not given).
    const first = o.name ?? (files[0] === '-' ? 'moby' : basename(files[0], extname(files[0])).replace(/[^A-Za-z0-9._+@-]/g, '_').replace(/^[.-]/, '_') || 'moby');
    const arches = parseArches(o.arch);
    for (const f of formats) {
      if (!arches.some((a) => archesOf(f).includes(a))) throw new DockyardError('E_UNSUPPORTED_ARCH', `format ${f} does not exist for ${arches.join(', ')} (it does for ${archesOf(f).join(', ')})`);
    }
    if (arches.length > 1 && o.o !== undefined) throw new DockyardError('E_USAGE', '-o writes one output: give one --arch');
    const reporter = createReporter({ tty: Boolean(process.stderr.isTTY) && !o.json, stream: process.stderr });
    const results: ({ arch: Arch } & Awaited<ReturnType<typeof import('../pkg/build/build.js').build>>)[] = [];
    try {
      for (const arch of arches) {
        // With several arches, a format that exists for only some of them is built for those.
        const archFormats = arches.length > 1 ? formats.filter((f) => archesOf(f).includes(arch)) : formats;
        if (archFormats.length === 0) continue;
        const result = await reporter.run(() =>
          build({
            inputs,
            formats: archFormats,
            name: first,
            dir: arches.length > 1 ? resolve(o.dir, arch) : resolve(o.dir),
            outFile: o.o === undefined ? undefined : o.o === '-' ? '-' : resolve(o.o),
            stdout: process.stdout,
            arch,
            cacheDir: resolve(o.cache),
            pull: o.pull,
            offline: o.offline,
            insecureRegistries: o.insecureRegistry,
            mirrors: parseMirrors(o.mirror),
            epoch: epochFromEnv(),
            epochGiven: (process.env.SOURCE_DATE_EPOCH ?? '') !== '',
            sbom: o.sbom,
            decompressKernel: o.decompressKernel,
            components: parseComponentFlags(o.component),
            diskSize: o.size === undefined ? undefined : parseSize(o.size, '--size'),
            limits: {
              layerBytes: o.maxLayerSize === undefined ? defaultLimits.layerBytes : parseSize(o.maxLayerSize, '--max-layer-size'),
              outputBytes: o.maxOutputSize === undefined ? defaultLimits.outputBytes : parseSize(o.maxOutputSize, '--max-output-size'),
              initrdBytes: o.maxInitrd === undefined ? defaultLimits.initrdBytes : parseSize(o.maxInitrd, '--max-initrd'),
            },
            timeouts: o.timeout === undefined ? undefined : timeoutsOf(o.timeout),
            strict: o.strict,
            emit: reporter.emit,
            signal: controller.signal,
          }),
        );
        results.push({ arch, ...result });
      }
      if (o.json) process.stdout.write(JSON.stringify(arches.length > 1 ? results : results[0], null, 2) + '\n');
    } catch (e) {
      // One build of several failed: remove what the others wrote (no partial output).
      await Promise.all(results.flatMap((r) => r.outputs.map((f) => rm(f.path, { force: true }))));
      throw e;
    }
  });

program
  .command('validate')
  .description('check spec files without pulling anything; print every problem as file:line:col')
  .argument('<file...>', 'spec files')
  .option('--strict', 'settings runc refuses at boot are errors, not warnings')
  .action(async (files: string[], o) => {
    const inputs = await readSpecInputs(files, process.stdin);
    // A files source missing here may exist where the build runs: warn only.
    const { spec, problems, warnings } = loadSpecs(inputs, { checkSources: 'warn' });
    const lines = problems.map(formatProblem);
    const at = (p: { file: string; line: number; col: number } | undefined, msg: string) => (p ? `${p.file}:${p.line}:${p.col}: ${msg}` : msg);
    if (spec) {
      const empty = nothingToBuild(spec);
      if (empty) lines.push(empty);
      const sections = [['onboot', spec.onboot], ['onshutdown', spec.onshutdown], ['services', spec.services]] as const;
      for (const [section, list] of sections) {
        list.forEach((entry, i) => {
          for (const msg of checkImageEntry(entry)) lines.push(at(entry.pos, msg));
          // What the YAML alone shows; a build also weighs the image's label.
          for (const r of runtimeRefusals(entry, false)) {
            const w = describeRefusal(entry, `${section}[${i}]`, r);
            if (o.strict) lines.push(`${w} (--strict)`);
            else warnings.push(w);
          }
        });
      }
    }
    for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
    if (lines.length > 0) {
      for (const l of lines) process.stderr.write(l + '\n');
      process.exitCode = 1;
      return;
    }
    process.stdout.write(`${files.join(' ')}: ok\n`);
  });

const cache = program.command('cache').description('manage the image cache (an OCI image layout)');
cache.option('--cache <dir>', 'image cache directory (env DOCKYARD_CACHE)', defaultCacheDir());
const cacheDir = () => resolve(cache.opts().cache);

cache
  .command('ls')
  .description('list cached references')
  .action(async () => {
    for (const e of await new Cache(cacheDir()).list()) process.stdout.write(`${e.ref}\t${e.digest}\n`);
  });
cache
  .command('rm')
  .description('remove a reference (and blobs no other reference uses)')
  .argument('<ref>')
  .action(async (ref: string) => {
    await new Cache(cacheDir()).remove(ref);
  });
cache
  .command('clean')
  .description('remove everything from the cache')
  .action(async () => {
    await new Cache(cacheDir()).clean();
  });
cache
  .command('pull')
  .description('pull a reference into the cache')
  .argument('<ref>')
  .addOption(new Option('--arch <arch>', 'platform to pull').choices(['amd64', 'arm64']).default(hostArch()))
  .option('--insecure-registry <host>', 'allow plain HTTP for HOST (repeatable)', collectOne)
  .option('--mirror <registry=url>', 'pull REGISTRY through URL (repeatable)', collectOne)
  .option('--timeout <seconds>', `registry timeouts (default ${defaultTimeouts.headersMs / 1000})`, parseTimeout)
  .action(async (ref: string, o) => {
    const h = await new Cache(cacheDir()).pull(
      ref,
      { os: 'linux', architecture: o.arch },
      {
        pull: true,
        insecureRegistries: o.insecureRegistry,
        mirrors: parseMirrors(o.mirror),
        timeouts: o.timeout === undefined ? undefined : timeoutsOf(o.timeout),
        signal: controller.signal,
      },
    );
    process.stdout.write(`${ref}\t${h.digest}\n`);
  });
cache
  .command('import')
  .description('import an OCI image layout (directory or tar) whose index entries name their refs')
  .argument('<path>')
  .action(async (path: string) => {
    const refs = await new Cache(cacheDir()).import(resolve(path), controller.signal);
    for (const r of refs) process.stdout.write(`${r}\n`);
  });
cache
  .command('export')
  .description('export a cached reference as an OCI image layout tar')
  .argument('<ref>')
  .requiredOption('-o, --output <file>', 'tar file to write')
  .action(async (ref: string, o) => {
    await new Cache(cacheDir()).export(ref, resolve(o.output), controller.signal);
  });

registerRun(program);
registerPkg(program, { defaultCacheDir: () => defaultCacheDir(), epoch: epochFromEnv, signal: controller.signal });

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (debug) console.error(e);
    if (signalled && !(isDockyardError(e) && e.code !== 'E_INTERRUPTED')) {
      // Whatever a step threw on its way out, the cause is the signal.
      process.stderr.write(`dockyard: interrupted (${signalled})\n`);
      process.exitCode = signalExit(signalled);
    } else if (isDockyardError(e)) {
      process.stderr.write(`dockyard: ${e.toLine()}\n`);
      process.exitCode = e.code === 'E_USAGE' ? 2 : e.code === 'E_INTERRUPTED' ? signalExit(signalled) : 1;
    } else if (isErrno(e)) {
      // A failure of the operating system (no space, no permission): the user's to act on, not a bug.
      const path = e.path ? ` ${e.path}` : '';
      process.stderr.write(`dockyard: ${e.syscall}${path}: ${errnoReason(e)}\n`);
      process.exitCode = 1;
    } else {
      const msg = e instanceof Error ? e.message : String(e);
      process.stderr.write(`dockyard: internal error: ${msg}${debug ? '' : ' (run with --debug for details)'}\n`);
      process.exitCode = 70;
    }
  }
}

await main();
