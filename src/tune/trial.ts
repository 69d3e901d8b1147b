// One trial = one `distill run` of a fully resolved config into its own run folder, treated as a
// black box: the pipeline trains and evaluates, and the trial reads back the student's last-epoch
// validation accuracy from metrics.jsonl (the test set is never read for selection). A trial folder
// left by a killed process is continued with the pipeline's own resume, so no epoch is redone twice.

import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { EpochMetric, RunResults } from "../eval/types.js";
import { runInChild } from "../queue/child-process.js";

export interface TrialJob {
  id: string;
  /** A resolved config (the schema's output, valid input again); `output` is ignored. */
  config: Record<string, unknown>;
  /** Absolute run folder of this trial. */
  output: string;
  /** Soft-target cache shared by every trial. */
  cacheDir: string;
  /** onnxruntime intra-op threads: fixed by the search, so a result does not depend on who ran it. */
  threads: number;
  /**
   * Train no label-only baseline: search trials and shrink rungs are judged on the student alone,
   * and the baseline would double their cost; the final runs train it, to measure the gain.
   */
  skipBaseline?: boolean;
}

export interface TrialOutcome {
  /** Mean over the run's seeds of the distilled student's last-epoch validation accuracy. */
  valAccuracy: number;
  valLoss: number;
  /** Same for the baseline (hard labels only), when the run has one. */
  baselineValAccuracy?: number;
  /** Last-epoch validation accuracy of a teacher trained in this run. */
  teacherValAccuracy?: number;
  /** Student errors on the test set, per seed: read only for final runs and shrink rungs. */
  testErrors: number[];
  testTotal: number;
  baselineTestErrors?: number[];
  params: number;
  latencyP50Ms: number;
  teacherParams?: number;
  /** Absent without a separate teacher (ema-teacher: the student's own average teaches it). */
  teacherLatencyP50Ms?: number;
  seconds: number;
}

/** Runs (or continues) a trial in this process. */
export async function runTrialHere(job: TrialJob): Promise<TrialOutcome> {
  const { validateConfig } = await import("../config/load.js");
  const { runDistillation, resumeDistillation } = await import("../run/pipeline.js");
  if (!existsSync(join(job.output, "results.json"))) {
    if (existsSync(join(job.output, "run.json"))) await resumeDistillation(job.output, { quiet: true, cacheDir: job.cacheDir });
    else {
      rmSync(job.output, { recursive: true, force: true }); // a folder killed before its first state file
      const config = validateConfig({ ...job.config, output: job.output }, `trial ${job.id}`);
      await runDistillation(config, { configPath: `trial ${job.id}`, quiet: true, cacheDir: job.cacheDir, ...(job.skipBaseline ? { skipBaseline: true } : {}) });
    }
  }
  return readOutcome(job.output);
}

export function readOutcome(runDir: string): TrialOutcome {
  const metrics = readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochMetric);
  const results = JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as RunResults;
  const model = (role: string) => results.models.find((m) => m.role === role);
  const student = model("student")!;
  const baseline = model("baseline");
  const teacher = model("teacher");
  const studentLast = lastEpochs(metrics, "student");
  const baselineLast = lastEpochs(metrics, "baseline");
  const teacherLast = lastEpochs(metrics, "teacher");
  return {
    valAccuracy: mean(studentLast.map((m) => m.valAccuracy)),
    valLoss: mean(studentLast.map((m) => m.valLoss)),
    ...(baselineLast.length ? { baselineValAccuracy: mean(baselineLast.map((m) => m.valAccuracy)) } : {}),
    // A teacher reused from the teacher cache ran no epoch here: its accuracy is the cached record's.
    ...(teacherLast.length ? { teacherValAccuracy: mean(teacherLast.map((m) => m.valAccuracy)) }
      : typeof results.teacherTraining?.validationAccuracy === "number" ? { teacherValAccuracy: results.teacherTraining.validationAccuracy } : {}),
    testErrors: student.perSeed.map((m) => m.errors),
    testTotal: student.perSeed[0]!.total,
    ...(baseline ? { baselineTestErrors: baseline.perSeed.map((m) => m.errors) } : {}),
    params: student.perSeed[0]!.params,
    latencyP50Ms: student.summary.latencyP50Ms.mean,
    ...(teacher?.perSeed[0]!.params ? { teacherParams: teacher.perSeed[0]!.params } : {}),
    ...(teacher ? { teacherLatencyP50Ms: teacher.summary.latencyP50Ms.mean } : {}),
    seconds: results.wallSeconds,
  };
}

/** Per seed, the last epoch of a stage. */
function lastEpochs(metrics: EpochMetric[], stage: string): EpochMetric[] {
  const last = new Map<number, EpochMetric>();
  for (const m of metrics) if (m.stage === stage && (last.get(m.seed)?.epoch ?? 0) < m.epoch) last.set(m.seed, m);
  return [...last.values()];
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * Runs a trial in a child process (src/queue/job-child.ts), which dies with its parent. Exit code 2
 * (a config the user can fix) comes back as a UserError with the child's own message. `cwd`: where
 * the config's relative paths are read from; `signal` kills the trial (a queue worker lost the job).
 */
export function runTrialChild(job: TrialJob, o: { cwd?: string; signal?: AbortSignal } = {}): Promise<TrialOutcome> {
  return runInChild({ module: import.meta.url, fn: "runTrialHere", job, what: `trial ${job.id}`, threads: job.threads, cacheDir: job.cacheDir, ...o }, () => readOutcome(job.output));
}
