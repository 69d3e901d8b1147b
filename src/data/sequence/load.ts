// A sequence task's `data:` block → train/validation/test entries and the source and target
// vocabularies, built from the training entries only. Splits are by entry (a word with all its
// pronunciations), seeded, and the same on every machine.

import { basename, dirname, resolve } from "node:path";
import type { SequenceDataSpec } from "../../config/sequence-data.js";
import { readCmudict, type CmudictCounts } from "./cmudict.js";
import { splitEntries, trainingPairs, type SequenceEntry, type SequenceSplits } from "./entries.js";
import { readPairs } from "./pairs.js";
import { seededPermutation } from "../split.js";
import { buildSymbolVocabulary, type SymbolVocabulary } from "./symbols.js";

type PerSplit = { train: number; validation: number; test: number };

export interface SequenceCounts {
  /** Entries (distinct sources: words) per split. */
  entries: PerSplit;
  /** (source, target) pairs per split: pronunciations, alternatives included. */
  pairs: PerSplit;
  /** Validation and test entries whose source is also a training source (0 when the split is drawn here). */
  seenInTraining: { validation: number; test: number };
  cmudict?: CmudictCounts;
  /** pairs files: rows read, and rows dropped for repeating a target their source already had. */
  rows?: number;
  repeatedTargets?: number;
}

export interface SequenceData extends SequenceSplits {
  /** "cmudict", or the training file's name. */
  name: string;
  sourceVocabulary: SymbolVocabulary;
  targetVocabulary: SymbolVocabulary;
  counts: SequenceCounts;
}

/** The data with the spec's trainLimit/validationLimit/testLimit applied (a seeded sample of each split): what a run trains and scores on, and `distill eval` scores again. */
export function loadSequenceSplits(spec: SequenceDataSpec): SequenceData {
  const loaded = loadSequenceData(spec);
  return {
    ...loaded,
    train: sampleEntries(loaded.train, spec.trainLimit, spec.seed),
    validation: sampleEntries(loaded.validation, spec.validationLimit, spec.seed),
    test: sampleEntries(loaded.test, spec.testLimit, spec.seed),
  };
}

function sampleEntries<T>(entries: T[], limit: number | undefined, seed: number): T[] {
  if (limit === undefined || limit >= entries.length) return entries;
  const chosen = seededPermutation(entries.length, seed).subarray(0, limit).slice().sort();
  return Array.from(chosen, (i) => entries[i]!);
}

export function loadSequenceData(spec: SequenceDataSpec): SequenceData {
  const fractions = { test: spec.testFraction ?? 0, validation: spec.validationFraction ?? 0 };
  if ("dataset" in spec) {
    const { entries, counts } = readCmudict({ stress: spec.stress, ...(spec.dir !== undefined ? { dir: spec.dir } : {}) });
    return assemble(spec.dataset, splitEntries(entries, fractions, spec.seed, "data"), "chars", "whitespace", { cmudict: counts });
  }
  const fields = { source: spec.source, target: spec.target, sourceSymbols: spec.sourceSymbols, targetSymbols: spec.targetSymbols };
  const train = readPairs(spec.train, fields, "data.train");
  const validation = spec.validation === undefined ? undefined : readPairs(spec.validation, fields, "data.validation");
  const test = spec.test === undefined ? undefined : readPairs(spec.test, fields, "data.test");
  const drawn = splitEntries(train.entries, { test: test ? 0 : fractions.test, validation: validation ? 0 : fractions.validation }, spec.seed, "data");
  const splits = { train: drawn.train, validation: validation?.entries ?? drawn.validation, test: test?.entries ?? drawn.test };
  const rows = train.rows + (validation?.rows ?? 0) + (test?.rows ?? 0);
  const repeatedTargets = train.repeatedTargets + (validation?.repeatedTargets ?? 0) + (test?.repeatedTargets ?? 0);
  return assemble(pairsName(spec.train), splits, spec.sourceSymbols, spec.targetSymbols, { rows, repeatedTargets });
}

/** The first training file's name without its extensions (g2p/words.tsv.gz → words); its folder's when that only says "train". */
function pairsName(train: string | string[]): string {
  const first = Array.isArray(train) ? train[0]! : train;
  const own = basename(first).replace(/(\.(jsonl|json|csv|tsv))?(\.gz)?$/i, "");
  return /^(train|training)$/i.test(own) ? basename(resolve(dirname(first))) : own;
}

function assemble(name: string, splits: SequenceSplits, sourceSplit: SymbolVocabulary["split"], targetSplit: SymbolVocabulary["split"], extra: Partial<SequenceCounts>): SequenceData {
  const per = (f: (entries: SequenceEntry[]) => number): PerSplit => ({ train: f(splits.train), validation: f(splits.validation), test: f(splits.test) });
  const trainSources = new Set(splits.train.map((e) => e.text));
  const seen = (entries: SequenceEntry[]) => entries.filter((e) => trainSources.has(e.text)).length;
  return {
    name, ...splits,
    sourceVocabulary: buildSymbolVocabulary(splits.train.map((e) => e.source), sourceSplit),
    targetVocabulary: buildSymbolVocabulary(splits.train.flatMap((e) => e.targets), targetSplit),
    counts: {
      entries: per((e) => e.length),
      pairs: per((e) => trainingPairs(e).length),
      seenInTraining: { validation: seen(splits.validation), test: seen(splits.test) },
      ...extra,
    },
  };
}

/** One line for logs and reports: "cmudict: 123,874 entries (1,131 words left out); train 105,293 entries / 112,652 pairs, …". */
export function describeSequenceData(data: SequenceData): string {
  const n = (x: number) => x.toLocaleString("en-US");
  const c = data.counts;
  const left = c.cmudict ? ` (${n(c.cmudict.excludedWords)} words left out: not letters and apostrophes only)` : "";
  const parts = (["train", "validation", "test"] as const).map((s) => `${s} ${n(c.entries[s])} entries / ${n(c.pairs[s])} pairs`);
  return `${data.name}: ${n(c.entries.train + c.entries.validation + c.entries.test)} entries${left}; ${parts.join(", ")}; vocabularies ${data.sourceVocabulary.symbols.length} source and ${data.targetVocabulary.symbols.length} target symbols (4 special included)`;
}
