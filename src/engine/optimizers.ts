// Optimizer updates emitted into the training-step graph, so forward, backward and update are one
// onnxruntime call. Learning rate (and Adam's bias corrections) are fed per step, so schedules
// live in TypeScript. Update rules follow torch.optim exactly (SGD, Adam, AdamW).

import { formatShape, type Graph, type Value } from "./graph.js";
import * as F from "./functional.js";

export type OptimizerConfig = (
  | { kind: "sgd"; momentum?: number; nesterov?: boolean; weightDecay?: number }
  | { kind: "adam" | "adamw"; beta1?: number; beta2?: number; eps?: number; weightDecay?: number }
) & {
  /**
   * Max-norm constraint (Srivastava et al. 2014, used with dropout by Hinton et al. 2015): after
   * each step, every weight tensor of rank ≥ 2 has each output unit's incoming weights (all axes
   * but the first: a Linear row, a Conv filter) scaled back to L2 norm ≤ maxNorm. Biases and
   * normalisation parameters are left alone.
   */
  maxNorm?: number;
};

/** Per-parameter optimizer state tensors (same shape as the parameter). */
export function optimizerStateNames(cfg: OptimizerConfig): string[] {
  if (cfg.kind === "sgd") return (cfg.momentum ?? 0) > 0 ? ["momentum"] : [];
  return ["exp_avg", "exp_avg_sq"];
}

/** Scalars fed each step, computed by `stepScalars`. */
export function optimizerScalarNames(cfg: OptimizerConfig): string[] {
  return cfg.kind === "sgd" ? ["lr"] : ["lr", "adam_step_size", "adam_inv_sqrt_bc2"];
}

/** Values of the per-step scalars at 1-based step `t` with learning rate `lr`. */
export function stepScalars(cfg: OptimizerConfig, lr: number, t: number): Record<string, number> {
  if (cfg.kind === "sgd") return { lr };
  const b1 = cfg.beta1 ?? 0.9, b2 = cfg.beta2 ?? 0.999;
  const bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t);
  return { lr, adam_step_size: lr / bc1, adam_inv_sqrt_bc2: 1 / Math.sqrt(bc2) };
}

export interface UpdateInputs {
  param: Value;
  grad: Value;
  state: Record<string, Value>;
  scalars: Record<string, Value>;
}

/** Emits the update of one parameter; returns the new parameter and new state values. */
export function emitUpdate(g: Graph, cfg: OptimizerConfig, u: UpdateInputs): { param: Value; state: Record<string, Value> } {
  const updated = unconstrainedUpdate(g, cfg, u);
  if (cfg.maxNorm === undefined || u.param.rank < 2) return updated;
  return { ...updated, param: maxNormProjection(g, updated.param, cfg.maxNorm) };
}

/** w · min(1, c / ‖w_unit‖₂) per output unit (axis 0); a unit of norm 0 stays 0. */
function maxNormProjection(g: Graph, w: Value, c: number): Value {
  const axes = w.shape.map((_, i) => i).slice(1);
  const norms = F.sqrt(F.reduceSum(F.mul(w, w), axes, true));
  const scale = F.emit("Min", [g.constFloat([1]), F.div(g.constFloat([c]), norms)])[0]!;
  return F.mul(w, scale);
}

function unconstrainedUpdate(g: Graph, cfg: OptimizerConfig, u: UpdateInputs): { param: Value; state: Record<string, Value> } {
  const c = (x: number) => g.constFloat([x]);
  const wd = cfg.weightDecay ?? 0;
  const lr = u.scalars["lr"]!;
  if (cfg.kind === "sgd") {
    let grad = u.grad;
    if (wd) grad = F.add(grad, F.mul(u.param, c(wd)));
    const mu = cfg.momentum ?? 0;
    if (mu === 0) return { param: F.sub(u.param, F.mul(grad, lr)), state: {} };
    const buf = F.add(F.mul(u.state["momentum"]!, c(mu)), grad);
    const step = cfg.nesterov ? F.add(grad, F.mul(buf, c(mu))) : buf;
    return { param: F.sub(u.param, F.mul(step, lr)), state: { momentum: buf } };
  }
  const b1 = cfg.beta1 ?? 0.9, b2 = cfg.beta2 ?? 0.999, eps = cfg.eps ?? 1e-8;
  let param = u.param;
  let grad = u.grad;
  if (wd && cfg.kind === "adamw") param = F.mul(param, F.sub(c(1), F.mul(lr, c(wd)))); // decoupled decay
  if (wd && cfg.kind === "adam") grad = F.add(grad, F.mul(u.param, c(wd))); // L2 in the gradient
  const m = F.add(F.mul(u.state["exp_avg"]!, c(b1)), F.mul(grad, c(1 - b1)));
  const v = F.add(F.mul(u.state["exp_avg_sq"]!, c(b2)), F.mul(F.mul(grad, grad), c(1 - b2)));
  const denom = F.add(F.mul(F.sqrt(v), u.scalars["adam_inv_sqrt_bc2"]!), c(eps));
  const next = F.sub(param, F.mul(F.div(m, denom), u.scalars["adam_step_size"]!));
  return { param: next, state: { exp_avg: m, exp_avg_sq: v } };
}

