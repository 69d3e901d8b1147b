// The shapes of what `distill tune` and `distill shrink` write (results.json) and their reports
// read: kept apart from the searches so the report needs nothing else from them.

import type { ModelSpec, TuneSpec } from "../config/schema.js";
import type { PairedComparison } from "./compare.js";
import type { LadderRung } from "./ladder.js";
import type { Setting } from "./space.js";

export interface SeedStats {
  seeds: number[];
  testErrors: number[];
  mean: number;
  std: number;
  baselineTestErrors?: number[];
}

export interface TuneResults {
  name: string;
  configPath: string;
  strategy: TuneSpec["strategy"];
  keys: string[];
  budget?: TuneSpec["budget"];
  executor: string;
  concurrency: number;
  threads: number;
  trials: Array<{ id: string; rung: number; epochs: number; setting: Setting; valAccuracy: number; valLoss: number; baselineValAccuracy?: number; seconds: number; elapsedSeconds: number }>;
  /** Planned trials that the budget did not admit. */
  skipped: string[];
  winner: { id: string; setting: Setting; valAccuracy: number };
  configSetting: Setting;
  final: {
    epochs: number; testTotal: number; config: SeedStats; winner: SeedStats;
    /** Winner against config, paired by seed; absent when the search chose the config's own setting. */
    comparison?: PairedComparison;
  };
  wallSeconds: number;
}

export interface Rung {
  id: string;
  width?: number;
  depth?: number;
  name?: string;
  params: number;
  latencyP50Ms: number;
  valAccuracy: number;
  testErrors: number;
  passes: boolean;
  /** No trained rung has at most its parameters and more validation accuracy (or fewer and as much). */
  pareto: boolean;
  /** The same with p50 latency in place of parameters. */
  latencyPareto: boolean;
}

export type AssistantResult =
  | {
      /** The rung trained again through the assistant. */
      rung: string;
      why: string;
      /** Where the assistant's size came from. */
      assistantFrom: string;
      assistant: ModelSpec;
      assistantParams: number;
      valAccuracy: number;
      /** valAccuracy − the rung's own. */
      gain: number;
      testErrors: number;
      passes: boolean;
    }
  | { skipped: string };

export interface ShrinkResults {
  name: string;
  configPath: string;
  keep: number;
  /** Every rung of the ladder, smallest first; `trained` false for those bisection skipped. */
  ladder: Array<Omit<LadderRung, "model"> & { trained: boolean }>;
  everyRung: boolean;
  teacherValAccuracy: number;
  teacherParams: number;
  teacherLatencyP50Ms: number;
  testTotal: number;
  rungs: Rung[];
  chosen?: Rung;
  assistant?: AssistantResult;
  wallSeconds: number;
}
