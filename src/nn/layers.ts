// The layers a student or teacher is made of. Initialisation follows PyTorch's defaults
// (Linear/Conv: kaiming_uniform(a=√5) ⇒ U(±1/√fan_in) for weight and bias).

import { type Value, ShapeError, formatShape } from "../engine/graph.js";
import * as F from "../engine/functional.js";
import { ForwardContext, Module } from "./module.js";

const kaimingBound = (fanIn: number) => 1 / Math.sqrt(fanIn);

export class Linear extends Module {
  readonly kind = "linear";
  constructor(readonly opts: { outFeatures: number; inFeatures?: number; bias?: boolean }) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    if (x.rank !== 2) throw ctx.graph.shapeError(`Linear expects [batch, features], got ${formatShape(x.shape)} (add a Flatten before it?)`);
    const inF = this.opts.inFeatures ?? this.staticDim(ctx, x, 1, "Linear input width");
    if (this.opts.inFeatures !== undefined) this.expectDim(ctx, x, 1, inF, "Linear input width");
    const bound = kaimingBound(inF);
    // Weight stored [out, in] like PyTorch; Gemm's transB reads it without a copy.
    const w = ctx.param(this.pname("weight"), [this.opts.outFeatures, inF], { kind: "uniform", bound });
    const b = this.opts.bias === false ? undefined : ctx.param(this.pname("bias"), [this.opts.outFeatures], { kind: "uniform", bound });
    return F.gemm(x, w, { c: b, transB: 1 });
  }
}

export interface Conv2dOptions {
  outChannels: number;
  kernelSize: number;
  inChannels?: number;
  stride?: number;
  padding?: number;
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly kind = "conv";
  constructor(readonly opts: Conv2dOptions) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    if (x.rank !== 4) throw ctx.graph.shapeError(`Conv2d expects [batch, channels, height, width], got ${formatShape(x.shape)}`);
    const cin = this.opts.inChannels ?? this.staticDim(ctx, x, 1, "Conv2d input channels");
    if (this.opts.inChannels !== undefined) this.expectDim(ctx, x, 1, cin, "Conv2d input channels");
    const groups = this.opts.groups ?? 1;
    const k = this.opts.kernelSize, s = this.opts.stride ?? 1, p = this.opts.padding ?? 0;
    if (cin % groups || this.opts.outChannels % groups)
      throw ctx.graph.shapeError(`Conv2d: ${cin} input and ${this.opts.outChannels} output channels must both divide by groups=${groups}`);
    const fanIn = (cin / groups) * k * k;
    const w = ctx.param(this.pname("weight"), [this.opts.outChannels, cin / groups, k, k], { kind: "uniform", bound: kaimingBound(fanIn) });
    const b = this.opts.bias === false ? undefined : ctx.param(this.pname("bias"), [this.opts.outChannels], { kind: "uniform", bound: kaimingBound(fanIn) });
    return F.emit("Conv", b ? [x, w, b] : [x, w], {
      kernel_shape: { ints: [k, k] },
      strides: { ints: [s, s] },
      pads: { ints: [p, p, p, p] },
      group: { i: groups },
    })[0]!;
  }
}

export class MaxPool2d extends Module {
  readonly kind = "maxpool";
  constructor(readonly opts: { kernelSize: number; stride?: number; padding?: number }) {
    super();
  }
  protected build(_ctx: ForwardContext, x: Value): Value {
    const k = this.opts.kernelSize, s = this.opts.stride ?? k, p = this.opts.padding ?? 0;
    return F.emit("MaxPool", [x], { kernel_shape: { ints: [k, k] }, strides: { ints: [s, s] }, pads: { ints: [p, p, p, p] } })[0]!;
  }
}

export class AvgPool2d extends Module {
  readonly kind = "avgpool";
  constructor(readonly opts: { kernelSize: number; stride?: number; padding?: number }) {
    super();
  }
  protected build(_ctx: ForwardContext, x: Value): Value {
    const k = this.opts.kernelSize, s = this.opts.stride ?? k, p = this.opts.padding ?? 0;
    // count_include_pad=1 (PyTorch's default) keeps the gradient an exact ConvTranspose.
    return F.emit("AveragePool", [x], {
      kernel_shape: { ints: [k, k] },
      strides: { ints: [s, s] },
      pads: { ints: [p, p, p, p] },
      count_include_pad: { i: 1 },
    })[0]!;
  }
}

/** Mean over height and width: [N, C, H, W] → [N, C]. */
export class GlobalAvgPool extends Module {
  readonly kind = "gap";
  protected build(_ctx: ForwardContext, x: Value): Value {
    return F.flatten(F.emit("GlobalAveragePool", [x])[0]!, 1);
  }
}

