/**
 * The thread an xz stream is decoded on (pkg/archive/xz.ts starts it), so
 * the WebAssembly decoder's work runs beside the main thread's instead of
 * on it. One stream at a time; the main thread drives it with messages:
 *
 *   main → worker   { t: 'start' }            a new stream
 *                   { t: 'in', data }         compressed bytes (transferred), after a 'need'
 *                   { t: 'end' }              no more compressed bytes, after a 'need'
 *                   { t: 'ack' }              one 'out' consumed: the decoder may go on
 *   worker → main   { t: 'need' }             the decoder wants input
 *                   { t: 'out', data }        decompressed bytes (transferred)
 *                   { t: 'done' }             the stream ended cleanly
 *                   { t: 'err', message }     the decoder refused the stream
 *
 * At most WINDOW 'out' messages (of BATCH bytes) are unacknowledged, so memory stays bounded
 * however well the stream compresses (an xz bomb waits for its reader).
 */
import { parentPort } from 'node:worker_threads';
import xzPkg from 'xz-decompress';

const { XzReadableStream } = xzPkg as unknown as { XzReadableStream: new (s: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array> };

export const WINDOW = 4;
/** Bytes per 'out' message (the last of a stream may be fewer). */
export const BATCH = 1024 * 1024;

type ToWorker = { t: 'start' } | { t: 'in'; data: ArrayBuffer } | { t: 'end' } | { t: 'ack' };

const port = parentPort;
if (port) {
  let onInput: ((m: ToWorker) => void) | undefined;
  let credits = WINDOW;
  let onCredit: (() => void) | undefined;

  const decode = async (): Promise<void> => {
    credits = WINDOW;
    const input = new ReadableStream<Uint8Array>(
      {
        pull: (ctrl) =>
          new Promise<void>((done) => {
            onInput = (m) => {
              onInput = undefined;
              if (m.t === 'in') ctrl.enqueue(new Uint8Array(m.data));
              else ctrl.close();
              done();
            };
            port.postMessage({ t: 'need' });
          }),
      },
      { highWaterMark: 2 },
    );
    const reader = new XzReadableStream(input).getReader();
    // The decoder hands out 64 KiB at a time; they are sent on in batches of up to BATCH bytes (fewer messages).
    let batch = new Uint8Array(BATCH);
    let fill = 0;
    const send = async () => {
      if (fill === 0) return;
      while (credits === 0) await new Promise<void>((go) => (onCredit = go));
      credits--;
      const out = fill === BATCH ? batch : batch.slice(0, fill); // a buffer of its own, to hand over
      port.postMessage({ t: 'out', data: out.buffer }, [out.buffer]);
      batch = new Uint8Array(BATCH);
      fill = 0;
    };
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        for (let at = 0; at < r.value.length; ) {
          const n = Math.min(BATCH - fill, r.value.length - at);
          batch.set(r.value.subarray(at, at + n), fill);
          fill += n;
          at += n;
          if (fill === BATCH) await send();
        }
      }
      await send();
      port.postMessage({ t: 'done' });
    } catch (e) {
      port.postMessage({ t: 'err', message: e instanceof Error ? e.message : String(e) });
    }
  };

  port.on('message', (m: ToWorker) => {
    if (m.t === 'start') void decode();
    else if (m.t === 'ack') {
      credits++;
      const go = onCredit;
      onCredit = undefined;
      go?.();
    } else onInput?.(m);
  });
}
