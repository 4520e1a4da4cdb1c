/**
 * The stream every output is written from: entries (path, header, content
 * source), grouped in segments. Nothing is ever unpacked onto the host:
 * ownership, setuid bits and device nodes live only in these headers.
 */
export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface Entry {
  /** Relative path in the output: no leading `/` or `./`, no trailing `/`. */
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (0o7777 mask). */
  mode: number;
  uid: number;
  gid: number;
  /** Content length for `file`, else 0. */
  size: number;
  /** Symlink target as written, or a hard link's target as a full output path. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Owner and group names, for archives whose readers look names up first (packages); absent in root filesystems. */
  uname?: string;
  gname?: string;
  /** Seconds since the epoch; writers use the build epoch when absent. */
  mtime?: number;
  /**
   * Content of a `file`: bytes, or chunks to be iterated once. Chunks must be
   * consumed (or abandoned) before the next entry of the same segment is
   * requested: they are usually a window into a layer being decompressed.
   */
  body?: Buffer | AsyncIterable<Buffer>;
}

export interface Segment {
  /** For progress and errors: `kernel`, `init linuxkit/init:…`, `onboot/000-dhcpcd`, `files`. */
  name: string;
  /**
   * sha256 hex over everything that determines the entries (image digest,
   * placement, options, generated content). Equal keys ⇒ equal entries, so
   * formats may cache a segment's encoded form under it.
   */
  key: string;
  /** A fresh, deterministic iteration each call. */
  entries(): AsyncIterable<Entry>;
  /**
   * The kernel segment's entries() in two parts: the leading `boot` entries,
   * and everything after them (the modules). A format that caches the second
   * part then need not read the image to get past the first.
   */
  split?: { boot(): AsyncIterable<Entry>; rest(): AsyncIterable<Entry> };
}
