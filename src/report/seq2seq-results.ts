// results.json of a sequence-to-sequence run (`task: "seq2seq"`): per model and seed the test
// scores of greedy and beam decoding, size and latency per word; per role the mean ± std over
// seeds, and each distilled role's seed-paired difference from the baseline.

import type { MachineFacts, MeanStd } from "../eval/types.js";
import type { SequenceScores } from "../eval/sequence-metrics.js";
import type { Seq2SeqEvalMetrics } from "../eval/seq2seq-eval.js";
import type { PairedDifference } from "./headline.js";

/** One model's test figures for one seed (the figures `distill eval` gives, src/eval/seq2seq-eval.ts). */
export interface Seq2SeqModelMetrics extends Seq2SeqEvalMetrics {
  seed: number;
}

/** Flattened metric names: "beam.wordErrorRate", "greedy.bleu", "params", "latencyP50Ms", … */
export type Seq2SeqMetricKey = `${"greedy" | "beam"}.${keyof SequenceScores}` | "params" | "onnxBytes" | "onnxGzipBytes" | "latencyP50Ms" | "latencyP95Ms" | "wordsPerSecond";

export interface Seq2SeqRoleResult {
  /** teacher, baseline, student-word, student-sequence, student-both */
  role: string;
  /** The first seed's model, relative to the run folder. */
  file: string;
  perSeed: Seq2SeqModelMetrics[];
  summary: Record<Seq2SeqMetricKey, MeanStd>;
  /** Distilled roles: role − baseline per seed (same seeds), with the paired 95% t-interval, for each score. */
  vsBaseline?: Partial<Record<Seq2SeqMetricKey, PairedDifference>>;
}

export interface Seq2SeqResults {
  task: "seq2seq";
  name: string;
  createdAt: string;
  codeVersion: string;
  seeds: number[];
  dataset: string;
  wallSeconds: number;
  evaluateBeam: number;
  models: Seq2SeqRoleResult[];
  data: {
    /** Entries (words) and pairs per split, after data's limits. */
    entries: { train: number; validation: number; test: number };
    trainPairs: number;
    /** Longest source and target (with <eos>) the models take; the step-graph buckets. */
    lengths: { source: number; target: number };
    buckets: [number, number][];
    /** Left out by the lengths: training pairs and validation entries; test entries scored as errors. */
    leftOut: { trainPairs: number; validationEntries: number; testEntries: number };
    /** The data as read, before data's limits (describeSequenceData). */
    describe: string;
  };
  /** The teacher's stored targets: items, the seconds they took (0: from a file), the beam width. */
  teacherTargets?: Record<string, { items: number; seconds: number; beam?: number; leftOut?: number }>;
  setup: Record<string, unknown>;
  machine: MachineFacts;
}

export const SCORE_KEYS = ["wordErrorRate", "tokenErrorRate", "bleu", "chrf"] as const satisfies readonly (keyof SequenceScores)[];
