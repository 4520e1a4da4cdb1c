/**
 * A YAML file a user wrote, parsed with the way back from a data path to a
 * line and column: specs (pkg/spec) and image definitions (pkg/imagedef)
 * report every problem as file:line:col.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';
import type { SpecProblem } from '../errors.js';

export type PathSeg = string | number;

export interface YamlFile {
  file: string;
  doc: Document;
  lines: LineCounter;
  /** The plain data (null for an empty file). */
  data: unknown;
}

/** The flow collection (`[`/`{`) still open where a flow error was reported: the line to fix. */
function unclosedFlow(doc: Document, at: number): { start: number; char: string } | undefined {
  let best: { start: number; char: string } | undefined;
  visit(doc, {
    Seq(_, n) {
      if (n.flow && n.range && n.range[0] < at && n.range[1] >= at && (!best || n.range[0] > best.start)) best = { start: n.range[0], char: '[' };
    },
    Map(_, n) {
      if (n.flow && n.range && n.range[0] < at && n.range[1] >= at && (!best || n.range[0] > best.start)) best = { start: n.range[0], char: '{' };
    },
  });
  return best;
}

/** Parses `text`; a YAML error is returned as one problem at its position. */
export function parseYamlFile(text: string, file: string): YamlFile | { problem: SpecProblem } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, merge: true, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // The first error is the cause; the ones after it are usually its echoes.
    const err = doc.errors[0];
    let offset = err.pos[0];
    let message = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    const open = /^Flow (sequence|map)/.test(message) ? unclosedFlow(doc, offset) : undefined;
    if (open) {
      offset = open.start;
      message = `${open.char} opened here is never closed (${message})`;
    }
    const lp = lines.linePos(offset);
    return { problem: { file, line: lp.line, col: lp.col, path: '', message: `invalid YAML: ${message}` } };
  }
  try {
    return { file, doc, lines, data: doc.toJS({ maxAliasCount: 1000 }) };
  } catch (e) {
    return { problem: { file, line: 1, col: 1, path: '', message: `invalid YAML: ${(e as Error).message}` } };
  }
}

/** Position of the node at `path`; with `key`, of that key inside the map at `path`. */
export function positionIn(y: { doc: Document; lines: LineCounter }, path: PathSeg[], key?: string): { line: number; col: number } {
  let node: unknown = y.doc.contents;
  let keyNode: unknown;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(seg));
      if (!pair) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      keyNode = undefined;
      node = node.items[seg];
    } else break;
  }
  if (key !== undefined && isMap(node)) {
    const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && String(it.key.value) === key);
    if (pair && isScalar(pair.key) && pair.key.range) return y.lines.linePos(pair.key.range[0]);
  }
  // A value error points at its key (`readonly: "yes"` → `readonly`), a list item at the item.
  const target = (keyNode ?? node) as YamlNode | undefined;
  const offset = target && 'range' in target && target.range ? target.range[0] : 0;
  return y.lines.linePos(offset);
}

/** A problem at `path` of the file. */
export function problemAt(y: YamlFile, path: PathSeg[], message: string, key?: string): SpecProblem {
  const { line, col } = positionIn(y, path, key);
  return { file: y.file, line, col, path: path.join('/'), message };
}
