// Attention and pre-norm transformer blocks on token sequences [N, L, D] (Vaswani et al. 2017,
// with the layer norm before each sub-layer as in Xiong et al. 2020 and PyTorch's norm_first).
// Everything is built from ops that already have gradient rules (Gemm, MatMul on rank-4,
// Transpose, Softmax, Add), so training graphs need nothing beyond the engine's autodiff.
//
// Masks are additive: a masked score gets −1e9 before the softmax, whose exp is exactly 0 in
// float32, so masked keys get zero weight and zero gradient. The key padding mask comes from the
// token ids (ctx.tokenMask, set by the Embedding); the causal mask is a constant [L, L].

import { type Value, formatShape } from "../engine/graph.js";
import * as F from "../engine/functional.js";
import { type ForwardContext, Module } from "./module.js";
import { Dropout, GELU, LayerNorm } from "./layers.js";

/** Added to a masked attention score; exp(−1e9 + s) underflows to 0 for any score s seen in practice. */
const MASKED_SCORE = -1e9;

function staticDimOf(ctx: ForwardContext, x: Value, axis: number, what: string): number {
  const d = x.shape[axis < 0 ? x.rank + axis : axis];
  if (typeof d !== "number") throw ctx.graph.shapeError(`${what} must be static, input shape ${formatShape(x.shape)}`);
  return d;
}

function expectSequence(ctx: ForwardContext, x: Value, layer: string): void {
  if (x.rank !== 3) throw ctx.graph.shapeError(`${layer} expects a sequence [N, tokens, features], got ${formatShape(x.shape)} (put it after an embedding)`);
}

/** Name of a child layer under `parent` (a bare parent, path "", gives the child's name alone). */
const childPath = (parent: Module, name: string) => (parent.path ? `${parent.path}.${name}` : name);

/** [N, L, D] → [N·L, D]: the rows a Gemm projects in one call. */
function rowsOf(x: Value): Value {
  const [n, l, d] = x.shape as [Value["shape"][number], Value["shape"][number], number];
  return F.reshape(x, [-1, d], [typeof n === "number" && typeof l === "number" ? n * l : `${n}*${l}`, d]);
}

/** [N·L, D] back to [N, L, D], N (possibly symbolic) taken from `like`. */
function sequenceOf(rows: Value, like: Value, length: number): Value {
  const d = rows.shape[1] as number;
  return F.reshape(rows, [-1, length, d], [like.shape[0]!, length, d]);
}

/**
 * A linear layer applied to every token: [N, L, in] → [N, L, out], one Gemm on [N·L, in]
 * (weight [out, in] as PyTorch's Linear, U(±1/√in) init).
 */
export class TokenLinear extends Module {
  readonly kind = "tokenlinear";
  constructor(readonly opts: { outFeatures: number; bias?: boolean }) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    expectSequence(ctx, x, "tokenlinear");
    const inF = staticDimOf(ctx, x, 2, "tokenlinear input width"), length = staticDimOf(ctx, x, 1, "sequence length");
    const bound = 1 / Math.sqrt(inF);
    const w = ctx.param(this.pname("weight"), [this.opts.outFeatures, inF], { kind: "uniform", bound });
    const b = this.opts.bias === false ? undefined : ctx.param(this.pname("bias"), [this.opts.outFeatures], { kind: "uniform", bound });
    return sequenceOf(F.gemm(rowsOf(x), w, { c: b, transB: 1 }), x, length);
  }
}

/** Keys and values for cross-attention: a sequence [N, Lk, Dm] and its token mask [N, Lk] (1 = token, 0 = padding). */
export interface AttentionMemory {
  value: Value;
  mask?: Value;
}

export interface AttentionOptions {
  heads: number;
  /** Position i attends to positions ≤ i only (self-attention in a decoder). */
  causal?: boolean;
  /** Self-attention leaves padded keys out, by the embedding's token mask (default true). */
  keyPadding?: boolean;
  /** Dropout on the attention weights in training (PyTorch's MultiheadAttention dropout). */
  dropout?: number;
}

