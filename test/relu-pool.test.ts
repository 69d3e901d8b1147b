// Training graphs compute MaxPool(ReLU(z)) as ReLU(MaxPool(z)) (src/nn/layers.ts, reluThenMaxPool):
// the swap must not change a single bit of training, nor what a term tapping either layer sees.

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { labelStepTrainer, mnistBatch, mnistHead } from "./helpers/mnist-models.js";
import { Graph } from "../src/engine/graph.js";
import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";

const SAMPLES = 256, BATCH = 32;
let data: ReturnType<typeof mnistHead>;

before(() => {
  data = mnistHead(SAMPLES);
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

const trainer = (model: Model) => labelStepTrainer(model, 7);
const batch = (b: number) => mnistBatch(data, b, BATCH);

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
