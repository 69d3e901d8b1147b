// Trains one sequence-to-sequence model (teacher, baseline or distilled student) for one seed:
// length-bucketed batches, the learning-rate schedule, word-level distillation feeds, per-epoch
// validation word accuracy by greedy decoding, checkpoints and resume. Everything random is a
// function of (seed, epoch), so a resumed run replays what an uninterrupted one would have done.

import type { TrainSpec } from "../config/schema.js";
import type { Tensor } from "../engine/graph.js";
import { UserError } from "../errors.js";
import { Seq2SeqDecoder, type TopK } from "../eval/seq2seq-decode.js";
import type { EpochMetric } from "../eval/types.js";
import type { ParameterSet } from "../nn/module.js";
import type { Seq2SeqModel } from "../nn/seq2seq.js";
import { Seq2SeqTrainer, type Seq2SeqFeeds } from "../nn/seq2seq-trainer.js";
import { SYMBOL_IDS } from "../data/sequence/symbols.js";
import { Rng } from "../util/random.js";
import type { Progress } from "../util/progress.js";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.js";
import { learningRate } from "./schedule.js";
import { optimizerOf } from "./train-stage.js";

/** A training pair as ids, without <bos>/<eos>. */
export interface IdPair {
  source: number[];
  target: number[];
}

export interface Seq2SeqStageJob {
  stage: string;
  seed: number;
  model: Seq2SeqModel;
  train: TrainSpec & { labelSmoothing?: number };
  pairs: IdPair[];
  /** Word-level distillation: the teacher's top-k at each target position of each pair (aligned with `pairs`). */
  wordKd?: { alpha: number; temperature: number; topK: number; teacher: TopK[] };
  /** Validation sources and every reference of each, for the per-epoch word accuracy (greedy). */
  validation: { sources: number[][]; references: number[][][] };
  /** [source, target] lengths of the step graphs, smallest first; the last is the model's longest. */
  buckets: [number, number][];
  checkpointPath: string;
  progress: Progress;
  threads?: number;
  signal?: AbortSignal;
  /** Called with the history after each epoch's checkpoint (a run's metrics log). */
  onEpoch?: (history: EpochMetric[]) => void;
}

export async function trainSeq2SeqStage(job: Seq2SeqStageJob): Promise<{ params: ParameterSet; history: EpochMetric[] }> {
  const kd = job.wordKd;
  if (kd && kd.teacher.length !== job.pairs.length) throw new Error(`${kd.teacher.length} teacher distributions for ${job.pairs.length} pairs`);
  const trainer = await Seq2SeqTrainer.create({
    model: job.model,
    params: job.model.initParameters(job.seed),
    optimizer: optimizerOf(job.train),
    loss: { labelSmoothing: job.train.labelSmoothing, wordKd: kd && { alpha: kd.alpha, temperature: kd.temperature, topK: kd.topK } },
    buckets: job.buckets,
    seed: job.seed,
    threads: job.threads,
    clipGradNorm: job.train.clipGradNorm,
  });
  try {
    const saved = readCheckpoint(job.checkpointPath);
    if (saved) trainer.restore({ state: saved.state, stepsTaken: saved.stepsTaken });
    let history = saved?.history ?? [];
    for (let epoch = saved?.epochsDone ?? 0; epoch < job.train.epochs; epoch++) {
      const metric = await trainEpoch(job, trainer, epoch);
      history = [...history, metric];
      const snap = trainer.snapshot();
      writeCheckpoint(job.checkpointPath, { stage: job.stage, seed: job.seed, epochsDone: epoch + 1, stepsTaken: snap.stepsTaken, history, state: snap.state });
      job.onEpoch?.(history);
    }
    return { params: trainer.parameters(), history };
  } finally {
    await trainer.dispose();
  }
}

/** The epoch's batches: a seeded permutation of the pairs, cut into batches per bucket, batches in seeded order. */
export function epochBatches(pairs: readonly IdPair[], buckets: readonly [number, number][], batchSize: number, seed: number, epoch: number): { bucket: number; rows: number[] }[] {
  const rng = new Rng(seed, `seq2seq-epoch-${epoch}`);
  const order = Array.from(pairs.keys());
  shuffle(order, rng);
  const perBucket: number[][] = buckets.map(() => []);
  for (const i of order) {
    const p = pairs[i]!;
    const b = buckets.findIndex(([ls, lt]) => p.source.length <= ls && p.target.length + 1 <= lt);
    if (b < 0) throw new RangeError(`pair ${i} (${p.source.length} → ${p.target.length} symbols) is longer than the model takes`);
    perBucket[b]!.push(i);
  }
  const batches: { bucket: number; rows: number[] }[] = [];
  perBucket.forEach((rows, bucket) => {
    for (let s = 0; s < rows.length; s += batchSize) batches.push({ bucket, rows: rows.slice(s, s + batchSize) });
  });
  shuffle(batches, rng);
  return batches;
}

