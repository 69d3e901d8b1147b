// Symbols of a sequence (a word's letters, a pronunciation's phonemes) and the vocabulary that
// numbers them. The vocabulary is built from the training split only, so validation and test
// symbols never seen in training become <unk> exactly as they would for new input at deployment.

import { readFileSync } from "node:fs";
import { UserError } from "../../errors.js";
import { writeFileAtomic } from "../../util/fs.js";

/** chars: every Unicode code point is a symbol ("ABC" → A, B, C); whitespace: space-separated tokens ("AH0 B" → AH0, B). */
import type { SymbolSplit } from "../../config/sequence-data.js";
export type { SymbolSplit };
export const SYMBOL_SPLITS = ["chars", "whitespace"] as const satisfies readonly SymbolSplit[];

/** The symbols of `text`: code points (not UTF-16 units, so "é" or an emoji is one symbol), or whitespace-separated tokens. */
export function splitSymbols(text: string, split: SymbolSplit): string[] {
  if (split === "chars") return Array.from(text);
  const trimmed = text.trim();
  return trimmed === "" ? [] : trimmed.split(/\s+/);
}

/** The reserved ids of every sequence vocabulary (the classifier tokenizer's are its own: 0 padding, 1 unknown). */
export const SYMBOL_IDS = { pad: 0, bos: 1, eos: 2, unk: 3 } as const;
/** Ids 0–3, in order. Angle-bracketed so no letter or ARPAbet symbol can collide with them. */
export const SPECIAL_SYMBOLS = ["<pad>", "<bos>", "<eos>", "<unk>"] as const;

/** `symbols[id]` is the symbol of an id; ids 0–3 are SPECIAL_SYMBOLS. JSON-serialisable as it is. */
export interface SymbolVocabulary {
  split: SymbolSplit;
  symbols: string[];
}

/** The vocabulary of the training sequences: the special symbols, then every symbol seen, in code-point order (so it depends on the set of symbols alone, not on counts or file order). */
export function buildSymbolVocabulary(sequences: Iterable<readonly string[]>, split: SymbolSplit): SymbolVocabulary {
  const seen = new Set<string>();
  for (const sequence of sequences) for (const symbol of sequence) seen.add(symbol);
  for (const special of SPECIAL_SYMBOLS) seen.delete(special);
  const ordered = [...seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return { split, symbols: [...SPECIAL_SYMBOLS, ...ordered] };
}

const indexes = new WeakMap<SymbolVocabulary, Map<string, number>>();

/** Symbol → id, built once per vocabulary. The special symbols are names, not input: they map to <unk>. */
export function symbolIndex(vocab: SymbolVocabulary): Map<string, number> {
  let index = indexes.get(vocab);
  if (!index) {
    index = new Map(vocab.symbols.map((s, id) => [s, id]));
    for (const special of SPECIAL_SYMBOLS) index.delete(special);
    indexes.set(vocab, index);
  }
  return index;
}

/** The ids of `symbols` (unknown ones → SYMBOL_IDS.unk). */
export function symbolIds(symbols: readonly string[], vocab: SymbolVocabulary): number[] {
  const index = symbolIndex(vocab);
  return symbols.map((s) => index.get(s) ?? SYMBOL_IDS.unk);
}

/** Written whole or not at all (temporary file, then rename). */
export function saveSymbolVocabulary(path: string, vocab: SymbolVocabulary): void {
  writeFileAtomic(path, JSON.stringify({ split: vocab.split, symbols: vocab.symbols }, null, 1) + "\n");
}

/** Reads a saved vocabulary; anything malformed is one UserError naming the file and the field. */
export function loadSymbolVocabulary(path: string): SymbolVocabulary {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, code === "ENOENT" ? "no such file" : code ? `cannot read (${code})` : `not JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new UserError(path, 'expected a JSON object like {"split": "chars", "symbols": [...]}');
  const { split, symbols } = doc as Record<string, unknown>;
  if (!(SYMBOL_SPLITS as readonly unknown[]).includes(split)) throw new UserError(path, `split: expected one of ${SYMBOL_SPLITS.join(", ")}, got ${JSON.stringify(split)}`);
  if (!Array.isArray(symbols) || !symbols.every((s) => typeof s === "string" && s !== "")) throw new UserError(path, "symbols: expected a list of non-empty strings");
  if (SPECIAL_SYMBOLS.some((s, i) => symbols[i] !== s)) throw new UserError(path, `symbols: expected ${SPECIAL_SYMBOLS.join(", ")} as ids 0–3, got ${JSON.stringify(symbols.slice(0, 4))}`);
  const repeated = symbols.find((s, i) => symbols.indexOf(s) !== i);
  if (repeated !== undefined) throw new UserError(path, `symbols: ${JSON.stringify(repeated)} appears twice`);
  return { split: split as SymbolSplit, symbols: symbols as string[] };
}
