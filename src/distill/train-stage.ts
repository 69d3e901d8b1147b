// Trains one model (teacher, baseline or distilled student) for one seed: batches and their
// augmentations, learning-rate schedule, the weighted loss terms, per-epoch validation, checkpoints
// and resume, NaN guard. Everything random is a function of (seed, epoch, step), so resuming from a
// checkpoint replays exactly what an uninterrupted run would have done.

import type { KdTerm, TrainSpec } from "../config/schema.js";
import { feedDType, type SampleSet } from "../data/sample-set.js";
import { Batches, MISSING_LABEL, MixedBatches, type Batch } from "../data/batches.js";
import type { OptimizerConfig } from "../engine/optimizers.js";
import type { Tensor } from "../engine/runtime.js";
import { UserError } from "../errors.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import { divergenceWarning, findDivergence } from "../eval/divergence.js";
import { accuracy, meanNll } from "../eval/metrics.js";
import type { EpochMetric } from "../eval/types.js";
import { exportOnnx, type Model } from "../nn/model.js";
import type { ParameterSet } from "../nn/module.js";
import { ModelTrainer } from "../nn/train-step.js";
import type { Progress } from "../util/progress.js";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import { learningRate } from "./schedule.js";
import type { InGraphTeacher } from "./consistent-teacher.js";
import type { BatchTeacher } from "./teacher-outputs.js";
import { WeightedTerms } from "./weighted-terms.js";

export interface StageJob {
  stage: string;
  seed: number;
  model: Model;
  train: TrainSpec;
  /** The loss: Σ weight · term (e.g. [{method: "cross-entropy", weight: 1}]). */
  terms: KdTerm[];
  set: SampleSet;
  trainIndices: Int32Array;
  validationIndices: Int32Array;
  /**
   * For terms that use a teacher: its logits and taps per batch — cached on the transfer set's clean
   * samples, or the teacher run on each batch as the student sees it (in a session of its own, or
   * built into the step graph): kd.teaching, consistent-teacher.ts.
   */
  teacher?: BatchTeacher | InGraphTeacher;
  /** Feed labels to the loss (false for an unlabeled transfer set). */
  useLabels: boolean;
  /**
   * Unlabelled transfer samples mixed into every batch (data.unlabeled): `labeledPerBatch` of each
   * batch are training examples with their labels, the rest these (see MixedBatches).
   */
  mix?: { unlabeled: Int32Array; labeledPerBatch: number };
  checkpointPath: string;
  progress: Progress;
  /** Called after each epoch's checkpoint is on disk, with the stage's history so far. */
  onEpoch?: (history: EpochMetric[]) => void;
  /** Stop (as if interrupted) after this many epochs have been checkpointed; for tests. */
  stopAfterEpochs?: number;
  /** Aborted: stop before the next optimizer step (the epoch's checkpoint so far is the last one written). */
  signal?: AbortSignal;
}

export class Interrupted extends Error {
  override name = "Interrupted";
}

export async function trainStage(job: StageJob): Promise<{ params: ParameterSet; history: EpochMetric[] }> {
  const terms = stageTerms(job);
  const trainer = await createStageTrainer(job, terms);
  try {
    const saved = readCheckpoint(job.checkpointPath);
    if (saved) trainer.restore({ state: saved.state, stepsTaken: saved.stepsTaken });
    let history = saved?.history ?? [];
    const train = job.train;
    const batches = stageBatches(job);
    for (let epoch = saved?.epochsDone ?? 0; epoch < train.epochs; epoch++) {
      const metric = await trainEpoch(job, trainer, terms, batches, epoch, history.length);
      history = [...history, metric];
      // A finite loss that explodes trains on silently: say so once, at the epoch it happens.
      const diverged = findDivergence(history);
      if (diverged?.epoch === metric.epoch) job.progress.log(`warning: ${divergenceWarning(diverged)}`);
      const snap = trainer.snapshot();
      writeCheckpoint(job.checkpointPath, { stage: job.stage, seed: job.seed, epochsDone: epoch + 1, stepsTaken: snap.stepsTaken, history, state: snap.state });
      job.onEpoch?.(history);
      await pauseForTest(job.checkpointPath, epoch + 1);
      if (job.stopAfterEpochs !== undefined && epoch + 1 >= job.stopAfterEpochs && epoch + 1 < train.epochs) throw new Interrupted(`stopped after epoch ${epoch + 1}`);
    }
    return { params: trainer.parameters(), history };
  } finally {
    await trainer.dispose();
  }
}

