/**
 * Pull-style reading of a byte stream in exact-size pieces, the base of the
 * tar reader: `read(n)` for headers, `window(n)` for bodies that are passed on
 * chunk by chunk without being gathered in memory.
 */
export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  private done = false;
  private readonly it: AsyncIterator<Buffer>;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    const inner = source[Symbol.asyncIterator]();
    this.it = {
      next: async () => {
        const r = await inner.next();
        if (r.done) return { done: true, value: undefined };
        const v = r.value;
        return { done: false, value: Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array) };
      },
      return: async () => {
        await inner.return?.();
        return { done: true, value: undefined };
      },
    };
  }

  private get available(): number {
    return this.buf.length - this.off;
  }

  /** Ensure at least `n` bytes are buffered; false at end of input. */
  private async fill(n: number): Promise<boolean> {
    while (this.available < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      if (r.value.length === 0) continue;
      this.buf = this.available === 0 ? r.value : Buffer.concat([this.buf.subarray(this.off), r.value]);
      this.off = 0;
    }
    return this.available >= n;
  }

  /** Exactly `n` bytes, or null if the input ends first (no bytes consumed then). */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) return null;
    const out = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return out;
  }

  /** The next `n` bytes as chunks; throws if the input ends early. */
  async *window(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.available === 0 && !(await this.fill(1))) throw new RangeError(`unexpected end of data (${left} bytes missing)`);
      const take = Math.min(left, this.available);
      const chunk = this.buf.subarray(this.off, this.off + take);
      this.off += take;
      left -= take;
      yield chunk;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.window(n)) void _;
  }

  /** Consume the rest of the input (so a hashing source sees every byte). */
  async drain(): Promise<void> {
    this.off = this.buf.length;
    while (!this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
    }
  }

  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.it.return?.();
    }
  }
}
