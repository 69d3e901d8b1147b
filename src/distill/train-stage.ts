// Trains one model (teacher, baseline or distilled student) for one seed: batches, learning-rate
// schedule, the method's loss, per-epoch validation, checkpoints and resume, NaN guard.
// Everything random is a function of (seed, epoch, step), so resuming from a checkpoint replays
// exactly what an uninterrupted run would have done.

import type { TrainSpec } from "../config/schema.js";
import type { ImageSet } from "../data/datasets.js";
import { ImageBatches } from "../data/batches.js";
import type { OptimizerConfig } from "../engine/optimizers.js";
import { UserError } from "../errors.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import { accuracy, meanNll } from "../eval/metrics.js";
import type { EpochMetric } from "../eval/types.js";
import { exportOnnx, type Model } from "../nn/model.js";
import type { ParameterSet } from "../nn/module.js";
import { ModelTrainer } from "../nn/train-step.js";
import type { Progress } from "../util/progress.js";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import type { DistillMethod, MethodSettings } from "./methods/index.js";
import { learningRate } from "./schedule.js";

export interface StageJob {
  stage: string;
  seed: number;
  model: Model;
  train: TrainSpec;
  method: DistillMethod;
  settings: MethodSettings;
  set: ImageSet;
  trainIndices: Int32Array;
  validationIndices: Int32Array;
  /** Teacher logits for the whole set, row = example index (only rows of trainIndices are read). */
  teacherLogits?: { data: Float32Array; rowOf: Int32Array; classes: number };
  /** Feed labels to the loss (false for an unlabeled transfer set). */
  useLabels: boolean;
  checkpointPath: string;
  progress: Progress;
  /** Called after each epoch's checkpoint is on disk, with the stage's history so far. */
  onEpoch?: (history: EpochMetric[]) => void;
  /** Stop (as if interrupted) after this many epochs have been checkpointed; for tests. */
  stopAfterEpochs?: number;
}

export class Interrupted extends Error {
  override name = "Interrupted";
}

function optimizerOf(t: TrainSpec): OptimizerConfig {
  const o = t.optimizer;
  return o.kind === "sgd"
    ? { kind: "sgd", momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay }
    : { kind: o.kind, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay };
}