function shuffle<T>(a: T[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

/** Ids of a batch padded to its bucket: source, decoder input (<bos> + target), decoder output (target + <eos>). */
export function batchFeeds(pairs: readonly IdPair[], rows: readonly number[], [ls, lt]: [number, number], teacher?: { topK: number; list: TopK[] }): Seq2SeqFeeds {
  const n = rows.length;
  const source = new BigInt64Array(n * ls), targetIn = new BigInt64Array(n * lt), targetOut = new BigInt64Array(n * lt);
  const k = teacher?.topK ?? 0;
  const ids = teacher ? new BigInt64Array(n * lt * k) : undefined, logProbs = teacher ? new Float32Array(n * lt * k) : undefined;
  rows.forEach((row, i) => {
    const p = pairs[row]!;
    p.source.forEach((id, j) => (source[i * ls + j] = BigInt(id)));
    targetIn[i * lt] = BigInt(SYMBOL_IDS.bos);
    p.target.forEach((id, j) => {
      targetIn[i * lt + j + 1] = BigInt(id);
      targetOut[i * lt + j] = BigInt(id);
    });
    targetOut[i * lt + p.target.length] = BigInt(SYMBOL_IDS.eos);
    if (teacher) {
      const t = teacher.list[row]!;
      if (t.positions !== p.target.length + 1 || t.k < k) throw new Error(`teacher distributions of pair ${row} do not match its target`);
      for (let pos = 0; pos < t.positions; pos++)
        for (let j = 0; j < k; j++) {
          ids![(i * lt + pos) * k + j] = BigInt(t.ids[pos * t.k + j]!);
          logProbs![(i * lt + pos) * k + j] = t.logProbs[pos * t.k + j]!;
        }
    }
  });
  const t64 = (data: BigInt64Array, shape: number[]): Tensor<"int64"> => ({ dtype: "int64", shape, data });
  return {
    source: t64(source, [n, ls]),
    targetIn: t64(targetIn, [n, lt]),
    targetOut: t64(targetOut, [n, lt]),
    ...(teacher ? { teacherIds: t64(ids!, [n, lt, k]), teacherLogProbs: { dtype: "float32" as const, shape: [n, lt, k], data: logProbs! } } : {}),
  };
}

async function trainEpoch(job: Seq2SeqStageJob, trainer: Seq2SeqTrainer, epoch: number): Promise<EpochMetric> {
  const started = performance.now();
  const train = job.train;
  const batches = epochBatches(job.pairs, job.buckets, train.batchSize, job.seed, epoch);
  const task = job.progress.task(`${job.stage}${job.seed ? ` seed ${job.seed}` : ""} epoch ${epoch + 1}/${train.epochs}`, batches.length);
  const teacher = job.wordKd && { topK: job.wordKd.topK, list: job.wordKd.teacher };
  let lossSum = 0, seen = 0, lr = 0;
  const termSums: Record<string, number> = {};
  for (let b = 0; b < batches.length; b++) {
    if (job.signal?.aborted) throw new UserError(job.checkpointPath, "stopped by its AbortSignal");
    const { bucket, rows } = batches[b]!;
    lr = learningRate(train.optimizer.lr, train.schedule, train.epochs, epoch, b / batches.length);
    const res = await trainer.step(bucket, batchFeeds(job.pairs, rows, job.buckets[bucket]!, teacher), lr);
    if (!Number.isFinite(res.loss))
      throw new UserError(`${job.stage} (seed ${job.seed})`, `loss became ${res.loss} at epoch ${epoch + 1}, batch ${b + 1}; lower ${job.stage}.train.optimizer.lr or set ${job.stage}.train.clipGradNorm`);
    lossSum += res.loss * rows.length;
    seen += rows.length;
    for (const [name, v] of Object.entries(res.terms)) termSums[name] = (termSums[name] ?? 0) + v * rows.length;
    if (b % 20 === 0) task.update(b + 1, { loss: lossSum / seen });
  }
  task.update(batches.length, { loss: lossSum / seen });
  const accuracy = await wordAccuracy(job, trainer.parameters());
  const metric: EpochMetric = {
    stage: job.stage,
    seed: job.seed,
    epoch: epoch + 1,
    lr,
    trainLoss: lossSum / seen,
    terms: Object.fromEntries(Object.entries(termSums).map(([n, v]) => [n, v / seen])),
    trainAccuracy: NaN,
    valAccuracy: accuracy,
    valLoss: NaN,
    seconds: (performance.now() - started) / 1000,
  };
  task.finish(`loss=${metric.trainLoss.toFixed(4)}${job.validation.sources.length ? ` val_word_acc=${accuracy.toFixed(4)}` : ""}`);
  return metric;
}

/** Share of validation sources whose greedy output equals one of their references. */
async function wordAccuracy(job: Seq2SeqStageJob, params: ParameterSet): Promise<number> {
  const { sources, references } = job.validation;
  if (!sources.length) return NaN;
  const decoder = new Seq2SeqDecoder(job.model, params, { threads: job.threads, sourceLengths: job.buckets.map(([ls]) => ls) });
  try {
    let correct = 0;
    for (let s = 0; s < sources.length; s += 512) {
      const out = await decoder.beamSearch(sources.slice(s, s + 512), 1);
      out.forEach((h, i) => {
        if (references[s + i]!.some((r) => r.length === h.ids.length && r.every((x, j) => x === h.ids[j]))) correct++;
      });
    }
    return correct / sources.length;
  } finally {
    await decoder.dispose();
  }
}