/**
 * Test-only barrier, so a test can kill or interrupt a real `distill` process at a known point
 * instead of racing its training: DISTILL_TEST_PAUSE_AFTER_EPOCH="<checkpoint>:<epoch>" (the
 * checkpoint's file name or a tail of its path: "baseline-s0.ckpt:2",
 * "t001/checkpoints/student-s0.ckpt:1") holds the process once that epoch's checkpoint is on disk,
 * after printing "distill-test: paused after <checkpoint> epoch <epoch>" on stdout, until it is
 * killed or gets SIGINT/SIGTERM (then it carries on, so signal handling works as without the pause).
 */
async function pauseForTest(checkpointPath: string, epochsDone: number): Promise<void> {
  const spec = process.env["DISTILL_TEST_PAUSE_AFTER_EPOCH"];
  if (!spec) return;
  const at = spec.lastIndexOf(":");
  const tail = spec.slice(0, at);
  if (Number(spec.slice(at + 1)) !== epochsDone || !(checkpointPath === tail || checkpointPath.endsWith(`/${tail}`))) return;
  process.stdout.write(`distill-test: paused after ${tail} epoch ${epochsDone}\n`);
  await new Promise<void>((resume) => {
    const keepAlive = setInterval(() => undefined, 60_000); // signal listeners alone do not keep Node running
    const carryOn = () => {
      clearInterval(keepAlive);
      process.off("SIGINT", carryOn).off("SIGTERM", carryOn);
      resume();
    };
    process.on("SIGINT", carryOn).on("SIGTERM", carryOn);
  });
}

export function optimizerOf(t: TrainSpec): OptimizerConfig {
  const o = t.optimizer;
  const maxNorm = o.maxNorm !== undefined ? { maxNorm: o.maxNorm } : {};
  return o.kind === "sgd"
    ? { kind: "sgd", momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay, ...maxNorm }
    : { kind: o.kind, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, ...maxNorm };
}

/** The stage's loss terms (with mixup, blended over each row's label and its partner's). */
export function stageTerms(job: Pick<StageJob, "terms" | "useLabels" | "mix" | "train">): WeightedTerms {
  return new WeightedTerms(job.terms, job.useLabels, job.mix ? job.mix.labeledPerBatch / job.train.batchSize : 1, { mixup: job.train.mixup !== undefined });
}

/** The stage's training batches, augmented as its train spec says (jitter, flip, mixup). */
export function stageBatches(job: Pick<StageJob, "set" | "trainIndices" | "mix" | "train" | "seed">): Batches {
  const { train } = job;
  const augment = { jitter: train.jitter, ...(train.flip ? { flip: true } : {}), ...(train.mixup !== undefined ? { mixup: train.mixup } : {}) };
  return job.mix
    ? new MixedBatches(job.set, job.trainIndices, job.mix.unlabeled, job.mix.labeledPerBatch, { batchSize: train.batchSize, shuffle: true, seed: job.seed, ...augment })
    : new Batches(job.set, job.trainIndices, { batchSize: train.batchSize, shuffle: true, seed: job.seed, dropLast: true, ...augment });
}

/** The stage's step: its model's training graph with the loss terms (and a consistent teacher built in, when it has one). */
export async function createStageTrainer(job: StageJob, terms: WeightedTerms): Promise<ModelTrainer> {
  const inGraph = job.teacher?.kind === "in-graph" ? job.teacher : undefined;
  const teacherTapShapes = job.teacher && job.teacher.kind !== "in-graph" ? job.teacher.tapShapes : new Map<string, number[]>();
  return ModelTrainer.create({
    model: job.model,
    params: job.model.initParameters(job.seed),
    optimizer: optimizerOf(job.train),
    clipGradNorm: job.train.clipGradNorm,
    seed: job.seed,
    fetchLogits: true,
    loss: (ctx) => terms.build(ctx, { seed: job.seed, numClasses: job.model.numClasses, teacherTapShapes, ...(inGraph ? { teacher: inGraph } : {}) }),
  });
}

/** Running sums over an epoch's batches: loss, each logged term, training accuracy (on the rows with labels). */
class EpochTally {
  lossSum = 0;
  correct = 0;
  seen = 0;
  labeled = 0;
  readonly termSums: Record<string, number> = {};

  add(batch: Pick<Batch, "labels" | "size">, loss: number, terms: Record<string, number>, logits: Float32Array, k: number): void {
    this.lossSum += loss * batch.size;
    for (const [name, v] of Object.entries(terms)) this.termSums[name] = (this.termSums[name] ?? 0) + v * batch.size;
    for (let i = 0; i < batch.size; i++) {
      if (batch.labels[i] === MISSING_LABEL || batch.labels[i]! < 0n) continue;
      this.labeled++;
      let best = 0;
      for (let c = 1; c < k; c++) if (logits[i * k + c]! > logits[i * k + best]!) best = c;
      if (BigInt(best) === batch.labels[i]) this.correct++;
    }
    this.seen += batch.size;
  }

  termMeans(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.termSums).map(([n, v]) => [n, v / this.seen]));
  }
}

