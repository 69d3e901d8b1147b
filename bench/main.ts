// `npm run bench [-- --filter NAME] [-- --repeats K]`: one JSON line per figure (label.*: the
// teacher's labelling pass on 1M synthetic samples, samples/s and peak RSS; see bench/label.ts). Training figures
// take K optimizer steps per onnxruntime call (ModelTrainer.stepMany), as the trainer does.
// Each figure but label.* is the median of several timed rounds after a warm-up (label.* is one
// 1M-sample pass, cold then warm); the machine is shared, so
// the load average at start and end is printed with every line.

import os from "node:os";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { Model } from "../src/nn/model.js";
import { TRANSFORMER, cnn, mlp800, tokenTransformer } from "./models.js";
import { ModelTrainer } from "../src/nn/train-step.js";
import { kdLossGraph } from "../src/nn/losses.js";
import { exportOnnx } from "../src/nn/model.js";
import { Session, defaultThreads, type Tensor } from "../src/engine/runtime.js";
import { Rng } from "../src/util/random.js";

const args = process.argv.slice(2);
const filter = args.includes("--filter") ? args[args.indexOf("--filter") + 1]! : "";
const repeats = args.includes("--repeats") ? Number(args[args.indexOf("--repeats") + 1]) : 5;

/**
 * FLOPs per sample of a training step as the GEMMs (and convolutions) actually run: 2 per
 * multiply-add; each layer's forward and weight gradient, and the input gradient of every layer
 * but the first (nothing needs the gradient of the data).
 */
function trainFlops(layers: number[], firstLayer: number): number {
  const all = layers.reduce((a, b) => a + b, 0);
  return 2 * (3 * all - firstLayer);
}
const MLP_MACS = [784 * 800, 800 * 800, 800 * 10];
const CNN_MACS = [784 * 32 * 9, 196 * 64 * 32 * 9, 3136 * 128, 128 * 10];
/**
 * Per sequence: per block and token the Q, K, V and output projections (4d²), the FFN (2d·ffn) and
 * the attention products Q·Kᵀ and weights·V (2Ld); then the output layer (d·V). The embedding is
 * a lookup, so every GEMM also runs its input gradient: 3× the forward.
 */
function transformerTrainFlops(t: typeof TRANSFORMER): number {
  const perToken = t.layers * (4 * t.dim * t.dim + 2 * t.dim * t.ffn + 2 * t.length * t.dim) + t.dim * t.vocab;
  return 2 * 3 * t.length * perToken;
}
const TRAIN_FLOPS: Record<string, number> = {
  mlp800: trainFlops(MLP_MACS, MLP_MACS[0]!),
  cnn: trainFlops(CNN_MACS, CNN_MACS[0]!),
  transformer: transformerTrainFlops(TRANSFORMER),
};

/** Optimizer steps per onnxruntime call, as the trainer's K-step path takes them. */
const STEPS_PER_CALL = 16;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function randomBatch(model: Model, batch: number, seed: number): Tensor {
  const rng = new Rng(seed, "bench");
  const n = batch * model.input.shape.reduce((a, b) => a * b, 1);
  return { dtype: "float32", shape: [batch, ...model.input.shape], data: Float32Array.from({ length: n }, () => Math.floor(rng.next() * 256)) };
}

function emit(name: string, fields: Record<string, number | string>): void {
  console.log(JSON.stringify({ name, ...fields, threads: defaultThreads(), loadavg1m: Number(os.loadavg()[0]!.toFixed(2)), node: process.version }));
}

/** A batch of `batch` sequences of ids 1..vocab−1 (0 is padding, which the peer does not have). */
function randomTokens(model: Model, batch: number, vocab: number, seed: number): Tensor {
  const rng = new Rng(seed, "bench");
  const n = batch * model.input.shape[0]!;
  return { dtype: "int64", shape: [batch, ...model.input.shape], data: BigInt64Array.from({ length: n }, () => BigInt(1 + rng.int(vocab - 1))) };
}

/**
 * KD training steps/s of `model` on one synthetic batch. A model may give several rows of logits
 * per sample (the transformer: one per position); the KD loss then averages over rows, and a
 * sample is still a whole input (a sequence), as the peer counts.
 */
