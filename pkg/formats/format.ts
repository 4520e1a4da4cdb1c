/**
 * The one interface every output format implements. Formats are registered
 * by the name users type after `-f` (`tar`, `kernel+initrd`, `iso-efi`, …).
 */
import type { Segment } from '../rootfs/entry.js';
import type { Components } from '../components/components.js';

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
  emit(ev: ProgressEvent): void;
  signal?: AbortSignal;
}

export interface OutputFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface Format {
  readonly name: string;
  /** Output file names (relative to dir) this format writes for `name`. */
  files(name: string): string[];
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