/** One pass over the training batches, then validation; returns the epoch's metrics line. */
/** Optimizer steps per onnxruntime call: the MLP step measured 1.27× faster at 16 (docs/engine.md, "The step graph"). */
const STEPS_PER_CALL = 16;

async function trainEpoch(job: StageJob, trainer: ModelTrainer, terms: WeightedTerms, batches: Batches, epoch: number, epochsKept: number): Promise<EpochMetric> {
  const { train, model } = job;
  const started = performance.now();
  const task = job.progress.task(`${job.stage}${job.seed ? ` seed ${job.seed}` : ""} epoch ${epoch + 1}/${train.epochs}`, batches.batchCount);
  const tally = new EpochTally();
  let lr = 0, b = 0;
  // K optimizer steps per onnxruntime call (an ONNX Loop, bit-identical to K single steps). The batch
  // iterator and the method's feeds reuse their buffers, so a step waiting in the group holds copies.
  const group: { feeds: Record<string, Tensor>; lr: number; labels: BigInt64Array; size: number }[] = [];
  const flush = async () => {
    if (!group.length) return;
    const results = await trainer.stepMany(group.map((p) => p.feeds), group.map((p) => p.lr));
    results.forEach((res, j) => {
      if (!Number.isFinite(res.loss)) throw lossDiverged(job, res.loss, epoch, b - group.length + j, epochsKept);
      const { labels, size } = group[j]!;
      tally.add({ labels, size }, res.loss, res.terms, res.outputs["logits"]!.data as Float32Array, model.numClasses);
    });
    group.length = 0;
    task.update(b, { loss: tally.lossSum / tally.seen, acc: tally.correct / tally.labeled });
  };
  for (const batch of batches.epoch(epoch)) {
    if (job.signal?.aborted) throw new Interrupted("stopped by its AbortSignal");
    // One Loop call takes batches of one size: a short batch first runs what is waiting.
    if (group.length && batch.size !== group[0]!.size) await flush();
    lr = learningRate(train.optimizer.lr, train.schedule, train.epochs, epoch, b / batches.batchCount);
    const feeds = await stepFeeds(job, terms, batch);
    const held = Object.fromEntries(Object.entries(feeds).map(([n, t]) => [n, { ...t, data: t.data.slice() } as Tensor]));
    group.push({ feeds: held, lr, labels: batch.labels.slice(), size: batch.size });
    b++;
    if (group.length === STEPS_PER_CALL) await flush();
  }
  await flush();
  const val = await validate(model, trainer.parameters(), job.set, job.validationIndices);
  const metric: EpochMetric = {
    stage: job.stage,
    seed: job.seed,
    epoch: epoch + 1,
    lr,
    trainLoss: tally.lossSum / tally.seen,
    terms: tally.termMeans(),
    trainAccuracy: tally.correct / tally.labeled,
    valAccuracy: val.accuracy,
    valLoss: val.loss,
    seconds: (performance.now() - started) / 1000,
  };
  task.finish(`loss=${metric.trainLoss.toFixed(4)} train_acc=${metric.trainAccuracy.toFixed(4)}${job.validationIndices.length ? ` val_acc=${val.accuracy.toFixed(4)}` : ""}`);
  return metric;
}

/** One step's feeds: the batch as the model's input, its labels, and the teacher's outputs on it when they are fed. */
export async function stepFeeds(job: Pick<StageJob, "set" | "model" | "teacher">, terms: WeightedTerms, batch: Batch): Promise<Record<string, Tensor>> {
  const fed = job.teacher && job.teacher.kind !== "in-graph" && terms.usesTeacher ? job.teacher : undefined;
  if (terms.usesTeacher && !job.teacher) throw new Error("the loss needs the teacher's outputs, but none were provided");
  const teacher = fed ? await fed.forBatch(batch, terms.teacherWants) : undefined;
  return { input: { dtype: feedDType(job.set), shape: [batch.size, ...job.model.input.shape], data: batch.input } as Tensor, ...terms.feeds(batch, teacher) };
}

function lossDiverged(job: StageJob, loss: number, epoch: number, batch: number, epochsKept: number): UserError {
  const kept = epochsKept ? `the last good checkpoint (epoch ${epochsKept}) is kept in ${job.checkpointPath}` : "no epoch had finished, so there is no checkpoint";
  return new UserError(`${job.stage} (seed ${job.seed})`, `loss became ${loss} at epoch ${epoch + 1}, batch ${batch + 1}; ${kept}. Lower ${job.stage}.train.optimizer.lr or set ${job.stage}.train.clipGradNorm`);
}

/** Validation accuracy and NLL of the current parameters, through the exported inference graph. */
async function validate(model: Model, params: ParameterSet, set: SampleSet, indices: Int32Array): Promise<{ accuracy: number; loss: number }> {
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
