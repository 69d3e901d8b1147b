// A model described in a config (ModelSpec) → a Model with its preprocessing. The exported graph
// takes raw pixels 0–255 ([N, 784] for "flat", [N, 1, H, W] NCHW for "image") and normalises
// inside, with the dataset's mean and std.

import type { LayerSpec, ModelSpec } from "../config/schema.js";
import { Model } from "./model.js";
import type { Module } from "./module.js";
import {
  AvgPool2d, BatchNorm, Conv2d, Dropout, Flatten, GELU, GlobalAvgPool, LayerNorm, Linear, MaxPool2d, ReLU, Sequential, Sigmoid, Tanh,
} from "./layers.js";

export interface ImageGeometry {
  height: number;
  width: number;
  /** Per-dataset pixel statistics on the 0–1 scale, for normalisation inside the graph. */
  mean: number;
  std: number;
}

function layerOf(spec: LayerSpec): Module {
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
  }
}

/**
 * Builds the network. An image model whose layers end while still 4-D gets no implicit flatten:
 * the config says where to flatten, and a missing one is a build-time shape error naming the layer.
 */
export function buildModel(spec: ModelSpec, classLabels: string[], geometry: ImageGeometry): Model {
  const layers = spec.layers.map(layerOf);
  const net = new Sequential(layers, spec.layers.map((l) => l.name));
  const shape = spec.input === "flat" ? [geometry.height * geometry.width] : [1, geometry.height, geometry.width];
  return new Model(net, {
    shape,
    dtype: "float32",
    ...(spec.input === "image" ? { layout: "NCHW" as const } : {}),
    scale: 1 / 255,
    mean: [geometry.mean],
    std: [geometry.std],
  }, classLabels);
}

/** Mean and std of the pixels (0–1 scale) of a uint8 image array. */
export function pixelStatistics(images: Uint8Array): { mean: number; std: number } {
  let s = 0, s2 = 0;
  for (let i = 0; i < images.length; i++) {
    const v = images[i]! / 255;
    s += v;
    s2 += v * v;
  }
  const n = images.length;
  const mean = s / n;
  return { mean, std: Math.sqrt(Math.max(s2 / n - mean * mean, 1e-12)) };
}
