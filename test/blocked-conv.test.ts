// Training steps run Convs with many channels on onnxruntime's blocked (NCHWc) kernels
// (src/engine/nchwc.ts). On MNIST, a CNN trained that way must follow the same trajectory as
// with plain Convs, to float rounding; the kernels sum in another order, so not bit for bit.

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { labelStepTrainer, mnistBatch, mnistHead } from "./helpers/mnist-models.js";
import { Graph } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { nchwcBlockSize } from "../src/engine/nchwc.js";
import { compileTrainStep } from "../src/engine/training.js";
import { decodeModel } from "../src/engine/onnx.js";
import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { ModelTrainer } from "../src/nn/train-step.js";

const SAMPLES = 192, BATCH = 32;
let data: ReturnType<typeof mnistHead>;

before(() => {
  data = mnistHead(SAMPLES);
});

/** The bench CNN's shape at a quarter of its width: conv1 (1 channel in) stays plain, conv2 is blocked. */
function cnn(block: number): Model {
  return new Model(
    new L.Sequential([
      new L.Conv2d({ outChannels: block, kernelSize: 3, padding: 1 }),
      new L.ReLU(),
      new L.MaxPool2d({ kernelSize: 2 }),
      new L.Conv2d({ outChannels: 2 * block, kernelSize: 3, padding: 1 }),
      new L.ReLU(),
      new L.MaxPool2d({ kernelSize: 2 }),
      new L.Flatten(),
      new L.Linear({ outFeatures: 10 }),
    ]),
    { shape: [1, 28, 28], scale: 1 / 255 },
    [..."0123456789"],
  );
}

async function trainer(model: Model, blocked: boolean): Promise<ModelTrainer> {
  // DISTILL_BLOCKED_CONV=0 is the documented switch back to plain Convs; it is read at create().
  const before = process.env["DISTILL_BLOCKED_CONV"];
  if (!blocked) process.env["DISTILL_BLOCKED_CONV"] = "0";
  try {
    return await labelStepTrainer(model, 3);
  } finally {
    if (before === undefined) delete process.env["DISTILL_BLOCKED_CONV"];
    else process.env["DISTILL_BLOCKED_CONV"] = before;
  }
}

const batch = (b: number) => mnistBatch(data, b, BATCH);

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

describe("blocked (NCHWc) convolutions in training steps", () => {
  it("are used where the channel counts allow, and only there", async (t) => {
    const block = await nchwcBlockSize();
    if (!block) return t.skip("this onnxruntime build has no NCHWc kernels (nchwcBlockSize() is undefined)");
    const opTypes = (channels: number) => {
      const g = new Graph();
      const x = g.input("x", ["N", channels, 6, 6]), w = g.input("w", [block, channels, 3, 3]);
      const loss = F.reduceSum(F.mul(F.one("Conv", [x, w], { pads: { ints: [1, 1, 1, 1] } }), F.one("Conv", [x, w], { pads: { ints: [1, 1, 1, 1] } })), [0, 1, 2, 3]);
      return decodeModel(compileTrainStep({ graph: g, loss, params: new Map([["w", w]]), optimizer: { kind: "sgd" }, nchwcBlock: block }).model).opTypes;
    };
    const blocked = opTypes(block);
    assert.equal(blocked.filter((o) => o === "ReorderInput").length, 2, "both forward Convs (the input gradient is not needed)");
    assert.ok(!opTypes(block / 2).includes("ReorderInput"), "channel counts the block does not divide stay plain");
  });

  it("train a CNN on MNIST as plain Convs do, to float rounding: losses, gradient norms, logits, every parameter", async (t) => {
    const block = await nchwcBlockSize();
    if (!block) return t.skip("this onnxruntime build has no NCHWc kernels (nchwcBlockSize() is undefined)");
    const blocked = await trainer(cnn(block), true), plain = await trainer(cnn(block), false);
    try {
      for (let i = 0; i < 6; i++) {
        const a = await blocked.step(batch(i), 0.05), b = await plain.step(batch(i), 0.05);
        assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(b.loss), `loss of step ${i + 1}: ${a.loss} vs ${b.loss}`);
        assert.ok(Math.abs(a.gradNorm - b.gradNorm) <= 1e-4 * b.gradNorm, `gradient norm of step ${i + 1}: ${a.gradNorm} vs ${b.gradNorm}`);
        const la = a.outputs["logits"]!.data as Float32Array, lb = b.outputs["logits"]!.data as Float32Array;
        assert.ok(maxDiff(la, lb) <= 1e-4 * maxAbs(lb), `logits of step ${i + 1} differ by ${maxDiff(la, lb)}`);
      }
      const a = blocked.snapshot().state, b = plain.snapshot().state;
      for (const [name, ta] of a) {
        const tb = b.get(name)!.data as Float32Array;
        assert.ok(maxDiff(ta.data, tb) <= 1e-4 * maxAbs(tb), `state ${name} differs by ${maxDiff(ta.data, tb)} (scale ${maxAbs(tb)})`);
      }
      // The steps moved every parameter, and rounding did separate the two runs: the blocked kernels ran.
      for (const [name, t0] of cnn(block).initParameters(3).tensors) assert.ok(maxDiff(a.get(name)!.data, t0.data as Float32Array) > 0, `${name} never moved`);
      assert.ok([...a].some(([name, ta]) => maxDiff(ta.data, b.get(name)!.data as Float32Array) > 0), "bit-identical: the blocked kernels did not run");
    } finally {
      await Promise.all([blocked.dispose(), plain.dispose()]);
    }
  });
});
