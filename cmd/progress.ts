/**
 * Renders the library's progress events: listr2 on a terminal, plain lines
 * otherwise (CI logs).
 */
import { Listr } from 'listr2';
import type { ProgressEvent } from '../pkg/formats/format.js';

export interface Reporter {
  emit(ev: ProgressEvent): void;
  run<T>(fn: () => Promise<T>): Promise<T>;
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function line(ev: ProgressEvent): string | undefined {
  switch (ev.kind) {
    case 'pull-start':
      return `pull ${ev.ref} (${mib(ev.total)})`;
    case 'pull-done':
      return `pulled ${ev.ref}`;
    case 'output-start':
      return `write ${ev.file} (${ev.format})`;
    case 'output-done':
      return `wrote ${ev.file} ${mib(ev.bytes)} sha256:${ev.sha256}`;
    case 'warning':
      return `warning: ${ev.message}`;
    case 'info':
      return ev.message;
    default:
      return undefined; // byte counters are only worth showing live
  }
}

export function createReporter(o: { tty: boolean; stream: NodeJS.WritableStream }): Reporter {
  if (!o.tty) {
    return {
      emit: (ev) => {
        const l = line(ev);
        if (l) o.stream.write(l + '\n');
      },
      run: (fn) => fn(),
    };
  }
  const pulls = new Map<string, string>();
  const writes = new Map<string, string>();
  const warnings: string[] = [];
  let update: (() => void) | undefined;
  const render = () =>
    [...[...pulls.values()].map((s) => `pull  ${s}`), ...[...writes.values()].map((s) => `write ${s}`)].join('\n');
  return {
    emit: (ev) => {
      switch (ev.kind) {
        case 'pull-start':
        case 'pull-progress':
          pulls.set(ev.ref, `${ev.ref} ${mib('done' in ev ? ev.done : 0)} / ${mib(ev.total)}`);
          break;
        case 'pull-done':
          pulls.set(ev.ref, `${ev.ref} ✔`);
          break;
        case 'output-start':
          writes.set(ev.file, `${ev.file}`);
          break;
        case 'output-progress':
          writes.set(ev.file, `${ev.file} ${mib(ev.bytes)}`);
          break;
        case 'output-done':
          writes.set(ev.file, `${ev.file} ${mib(ev.bytes)} ✔`);
          break;
        case 'warning':
          warnings.push(ev.message);
          break;
        case 'info':
          break;
      }
      update?.();
    },
    run: async <T>(fn: () => Promise<T>) => {
      let result: T | undefined;
      const list = new Listr(
        [
          {
            title: 'dockyard build',
            task: async (_ctx, task) => {
              update = () => {
                task.output = render();
              };
              result = await fn();
            },
            rendererOptions: { outputBar: Infinity, persistentOutput: true },
          },
        ],
        { rendererOptions: { collapseErrors: true, showErrorMessage: false }, exitOnError: true },
      );
      try {
        await list.run();
      } finally {
        for (const w of warnings) o.stream.write(`warning: ${w}\n`);
      }
      return result as T;
    },
  };
}
