// The `data:` block of a sequence-to-sequence task: the built-in CMUdict (`dataset: cmudict`) or
// your own pairs files (`format: pairs`). Kept apart from the classifier's data schema, which it
// shares nothing with but the style: strict keys, "expected …" messages, defaults filled here.

import { z } from "zod";
/** How a text field becomes symbols: one per character, or whitespace-separated tokens. */
export type SymbolSplit = "chars" | "whitespace";
import { enumOf, nonNegativeInt, num, obj, positiveInt, str, unitOpen } from "./fields.js";

export const SEQUENCE_DATASETS = ["cmudict"] as const;
const SYMBOL_SPLITS = ["chars", "whitespace"] as const satisfies readonly SymbolSplit[];

const paths = () => z.union([str("a path"), z.array(str("a path"), num("a list of paths")).min(1, num("at least one path"))], { error: "expected a path or a list of paths" });

/** Shares held out when no file gives the split: 10% test, 5% validation, of the entries (words). */
export const DEFAULT_TEST_FRACTION = 0.1;
export const DEFAULT_VALIDATION_FRACTION = 0.05;

export const sequenceDataSchema = obj({
  /** A built-in dataset (cmudict); or give format: pairs with train files. */
  dataset: enumOf(SEQUENCE_DATASETS).optional(),
  format: enumOf(["pairs"]).optional(),
  /** cmudict: a folder holding dict.json (default: the npm package's data folder). */
  dir: str("a folder path").optional(),
  /** cmudict: keep the vowels' stress digits (AH0) or strip them (AH). Default keep. */
  stress: enumOf(["keep", "strip"]).optional(),
  /** pairs: .jsonl, .csv or .tsv files (each may be .gz). Without test, testFraction of train's entries is held out; likewise validation. */
  train: paths().optional(),
  validation: paths().optional(),
  test: paths().optional(),
  /** pairs: the field or column holding the source (default "source") and the target (default "target"). */
  source: str("a field name").optional(),
  target: str("a field name").optional(),
  /** pairs: how a field becomes symbols: chars (default for the source) or whitespace-separated tokens (default for the target). */
  sourceSymbols: enumOf(SYMBOL_SPLITS).optional(),
  targetSymbols: enumOf(SYMBOL_SPLITS).optional(),
  testFraction: unitOpen().optional(),
  validationFraction: unitOpen().optional(),
  /** Seeds the split (the same split on every machine for a given seed). */
  seed: nonNegativeInt().default(0),
  /**
   * A sequence model's longest source and target in symbols (default: the training split's
   * longest). Longer training pairs are left out; longer test entries are scored as errors.
   */
  maxSourceLength: positiveInt().optional(),
  maxTargetLength: positiveInt().optional(),
  /** A seeded sample of this many entries of each split, after the split (small runs, tests). */
  trainLimit: positiveInt().optional(),
  validationLimit: positiveInt().optional(),
  testLimit: positiveInt().optional(),
})
  .superRefine((d, ctx) => {
    const need = (key: string, why: string) => ctx.addIssue({ code: "custom", path: [key], message: `required ${why}` });
    const unused = (key: string, why: string) => ctx.addIssue({ code: "custom", path: [key], message: `only used ${why}` });
    if ((d.dataset === undefined) === (d.format === undefined)) return ctx.addIssue({ code: "custom", path: [], message: "needs dataset: cmudict, or format: pairs with train (and test) files — exactly one of the two" });
    if (d.dataset !== undefined) {
      for (const key of ["train", "validation", "test", "source", "target", "sourceSymbols", "targetSymbols"] as const) if (d[key] !== undefined) unused(key, "with format: pairs (cmudict is split by testFraction and validationFraction)");
      return;
    }
    for (const key of ["dir", "stress"] as const) if (d[key] !== undefined) unused(key, "with dataset: cmudict");
    if (d.train === undefined) need("train", "with format: pairs");
    if (d.test !== undefined && d.testFraction !== undefined) unused("testFraction", "without test (it holds out part of train as the test set)");
    if (d.validation !== undefined && d.validationFraction !== undefined) unused("validationFraction", "without validation (it holds out part of train as the validation set)");
    if (d.test === undefined && d.testFraction === undefined) need("test", "with format: pairs (or testFraction to hold out part of train)");
  })
  .transform((d) => {
    // A fraction only where no file gives that split, so the output validates again as input.
    const split = {
      seed: d.seed,
      ...Object.fromEntries((["maxSourceLength", "maxTargetLength", "trainLimit", "validationLimit", "testLimit"] as const).filter((k) => d[k] !== undefined).map((k) => [k, d[k]!])) as SequenceModelLimits,
      ...(d.test === undefined ? { testFraction: d.testFraction ?? DEFAULT_TEST_FRACTION } : {}),
      ...(d.validation === undefined ? { validationFraction: d.validationFraction ?? DEFAULT_VALIDATION_FRACTION } : {}),
    };
    if (d.dataset !== undefined) return { dataset: d.dataset, stress: d.stress ?? "keep", ...(d.dir !== undefined ? { dir: d.dir } : {}), ...split };
    return {
      format: "pairs" as const, train: d.train!,
      ...(d.validation !== undefined ? { validation: d.validation } : {}),
      ...(d.test !== undefined ? { test: d.test } : {}),
      source: d.source ?? "source", target: d.target ?? "target",
      sourceSymbols: d.sourceSymbols ?? "chars", targetSymbols: d.targetSymbols ?? "whitespace",
      ...split,
    };
  });

/** The optional length caps and split samples, carried through as given. */
export interface SequenceModelLimits {
  maxSourceLength?: number;
  maxTargetLength?: number;
  trainLimit?: number;
  validationLimit?: number;
  testLimit?: number;
}

export type SequenceDataSpec = z.output<typeof sequenceDataSchema>;
