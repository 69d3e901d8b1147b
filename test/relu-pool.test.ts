// Training graphs compute MaxPool(ReLU(z)) as ReLU(MaxPool(z)) (src/nn/layers.ts, reluThenMaxPool):
// the swap must not change a single bit of training, nor what a term tapping either layer sees.

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { mnistHead } from "./helpers/mnist-models.js";
import { Graph, type Tensor } from "../src/engine/graph.js";
import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { ModelTrainer } from "../src/nn/train-step.js";
import { kdLossGraph } from "../src/nn/losses.js";

const SAMPLES = 256, BATCH = 32;
let images: Float32Array, labels: BigInt64Array;

before(() => {
  ({ images, labels } = mnistHead(SAMPLES));
});

/** conv-BN-ReLU-pool twice; `separated` puts each pool in a Sequential of its own, so no ReLU sits next to a pool and nothing is swapped. */
function cnn(separated: boolean): Model {
  const pool = () => (separated ? new L.Sequential([new L.MaxPool2d({ kernelSize: 2 })], ["pool"]) : new L.MaxPool2d({ kernelSize: 2 }));
  return new Model(
    new L.Sequential(
      [
        new L.Conv2d({ outChannels: 4, kernelSize: 3, padding: 1 }),
        new L.BatchNorm(),
        new L.ReLU(),
        pool(),
        // No bias: a conv bias's gradient sums the pooled gradient where the pool follows the conv
        // directly (engine/conv-grad.ts, biasGradSource) and the full-size one where a ReLU sits
        // between them: the same sum in another order, so another last bit.
        new L.Conv2d({ outChannels: 8, kernelSize: 3, padding: 1, bias: false }),
        new L.ReLU(),
        pool(),
        new L.Flatten(),
        new L.Linear({ outFeatures: 10 }),
      ],
      ["conv1", "bn1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten", "fc"],
    ),
    { shape: [1, 28, 28], scale: 1 / 255 },
    [..."0123456789"],
  );
}

async function trainer(model: Model): Promise<ModelTrainer> {
  return ModelTrainer.create({
    model,
    params: model.initParameters(7),
    optimizer: { kind: "sgd", momentum: 0.9 },
    threads: 1,
    fetchLogits: true,
    reportGradNorm: true,
    loss: (ctx) => ({ loss: kdLossGraph(ctx.logits, ctx.input("teacher_logits", ["N", 10]), ctx.input("labels", ["N"], "int64"), 4, 0).loss }),
  });
}

function batch(b: number): Record<string, Tensor> {
  const at = (b * BATCH) % SAMPLES;
  return {
    input: { dtype: "float32", shape: [BATCH, 1, 28, 28], data: images.subarray(at * 784, (at + BATCH) * 784) },
    labels: { dtype: "int64", shape: [BATCH], data: labels.subarray(at, at + BATCH) },
    teacher_logits: { dtype: "float32", shape: [BATCH, 10], data: new Float32Array(BATCH * 10) },
  };
}

describe("ReLU → MaxPool in training graphs", () => {
  it("trains on the same bits as the ReLU applied before the pool: losses, gradient norms, logits, parameters", async () => {
    const swapped = await trainer(cnn(false));
    const plain = await trainer(cnn(true));
    try {
      for (let i = 0; i < 6; i++) {
        const a = await swapped.step(batch(i), 0.05), b = await plain.step(batch(i), 0.05);
        assert.equal(a.loss, b.loss, `loss of step ${i + 1}`);
        assert.equal(a.gradNorm, b.gradNorm, `gradient norm of step ${i + 1}`);
        assert.deepEqual(a.outputs["logits"]!.data, b.outputs["logits"]!.data, `logits of step ${i + 1}`);
      }
      const a = swapped.snapshot().state, b = plain.snapshot().state;
      assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
      for (const [name, t] of a) assert.deepEqual(b.get(name)!.data, t.data, `state ${name}`);
      // The parameters did move: the comparison is not between two untouched models.
      assert.notDeepEqual(a.get("conv1.weight")!.data, cnn(false).initParameters(7).get("conv1.weight").data);
    } finally {
      await Promise.all([swapped.dispose(), plain.dispose()]);
    }
  });

  it("keeps each layer's tap: the ReLU's full-size output, the pool's ReLU'd output", () => {
    const taps = (mode: "train" | "eval") => {
      const g = new Graph(), model = cnn(false);
      model.build(g, mode, { kind: "inputs" }, model.inputValue(g));
      return Object.fromEntries([...g.taps].map(([name, v]) => [name, { shape: v.shape, op: v.producer?.opType }]));
    };
    const train = taps("train"), evaluation = taps("eval");
    assert.deepEqual(train["relu1"]!.shape, ["N", 4, 28, 28]);
    assert.deepEqual(train["pool1"]!.shape, ["N", 4, 14, 14]);
    assert.equal(train["pool1"]!.op, "Relu", "training graphs pool first, then apply the ReLU");
    assert.equal(evaluation["pool1"]!.op, "MaxPool", "exported (eval) graphs keep Conv → ReLU → MaxPool");
    assert.deepEqual(train["relu2"]!.shape, evaluation["relu2"]!.shape);
  });
});