/**
 * Multi-head scaled dot-product attention, softmax(Q·Kᵀ/√d_k + mask)·V per head, with separate
 * Q, K, V and output projections (parameters `q.weight` [D, D], `k.weight` [D, Dm], … with biases).
 *
 * `forward(ctx, x)` is self-attention on x [N, L, D]. `attendTo(ctx, x, memory)` is
 * cross-attention: queries from x, keys and values from `memory.value` [N, Lk, Dm], keys where
 * `memory.mask` is 0 left out. Either returns [N, L, D].
 */
export class MultiHeadAttention extends Module {
  readonly kind = "mha";
  private memory: AttentionMemory | undefined;
  constructor(readonly opts: AttentionOptions) {
    super();
    if (!Number.isInteger(opts.heads) || opts.heads < 1) throw new Error(`attention heads must be a positive integer, got ${opts.heads}`);
  }

  attendTo(ctx: ForwardContext, x: Value, memory: AttentionMemory): Value {
    this.memory = memory;
    try {
      return this.forward(ctx, x);
    } finally {
      this.memory = undefined;
    }
  }

  protected build(ctx: ForwardContext, x: Value): Value {
    const g = ctx.graph;
    expectSequence(ctx, x, "attention");
    const cross = this.memory !== undefined;
    const source = this.memory?.value ?? x;
    if (cross) expectSequence(ctx, source, "cross-attention memory");
    const d = staticDimOf(ctx, x, 2, "attention width"), lq = staticDimOf(ctx, x, 1, "sequence length");
    const dm = staticDimOf(ctx, source, 2, "memory width"), lk = staticDimOf(ctx, source, 1, "memory length");
    const h = this.opts.heads;
    if (d % h) throw g.shapeError(`attention: width ${d} does not divide into ${h} heads`);
    const dk = d / h;
    if (this.opts.causal && lq !== lk) throw g.shapeError(`causal attention needs as many keys as queries, got ${lq} queries and ${lk} keys`);

    // Q, K, V projections: Xavier-uniform weights and zero biases, as PyTorch's MultiheadAttention.
    const xavier = (fanIn: number) => ({ kind: "uniform" as const, bound: Math.sqrt(6 / (fanIn + d)) });
    const zero = { kind: "constant" as const, value: 0 };
    const project = (input: Value, name: string, fanIn: number, scale = 1) =>
      F.gemm(rowsOf(input), ctx.param(this.pname(`${name}.weight`), [d, fanIn], xavier(fanIn)), { c: ctx.param(this.pname(`${name}.bias`), [d], zero), transB: 1, alpha: scale, beta: scale });
    // Heads: [N·L, D] → [N, L, H, dk] → [N, H, L, dk] (keys straight to [N, H, dk, L] for Q·Kᵀ).
    const heads = (rows: Value, length: number, perm: number[]) => F.transpose(F.reshape(rows, [-1, length, h, dk], [x.shape[0]!, length, h, dk]), perm);
    // 1/√d_k is the Q projection's alpha and beta: no pass of its own over Q or the scores.
    const q = heads(project(x, "q", d, 1 / Math.sqrt(dk)), lq, [0, 2, 1, 3]);
    const kT = heads(project(source, "k", dm), lk, [0, 2, 3, 1]);
    const v = heads(project(source, "v", dm), lk, [0, 2, 1, 3]);

    let scores = F.matmul(q, kT); // [N, H, Lq, Lk]
    const keyMask = cross ? this.memory!.mask : this.opts.keyPadding === false ? undefined : selfKeyMask(ctx, x);
    if (keyMask) {
      if (keyMask.rank !== 2 || keyMask.shape[1] !== lk) throw g.shapeError(`attention key mask ${formatShape(keyMask.shape)} does not match ${lk} keys`);
      // 1 → 0, 0 → −1e9, as [N, 1, 1, Lk] broadcast over heads and queries.
      const bias = F.mul(F.sub(g.constFloat([1]), keyMask), g.constFloat([MASKED_SCORE]));
      scores = F.add(scores, F.unsqueeze(bias, [1, 2]));
    }
    if (this.opts.causal) scores = F.add(scores, causalBias(ctx, lq));
    let weights = F.softmax(scores, -1);
    const p = this.opts.dropout ?? 0;
    if (ctx.training && p > 0) weights = F.mul(weights, ctx.randomMask(`${this.path || "mha"}.attn_mask`, weights, 1 - p));

    const context = F.transpose(F.matmul(weights, v), [0, 2, 1, 3]); // [N, Lq, H, dk]
    const rows = F.reshape(context, [-1, d], [typeof x.shape[0] === "number" ? x.shape[0] * lq : `${x.shape[0]}*${lq}`, d]);
    const wOut = ctx.param(this.pname("out.weight"), [d, d], { kind: "uniform", bound: 1 / Math.sqrt(d) });
    const bOut = ctx.param(this.pname("out.bias"), [d], zero);
    return sequenceOf(F.gemm(rows, wOut, { c: bOut, transB: 1 }), x, lq);
  }
}

