/**
 * The one interface every output format implements. Formats are registered
 * by the name users type after `-f` (`tar`, `kernel+initrd`, `iso-efi`, …).
 */
import type { Segment } from '../rootfs/entry.js';
import type { Components } from '../components/components.js';
import type { Spec, PackagerName } from '../spec/types.js';
import type { PackagePlan } from '../package/types.js';

export type ProgressEvent =
  | { kind: 'pull-start'; ref: string; total: number }
  | { kind: 'pull-progress'; ref: string; done: number; total: number }
  | { kind: 'pull-done'; ref: string }
  | { kind: 'output-start'; format: string; file: string }
  | { kind: 'output-progress'; format: string; file: string; bytes: number }
  | { kind: 'output-done'; format: string; file: string; bytes: number; sha256: string }
  | { kind: 'warning'; message: string }
  | { kind: 'info'; message: string };

export interface FormatContext {
  /** Base name of outputs (LinuxKit's --name). */
  name: string;
  /** Directory outputs go to (LinuxKit's --dir), or a single file (`-o`). */
  dir: string;
  outFile?: string; // set with -o; '-' means write to `stdout`
  /** Where `-o -` writes; supplied by cmd/ (the library never touches the console). */
  stdout?: NodeJS.WritableStream;
  arch: 'amd64' | 'arm64';
  /** Seconds: mtime of every entry and header (SOURCE_DATE_EPOCH). */
  epoch: number;
  /** Segments in output order: kernel, init images, onboot, onshutdown, services, volumes, files. */
  /**
   * The first segment, if the spec has a kernel, is named `kernel` and holds
   * `boot/kernel`, `boot/cmdline` and (if any) `boot/ucode.cpio` before the
   * modules: kernel+initrd style formats split those out, as LinuxKit does.
   */
  segments: Segment[];
  /** Directory where formats may cache encoded segments by key. */
  segmentCacheDir?: string;
  /** Scratch directory for intermediate files (inside the cache). */
  tmpDir?: string;
  /** The components (bootloaders…) this format asked for, resolved for `arch`. */
  components?: Components;
  /** `--size` for disk formats, in bytes (undefined: the smallest that fits plus headroom). */
  diskSize?: number;
  /** Largest output file (--max-output-size); Outputs refuses to write past it. */
  maxOutputBytes?: number;
  /** Largest initramfs, uncompressed (--max-initrd; default pkg/limits.ts). */
  maxInitrdBytes?: number;
  /** The spec being built. */
  spec: Spec;
  /**
   * For formats whose input is 'package': the package plan of the spec for
   * this format (metadata with its overrides, contents resolved from the
   * images once for every format of the build, scripts).
   */
  packagePlan?(format: PackagerName): PackagePlan;
  emit(ev: ProgressEvent): void;
  signal?: AbortSignal;
}

export interface OutputFile {
  path: string;
  bytes: number;
  sha256: string;
}

/** What a format's output file names depend on. */
export interface OutputTarget {
  spec: Spec;
  arch: 'amd64' | 'arm64';
}

export interface Format {
  readonly name: string;
  /** Output file names (relative to dir) this format writes for `name` (packages: as their ecosystem names them). */
  files(name: string, target: OutputTarget): string[];
  /**
   * Those of its files whose bytes are the build's, whichever format writes
   * them (NAME-kernel, NAME-cmdline of kernel+initrd, kernel+squashfs…):
   * formats listing the same file may be built together into one --dir.
   */
  sameBytes?(name: string): string[];
  /**
   * What it is written from: the root filesystem's segments (default), or
   * the spec's package plan (`package:` section, its containers and images).
   */
  readonly input?: 'rootfs' | 'package';
  /** Problems found in the spec before anything is pulled (package names and versions): throws one clear error. */
  check?(target: OutputTarget): void;
  /** Architectures it supports (default: both). */
  readonly arches?: readonly ('amd64' | 'arm64')[];
  /**
   * Compresses a whole disk (the long pole of a build): started before the
   * others when formats build side by side, so its time overlaps theirs.
   */
  readonly heavy?: boolean;
  /** Components (see pkg/components) it needs for `arch`, resolved before it runs. */
  components?(arch: 'amd64' | 'arm64'): string[];
  /**
   * Write the outputs. Implementations write to temp files and rename on
   * success; on failure nothing is left behind.
   */
  write(ctx: FormatContext): Promise<OutputFile[]>;
}
