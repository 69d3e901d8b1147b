// `node dist/bench/loop-vs-step.js mlp|cnn [K] [ROUNDS]`: one trainer alternates K single `step`
// calls with one `stepMany` of K steps, in the same process and minutes, and prints samples/s of
// each per round (JSON lines). The fairest A/B of the K-step Loop on a shared, noisy machine.

import os from "node:os";
import type { Tensor } from "../src/engine/runtime.js";
import { kdStepFixture } from "./models.js";

const [which = "mlp", kArg = "16", roundsArg = "5"] = process.argv.slice(2);
const k = Number(kArg), rounds = Number(roundsArg), batch = 128;
const { trainer, feeds } = await kdStepFixture(which, batch);
const feedsList = new Array<Record<string, Tensor>>(k).fill(feeds), lrs = new Array<number>(k).fill(0.01);
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