/** The embedding's token mask, when it describes this sequence (same length); else no masking. */
function selfKeyMask(ctx: ForwardContext, x: Value): Value | undefined {
  const mask = ctx.tokenMask;
  return mask && mask.shape[1] === x.shape[1] ? mask : undefined;
}

/** [L, L]: 0 where key j ≤ query i, −1e9 above the diagonal. */
function causalBias(ctx: ForwardContext, length: number): Value {
  const data = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = i + 1; j < length; j++) data[i * length + j] = MASKED_SCORE;
  return ctx.graph.constFloat(data, [length, length]);
}

/** The sinusoidal position table of Vaswani et al. (2017, §3.5): [length, dim], sin on even features, cos on odd. */
export function sinusoidalPositions(length: number, dim: number): Float32Array {
  const table = new Float32Array(length * dim);
  for (let pos = 0; pos < length; pos++)
    for (let i = 0; i < dim; i++) {
      const angle = pos / Math.pow(10000, (2 * Math.floor(i / 2)) / dim);
      table[pos * dim + i] = i % 2 === 0 ? Math.sin(angle) : Math.cos(angle);
    }
  return table;
}

/**
 * Adds a position signal to a sequence [N, L, D]: a learned table [L, D] (N(0, 0.02²) init, as
 * BERT/GPT-2) or the constant sinusoidal one.
 */
export class PositionEmbedding extends Module {
  readonly kind = "positions";
  /**
   * `maxLength`: the table has this many rows and a shorter sequence takes the first ones, so
   * graphs built for several lengths (length buckets of one model) share one parameter.
   */
  constructor(readonly opts: { kind: "learned" | "sinusoidal"; maxLength?: number }) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    expectSequence(ctx, x, "positions");
    const length = staticDimOf(ctx, x, 1, "sequence length"), d = staticDimOf(ctx, x, 2, "positions width");
    const rows = this.opts.maxLength ?? length;
    if (length > rows) throw ctx.graph.shapeError(`positions: a sequence of ${length} is longer than the ${rows} positions the model has`);
    let table = this.opts.kind === "learned"
      ? ctx.param(this.pname("weight"), [rows, d], { kind: "normal", std: 0.02 })
      : ctx.graph.constFloat(sinusoidalPositions(rows, d), [rows, d]);
    if (length < rows) table = F.slice(table, [0], [length], [0]);
    return F.add(x, table);
  }
}

export interface TransformerBlockOptions {
  heads: number;
  /** Width of the feed-forward layer (PyTorch's dim_feedforward). */
  ffn: number;
  /** Dropout on each sub-layer's output before the residual add, and on the attention weights (default 0). */
  dropout?: number;
}

/** Runs `layers` in order, each named under `parent` (their parameters and taps follow the names). */
function chain(ctx: ForwardContext, parent: Module, layers: [string, Module][], x: Value): Value {
  let h = x;
  for (const [name, layer] of layers) {
    layer.path = childPath(parent, name);
    h = layer.forward(ctx, h);
  }
  return h;
}

/** x + branch, the branch through dropout first where p > 0 (as PyTorch's encoder layers). */
function residualAdd(ctx: ForwardContext, parent: Module, dropoutName: string, p: number, x: Value, branch: Value): Value {
  return F.add(x, p > 0 ? chain(ctx, parent, [[dropoutName, new Dropout({ p })]], branch) : branch);
}

