// K optimizer steps in one onnxruntime call (the step graph inside an ONNX Loop) must give the
// same bits as K single steps: parameters, optimizer state, BatchNorm buffers, losses and terms.

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { mnistHead } from "./helpers/mnist-models.js";
import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { ModelTrainer, type TrainerStepResult } from "../src/nn/train-step.js";
import { kdLossGraph } from "../src/nn/losses.js";
import type { OptimizerConfig } from "../src/engine/optimizers.js";
import type { Tensor } from "../src/engine/runtime.js";

const SAMPLES = 512, BATCH = 32;
let images: Float32Array, labels: BigInt64Array, teacher: Float32Array;

before(() => {
  ({ images, labels } = mnistHead(SAMPLES));
  // A stand-in teacher: logits that favour the true label, so the KD term has something to match.
  teacher = new Float32Array(SAMPLES * 10);
  for (let i = 0; i < SAMPLES; i++) for (let c = 0; c < 10; c++) teacher[i * 10 + c] = BigInt(c) === labels[i] ? 4 : Math.sin(i * 10 + c);
});

function batch(model: Model, b: number): Record<string, Tensor> {
  const at = (b * BATCH) % SAMPLES;
  return {
    input: { dtype: "float32", shape: [BATCH, ...model.input.shape], data: images.subarray(at * 784, (at + BATCH) * 784) },
    labels: { dtype: "int64", shape: [BATCH], data: labels.subarray(at, at + BATCH) },
    teacher_logits: { dtype: "float32", shape: [BATCH, 10], data: teacher.subarray(at * 10, (at + BATCH) * 10) },
  };
}

async function trainer(model: Model, optimizer: OptimizerConfig): Promise<ModelTrainer> {
  return ModelTrainer.create({
    model,
    params: model.initParameters(3),
    optimizer,
    seed: 5,
    threads: 1,
    fetchLogits: true,
    reportGradNorm: true,
    loss: (ctx) => {
      const t = kdLossGraph(ctx.logits, ctx.input("teacher_logits", ["N", 10]), ctx.input("labels", ["N"], "int64"), 4, 0.7);
      return { loss: t.loss, terms: { loss_ce: t.ce, loss_kd: t.kd } };
    },
  });
}

const lrAt = (i: number) => 0.01 * (1 - i / 40);

/** Runs `steps` single steps on one trainer and the same steps in K-step calls (a short tail included) on another. */
async function compare(makeModel: () => Model, optimizer: OptimizerConfig, steps: number, k: number): Promise<void> {
  const single = await trainer(makeModel(), optimizer);
  const looped = await trainer(makeModel(), optimizer);
  const model = makeModel();
  try {
    const singleResults: TrainerStepResult[] = [];
    for (let i = 0; i < steps; i++) singleResults.push(await single.step(batch(model, i), lrAt(i)));
    const loopResults: TrainerStepResult[] = [];
    for (let i = 0; i < steps; i += k) {
      const n = Math.min(k, steps - i);
      const idx = Array.from({ length: n }, (_, j) => i + j);
      loopResults.push(...(await looped.stepMany(idx.map((j) => batch(model, j)), idx.map(lrAt))));
    }
    assert.equal(looped.stepsTaken, single.stepsTaken);
    singleResults.forEach((s, i) => {
      const l = loopResults[i]!;
      assert.equal(l.loss, s.loss, `loss of step ${i + 1}`);
      assert.equal(l.gradNorm, s.gradNorm, `gradient norm of step ${i + 1}`);
      assert.deepEqual(l.terms, s.terms, `terms of step ${i + 1}`);
      assert.deepEqual(l.outputs["logits"]!.data, s.outputs["logits"]!.data, `logits of step ${i + 1}`);
    });
    // Training moved the parameters, and both paths moved them to the same bits.
    assert.ok(singleResults.at(-1)!.loss < singleResults[0]!.loss, "loss went down");
    const a = single.snapshot().state, b = looped.snapshot().state;
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [name, t] of a) assert.deepEqual(b.get(name)!.data, t.data, `state ${name}`);
  } finally {
    await single.dispose();
    await looped.dispose();
  }
}

describe("K optimizer steps per call (ONNX Loop)", () => {
  it("MLP with dropout and Adam: 11 steps as 4+4+3 are bit-identical to 11 single steps", async () => {
    const mlp = () =>
      new Model(
        new L.Sequential([new L.Linear({ outFeatures: 64 }), new L.ReLU(), new L.Dropout({ p: 0.2 }), new L.Linear({ outFeatures: 10 })]),
        { shape: [784], scale: 1 / 255 },
        [..."0123456789"],
      );
    await compare(mlp, { kind: "adam" }, 11, 4);
  });

  it("CNN with BatchNorm and SGD momentum: 6 steps as 4+2 are bit-identical to 6 single steps", async () => {
    const cnn = () =>
      new Model(
        new L.Sequential([
          new L.Conv2d({ outChannels: 4, kernelSize: 3, padding: 1 }),
          new L.BatchNorm(),
          new L.ReLU(),
          new L.MaxPool2d({ kernelSize: 2 }),
          new L.Conv2d({ outChannels: 8, kernelSize: 3, padding: 1 }),
          new L.ReLU(),
          new L.MaxPool2d({ kernelSize: 2 }),
          new L.Flatten(),
          new L.Linear({ outFeatures: 10 }),
        ]),
        { shape: [1, 28, 28], scale: 1 / 255 },
        [..."0123456789"],
      );
    await compare(cnn, { kind: "sgd", momentum: 0.9 }, 6, 4);
  });

  it("a run resumed from a snapshot between K-step calls ends on the same bits", async () => {
    const mlp = () =>
      new Model(
        new L.Sequential([new L.Linear({ outFeatures: 32 }), new L.ReLU(), new L.Dropout({ p: 0.3 }), new L.Linear({ outFeatures: 10 })]),
        { shape: [784], scale: 1 / 255 },
        [..."0123456789"],
      );
    const model = mlp();
    const call = (t: ModelTrainer, from: number) => t.stepMany([0, 1, 2, 3].map((j) => batch(model, from + j)), [0, 1, 2, 3].map((j) => lrAt(from + j)));
    const straight = await trainer(mlp(), { kind: "adam" });
    await call(straight, 0);
    const straightLosses = (await call(straight, 4)).map((r) => r.loss);
    const first = await trainer(mlp(), { kind: "adam" });
    await call(first, 0);
    const saved = first.snapshot();
    await first.dispose();
    const resumed = await trainer(mlp(), { kind: "adam" });
    resumed.restore(saved);
    assert.deepEqual((await call(resumed, 4)).map((r) => r.loss), straightLosses);
    for (const [name, t] of straight.snapshot().state) assert.deepEqual(resumed.snapshot().state.get(name)!.data, t.data, name);
    await Promise.all([straight.dispose(), resumed.dispose()]);
  });

  it("refuses feeds of different shapes within one call", async () => {
    const model = new Model(new L.Sequential([new L.Linear({ outFeatures: 10 })]), { shape: [784], scale: 1 / 255 }, [..."0123456789"]);
    const t = await trainer(model, { kind: "sgd" });
    try {
      const short = batch(model, 1);
      short["input"] = { dtype: "float32", shape: [16, 784], data: images.subarray(0, 16 * 784) };
      await assert.rejects(t.stepMany([batch(model, 0), short], [0.1, 0.1]), /input input of step 2 .* shaped unlike step 1/);
    } finally {
      await t.dispose();
    }
  });
});
