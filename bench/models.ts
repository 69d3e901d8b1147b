// The two benchmark students (bench/main.ts, bench/loop-vs-step.ts): the MLP and CNN the PyTorch
// peer (../shared/peers/torch_peer.py) builds too.

import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { ModelTrainer } from "../src/nn/train-step.js";
import { kdLossGraph } from "../src/nn/losses.js";
import type { Tensor } from "../src/engine/runtime.js";

const digits = [..."0123456789"];

export function mlp800(): Model {
  return new Model(
    new L.Sequential([new L.Linear({ outFeatures: 800 }), new L.ReLU(), new L.Linear({ outFeatures: 800 }), new L.ReLU(), new L.Linear({ outFeatures: 10 })]),
    { shape: [784], scale: 1 / 255 },
    digits,
  );
}

export function cnn(): Model {
  return new Model(
    new L.Sequential([
      new L.Conv2d({ outChannels: 32, kernelSize: 3, padding: 1 }),
      new L.ReLU(),
      new L.MaxPool2d({ kernelSize: 2 }),
      new L.Conv2d({ outChannels: 64, kernelSize: 3, padding: 1 }),
      new L.ReLU(),
      new L.MaxPool2d({ kernelSize: 2 }),
      new L.Flatten(),
      new L.Linear({ outFeatures: 128 }),
      new L.ReLU(),
      new L.Linear({ outFeatures: 10 }),
    ]),
    { shape: [1, 28, 28], scale: 1 / 255 },
    digits,
  );
}

/**
 * The KD training step the engine benches time: `which` model with an SGD-momentum trainer on the
 * KD loss (T = 4, α = 0.9), and one synthetic batch of `batch` samples (pixels, teacher logits, labels).
 */
export async function kdStepFixture(which: string, batch: number): Promise<{ model: Model; trainer: ModelTrainer; feeds: Record<string, Tensor> }> {
  const model = which === "cnn" ? cnn() : mlp800();
  const trainer = await ModelTrainer.create({
    model,
    params: model.initParameters(0),
    optimizer: { kind: "sgd", momentum: 0.9 },
    loss: (ctx) => ({ loss: kdLossGraph(ctx.logits, ctx.input("teacher_logits", ["N", 10]), ctx.input("labels", ["N"], "int64"), 4, 0.9).loss }),
  });
  const pixels = model.input.shape.reduce((a, b) => a * b, 1);
  const feeds: Record<string, Tensor> = {
    input: { dtype: "float32", shape: [batch, ...model.input.shape], data: Float32Array.from({ length: batch * pixels }, (_, i) => (i * 7919) % 256) },
    teacher_logits: { dtype: "float32", shape: [batch, 10], data: Float32Array.from({ length: batch * 10 }, (_, i) => Math.sin(i) * 3) },
    labels: { dtype: "int64", shape: [batch], data: BigInt64Array.from({ length: batch }, (_, i) => BigInt(i % 10)) },
  };
  return { model, trainer, feeds };
}