export async function trainStage(job: StageJob): Promise<{ params: ParameterSet; history: EpochMetric[] }> {
  const { model, train, set } = job;
  const k = model.numClasses;
  const trainer = await ModelTrainer.create({
    model,
    params: model.initParameters(job.seed),
    optimizer: optimizerOf(train),
    clipGradNorm: train.clipGradNorm,
    seed: job.seed,
    fetchLogits: true,
    loss: (ctx) => {
      const labels = job.method.usesLabels && job.useLabels ? ctx.input("labels", ["N"], "int64") : undefined;
      const teacherLogits = job.method.usesTeacher ? ctx.input("teacher_logits", ["N", k]) : undefined;
      return job.method.loss({ ctx, labels, teacherLogits, settings: job.settings });
    },
  });
  try {
    let history: EpochMetric[] = [];
    let startEpoch = 0;
    const saved = readCheckpoint(job.checkpointPath);
    if (saved) {
      trainer.restore({ state: saved.state, stepsTaken: saved.stepsTaken });
      history = saved.history;
      startEpoch = saved.epochsDone;
    }
    const batches = new ImageBatches(set, job.trainIndices, { batchSize: train.batchSize, shuffle: true, seed: job.seed, jitter: train.jitter, dropLast: true });
    const sampleShape = model.input.shape;
    const teacherBatch = new Float32Array(train.batchSize * k);
    for (let epoch = startEpoch; epoch < train.epochs; epoch++) {
      const started = performance.now();
      const label = `${job.stage}${job.seed ? ` seed ${job.seed}` : ""} epoch ${epoch + 1}/${train.epochs}`;
      const task = job.progress.task(label, batches.batchCount);
      let lossSum = 0, correct = 0, seen = 0, b = 0;
      const termSums: Record<string, number> = {};
      let lr = 0;
      for (const batch of batches.epoch(epoch)) {
        lr = learningRate(train.optimizer.lr, train.schedule, train.epochs, epoch, b / batches.batchCount);
        const feeds: Parameters<ModelTrainer["step"]>[0] = {
          input: { dtype: "float32", shape: [batch.size, ...sampleShape], data: batch.input },
        };
        if (job.method.usesLabels && job.useLabels) feeds["labels"] = { dtype: "int64", shape: [batch.size], data: batch.labels };
        if (job.method.usesTeacher) {
          const t = job.teacherLogits;
          if (!t) throw new Error(`${job.stage}: method ${job.method.name} needs teacher logits`);
          for (let i = 0; i < batch.size; i++) {
            const row = t.rowOf[batch.indices[i]!]!;
            teacherBatch.set(t.data.subarray(row * k, row * k + k), i * k);
          }
          feeds["teacher_logits"] = { dtype: "float32", shape: [batch.size, k], data: teacherBatch.subarray(0, batch.size * k) };
        }
        const res = await trainer.step(feeds, lr);
        if (!Number.isFinite(res.loss)) {
          const kept = history.length ? `the last good checkpoint (epoch ${history.length}) is kept in ${job.checkpointPath}` : "no epoch had finished, so there is no checkpoint";
          throw new UserError(`${job.stage} (seed ${job.seed})`, `loss became ${res.loss} at epoch ${epoch + 1}, batch ${b + 1}; ${kept}. Lower ${job.stage}.train.optimizer.lr or set ${job.stage}.train.clipGradNorm`);
        }
        lossSum += res.loss * batch.size;
        for (const [name, v] of Object.entries(res.terms)) termSums[name] = (termSums[name] ?? 0) + v * batch.size;
        const logits = res.outputs["logits"]!.data as Float32Array;
        for (let i = 0; i < batch.size; i++) {
          let best = 0;
          for (let c = 1; c < k; c++) if (logits[i * k + c]! > logits[i * k + best]!) best = c;
          if (BigInt(best) === batch.labels[i]) correct++;
        }
        seen += batch.size;
        b++;
        if (b % 8 === 0 || b === batches.batchCount) task.update(b, { loss: lossSum / seen, acc: correct / seen });
      }
      const params = trainer.parameters();
      const val = await validate(model, params, set, job.validationIndices);
      const metric: EpochMetric = {
        stage: job.stage,
        seed: job.seed,
        epoch: epoch + 1,
        lr,
        trainLoss: lossSum / seen,
        terms: Object.fromEntries(Object.entries(termSums).map(([n, v]) => [n, v / seen])),
        trainAccuracy: correct / seen,
        valAccuracy: val.accuracy,
        valLoss: val.loss,
        seconds: (performance.now() - started) / 1000,
      };
      history = [...history, metric];
      const snap = trainer.snapshot();
      writeCheckpoint(job.checkpointPath, { stage: job.stage, seed: job.seed, epochsDone: epoch + 1, stepsTaken: snap.stepsTaken, history, state: snap.state });
      task.finish(`loss=${metric.trainLoss.toFixed(4)} train_acc=${metric.trainAccuracy.toFixed(4)}${job.validationIndices.length ? ` val_acc=${val.accuracy.toFixed(4)}` : ""}`);
      job.onEpoch?.(history);
      if (job.stopAfterEpochs !== undefined && epoch + 1 >= job.stopAfterEpochs && epoch + 1 < train.epochs) throw new Interrupted(`stopped after epoch ${epoch + 1}`);
    }
    return { params: trainer.parameters(), history };
  } finally {
    await trainer.dispose();
  }
}

/** Validation accuracy and NLL of the current parameters, through the exported inference graph. */
async function validate(model: Model, params: ParameterSet, set: ImageSet, indices: Int32Array): Promise<{ accuracy: number; loss: number }> {
  if (indices.length === 0) return { accuracy: NaN, loss: NaN };
  const c = await OnnxClassifier.fromBytes(exportOnnx(model, params), "validation model");
  try {
    const logits = await c.logits(set, indices);
    const labels = new Uint8Array(indices.length);
    for (let i = 0; i < indices.length; i++) labels[i] = set.labels[indices[i]!]!;
    return { accuracy: accuracy(logits, labels, model.numClasses), loss: meanNll(logits, labels, model.numClasses) };
  } finally {
    await c.dispose();
  }
}
