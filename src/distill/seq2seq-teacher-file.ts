// A sequence teacher given only as a file of its outputs (`teacher: {outputs: file}`), for a teacher
// that lives elsewhere (a Python model, a hosted API). Two kinds, told by the first row:
//   whole output sequences, jsonl {source, output} or tsv with source and output columns: what an
//     API returns; the student learns them as targets (sequence-level distillation);
//   top-k per target position, jsonl {source, target, topk: [[[symbol, logprob], …], …]}: the
//     teacher's k most likely next symbols at each position of `target` (its last position
//     predicts the end, "<eos>"), teacher-forced; word-level distillation learns them.
// Symbols must be in the training targets' vocabulary. Every problem is one UserError naming the
// file, the line and the field.

import { UserError } from "../errors.js";
import { cell, readSources, requireColumn, type Row } from "../data/sources/records.js";
import { pairsFileKind } from "../data/sequence/pairs.js";
import { SPECIAL_SYMBOLS, SYMBOL_IDS, splitSymbols, symbolIndex, type SymbolVocabulary } from "../data/sequence/symbols.js";
import type { TopK } from "../eval/seq2seq-decode.js";

export type Seq2SeqTeacherFile =
  | { kind: "sequences"; file: string; rows: number; outputs: Map<string, { ids: number[]; at: string }> }
  | { kind: "topk"; file: string; rows: number; k: number; distributions: Map<string, TopK & { at: string }> };

/** The key of a (source, target) pair in a top-k file's map. */
export function pairKey(source: string, target: readonly string[]): string {
  return `${source}\u0000${target.join("\u0001")}`;
}

const FIELD = "teacher.outputs";

/** Reads and checks the file; sources are matched by their text, targets split and numbered by `target`. */
export function readSeq2SeqTeacherFile(path: string, target: SymbolVocabulary): Seq2SeqTeacherFile {
  const source = readSources(path, pairsFileKind(path, FIELD), FIELD);
  requireColumn(source, "source", FIELD, path);
  const first = source.rows[0]!;
  const hasTopK = "topk" in first.fields;
  if (!hasTopK) requireColumn(source, "output", FIELD, path);
  const index = symbolIndex(target);
  const idOf = (symbol: string, row: Row, field: string): number => {
    if (symbol === SPECIAL_SYMBOLS[SYMBOL_IDS.eos] && field.startsWith("topk")) return SYMBOL_IDS.eos;
    const id = index.get(symbol);
    if (id === undefined) throw new UserError(`${row.file}: ${row.at}`, `field "${field}": symbol ${JSON.stringify(symbol)} is not in the training targets' vocabulary (${target.symbols.length - 4} symbols)`);
    return id;
  };
  const text = (row: Row, name: string): string => {
    const v = cell(row, name);
    if (typeof v !== "string") throw new UserError(`${row.file}: ${row.at}`, `field "${name}" is not a string (${JSON.stringify(v)})`);
    return v;
  };
  if (!hasTopK) {
    const outputs = new Map<string, { ids: number[]; at: string }>();
    for (const row of source.rows) {
      const src = text(row, "source");
      const had = outputs.get(src);
      if (had) throw new UserError(`${row.file}: ${row.at}`, `source ${JSON.stringify(src)} repeats ${had.at} (one output per source)`);
      outputs.set(src, { ids: splitSymbols(text(row, "output"), target.split).map((s) => idOf(s, row, "output")), at: row.at });
    }
    return { kind: "sequences", file: path, rows: source.rows.length, outputs };
  }
  const distributions = new Map<string, TopK & { at: string }>();
  let k = 0;
  for (const row of source.rows) {
    const src = text(row, "source");
    const tgt = splitSymbols(text(row, "target"), target.split);
    const topk = cell(row, "topk");
    const where = `${row.file}: ${row.at}`;
    if (!Array.isArray(topk) || topk.length !== tgt.length + 1)
      throw new UserError(where, `field "topk": expected a list of ${tgt.length + 1} positions (the target's ${tgt.length} symbols, then the end), got ${Array.isArray(topk) ? `${topk.length}` : JSON.stringify(topk)}`);
    if (k === 0) k = Array.isArray(topk[0]) ? topk[0].length : 0;
    if (k === 0) throw new UserError(where, `field "topk[0]": expected a list of [symbol, logprob] pairs`);
    const ids = new Int32Array(topk.length * k), logProbs = new Float32Array(topk.length * k);
    topk.forEach((position: unknown, p) => {
      if (!Array.isArray(position) || position.length !== k) throw new UserError(where, `field "topk[${p}]": expected ${k} [symbol, logprob] pairs (as the file's first position), got ${JSON.stringify(position)?.slice(0, 60)}`);
      position.forEach((entry: unknown, j) => {
        const field = `topk[${p}][${j}]`;
        if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== "string" || typeof entry[1] !== "number")
          throw new UserError(where, `field "${field}": expected [symbol, logprob], got ${JSON.stringify(entry)?.slice(0, 60)}`);
        // Log-probabilities are ≤ 0; a little above allows for the writer's rounding.
        if (!Number.isFinite(entry[1]) || entry[1] > 1e-4) throw new UserError(where, `field "${field}": expected a log-probability (a number ≤ 0), got ${entry[1]}`);
        ids[p * k + j] = idOf(entry[0], row, field);
        logProbs[p * k + j] = entry[1];
      });
    });
    const key = pairKey(src, tgt);
    const had = distributions.get(key);
    if (had) throw new UserError(where, `the pair ${JSON.stringify(src)} → ${JSON.stringify(tgt.join(" "))} repeats ${had.at}`);
    distributions.set(key, { ids, logProbs, positions: topk.length, k, at: row.at });
  }
  return { kind: "topk", file: path, rows: source.rows.length, k, distributions };
}
