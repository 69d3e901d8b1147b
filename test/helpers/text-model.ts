// A text classifier trained on token ids with cross-entropy and Adam, for the tests and the text
// benchmark (the pipeline trains through distill/train-stage.ts instead).

import type { LayerSpec } from "../../src/config/schema.js";
import { tokenizeAll, type Vocabulary } from "../../src/data/tokenizer.js";
import type { Model } from "../../src/nn/model.js";
import type { ParameterSet } from "../../src/nn/module.js";
import { buildModel, type DataGeometry } from "../../src/nn/spec.js";
import { ModelTrainer } from "../../src/nn/train-step.js";
import { crossEntropy } from "../../src/nn/losses.js";
import type { Sentences } from "./uci-sentences.js";

export const SENTIMENT_CLASSES = ["negative", "positive"];

/** What buildModel needs to know of token data made with `vocab`. */
export function tokenGeometry(vocab: Vocabulary): DataGeometry {
  return { kind: "tokens", sampleShape: [vocab.maxTokens], scale: 1, mean: [], std: [], vocabSize: vocab.tokens.length };
}

/** The fastText-like student: mean of token embeddings, then a linear layer. */
export const FASTTEXT_LIKE: LayerSpec[] = [{ type: "embedding", dims: 32 }, { type: "meanpool" }, { type: "linear", units: 2 }];

/** A Kim (2014)-style CNN: embedding, one convolution, max over time, dropout. */
export const CNN_TEACHER = (dims: number, filters: number): LayerSpec[] => [
  { type: "embedding", dims },
  { type: "conv1d", filters, kernel: 3 },
  { type: "relu" },
  { type: "maxovertime" },
  { type: "dropout", p: 0.5 },
  { type: "linear", units: 2 },
];

export async function trainTextClassifier(
  layers: LayerSpec[],
  train: Sentences,
  vocab: Vocabulary,
  o: { epochs: number; lr: number; seed?: number; batch?: number },
): Promise<{ model: Model; params: ParameterSet }> {
  const model = buildModel({ input: "tokens", layers }, SENTIMENT_CLASSES, tokenGeometry(vocab));
  const trainer = await ModelTrainer.create({
    model,
    params: model.initParameters(o.seed ?? 1),
    optimizer: { kind: "adam" },
    seed: o.seed ?? 1,
    threads: 1,
    loss: (ctx) => ({ loss: crossEntropy(ctx.logits, ctx.input("labels", ["N"], "int64")) }),
  });
  const width = vocab.maxTokens, batch = o.batch ?? 32;
  const ids = BigInt64Array.from(tokenizeAll(train.texts, vocab), BigInt), labels = BigInt64Array.from(train.labels, BigInt);
  for (let epoch = 0; epoch < o.epochs; epoch++)
    for (let at = 0; at + batch <= train.texts.length; at += batch)
      await trainer.step({
        input: { dtype: "int64", shape: [batch, width], data: ids.subarray(at * width, (at + batch) * width) },
        labels: { dtype: "int64", shape: [batch], data: labels.subarray(at, at + batch) },
      }, o.lr);
  const params = trainer.parameters();
  await trainer.dispose();
  return { model, params };
}

/** Share of texts whose larger logit is their label's. */
export function accuracy(logits: Float32Array, labels: number[]): number {
  return labels.filter((y, i) => (logits[2 * i + 1]! > logits[2 * i]! ? 1 : 0) === y).length / labels.length;
}