export class Flatten extends Module {
  readonly kind = "flatten";
  protected build(_ctx: ForwardContext, x: Value): Value {
    return F.flatten(x, 1);
  }
}

abstract class Activation extends Module {}
export class ReLU extends Activation {
  readonly kind = "relu";
  protected build(_ctx: ForwardContext, x: Value): Value {
    return F.relu(x);
  }
}
export class Tanh extends Activation {
  readonly kind = "tanh";
  protected build(_ctx: ForwardContext, x: Value): Value {
    return F.tanh(x);
  }
}
export class Sigmoid extends Activation {
  readonly kind = "sigmoid";
  protected build(_ctx: ForwardContext, x: Value): Value {
    return F.sigmoid(x);
  }
}
/** Exact GELU, x·Φ(x) = ½x(1 + erf(x/√2)), as PyTorch's default. */
export class GELU extends Activation {
  readonly kind = "gelu";
  protected build(ctx: ForwardContext, x: Value): Value {
    const g = ctx.graph;
    const phi = F.add(g.constFloat([1]), F.erf(F.scale(x, Math.SQRT1_2)));
    return F.mul(F.scale(x, 0.5), phi);
  }
}

/**
 * Inverted dropout: in training, elements are kept with probability 1−p and scaled by 1/(1−p);
 * in eval it is the identity. The keep-mask is made in the graph from (seed, step, layer), so a
 * resumed run draws exactly the masks an uninterrupted run would.
 */
export class Dropout extends Module {
  readonly kind = "dropout";
  constructor(readonly opts: { p: number }) {
    super();
    if (!(opts.p >= 0 && opts.p < 1)) throw new Error(`Dropout p must be in [0, 1), got ${opts.p}`);
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    if (!ctx.training || this.opts.p === 0) return x;
    const mask = ctx.randomMask(`${this.path || "dropout"}.mask`, x, 1 - this.opts.p);
    return F.mul(x, mask);
  }
}

/**
 * Batch normalisation over the channel axis (1) of [N, C] or [N, C, H, W]. Train mode normalises
 * with batch statistics and updates running statistics (momentum 0.1, unbiased variance, as
 * PyTorch); eval mode uses the running statistics.
 */
export class BatchNorm extends Module {
  readonly kind = "bn";
  constructor(readonly opts: { eps?: number; momentum?: number } = {}) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    const g = ctx.graph;
    if (x.rank !== 2 && x.rank !== 4) throw g.shapeError(`BatchNorm expects [N, C] or [N, C, H, W], got ${formatShape(x.shape)}`);
    const c = this.staticDim(ctx, x, 1, "BatchNorm channels");
    const eps = this.opts.eps ?? 1e-5, momentum = this.opts.momentum ?? 0.1;
    const gamma = ctx.param(this.pname("weight"), [c], { kind: "constant", value: 1 });
    const beta = ctx.param(this.pname("bias"), [c], { kind: "constant", value: 0 });
    const runningMean = ctx.param(this.pname("running_mean"), [c], { kind: "constant", value: 0 }, "buffer");
    const runningVar = ctx.param(this.pname("running_var"), [c], { kind: "constant", value: 1 }, "buffer");
    const axes = x.rank === 4 ? [0, 2, 3] : [0];
    const bcast = (v: Value) => (x.rank === 4 ? F.reshape(v, [1, c, 1, 1]) : v);
    if (!ctx.training) {
      // y = x·s + (β − μ·s), s = γ/√(σ²+ε): onnxruntime folds s and the shift into constants.
      const s = F.div(gamma, F.sqrt(F.add(runningVar, g.constFloat([eps]))));
      return F.add(F.mul(x, bcast(s)), bcast(F.sub(beta, F.mul(runningMean, s))));
    }
    const mean = F.reduceMean(x, axes, true);
    const centered = F.sub(x, mean);
    const variance = F.reduceMean(F.mul(centered, centered), axes, true);
    const y = F.add(F.mul(F.div(centered, F.sqrt(F.add(variance, g.constFloat([eps])))), bcast(gamma)), bcast(beta));
    // Running statistics: PyTorch stores the unbiased variance, n/(n−1)·σ².
    const n = F.div(F.cast(F.unary("Size", x), "float32"), g.constFloat([c]));
    const unbiased = F.mul(F.reshape(variance, [c]), F.div(n, F.sub(n, g.constFloat([1]))));
    ctx.bufferUpdates.set(this.pname("running_mean"), F.add(F.scale(runningMean, 1 - momentum), F.scale(F.reshape(mean, [c]), momentum)));
    ctx.bufferUpdates.set(this.pname("running_var"), F.add(F.scale(runningVar, 1 - momentum), F.scale(unbiased, momentum)));
    return y;
  }
}

