// `node dist/bench/loop-vs-step.js mlp|cnn [K] [ROUNDS]`: one trainer alternates K single `step`
// calls with one `stepMany` of K steps, in the same process and minutes, and prints samples/s of
// each per round (JSON lines). The fairest A/B of the K-step Loop on a shared, noisy machine.

import os from "node:os";
import { ModelTrainer } from "../src/nn/train-step.js";
import { kdLossGraph } from "../src/nn/losses.js";
import type { HostTensor } from "../src/engine/runtime.js";
import { cnn, mlp800 } from "./models.js";

const [which = "mlp", kArg = "16", roundsArg = "5"] = process.argv.slice(2);
const k = Number(kArg), rounds = Number(roundsArg), batch = 128;
const model = which === "cnn" ? cnn() : mlp800();
const trainer = await ModelTrainer.create({
  model,
  params: model.initParameters(0),
  optimizer: { kind: "sgd", momentum: 0.9 },
  loss: (ctx) => ({ loss: kdLossGraph(ctx.logits, ctx.input("teacher_logits", ["N", 10]), ctx.input("labels", ["N"], "int64"), 4, 0.9).loss }),
});
const pixels = model.input.shape.reduce((a, b) => a * b, 1);
const feeds: Record<string, HostTensor> = {
  input: { dtype: "float32", shape: [batch, ...model.input.shape], data: Float32Array.from({ length: batch * pixels }, (_, i) => (i * 7919) % 256) },
  teacher_logits: { dtype: "float32", shape: [batch, 10], data: Float32Array.from({ length: batch * 10 }, (_, i) => Math.sin(i) * 3) },
  labels: { dtype: "int64", shape: [batch], data: BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10)) },
};
const feedsList = new Array<Record<string, HostTensor>>(k).fill(feeds), lrs = new Array<number>(k).fill(0.01);
await trainer.step(feeds, 0.01);
await trainer.stepMany(feedsList, lrs);
for (let r = 0; r < rounds; r++) {
  let t0 = performance.now();
  for (let i = 0; i < k; i++) await trainer.step(feeds, 0.01);
  const single = performance.now() - t0;
  t0 = performance.now();
  await trainer.stepMany(feedsList, lrs);
  const loop = performance.now() - t0;
  const rate = (ms: number) => Math.round((k * batch * 1000) / ms);
  console.log(JSON.stringify({ which, k, round: r, singleSamplesPerSec: rate(single), loopSamplesPerSec: rate(loop), ratio: Number((single / loop).toFixed(2)), loadavg1m: Number(os.loadavg()[0]!.toFixed(2)) }));
}
await trainer.dispose();
