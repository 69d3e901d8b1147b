// How every stage writes its model: the exporter for the data's kind, and the run's metadata.

import { dataName } from "../config/schema.js";
import { dataMetadata } from "../data/load.js";
import type { Dataset } from "../data/sample-set.js";
import { exportOnnx } from "../nn/model.js";
import { exportTextOnnx } from "../nn/text-export.js";
import type { Plan } from "./plan.js";

/**
 * How a stage's model is exported: text models take raw strings, the tokenizer inside the graph
 * (src/data/text-onnx.ts), so a deployment needs nothing but onnxruntime; the others as exportOnnx.
 */
export function exporterFor(dataset: Dataset): typeof exportOnnx {
  const vocabulary = dataset.vocabulary;
  return vocabulary ? (model, params, opts) => exportTextOnnx(model, params, vocabulary, opts) : exportOnnx;
}

/** What every exported model records about its run and data (so `distill eval` finds its test set). */
export function runMetadata({ config, dataset }: Plan): Record<string, string> {
  return { "distill.run": config.name, "distill.dataset": dataName(config.data), ...dataMetadata(config.data, dataset) };
}
