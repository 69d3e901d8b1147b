// Stage 1 of a sequence run: the teacher. Trained here on the gold pairs with its own recipe (and
// exported like every stage), or the user's .onnx (copied into the run folder by the plan), or
// none to run at all (a file of its outputs).

import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { trainSeq2SeqStage } from "../../distill/seq2seq-stage.js";
import type { RunFolder } from "../../distill/run-folder.js";
import { exportSeq2SeqOnnx, importSeq2SeqOnnx } from "../../nn/seq2seq-export.js";
import { SEQ2SEQ_DATA_KEY } from "../../eval/seq2seq-eval.js";
import type { ParameterSet } from "../../nn/module.js";
import { Seq2SeqModel } from "../../nn/seq2seq.js";
import type { EpochMetric } from "../../eval/types.js";
import { writeFileAtomic } from "../../util/fs.js";
import type { Seq2SeqPlan } from "./plan.js";

export async function trainSeq2SeqTeacher(plan: Seq2SeqPlan, run: RunFolder): Promise<void> {
  const { config, teacherSeed } = plan;
  if (!config.teacher.model || !plan.teacherSpec) return;
  if (!run.finished("teacher", teacherSeed)) {
    const model = new Seq2SeqModel(plan.teacherSpec);
    const { params, history } = await trainSeq2SeqStage({
      ...stageJob(plan, run, "teacher", teacherSeed), model, train: { ...config.teacher.train!, jitter: 0 }, pairs: plan.trainPairs,
    });
    finishSeq2SeqStage(plan, run, "teacher", teacherSeed, model, params, history);
  }
  if (!existsSync(run.teacherFile)) copyFileSync(run.modelPath("teacher", teacherSeed), run.teacherFile);
}

/** The frozen teacher as a model and its parameters (trained here or the user's), or undefined for a file of its outputs. */
export function loadSeq2SeqTeacher(plan: Seq2SeqPlan, run: RunFolder): ReturnType<typeof importSeq2SeqOnnx> | undefined {
  if (plan.config.teacher.outputs !== undefined) return undefined;
  return importSeq2SeqOnnx(readFileSync(run.teacherFile), run.teacherFile);
}

/** What every training stage of a run shares: validation, buckets, checkpoint, progress, the abort signal. */
export function stageJob(plan: Seq2SeqPlan, run: RunFolder, stage: string, seed: number) {
  return {
    stage, seed, validation: plan.validation, buckets: plan.buckets,
    checkpointPath: run.checkpointPath(stage, seed), progress: plan.progress,
    onEpoch: (history: EpochMetric[]) => run.writeMetricsLog(history),
    ...(plan.opts.signal ? { signal: plan.opts.signal } : {}),
  };
}

/** Exports a trained stage (its vocabularies inside) and writes its record: from then on it counts as done. */
export function finishSeq2SeqStage(plan: Seq2SeqPlan, run: RunFolder, stage: string, seed: number, model: Seq2SeqModel, params: ParameterSet, history: EpochMetric[]): void {
  // The data block too, so `distill eval` of the file finds the same test split.
  const metadata = { "distill.stage": stage, "distill.seed": String(seed), "distill.run": plan.config.name, "distill.dataset": plan.data.name, [SEQ2SEQ_DATA_KEY]: JSON.stringify(plan.config.data) };
  writeFileAtomic(run.modelPath(stage, seed), exportSeq2SeqOnnx(model, params, plan.vocab, metadata));
  run.writeRecord({ stage, seed, history });
  run.finished(stage, seed); // registers the record, so the metrics log keeps its epochs
  run.writeMetricsLog();
}