/** The feed-forward branch LN → Linear(ffn) → GELU → Linear(D). */
function feedForward(ctx: ForwardContext, parent: Module, norm: string, ffn: number, x: Value): Value {
  const d = x.shape[2] as number;
  return chain(ctx, parent, [[norm, new LayerNorm()], ["ffn1", new TokenLinear({ outFeatures: ffn })], ["gelu", new GELU()], ["ffn2", new TokenLinear({ outFeatures: d })]], x);
}

// The blocks make their sub-layers as they build: a sub-layer's widths come from the input, and a
// module is stateless between builds but for its path.

/**
 * Pre-norm encoder block: x + MHA(LN(x)), then + FFN(LN(·)). Self-attention leaves padded
 * tokens out as keys; `causal` makes it a decoder-only (GPT-style) block. Sub-layers: ln1, attn,
 * ln2, ffn1, gelu, ffn2.
 */
export class TransformerEncoderBlock extends Module {
  readonly kind = "encoder";
  constructor(readonly opts: TransformerBlockOptions & { causal?: boolean }) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    expectSequence(ctx, x, "transformer block");
    staticDimOf(ctx, x, 2, "transformer width");
    const p = this.opts.dropout ?? 0;
    const attn = new MultiHeadAttention({ heads: this.opts.heads, causal: this.opts.causal, dropout: p });
    const h = residualAdd(ctx, this, "attn_dropout", p, x, chain(ctx, this, [["ln1", new LayerNorm()], ["attn", attn]], x));
    return residualAdd(ctx, this, "ffn_dropout", p, h, feedForward(ctx, this, "ln2", this.opts.ffn, h));
  }
}

/**
 * Pre-norm decoder block: x + causal self-MHA(LN(x)), + cross-MHA(LN(·), memory), + FFN(LN(·)).
 * It needs the encoder's output: build it with `decode(ctx, x, memory)`; `forward` alone is an
 * error. Sub-layers: ln1, self_attn, ln2, cross_attn, ln3, ffn1, gelu, ffn2.
 */
export class TransformerDecoderBlock extends Module {
  readonly kind = "decoder";
  private memory: AttentionMemory | undefined;
  constructor(readonly opts: TransformerBlockOptions) {
    super();
  }

  decode(ctx: ForwardContext, x: Value, memory: AttentionMemory): Value {
    this.memory = memory;
    try {
      return this.forward(ctx, x);
    } finally {
      this.memory = undefined;
    }
  }

  protected build(ctx: ForwardContext, x: Value): Value {
    const memory = this.memory;
    if (!memory) throw ctx.graph.shapeError("a decoder block attends to an encoder's output: build it with decode(ctx, x, memory)");
    expectSequence(ctx, x, "transformer decoder block");
    staticDimOf(ctx, x, 2, "transformer width");
    const p = this.opts.dropout ?? 0;
    const self = new MultiHeadAttention({ heads: this.opts.heads, causal: true, dropout: p });
    let h = residualAdd(ctx, this, "self_dropout", p, x, chain(ctx, this, [["ln1", new LayerNorm()], ["self_attn", self]], x));
    const cross = new MultiHeadAttention({ heads: this.opts.heads, dropout: p });
    cross.path = childPath(this, "cross_attn");
    h = residualAdd(ctx, this, "cross_dropout", p, h, cross.attendTo(ctx, chain(ctx, this, [["ln2", new LayerNorm()]], h), memory));
    return residualAdd(ctx, this, "ffn_dropout", p, h, feedForward(ctx, this, "ln3", this.opts.ffn, h));
  }
}

/**
 * A transformer encoder on embedded tokens [N, L, D] → [N, L, D]: positions, `layers` pre-norm
 * blocks, and the final LayerNorm that pre-norm stacks need. Sub-layers: positions, block1…, ln.
 */
export class TransformerEncoder extends Module {
  readonly kind = "transformer";
  constructor(readonly opts: TransformerBlockOptions & { layers: number; positions?: "learned" | "sinusoidal"; causal?: boolean; maxLength?: number }) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    const blocks = Array.from({ length: this.opts.layers }, (_, i): [string, Module] => [`block${i + 1}`, new TransformerEncoderBlock(this.opts)]);
    return chain(ctx, this, [["positions", new PositionEmbedding({ kind: this.opts.positions ?? "learned", maxLength: this.opts.maxLength })], ...blocks, ["ln", new LayerNorm()]], x);
  }
}
