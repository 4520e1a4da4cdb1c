/**
 * Loaded with `node --import` into a measured process: at exit, appends the
 * process's peak resident set size (bytes) to $DOCKYARD_BENCH_RSS_FILE.
 */
import { appendFileSync } from 'node:fs';

const out = process.env.DOCKYARD_BENCH_RSS_FILE;
if (out) {
  process.on('exit', () => {
    appendFileSync(out, `${process.resourceUsage().maxRSS * 1024}\n`);
  });
}
