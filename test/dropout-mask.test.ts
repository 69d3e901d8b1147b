// Dropout masks made inside the training graph by a counter-based hash: checked bit for bit
// against a JavaScript reference of the same hash, deterministic per (seed, step, layer), and
// reproduced by a resumed run.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Graph } from "../src/engine/graph.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";
import { ForwardContext } from "../src/nn/module.js";
import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { ModelTrainer } from "../src/nn/train-step.js";
import { crossEntropy } from "../src/nn/losses.js";
import { randomStreamValue } from "../src/nn/random.js";
import { hashString } from "../src/util/random.js";
import type { Tensor } from "../src/engine/runtime.js";

/** The graph's hash, written with 32-bit JavaScript integer arithmetic. */
function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x45d9f3b) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x45d9f3b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

function referenceMask(stream: bigint, layer: string, n: number, keep: number): Float32Array {
  const key = mix32((Number(stream) ^ hashString(layer)) >>> 0);
  const threshold = Math.round(keep * 2 ** 32);
  return Float32Array.from({ length: n }, (_, i) => (mix32((i ^ key) >>> 0) < threshold ? Math.fround(1 / keep) : 0));
}

/** Runs two dropout layers on a [4, 500] tensor of ones; returns their masks. */
async function masks(stream: bigint, p: number): Promise<Float32Array[]> {
  const g = new Graph();
  const x = g.input("x", ["N", 500]);
  const ctx = new ForwardContext(g, "train", () => {
    throw new Error("no parameters here");
  });
  const a = new L.Dropout({ p }), b = new L.Dropout({ p });
  a.path = "drop1";
  b.path = "drop2";
  g.output(a.forward(ctx, x), "a");
  g.output(b.forward(ctx, x), "b");
  const session = await Session.create(encodeModel(g), { threads: 1 });
  const feeds: Record<string, Tensor> = {
    x: { dtype: "float32", shape: [4, 500], data: new Float32Array(2000).fill(1) },
    "random:stream": { dtype: "int64", shape: [], data: BigInt64Array.of(stream) },
  };
  const out = await session.run(feeds);
  await session.dispose();
  return [out["a"]!.data as Float32Array, out["b"]!.data as Float32Array];
}

describe("dropout masks made in the graph", () => {
  it("match the JavaScript reference of the hash, keep about 1−p, and differ by layer, step and seed", async () => {
    const p = 0.3;
    const [a, b] = await masks(randomStreamValue(1, 0), p);
    assert.deepEqual(a, referenceMask(randomStreamValue(1, 0), "drop1.mask", 2000, 1 - p));
    assert.deepEqual(b, referenceMask(randomStreamValue(1, 0), "drop2.mask", 2000, 1 - p));
    const keptShare = a.filter((v) => v !== 0).length / a.length;
    assert.ok(Math.abs(keptShare - 0.7) < 0.04, `kept share ${keptShare}`);
    assert.notDeepEqual(a, b, "two layers draw different masks");
    const [again] = await masks(randomStreamValue(1, 0), p);
    assert.deepEqual(again, a, "same (seed, step) gives the same mask");
    const [nextStep] = await masks(randomStreamValue(1, 1), p);
    const [otherSeed] = await masks(randomStreamValue(2, 0), p);
    assert.notDeepEqual(nextStep, a);
    assert.notDeepEqual(otherSeed, a);
  });

  it("a run resumed from a snapshot (stepsTaken restored) takes the same steps as an uninterrupted one", async () => {
    const model = new Model(
      new L.Sequential([new L.Linear({ outFeatures: 32 }), new L.ReLU(), new L.Dropout({ p: 0.5 }), new L.Linear({ outFeatures: 3 })]),
      { shape: [8], scale: 1 },
      ["a", "b", "c"],
    );
    const make = () =>
      ModelTrainer.create({ model, params: model.initParameters(0), optimizer: { kind: "sgd", momentum: 0.9 }, seed: 9, threads: 1, loss: (ctx) => ({ loss: crossEntropy(ctx.logits, ctx.input("labels", ["N"], "int64")) }) });
    const feeds = (i: number): Record<string, Tensor> => ({
      input: { dtype: "float32", shape: [4, 8], data: Float32Array.from({ length: 32 }, (_, j) => Math.sin(i * 32 + j)) },
      labels: { dtype: "int64", shape: [4], data: BigInt64Array.from([0n, 1n, 2n, BigInt(i % 3)]) },
    });
    const straight = await make();
    const losses: number[] = [];
    for (let i = 0; i < 6; i++) losses.push((await straight.step(feeds(i), 0.05)).loss);

    const first = await make();
    for (let i = 0; i < 3; i++) await first.step(feeds(i), 0.05);
    const saved = first.snapshot();
    await first.dispose();
    const resumed = await make();
    resumed.restore(saved);
    const resumedLosses: number[] = [];
    for (let i = 3; i < 6; i++) resumedLosses.push((await resumed.step(feeds(i), 0.05)).loss);
    assert.deepEqual(resumedLosses, losses.slice(3));
    for (const [name, t] of straight.snapshot().state) assert.deepEqual(resumed.snapshot().state.get(name)!.data, t.data, name);
    // A resumed trainer that forgot the step count would draw step 0's masks again and differ.
    const forgetful = await make();
    forgetful.restore({ ...saved, stepsTaken: 0 });
    assert.notEqual((await forgetful.step(feeds(3), 0.05)).loss, losses[3]);
    await Promise.all([straight.dispose(), resumed.dispose(), forgetful.dispose()]);
  });
});
