// The library face of everything `distill` does on the command line: the same config object as the
// YAML (validated by the same schema, errors naming the key), the same pipeline, the same files.
//
//   const { results, runDir } = await distill({ name: "my-run", teacher: {…}, student: {…}, kd: {…} });
//   const metrics = await evaluate("runs/my-run/student.onnx");
//   writeReport(runDir);

import { configFromObject, type ConfigOverrides } from "./config/load.js";
import type { DistillConfigInput } from "./config/schema.js";
// Registers the distillation methods that the config's `kd:` block accepts (src/config/methods.ts).
import "./distill/methods/index.js";
import { loadDataset, type DatasetName } from "./data/datasets.js";
import { allIndices, firstN } from "./data/split.js";
import { OnnxClassifier, evaluateClassifier } from "./eval/evaluate.js";
import { dataOfModel } from "./data/load.js";
import type { ModelMetrics, RunResults } from "./eval/types.js";
import type { Progress } from "./util/progress.js";

export interface DistillOptions {
  /** Names the config in error messages (default "config"). */
  where?: string;
  /** Run folder; overrides `output` in the config. */
  output?: string;
  /** No progress bars: one line per finished task (default true for library use). */
  quiet?: boolean;
  /** Soft-target cache folder (default $DISTILL_CACHE or .cache/distill). */
  cacheDir?: string;
  progress?: Progress;
  /** The CLI's --epochs / --seeds / --set, for scripted sweeps. */
  overrides?: Omit<ConfigOverrides, "output">;
  /** The folder relative paths in the config (data, teachers) start from (default: the working directory). */
  baseDir?: string;
  /**
   * Aborting stops the run at its next safe point: the promise rejects with a RunAbortedError
   * (its `resumeCommand` continues the run; `resume(runDir)` does the same), and nothing else
   * happens to the process. Signals are the caller's to handle: the library installs no handlers.
   */
  signal?: AbortSignal;
}

/**
 * Runs a whole distillation (teacher → soft targets → baseline and distilled students per seed →
 * evaluation → results.json and report.html) and returns the run folder and its results.
 * `config` is what the YAML file would hold (typed, so an inline object is checked by the
 * compiler); a bad key throws a UserError naming it, also for objects built at run time.
 */
export async function distill(config: DistillConfigInput, opts: DistillOptions = {}): Promise<{ runDir: string; results: RunResults }> {
  const where = opts.where ?? "config";
  const resolved = configFromObject(config, where, { ...opts.overrides, output: opts.output }, opts.baseDir);
  const { runDistillation } = await import("./run/pipeline.js");
  return runDistillation(resolved, { configPath: where, quiet: opts.quiet ?? true, cacheDir: opts.cacheDir, progress: opts.progress, signal: opts.signal });
}

/** Continues an interrupted run folder (as `distill resume`); `signal` as for distill(). */
export async function resume(runDir: string, opts: { quiet?: boolean; cacheDir?: string; signal?: AbortSignal } = {}): Promise<{ runDir: string; results: RunResults }> {
  const { resumeDistillation } = await import("./run/pipeline.js");
  return resumeDistillation(runDir, { quiet: opts.quiet ?? true, cacheDir: opts.cacheDir, signal: opts.signal });
}

export interface EvaluateOptions {
  /** Test set; default: the data the model's metadata records (`distill.data`, else the preset `distill.dataset`). */
  data?: DatasetName;
  /** Folder holding the dataset's IDX files, when not the default. */
  dataDir?: string;
  /** Only the first `limit` test samples. */
  limit?: number;
}

/** Test-set quality and cost of an ONNX classifier (as `distill eval`). */
export async function evaluate(model: string | Uint8Array, opts: EvaluateOptions = {}): Promise<ModelMetrics> {
  const classifier = typeof model === "string" ? await OnnxClassifier.fromFile(model) : await OnnxClassifier.fromBytes(model, "model");
  try {
    const dataset = opts.data && opts.dataDir ? loadDataset(opts.data, opts.dataDir) : await dataOfModel(classifier.metadata, opts.data, classifier.where, "the test set to evaluate on");
    classifier.checkFits(dataset.test, `${dataset.name} test set`);
    const indices = firstN(allIndices(dataset.test.count), opts.limit);
    return (await evaluateClassifier({ classifier, set: dataset.test, indices })).metrics;
  } finally {
    await classifier.dispose();
  }
}
