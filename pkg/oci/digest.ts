/**
 * Digest checking as bytes flow: a blob is never trusted, nor committed,
 * before the last byte has hashed to the digest that named it.
 */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DockyardError } from '../errors.js';

export function sha256Digest(data: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

export function assertSha256(digest: string): string {
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new DockyardError('E_REGISTRY', `unsupported or malformed digest "${digest}"`);
  return digest.slice(7);
}

/**
 * A pass-through that fails with E_DIGEST_MISMATCH at the end when the bytes
 * do not hash to `digest` (or their count differs from `size`, when known).
 * `onMismatch` makes that error instead (the cache evicts the blob first).
 */
export class VerifyDigest extends Transform {
  private readonly hash = createHash('sha256');
  private count = 0;
  constructor(
    private readonly digest: string,
    private readonly size: number | undefined,
    private readonly what: string,
    private readonly onMismatch?: (got: string) => Promise<Error>,
  ) {
    super({ highWaterMark: 1 << 20 });
    assertSha256(digest);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.size !== undefined && this.count > this.size) {
      cb(new DockyardError('E_DIGEST_MISMATCH', `${this.what}: more than the ${this.size} bytes announced for ${this.digest}`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = 'sha256:' + this.hash.digest('hex');
    if (got !== this.digest && this.onMismatch) {
      this.onMismatch(got).then(cb, cb);
    } else if (got !== this.digest) {
      cb(new DockyardError('E_DIGEST_MISMATCH', `${this.what}: content hashes to ${got}, expected ${this.digest}`));
    } else if (this.size !== undefined && this.count !== this.size) {
      cb(new DockyardError('E_DIGEST_MISMATCH', `${this.what}: ${this.count} bytes, expected ${this.size} for ${this.digest}`));
    } else cb();
  }
}

export function verifyBuffer(buf: Buffer, digest: string, what: string): void {
  const got = sha256Digest(buf);
  if (got !== digest) throw new DockyardError('E_DIGEST_MISMATCH', `${what}: content hashes to ${got}, expected ${digest}`);
}
