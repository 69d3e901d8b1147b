// Stages 3 and 4, per seed: the baseline on hard labels and the distilled student, same budget.
// The baseline depends on neither the teacher nor the kd terms, so it is trained once per cache
// folder (distill/model-cache.ts) and reused by every later run with the same student, data and
// seed: a tune's finals, a methods table, the same example with another method.

import { defaultCacheDir } from "../distill/soft-targets.js";
import { cachedModel, modelCacheDir, trainedModelKey } from "../distill/model-cache.js";
import type { RunFolder } from "../distill/run-folder.js";
import type { BatchTeacher } from "../distill/teacher-outputs.js";
import type { InGraphTeacher } from "../distill/consistent-teacher.js";
import { trainStage } from "../distill/train-stage.js";
import { readModelProto, setMetadata, writeModelProto } from "../compress/onnx-model.js";
import type { EpochMetric } from "../eval/types.js";
import { exporterFor, runMetadata } from "./export.js";
import type { Plan } from "./plan.js";
import { judgeTeacher } from "./teacher-checks.js";

/** 3, 4. Per seed: the baseline on hard labels, and the student with the configured terms, same budget. */
export async function trainStudents(plan: Plan, run: RunFolder, teacher: BatchTeacher | InGraphTeacher): Promise<void> {
  const { config } = plan;
  for (const seed of config.seeds) {
    for (const stage of studentStages(plan)) {
      if (run.finished(stage, seed)) {
        if (stage === "baseline" && seed === config.seeds[0]) judgeTeacher(plan, run, run.readRecord(stage, seed).history);
        continue;
      }
      const history = stage === "baseline"
        ? config.student.cacheBaseline === false ? (await trainHere(plan, run, stage, seed)).history : await cachedBaseline(plan, run, seed)
        : (await trainHere(plan, run, stage, seed, teacher)).history;
      run.saveState();
      if (stage === "baseline" && seed === config.seeds[0]) judgeTeacher(plan, run, history);
    }
  }
}

/** Trains a stage in this run (from its checkpoint, when one is there) and finishes it. */
async function trainHere(plan: Plan, run: RunFolder, stage: "baseline" | "student", seed: number, teacher?: BatchTeacher | InGraphTeacher, heartbeat?: () => void): Promise<{ bytes: Uint8Array; history: EpochMetric[] }> {
  const { config, labeled } = plan;
  const model = plan.studentModel();
  const { params, history } = await trainStage({
    stage, seed, model, train: config.student.train,
    terms: stage === "baseline" ? [{ method: "cross-entropy", weight: 1 }] : config.kd.terms,
    set: plan.dataset.train, validationIndices: plan.validationIndices, useLabels: labeled,
    ...(stage === "student" ? { teacher, ...plan.distilledData } : { trainIndices: plan.trainIndices }),
    checkpointPath: run.checkpointPath(stage, seed), progress: plan.progress,
    onEpoch: (h) => {
      run.writeMetricsLog(h);
      heartbeat?.();
    },
    stopAfterEpochs: plan.opts.stopAfterEpochs, signal: plan.opts.signal,
  });
  const bytes = run.finishStage(stage, seed, model, params, history, runMetadata(plan), exporterFor(plan.dataset));
  return { bytes, history };
}

/**
 * The baseline of `seed` from the cache, trained here (and cached) when it holds none. A reused one
 * keeps its epochs' history (the curves, the weak-teacher and no-gain checks read it) and gets this
 * run's metadata, so the file names the run it belongs to.
 */
async function cachedBaseline(plan: Plan, run: RunFolder, seed: number): Promise<EpochMetric[]> {
  const { config } = plan;
  const cacheDir = plan.opts.cacheDir ?? defaultCacheDir();
  const key = trainedModelKey({
    role: "baseline", model: config.student.model, train: config.student.train, seed, set: plan.dataset.train, trainIndices: plan.trainIndices,
    validationIndices: plan.validationIndices, classLabels: plan.dataset.classLabels, geometry: plan.geometry, vocabulary: plan.dataset.vocabulary,
  });
  let waited = false;
  const { model: cached, trained } = await cachedModel({
    cacheDir, key, runDir: run.dir,
    train: (heartbeat) => trainHere(plan, run, "baseline", seed, undefined, heartbeat),
    onWarning: (message) => plan.progress.log(`warning: ${message}`),
    onWait: (owner) => {
      if (!waited) plan.progress.log(`baseline seed ${seed}: process ${owner.pid} on ${owner.host} is training it (${modelCacheDir(cacheDir, "baseline", key.key)}); waiting for it`);
      waited = true;
    },
    ...(plan.opts.signal ? { signal: plan.opts.signal } : {}),
  });
  if (trained) return cached.record.history;
  const m = readModelProto(cached.bytes, cached.onnxPath);
  setMetadata(m, { ...runMetadata(plan), "distill.stage": "baseline", "distill.seed": String(seed) });
  const r = cached.record;
  run.finishStageWith("baseline", seed, writeModelProto(m), r.history);
  run.writeMetricsLog();
  const accuracy = r.validationAccuracy === null ? "no validation split" : `validation accuracy ${(r.validationAccuracy * 100).toFixed(2)} %`;
  plan.progress.log(`baseline seed ${seed}: reused from the cache (${cached.onnxPath}, trained ${r.trainedAt.slice(0, 16).replace("T", " ")} in ${r.seconds.toFixed(1)} s, ${accuracy})`);
  return r.history;
}

/** No labels, no hard-label baseline; a benchmark may also reuse one baseline across runs. */
export function studentStages(plan: Plan): ("baseline" | "student")[] {
  return plan.labeled && !plan.opts.skipBaseline ? ["baseline", "student"] : ["student"];
}
