/**
 * A file written by position, for filesystem images whose superblock (at
 * the start) points at tables written after the data (squashfs, EROFS): the
 * data is streamed in as it comes, the tables after it, the superblock last.
 */
/** What FilePositionalSink needs of an open file (node:fs/promises' FileHandle has it). */
export interface PositionalFile {
  write(b: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  truncate(len: number): Promise<void>;
}

export interface PositionalSink {
  /** Writes `b` at byte `position` (the file grows as needed). */
  pwrite(b: Buffer, position: number): Promise<void>;
  /** Cuts the output to `len` bytes (a writer may have written past its image: a duplicate's data rewound near the end). */
  truncate(len: number): Promise<void>;
}

/**
 * Over an open file; `limit` refuses writes that would end past it
 * (--max-output-size); `onError` names the file in a write error (ENOSPC).
 */
export class FilePositionalSink implements PositionalSink {
  /** One past the highest byte written. */
  end = 0;
  constructor(
    private readonly fh: PositionalFile,
    private readonly limit?: { max: number; error: () => Error },
    private readonly onError: (e: unknown) => Error = (e) => e as Error,
  ) {}

  async pwrite(b: Buffer, position: number): Promise<void> {
    if (b.length === 0) return;
    const end = position + b.length;
    if (this.limit && end > this.limit.max) throw this.limit.error();
    let done = 0;
    while (done < b.length) {
      let bytesWritten: number;
      try {
        ({ bytesWritten } = await this.fh.write(b, done, b.length - done, position + done));
      } catch (e) {
        throw this.onError(e);
      }
      done += bytesWritten;
    }
    if (end > this.end) this.end = end;
  }

  async truncate(len: number): Promise<void> {
    try {
      await this.fh.truncate(len);
    } catch (e) {
      throw this.onError(e);
    }
    this.end = len;
  }
}

/** In memory, for unit tests. */
export class BufferPositionalSink implements PositionalSink {
  private buf = Buffer.alloc(0);
  end = 0;
  async pwrite(b: Buffer, position: number): Promise<void> {
    const end = position + b.length;
    if (end > this.buf.length) {
      const n = Buffer.alloc(Math.max(end, this.buf.length * 2));
      this.buf.copy(n);
      this.buf = n;
    }
    b.copy(this.buf, position);
    if (end > this.end) this.end = end;
  }
  async truncate(len: number): Promise<void> {
    if (len > this.buf.length) await this.pwrite(Buffer.alloc(0), len);
    this.end = len;
  }
  bytes(): Buffer {
    return this.buf.subarray(0, this.end);
  }
}