async function benchTrain(name: string, model: Model, flopsKey: string, batch: number, input: Tensor = randomBatch(model, batch, 1), rowsPerSample = 1): Promise<void> {
  const classes = model.numClasses, rows = batch * rowsPerSample;
  const trainer = await ModelTrainer.create({
    model,
    params: model.initParameters(0),
    optimizer: { kind: "sgd", momentum: 0.9 },
    loss: (ctx) => {
      const n = ctx.logits.shape[0]!;
      const terms = kdLossGraph(ctx.logits, ctx.input("teacher_logits", [n, classes]), ctx.input("labels", [n], "int64"), 4, 0.9);
      return { loss: terms.loss };
    },
  });
  const rng = new Rng(3, "teacher");
  const feeds: Record<string, Tensor> = {
    input,
    teacher_logits: { dtype: "float32", shape: [rows, classes], data: Float32Array.from({ length: rows * classes }, () => rng.normal() * 3) },
    labels: { dtype: "int64", shape: [rows], data: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i % classes)) },
  };
  const callsPerRound = flopsKey === "mlp800" ? 3 : 1;
  const feedsList = Array.from({ length: STEPS_PER_CALL }, () => feeds);
  const lrs = new Array<number>(STEPS_PER_CALL).fill(0.01);
  await trainer.stepMany(feedsList, lrs);
  const rates: number[] = [];
  const outside: number[] = [];
  for (let r = 0; r < repeats; r++) {
    let inRun = 0;
    const t0 = performance.now();
    for (let i = 0; i < callsPerRound; i++) {
      const res = await trainer.stepMany(feedsList, lrs);
      inRun += res.reduce((a, x) => a + x.runMs, 0);
    }
    const dt = performance.now() - t0;
    rates.push((callsPerRound * STEPS_PER_CALL * batch) / (dt / 1000));
    outside.push(1 - inRun / dt);
  }
  await trainer.dispose();
  const sps = median(rates);
  emit(name, {
    samplesPerSec: Math.round(sps),
    gflops: Number(((sps * TRAIN_FLOPS[flopsKey]!) / 1e9).toFixed(1)),
    stepMs: Number(((batch / sps) * 1000).toFixed(2)),
    outsideOrtShare: Number(median(outside).toFixed(3)),
    batch,
    stepsPerCall: STEPS_PER_CALL,
    rounds: repeats,
    minSamplesPerSec: Math.round(Math.min(...rates)),
    maxSamplesPerSec: Math.round(Math.max(...rates)),
  });
}

async function benchInfer(name: string, model: Model, batch: number): Promise<void> {
  const session = await Session.create(exportOnnx(model, model.initParameters(0)));
  const feeds = { input: randomBatch(model, batch, 2) };
  const runsPerRound = batch === 1 ? 400 : 20;
  for (let i = 0; i < 10; i++) await session.run(feeds);
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let i = 0; i < runsPerRound; i++) await session.run(feeds);
    rates.push((runsPerRound * batch) / ((performance.now() - t0) / 1000));
  }
  await session.dispose();
  const sps = median(rates);
  emit(name, { samplesPerSec: Math.round(sps), msPerBatch: Number(((batch / sps) * 1000).toFixed(3)), batch, rounds: repeats });
}

/** The labelling pass on 1M synthetic samples, in a process of its own: its peak RSS is the pass's alone (bench/label.ts). */
async function benchLabel(): Promise<void> {
  const script = fileURLToPath(new URL("./label.js", import.meta.url));
  process.stdout.write(execFileSync(process.execPath, [script, "--samples", "1000000", "--warm"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }));
}

const figures: [string, () => Promise<void>][] = [
  ["train.mlp800.kd.b128", () => benchTrain("train.mlp800.kd.b128", mlp800(), "mlp800", 128)],
  ["train.cnn.kd.b128", () => benchTrain("train.cnn.kd.b128", cnn(), "cnn", 128)],
  ["train.transformer.kd.b64", () => {
    const model = tokenTransformer();
    return benchTrain("train.transformer.kd.b64", model, "transformer", 64, randomTokens(model, 64, TRANSFORMER.vocab, 1), TRANSFORMER.length);
  }],
  ["infer.mlp800.b1", () => benchInfer("infer.mlp800.b1", mlp800(), 1)],
  ["infer.mlp800.b128", () => benchInfer("infer.mlp800.b128", mlp800(), 128)],
  ["infer.cnn.b128", () => benchInfer("infer.cnn.b128", cnn(), 128)],
  ["label.mlp800.1m", benchLabel],
];

for (const [name, run] of figures) if (name.includes(filter)) await run();
