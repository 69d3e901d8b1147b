// The benchmark students (bench/main.ts, bench/loop-vs-step.ts): the MLP, CNN and token-level
// transformer the PyTorch peer (../shared/peers/torch_peer.py) builds too.

import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { TokenLinear, TransformerEncoder } from "../src/nn/attention.js";
import { type ForwardContext, Module } from "../src/nn/module.js";
import type { Value } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
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

/** The peer's token-level workload: sequences of 32 symbols, 2 pre-norm blocks d=128, 4 heads, FFN 512. */
export const TRANSFORMER = { vocab: 64, length: 32, dim: 128, heads: 4, ffn: 512, layers: 2 } as const;

/** Per-position logits [N, L, V] as rows [N·L, V], so that the KD loss treats every position as a sample. */
class PositionRows extends Module {
  readonly kind = "rows";
  protected build(_ctx: ForwardContext, x: Value): Value {
    const [n, l, v] = x.shape;
    return F.reshape(x, [-1, v as number], [`${n}*${l}`, v!]);
  }
}

/**
 * The peer's Transformer: embedding + learned positions → 2 pre-norm encoder blocks (GELU, no
 * dropout) → LayerNorm → a linear layer per position. Id 0 is padding here (the embedding masks
 * it), so the benchmark feeds ids 1–63 only: every position is a token, as in the peer.
 */
export function tokenTransformer(): Model {
  const t = TRANSFORMER;
  return new Model(
    new L.Sequential([
      new L.Embedding({ vocabSize: t.vocab, dim: t.dim }),
      new TransformerEncoder({ layers: t.layers, heads: t.heads, ffn: t.ffn, positions: "learned" }),
      new TokenLinear({ outFeatures: t.vocab }),
      new PositionRows(),
    ]),
    { shape: [t.length], dtype: "int64", layout: "tokens" },
    Array.from({ length: t.vocab }, (_, i) => `symbol${i}`),
  );
}

/**
 * The KD training step the engine benches time: `which` model ("mlp", "cnn" or "transformer") with
 * an SGD-momentum trainer on the KD loss (T = 4, α = 0.9), and one synthetic batch of `batch`
 * samples (pixels or ids, teacher logits, labels; the transformer's per position).
 */
export async function kdStepFixture(which: string, batch: number): Promise<{ model: Model; trainer: ModelTrainer; feeds: Record<string, Tensor> }> {
  const model = which === "cnn" ? cnn() : which === "transformer" ? tokenTransformer() : mlp800();
  const classes = model.numClasses;
  const trainer = await ModelTrainer.create({
    model,
    params: model.initParameters(0),
    optimizer: { kind: "sgd", momentum: 0.9 },
    loss: (ctx) => {
      const rows = ctx.logits.shape[0]!;
      return { loss: kdLossGraph(ctx.logits, ctx.input("teacher_logits", [rows, classes]), ctx.input("labels", [rows], "int64"), 4, 0.9).loss };
    },
  });
  const values = model.input.shape.reduce((a, b) => a * b, 1);
  const rows = which === "transformer" ? batch * TRANSFORMER.length : batch;
  const input: Tensor = which === "transformer"
    ? { dtype: "int64", shape: [batch, ...model.input.shape], data: BigInt64Array.from({ length: batch * values }, (_, i) => BigInt(1 + ((i * 7919) % (classes - 1)))) }
    : { dtype: "float32", shape: [batch, ...model.input.shape], data: Float32Array.from({ length: batch * values }, (_, i) => (i * 7919) % 256) };
  const feeds: Record<string, Tensor> = {
    input,
    teacher_logits: { dtype: "float32", shape: [rows, classes], data: Float32Array.from({ length: rows * classes }, (_, i) => Math.sin(i) * 3) },
    labels: { dtype: "int64", shape: [rows], data: BigInt64Array.from({ length: rows }, (_, i) => BigInt(i % classes)) },
  };
  return { model, trainer, feeds };
}
