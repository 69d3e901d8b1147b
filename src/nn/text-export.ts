// A text classifier exported with the tokenizer inside its graph (data/text-onnx.ts), so that it
// takes raw strings and a deployment needs nothing but onnxruntime.

import { type ExportOptions, type Model, exportOnnx } from "./model.js";
import type { ParameterSet } from "./module.js";
import { tokenIdsFromText, vocabularyMetadata } from "../data/text-onnx.js";
import type { Vocabulary } from "../data/tokenizer.js";

export interface TextExportOptions extends ExportOptions {
  /** "text" (default): the model takes raw strings [N]; "tokens": int64 ids [N, maxTokens] from tokenize(). */
  input?: "text" | "tokens";
}

/**
 * The standalone text classifier: raw strings in (the tokenizer inside the graph), logits out;
 * or, with input: "tokens", token ids in. Either way the vocabulary and the tokenizer's rules are
 * in the metadata, beside exportOnnx's input/output names and class labels.
 */
export function exportTextOnnx(model: Model, params: ParameterSet, vocab: Vocabulary, opts: TextExportOptions = {}): Uint8Array {
  if (model.input.layout !== "tokens" || model.input.shape[0] !== vocab.maxTokens)
    throw new Error(`exportTextOnnx: the model takes ${JSON.stringify(model.input.shape)} ${model.input.layout ?? ""} input, not ${vocab.maxTokens} token ids`);
  const { input = "text", ...rest } = opts;
  const metadata = { ...vocabularyMetadata(vocab), ...opts.metadata };
  if (input === "tokens") return exportOnnx(model, params, { ...rest, metadata });
  return exportOnnx(model, params, { ...rest, metadata, rawInput: { dtype: "string", shape: [], layout: "text", toModelInput: (x) => tokenIdsFromText(x, vocab) } });
}