/** Layer normalisation over the last axis, with learned scale and shift. */
export class LayerNorm extends Module {
  readonly kind = "ln";
  constructor(readonly opts: { eps?: number } = {}) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    const g = ctx.graph;
    const d = this.staticDim(ctx, x, -1, "LayerNorm width");
    const gamma = ctx.param(this.pname("weight"), [d], { kind: "constant", value: 1 });
    const beta = ctx.param(this.pname("bias"), [d], { kind: "constant", value: 0 });
    const centered = F.sub(x, F.reduceMean(x, [-1], true));
    const variance = F.reduceMean(F.mul(centered, centered), [-1], true);
    return F.add(F.mul(F.div(centered, F.sqrt(F.add(variance, g.constFloat([this.opts.eps ?? 1e-5])))), gamma), beta);
  }
}

/**
 * Token embedding: int64 ids [N, L] → [N, L, D], the table drawn N(0, 1) as PyTorch does. Id 0
 * is padding: its positions embed to zeros (PyTorch's padding_idx) and the padding mask [N, L]
 * is left on the context for the pooling layers after it.
 */
export class Embedding extends Module {
  readonly kind = "embedding";
  constructor(readonly opts: { vocabSize: number; dim: number }) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    const g = ctx.graph;
    if (x.dtype !== "int64" || x.rank !== 2) throw g.shapeError(`Embedding expects int64 token ids [N, L], got ${x.dtype} ${formatShape(x.shape)} (is it the first layer?)`);
    const table = ctx.param(this.pname("weight"), [this.opts.vocabSize, this.opts.dim], { kind: "normal", std: 1 });
    ctx.tokenMask = F.cast(F.greater(x, g.constInt64([0], [])), "float32");
    return F.mul(F.gather(table, x), F.unsqueeze(ctx.tokenMask, [2]));
  }
}

/** The padding mask [N, L] an earlier Embedding recorded, checked against a [N, L, D] input. */
function tokenMaskFor(ctx: ForwardContext, x: Value, layer: string): Value {
  const mask = ctx.tokenMask;
  if (!mask) throw ctx.graph.shapeError(`${layer} pools over tokens, so it needs an embedding layer before it`);
  if (x.rank !== 3 || x.shape[1] !== mask.shape[1])
    throw ctx.graph.shapeError(`${layer} expects [N, ${String(mask.shape[1])}, features] (one row per token), got ${formatShape(x.shape)}`);
  return mask;
}

/**
 * Mean over the real tokens, padding excluded: [N, L, D] → [N, D] (an EmbeddingBag "mean"
 * after an embedding). A text with no tokens gives zeros.
 */
export class MeanPool extends Module {
  readonly kind = "meanpool";
  protected build(ctx: ForwardContext, x: Value): Value {
    const mask = tokenMaskFor(ctx, x, "meanpool");
    const summed = F.reduceSum(F.mul(x, F.unsqueeze(mask, [2])), [1]); // [N, D]
    const count = F.emit("Max", [F.reduceSum(mask, [1], true), ctx.graph.constFloat([1])])[0]!; // [N, 1]; empty rows divide by 1
    return F.div(summed, count);
  }
}

/**
 * Maximum over the real tokens, per feature: [N, L, D] → [N, D] (max-over-time pooling, Kim 2014).
 * Padded positions never win; a text with no tokens gives zeros.
 */
export class MaxOverTime extends Module {
  readonly kind = "maxovertime";
  protected build(ctx: ForwardContext, x: Value): Value {
    const g = ctx.graph;
    const mask = tokenMaskFor(ctx, x, "maxovertime");
    const isToken = F.greater(F.unsqueeze(mask, [2]), g.constFloat([0])); // [N, L, 1]
    const max = F.reduceMax(F.where(isToken, x, g.constFloat([-3.4e38])), [1]); // [N, D]
    return F.mul(max, F.reduceMax(mask, [1], true)); // 0 for a text without tokens
  }
}

/**
 * 1-D convolution along the tokens: [N, L, D] → [N, L, filters], "same" padding (an even kernel
 * gets the extra position at the end, as PyTorch's padding="same"), so position t stays token t
 * and the padding mask still applies. Runs as a [1, k] Conv2d on [N, D, 1, L].
 */
