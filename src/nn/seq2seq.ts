// An encoder–decoder transformer on symbol sequences (Vaswani et al. 2017, pre-norm blocks): the
// source ids [N, Ls] are embedded and encoded once; the decoder reads the target prefix
// [N, Lt] (<bos> first) under a causal mask, attends to the encoder's output, and gives logits
// [N, Lt, V] for the next symbol at every position (teacher forcing in training).
//
// Positions are learned tables with the model's longest lengths as rows; a shorter sequence takes
// the first rows, so one parameter set serves graphs built for several lengths (length buckets in
// training, one graph per prefix length when decoding).

import { Graph, type Value } from "../engine/graph.js";
import * as F from "../engine/functional.js";
import { TokenLinear, TransformerDecoderBlock, TransformerEncoder, PositionEmbedding, type AttentionMemory } from "./attention.js";
import { Embedding, LayerNorm } from "./layers.js";
import { ForwardContext, type Mode, type Module, ParameterSet, type ParamDecl, initialValue } from "./module.js";

export interface Seq2SeqSpec {
  /** Model width (embeddings, attention, residual stream). */
  dims: number;
  heads: number;
  /** Feed-forward width inside each block. */
  ffn: number;
  encoderLayers: number;
  decoderLayers: number;
  /** Dropout on sub-layer outputs and attention weights in training. */
  dropout: number;
  /** Symbols in each vocabulary, the four special ones included. */
  sourceVocab: number;
  targetVocab: number;
  /** Longest source the model takes (symbols). */
  sourceLength: number;
  /** Longest target the model takes, <bos> or <eos> included (a decoder input is <bos> + symbols). */
  targetLength: number;
}

/** Where the parameters come from, as in Model.build. */
export type ParamSource = { kind: "inputs" } | { kind: "initializers"; params: ParameterSet };

export class Seq2SeqModel {
  constructor(readonly spec: Seq2SeqSpec) {}

  /** A context whose parameters are graph inputs (training) or initializers (inference). */
  context(g: Graph, mode: Mode, source: ParamSource): { ctx: ForwardContext; paramInputs: Map<string, Value> } {
    const paramInputs = new Map<string, Value>();
    const ctx = new ForwardContext(g, mode, (d) => {
      if (source.kind === "inputs") {
        const v = g.input(d.name, d.shape);
        paramInputs.set(d.name, v);
        return v;
      }
      const t = source.params.get(d.name);
      return g.initializer(d.name, { dtype: "float32", shape: d.shape, data: t.data });
    });
    return { ctx, paramInputs };
  }

  /** Source ids [N, ls] → the encoder's output [N, ls, D] and the source's token mask [N, ls]. */
  encode(ctx: ForwardContext, source: Value): AttentionMemory & { mask: Value } {
    const s = this.spec;
    const embedded = named(new Embedding({ vocabSize: s.sourceVocab, dim: s.dims }), "source_embedding").forward(ctx, source);
    const mask = ctx.tokenMask!;
    const encoder = named(new TransformerEncoder({ heads: s.heads, ffn: s.ffn, layers: s.encoderLayers, dropout: s.dropout, maxLength: s.sourceLength }), "encoder");
    return { value: encoder.forward(ctx, embedded), mask };
  }

  /** Target prefix ids [N, lt] (<bos> first) → next-symbol logits [N, lt, V]. */
  decode(ctx: ForwardContext, memory: AttentionMemory, target: Value): Value {
    const s = this.spec;
    let h = named(new Embedding({ vocabSize: s.targetVocab, dim: s.dims }), "target_embedding").forward(ctx, target);
    h = named(new PositionEmbedding({ kind: "learned", maxLength: s.targetLength }), "decoder.positions").forward(ctx, h);
    for (let i = 1; i <= s.decoderLayers; i++)
      h = named(new TransformerDecoderBlock({ heads: s.heads, ffn: s.ffn, dropout: s.dropout }), `decoder.block${i}`).decode(ctx, h, memory);
    h = named(new LayerNorm(), "decoder.ln").forward(ctx, h);
    return named(new TokenLinear({ outFeatures: s.targetVocab }), "output").forward(ctx, h);
  }

