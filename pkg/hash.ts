import { createHash } from 'node:crypto';

/** sha256 (hex) over parts, each terminated by NUL so that ["ab","c"] ≠ ["a","bc"]. */
export function sha256hex(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p + '\0');
  return h.digest('hex');
}
