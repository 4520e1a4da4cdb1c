/**
 * One error type for the whole library. `cmd/` maps `code` to an exit status
 * and prints `message` on one line (the stack only with --debug).
 */
export type ErrorCode =
  | 'E_SPEC_YAML' // the file is not valid YAML
  | 'E_SPEC_INVALID' // schema or semantic check failed
  | 'E_SPEC_READ' // a spec or files: source could not be read
  | 'E_IMAGE_REF' // an image reference does not parse
  | 'E_IMAGE_NOT_FOUND' // no such image / tag / platform
  | 'E_DIGEST_MISMATCH' // bytes do not hash to the digest that named them
  | 'E_AUTH' // registry refused our credentials
  | 'E_REGISTRY' // any other registry protocol failure
  | 'E_NETWORK' // connection refused / reset / timeout after retries
  | 'E_OFFLINE' // needed the network with --offline
  | 'E_CACHE' // the cache is unusable
  | 'E_CACHE_CORRUPT' // a cached blob or segment did not hash to its digest (it was removed)
  | 'E_LIMIT' // an input or output went past a size limit
  | 'E_LAYER_UNSAFE' // a layer tries to escape (../, absolute link outside)
  | 'E_LAYER_FORMAT' // a layer is not a tar we can read
  | 'E_KERNEL' // kernel image lacks what we need
  | 'E_PACKAGE' // a package: section cannot be built (a source missing from its image, two sources for one path)
  | 'E_COMPONENT' // a bootloader component image is missing, or lacks a file a format needs
  | 'E_ARCHIVE_FORMAT' // a Debian archive's index, Release file or package does not parse
  | 'E_ARCHIVE_SIGNATURE' // an InRelease is unsigned, badly signed, or signed by a key outside the keyring
  | 'E_ARCHIVE_CHECKSUM' // an index or a package does not match the Release file, the index or the lock
  | 'E_RESOLVE' // a package set cannot be satisfied from the archive
  | 'E_UNSUPPORTED_FORMAT'
  | 'E_UNSUPPORTED_ARCH'
  | 'E_OUTPUT' // writing an output failed
  | 'E_INTERRUPTED' // SIGINT/SIGTERM
  | 'E_USAGE' // bad command line
  | 'E_INTERNAL';

export interface SourcePosition {
  file: string;
  line: number; // 1-based
  col: number; // 1-based
}

export class DockyardError extends Error {
  readonly code: ErrorCode;
  readonly position?: SourcePosition;
  constructor(code: ErrorCode, message: string, opts: { cause?: unknown; position?: SourcePosition } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DockyardError';
    this.code = code;
    this.position = opts.position;
  }

  /** `file:line:col: message` when a position is known, else the message. */
  toLine(): string {
    const p = this.position;
    return p ? `${p.file}:${p.line}:${p.col}: ${this.message}` : this.message;
  }
}

export function isDockyardError(e: unknown): e is DockyardError {
  return e instanceof DockyardError;
}

/** One problem found in a spec; validation returns arrays of these. */
export interface SpecProblem {
  file: string;
  line: number;
  col: number;
  /** JSON-pointer-ish path of the offending key, e.g. `onboot/0/capabilities`. */
  path: string;
  message: string;
}

export function formatProblem(p: SpecProblem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.message}`;
}
