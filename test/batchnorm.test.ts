// BatchNorm's running statistics against PyTorch's rule, with values worked out by hand:
// running ← (1 − momentum)·running + momentum·batch statistic, where the variance stored is the
// unbiased n/(n−1)·σ² while the batch itself is normalised with the biased σ² (torch.nn.BatchNorm).

import { it } from "node:test";
import assert from "node:assert/strict";
import * as F from "../src/engine/functional.js";
import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { ModelTrainer } from "../src/nn/train-step.js";

/** Runs `steps` training steps at lr 0 (parameters stay put) and returns the BN buffers and logits. */
async function bnSteps(model: Model, shape: number[], batches: number[][]) {
  const trainer = await ModelTrainer.create({
    model,
    params: model.initParameters(0),
    optimizer: { kind: "sgd", momentum: 0 },
    fetchLogits: true,
    loss: (ctx) => ({ loss: F.reduceSum(ctx.logits, [0, 1]) }),
  });
  try {
    const logits: number[][] = [];
    for (const b of batches) {
      const res = await trainer.step({ input: { dtype: "float32", shape: [b.length / shape.reduce((p, d) => p * d, 1), ...shape], data: Float32Array.from(b) } }, 0);
      logits.push([...(res.outputs["logits"]!.data as Float32Array)]);
    }
    const p = trainer.parameters();
    return { mean: [...p.get("bn1.running_mean").data], variance: [...p.get("bn1.running_var").data], logits };
  } finally {
    await trainer.dispose();
  }
}

const close = (got: number[], want: number[], what: string) =>
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) < 1e-5, `${what}[${i}]: ${g} vs ${want[i]}`));

it("BatchNorm [N, C]: running mean and unbiased running variance with momentum 0.1, two steps", async () => {
  const model = new Model(new L.Sequential([new L.BatchNorm()]), { shape: [2] }, ["a", "b"]);
  // Channel 0: 1, 2, 3, 6 → mean 3, σ² = 14/4 = 3.5, unbiased 14/3. Channel 1: −1, −1, 1, 1 → mean 0, σ² = 1, unbiased 4/3.
  const batch = [1, -1, 2, -1, 3, 1, 6, 1];
  const { mean, variance, logits } = await bnSteps(model, [2], [batch, batch]);
  // Step 1: 0.9·0 + 0.1·3 = 0.3; 0.9·1 + 0.1·14/3. Step 2: 0.9·0.3 + 0.3 = 0.57; 0.9·(0.9 + 1.4/3) + 1.4/3.
  close(mean, [0.57, 0], "running_mean");
  close(variance, [0.9 * (0.9 + 1.4 / 3) + 1.4 / 3, 0.9 * (0.9 + 0.4 / 3) + 0.4 / 3], "running_var");
  // The batch is normalised with the biased variance: (x − 3)/√(3.5 + 1e-5), (x − 0)/√(1 + 1e-5).
  const s0 = Math.sqrt(3.5 + 1e-5), s1 = Math.sqrt(1 + 1e-5);
  close(logits[0]!, [-2 / s0, -1 / s1, -1 / s0, -1 / s1, 0, 1 / s1, 3 / s0, 1 / s1], "train-mode output");
});

it("BatchNorm [N, C, H, W] with momentum 0.25: statistics over batch and pixels (n = N·H·W)", async () => {
  const model = new Model(new L.Sequential([new L.BatchNorm({ momentum: 0.25 }), new L.Flatten()]), { shape: [1, 1, 2] }, ["a", "b"]);
  // One channel, N = 2, H·W = 2: values 1, 3 | 5, 7 → mean 4, σ² = 5, unbiased 20/3 (n = 4, not 2).
  const { mean, variance } = await bnSteps(model, [1, 1, 2], [[1, 3, 5, 7]]);
  close(mean, [0.25 * 4], "running_mean");
  close(variance, [0.75 * 1 + 0.25 * (20 / 3)], "running_var");
});
