// A model described in a config (ModelSpec) → a Model with its preprocessing. The exported graph
// takes raw pixels 0–255 ([N, 784] for "flat", [N, 1, H, W] NCHW for "image") and normalises
// inside, with the dataset's mean and std; a "tokens" model takes int64 ids [N, maxTokens].

import type { LayerSpec, ModelSpec } from "../config/schema.js";
import { ShapeError } from "../engine/graph.js";
import type { InputKind, SampleSet } from "../data/sample-set.js";
import { Model } from "./model.js";
import type { Module } from "./module.js";
import {
  AvgPool2d, BatchNorm, Conv1d, Conv2d, Dropout, Embedding, Flatten, GELU, GlobalAvgPool, LayerNorm, Linear, MaxOverTime, MaxPool2d, MeanPool, ReLU,
  Sequential, Sigmoid, Tanh,
} from "./layers.js";
import { TransformerEncoder } from "./attention.js";

/** What a model needs to know about its data: the samples' kind and shape, and the normalisation
 * that goes inside its graph (x ↦ (x·scale − mean) / std, per channel for images, per feature for tables). */
export interface DataGeometry {
  kind: InputKind;
  /** Per-sample shape: [C, H, W], [features] or [maxTokens]. */
  sampleShape: number[];
  scale: number;
  mean: number[];
  std: number[];
  /** tokens: ids are below this (padding 0, unknown 1, then the vocabulary). */
  vocabSize?: number;
}

/** The geometry of a training set, normalisation statistics taken from it. */
export function dataGeometry(train: SampleSet, vocabSize?: number): DataGeometry {
  const { kind, sampleShape } = train;
  if (kind === "image") return { kind, sampleShape, scale: 1 / 255, ...channelStatistics(train.inputs as Uint8Array, sampleShape) };
  if (kind === "table") return { kind, sampleShape, scale: 1, ...featureStatistics(train.inputs as Float32Array, sampleShape[0]!) };
  return { kind, sampleShape, scale: 1, mean: [], std: [], ...(vocabSize !== undefined ? { vocabSize } : {}) };
}

const DATA_HOLDS = { image: "images", table: "table rows", tokens: "token ids" } as const;

function layerOf(spec: LayerSpec, geometry: DataGeometry): Module {
  switch (spec.type) {
    case "linear": return new Linear({ outFeatures: spec.units });
    case "conv": return new Conv2d({ outChannels: spec.filters, kernelSize: spec.kernel, stride: spec.stride, padding: spec.padding, groups: spec.groups });
    case "maxpool": return new MaxPool2d({ kernelSize: spec.size, stride: spec.stride ?? spec.size });
    case "avgpool": return new AvgPool2d({ kernelSize: spec.size, stride: spec.stride ?? spec.size });
    case "gap": return new GlobalAvgPool();
    case "flatten": return new Flatten();
    case "relu": return new ReLU();
    case "gelu": return new GELU();
    case "tanh": return new Tanh();
    case "sigmoid": return new Sigmoid();
    case "dropout": return new Dropout({ p: spec.p });
    case "batchnorm": return new BatchNorm();
    case "layernorm": return new LayerNorm();
    case "embedding":
      if (geometry.kind !== "tokens" || geometry.vocabSize === undefined)
        throw new ShapeError(`the model starts with an embedding, which reads token ids, but the data holds ${DATA_HOLDS[geometry.kind]}`);
      return new Embedding({ vocabSize: geometry.vocabSize, dim: spec.dims });
    case "meanpool": return new MeanPool();
    case "maxovertime": return new MaxOverTime();
    case "conv1d": return new Conv1d({ outChannels: spec.filters, kernelSize: spec.kernel });
    case "transformer": return new TransformerEncoder({ layers: spec.layers, heads: spec.heads, ffn: spec.ffn, positions: spec.positions, dropout: spec.dropout });
  }
}

/**
 * Builds the network. An image model whose layers end while still 4-D gets no implicit flatten:
 * the config says where to flatten, and a missing one is a build-time shape error naming the layer.
 */
export function buildModel(spec: ModelSpec, classLabels: string[], geometry: DataGeometry): Model {
  const layers = spec.layers.map((l) => layerOf(l, geometry));
  const net = new Sequential(layers, spec.layers.map((l) => l.name));
  const { kind, sampleShape, scale, mean, std } = geometry;
  if (spec.input === "tokens") return new Model(net, { shape: sampleShape, dtype: "int64", layout: "tokens" }, classLabels);
  if (kind === "tokens") throw new ShapeError(`the data holds token ids: a text model starts with {type: embedding, dims: …}, not ${spec.layers[0]!.type}`);
  if (spec.input === "image" && kind !== "image")
    throw new ShapeError(`the model starts with ${spec.layers[0]!.type} layers that want images, but the data holds ${kind === "table" ? "table rows" : "token ids"}`);
  const values = sampleShape.reduce((a, b) => a * b, 1);
  if (spec.input === "image") return new Model(net, { shape: sampleShape, dtype: "float32", layout: "NCHW", scale, mean, std }, classLabels);
  // Flat input: an image's per-channel statistics repeat over its pixels; a table's are per feature already.
  const perValue = (v: number[]) => (kind === "image" && v.length > 1 ? v.flatMap((x) => Array<number>(values / v.length).fill(x)) : v);
  return new Model(net, { shape: [values], dtype: "float32", scale, mean: perValue(mean), std: perValue(std) }, classLabels);
}

/** Mean and std of the pixels (0–1 scale) of a uint8 image array. */
export function pixelStatistics(images: Uint8Array): { mean: number; std: number } {
  const { mean, std } = channelStatistics(images, [1, images.length, 1]);
  return { mean: mean[0]!, std: std[0]! };
}

/** Per-channel mean and std on the 0–1 scale of uint8 images laid out [N, C, H, W]. */
export function channelStatistics(images: Uint8Array, [channels, height, width]: number[]): { mean: number[]; std: number[] } {
  const plane = height! * width!;
  const s = new Float64Array(channels!), s2 = new Float64Array(channels!);
  // Plane after plane: plane p of the array is channel p mod C of some image.
  for (let at = 0, c = 0; at < images.length; at += plane, c = (c + 1) % channels!)
    for (let i = at; i < at + plane; i++) {
      const v = images[i]! / 255;
      s[c]! += v;
      s2[c]! += v * v;
    }
  const n = images.length / channels!;
  const mean = Array.from(s, (x) => x / n);
  return { mean, std: Array.from(s2, (x, c) => Math.sqrt(Math.max(x / n - mean[c]! ** 2, 1e-12))) };
}

/** Per-feature mean and std of float rows [N, F]; a constant feature gets std 1 (it passes through centred). */
export function featureStatistics(rows: Float32Array, features: number): { mean: number[]; std: number[] } {
  const n = rows.length / features;
  const s = new Float64Array(features), s2 = new Float64Array(features);
  for (let r = 0; r < n; r++)
    for (let f = 0; f < features; f++) {
      const v = rows[r * features + f]!;
      s[f]! += v;
      s2[f]! += v * v;
    }
  const mean = Array.from(s, (x) => x / n);
  return { mean, std: Array.from(s2, (x, f) => {
    const variance = x / n - mean[f]! ** 2;
    return variance > 1e-12 * Math.max(1, mean[f]! ** 2) ? Math.sqrt(variance) : 1;
  }) };
}