  /** The whole model under teacher forcing: logits [N, lt, V]. */
  forward(ctx: ForwardContext, source: Value, target: Value): Value {
    return this.decode(ctx, this.encode(ctx, source), target);
  }

  /** Parameters in declaration order, from one trace at the longest lengths. */
  declarations(): ParamDecl[] {
    const g = new Graph();
    const ctx = new ForwardContext(g, "train", (d) => g.input(`trace:${d.name}`, d.shape));
    this.forward(ctx, g.input("source", ["N", this.spec.sourceLength], "int64"), g.input("target", ["N", this.spec.targetLength], "int64"));
    return ctx.declared;
  }

  initParameters(seed: number): ParameterSet {
    const decls = this.declarations();
    return new ParameterSet(decls, new Map(decls.map((d) => [d.name, { dtype: "float32" as const, shape: d.shape, data: initialValue(d, seed) }])));
  }
}

function named<M extends Module>(m: M, path: string): M {
  m.path = path;
  return m;
}

/**
 * Mean token cross-entropy of logits [N, L, V] against target ids [N, L]; padding (id 0) is left
 * out of the mean, as PyTorch's ignore_index. `labelSmoothing` ε as in crossEntropy.
 */
export function tokenCrossEntropy(logits: Value, targets: Value, opts: { labelSmoothing?: number } = {}): Value {
  const g = logits.graph;
  const v = logits.shape[2] as number;
  const logp = F.logSoftmax(logits, -1);
  let target = F.oneHot(targets, v);
  const eps = opts.labelSmoothing ?? 0;
  if (eps > 0) target = F.add(F.scale(target, 1 - eps), g.constFloat([eps / v]));
  const perToken = F.neg(F.reduceSum(F.mul(target, logp), [2])); // [N, L]
  return maskedMean(perToken, targets);
}

/**
 * Word-level distillation (Kim & Rush 2016, §3.1) from the teacher's top-k per position:
 * KL(p ‖ q) with p = softmax(teacher log-probabilities / T) renormalised over its k symbols and
 * q = softmax(student logits / T), per real target position, token mean. `teacherIds` [N, L, k]
 * int64 and `teacherLogProbs` [N, L, k] are the teacher's k most likely next symbols and their
 * log-probabilities at T = 1. Not multiplied by T².
 */
export function topKDistillation(logits: Value, targets: Value, teacherIds: Value, teacherLogProbs: Value, temperature: number): Value {
  const v = logits.shape[2] as number;
  const logP = F.logSoftmax(F.scale(teacherLogProbs, 1 / temperature), -1); // [N, L, k]
  const p = F.exp(logP);
  const logQ = F.logSoftmax(F.scale(logits, 1 / temperature), -1); // [N, L, V]
  // The teacher's distribution over the whole vocabulary: Σ_k p_k · onehot(id_k) → [N, L, V].
  const dense = F.reduceSum(F.mul(F.oneHot(teacherIds, v), F.unsqueeze(p, [3])), [2]);
  const perToken = F.sub(F.reduceSum(F.mul(p, logP), [2]), F.reduceSum(F.mul(dense, logQ), [2]));
  return maskedMean(perToken, targets);
}

/** Mean of per-token values [N, L] over the positions where `targets` is not padding. */
function maskedMean(perToken: Value, targets: Value): Value {
  const g = perToken.graph;
  const mask = F.cast(F.greater(targets, g.constInt64([0], [])), "float32");
  const count = F.emit("Max", [F.reduceSum(mask, [0, 1]), g.constFloat([1])])[0]!;
  return F.div(F.reduceSum(F.mul(perToken, mask), [0, 1]), count);
}