export class Conv1d extends Module {
  readonly kind = "conv1d";
  constructor(readonly opts: { outChannels: number; kernelSize: number }) {
    super();
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    if (x.rank !== 3) throw ctx.graph.shapeError(`conv1d expects [N, tokens, features], got ${formatShape(x.shape)} (put it after an embedding)`);
    const d = this.staticDim(ctx, x, 2, "conv1d input features");
    const k = this.opts.kernelSize, m = this.opts.outChannels;
    const bound = kaimingBound(d * k);
    const w = ctx.param(this.pname("weight"), [m, d, 1, k], { kind: "uniform", bound });
    const b = ctx.param(this.pname("bias"), [m], { kind: "uniform", bound });
    const before = Math.floor((k - 1) / 2), after = k - 1 - before;
    const planes = F.unsqueeze(F.transpose(x, [0, 2, 1]), [2]); // [N, D, 1, L]
    const y = F.emit("Conv", [planes, w, b], { kernel_shape: { ints: [1, k] }, pads: { ints: [0, before, 0, after] } })[0]!;
    return F.transpose(F.squeeze(y, [2]), [0, 2, 1]);
  }
}

// ---------------------------------------------------------------- containers

function childName(child: Module, counts: Map<string, number>, explicit?: string): string {
  if (explicit) return explicit;
  const n = (counts.get(child.kind) ?? 0) + 1;
  counts.set(child.kind, n);
  return `${child.kind}${n}`;
}

/**
 * Layers applied in order. Children are named `${kind}${n}` (linear1, relu1, linear2…) unless
 * given names; a child's output is addressable by its path for feature distillation.
 */
export class Sequential extends Module {
  readonly kind: string = "seq";
  readonly names: string[];
  constructor(
    readonly layers: Module[],
    names?: (string | undefined)[],
  ) {
    super();
    const counts = new Map<string, number>();
    this.names = layers.map((l, i) => childName(l, counts, names?.[i]));
    // Taps are addressed by name, so two layers may not share one (given, or given and generated).
    const dup = this.names.findIndex((n, i) => this.names.indexOf(n) !== i);
    if (dup >= 0) throw new ShapeError(`layers[${dup}]: the name "${this.names[dup]}" is already used by layers[${this.names.indexOf(this.names[dup]!)}]`);
  }
  override children(): Module[] {
    return this.layers;
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    let h = x;
    this.layers.forEach((layer, i) => (layer.path = this.path ? `${this.path}.${this.names[i]}` : this.names[i]!));
    for (let i = 0; i < this.layers.length; i++) {
      const layer = this.layers[i]!, next = this.layers[i + 1];
      if (ctx.training && layer instanceof ReLU && next instanceof MaxPool2d) {
        h = reluThenMaxPool(ctx, layer, next, h);
        i++;
      } else h = layer.forward(ctx, h);
    }
    return h;
  }
}

/**
 * MaxPool(ReLU(z)) computed as ReLU(MaxPool(z)): max-pooling commutes with the ReLU (both are
 * monotone), so the values are the same bits, while the ReLU and its gradient run on a tensor
 * kernel² times smaller. The gradients agree too: a window's argmax only differs where it holds no
 * positive value, and there the ReLU passes none. Each layer's tap is what it was: the ReLU's own
 * output is still built for a term that taps it (and pruned from the model when none does).
 * Training graphs only: an exported model keeps Conv → ReLU, which onnxruntime fuses (and int8
 * quantizes after the ReLU).
 */
function reluThenMaxPool(ctx: ForwardContext, relu: ReLU, pool: MaxPool2d, z: Value): Value {
  relu.forward(ctx, z);
  const pooled = pool.forward(ctx, z);
  const y = ctx.graph.withScope(relu.path, () => F.relu(pooled));
  ctx.tap(pool.path, y);
  return y;
}

/** y = body(x) + shortcut(x), the shortcut being the identity unless given (e.g. a 1×1 conv). */
export class Residual extends Module {
  readonly kind = "res";
  constructor(
    readonly body: Sequential,
    readonly shortcut?: Module,
  ) {
    super();
  }
  override children(): Module[] {
    return this.shortcut ? [this.body, this.shortcut] : [this.body];
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    this.body.path = `${this.path}.body`;
    const y = this.body.forward(ctx, x);
    let s = x;
    if (this.shortcut) {
      this.shortcut.path = `${this.path}.shortcut`;
      s = this.shortcut.forward(ctx, x);
    }
    if (y.shape.length !== s.shape.length || y.shape.some((d, i) => d !== s.shape[i]))
      throw ctx.graph.shapeError(`residual add: body gives ${formatShape(y.shape)} but the shortcut gives ${formatShape(s.shape)}`);
    return F.add(y, s);
  }
}

/** Parallel branches on the same input, concatenated along `axis` (channels by default). */
export class Concat extends Module {
  readonly kind = "concat";
  constructor(
    readonly branches: Sequential[],
    readonly axis = 1,
  ) {
    super();
  }
  override children(): Module[] {
    return this.branches;
  }
  protected build(ctx: ForwardContext, x: Value): Value {
    const outs = this.branches.map((b, i) => {
      b.path = `${this.path}.branch${i + 1}`;
      return b.forward(ctx, x);
    });
    return F.concat(outs, this.axis);
  }
}