/**
 * Graph pass: where SGD's momentum update v' = μ·v + g adds to a gradient that a Gemm computes
 * (Linear weights: dW = dYᵀ·X) and that nothing else reads, the update folds into that Gemm as its
 * C input with beta = μ: the same value, two fewer passes over weight-sized tensors per step
 * (measured inside the K-step Loop: 1.20× on the MLP step, median of 5 alternated pairs, docs/engine.md). Returns
 * how many updates were folded; the Mul and Add left behind are dead and dropped at encoding.
 */
export function foldMomentumIntoGemm(g: Graph): number {
  const readers = new Map<Value, number>();
  for (const n of g.nodes) for (const v of n.inputs) if (v) readers.set(v, (readers.get(v) ?? 0) + 1);
  for (const o of g.outputs) readers.set(o.value, (readers.get(o.value) ?? 0) + 1);
  const replaced = new Map<Value, Value>();
  for (const add of g.nodes) {
    if (add.opType !== "Add" || !add.scope.startsWith("update/")) continue;
    const [scaled, grad] = add.inputs;
    const mulNode = scaled?.producer, gemmNode = grad?.producer;
    if (!scaled || !grad || mulNode?.opType !== "Mul" || gemmNode?.opType !== "Gemm") continue;
    const [momentum, muValue] = mulNode.inputs;
    const mu = muValue ? scalarConstant(g, muValue) : undefined;
    if (!momentum || mu === undefined || gemmNode.inputs[2] || "beta" in gemmNode.attrs || readers.get(grad) !== 1) continue;
    if (formatShape(grad.shape) !== formatShape(momentum.shape)) continue;
    gemmNode.inputs[2] = momentum;
    gemmNode.attrs["beta"] = { f: mu };
    replaced.set(add.outputs[0]!, grad);
  }
  for (const n of g.nodes) n.inputs = n.inputs.map((v) => (v && replaced.get(v)) ?? v);
  g.outputs.forEach((o) => (o.value = replaced.get(o.value) ?? o.value));
  return replaced.size;
}

function scalarConstant(g: Graph, v: Value): number | undefined {
  const init = g.initializers.get(v.name);
  return init && init.tensor.dtype === "float32" && init.tensor.data.length === 1 ? Number(init.tensor.data[0]) : undefined;
}

/**
 * Scales all gradients by min(1, maxNorm / (‖g‖₂ + 1e-6)), as torch.nn.utils.clip_grad_norm_.
 * Returns the clipped gradients and the total norm before clipping.
 */
export function clipByGlobalNorm(g: Graph, grads: Value[], maxNorm: number): { grads: Value[]; norm: Value } {
  const squares = grads.map((d) => F.reduceSum(F.mul(d, d), d.shape.map((_, i) => i)));
  const total = F.sqrt(squares.reduce((a, b) => F.add(a, b)));
  const coef = F.emit("Min", [g.constFloat([1]), F.div(g.constFloat([maxNorm]), F.add(total, g.constFloat([1e-6])))])[0]!;
  return { grads: grads.map((d) => F.mul(d, coef)), norm: total };
}

/** Global L2 norm of the gradients (reported when no clipping is asked for). */
export function globalNorm(grads: Value[]): Value {
  const squares = grads.map((d) => F.reduceSum(F.mul(d, d), d.shape.map((_, i) => i)));
  return F.sqrt(squares.reduce((a, b) => F.add(a, b)));
}
