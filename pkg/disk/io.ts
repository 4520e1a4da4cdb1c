/** Byte-stream helpers shared by the disk writers. */
import { DockyardError } from '../errors.js';
import { forwardZeros, type ByteSink } from '../archive/sink.js';

/** `n` zero bytes: the sink's zeros() if it has one, else one shared, never written buffer. */
export async function writeZeros(sink: ByteSink, n: number): Promise<void> {
  if (n > 0) await forwardZeros(sink, n);
}

/** Passes bytes on, counting them; refuses more than `limit`. */
class Bounded implements ByteSink {
  bytes = 0;
  constructor(
    private readonly inner: ByteSink,
    private readonly limit: number,
    private readonly what: string,
  ) {}
  async write(b: Buffer): Promise<void> {
    this.bytes += b.length;
    if (this.bytes > this.limit) throw new DockyardError('E_INTERNAL', `${this.what} wrote more than its declared ${this.limit} bytes`);
    await this.inner.write(b);
  }
  async zeros(n: number): Promise<void> {
    this.bytes += n;
    if (this.bytes > this.limit) throw new DockyardError('E_INTERNAL', `${this.what} wrote more than its declared ${this.limit} bytes`);
    await forwardZeros(this.inner, n);
  }
}

/** Write `size` bytes with `write`, checking the count. */
export async function writeExactly(sink: ByteSink, size: number, what: string, write: (s: ByteSink) => Promise<void>): Promise<void> {
  const b = new Bounded(sink, size, what);
  await write(b);
  if (b.bytes !== size) throw new DockyardError('E_INTERNAL', `${what} wrote ${b.bytes} bytes, declared ${size}`);
}
