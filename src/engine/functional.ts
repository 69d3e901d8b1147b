// The functional API: one small function per op (`add`, `gemm`, `reshape`…) that emits it into
// the graph its inputs belong to, plus shape helpers (`reshapeLike`, `expandLike`, `unbroadcast`).
// `import * as F from "engine/functional.js"` is what a graph builder needs: with `emit`/`one` for
// any other op and OPS, the shape rules they check against (ops.ts).

import { type Attrs, type DType, type Shape, type Value, isStatic } from "./graph.js";
import { ONNX_BY_DTYPE, one } from "./ops.js";

export { OPS, emit, one } from "./ops.js";

export const unary = (opType: string, x: Value, attrs: Attrs = {}): Value => one(opType, [x], attrs);
export const add = (a: Value, b: Value) => one("Add", [a, b]);
export const sub = (a: Value, b: Value) => one("Sub", [a, b]);
export const mul = (a: Value, b: Value) => one("Mul", [a, b]);
export const div = (a: Value, b: Value) => one("Div", [a, b]);
export const neg = (x: Value) => one("Neg", [x]);
export const exp = (x: Value) => one("Exp", [x]);
export const log = (x: Value) => one("Log", [x]);
export const sqrt = (x: Value) => one("Sqrt", [x]);
export const relu = (x: Value) => one("Relu", [x]);
export const tanh = (x: Value) => one("Tanh", [x]);
export const sigmoid = (x: Value) => one("Sigmoid", [x]);
export const erf = (x: Value) => one("Erf", [x]);
export const pow = (x: Value, e: number) => one("Pow", [x, x.graph.constFloat([e])]);
export const scale = (x: Value, s: number) => (s === 1 ? x : mul(x, x.graph.constFloat([s])));
export const greater = (a: Value, b: Value) => one("Greater", [a, b]);
export const where = (c: Value, a: Value, b: Value) => one("Where", [c, a, b]);
export const cast = (x: Value, to: DType) => one("Cast", [x], { to: { i: ONNX_BY_DTYPE[to] } });
export const transpose = (x: Value, perm: number[]) => one("Transpose", [x], { perm: { ints: perm } });
export const matmul = (a: Value, b: Value) => one("MatMul", [a, b]);
export const softmax = (x: Value, axis = -1) => one("Softmax", [x], { axis: { i: axis } });
export const logSoftmax = (x: Value, axis = -1) => one("LogSoftmax", [x], { axis: { i: axis } });
export const flatten = (x: Value, axis = 1) => one("Flatten", [x], { axis: { i: axis } });
export const argmax = (x: Value, axis = -1) => one("ArgMax", [x], { axis: { i: axis }, keepdims: { i: 0 } });
export const concat = (xs: Value[], axis: number) => one("Concat", xs, { axis: { i: axis } });
export const gather = (table: Value, indices: Value, axis = 0) => one("Gather", [table, indices], { axis: { i: axis } });
export const identity = (x: Value) => one("Identity", [x]);

export function gemm(a: Value, b: Value, opts: { c?: Value; transA?: number; transB?: number; alpha?: number; beta?: number } = {}): Value {
  const attrs: Attrs = {};
  if (opts.transA) attrs["transA"] = { i: 1 };
  if (opts.transB) attrs["transB"] = { i: 1 };
  if (opts.alpha !== undefined && opts.alpha !== 1) attrs["alpha"] = { f: opts.alpha };
  if (opts.beta !== undefined && opts.beta !== 1) attrs["beta"] = { f: opts.beta };
  return one("Gemm", opts.c ? [a, b, opts.c] : [a, b], attrs);
}

export function reduceSum(x: Value, axes: number[], keepdims = false): Value {
  return one("ReduceSum", [x, x.graph.constInt64(axes)], { keepdims: { i: keepdims ? 1 : 0 } });
}
export function reduceMean(x: Value, axes: number[], keepdims = false): Value {
  return one("ReduceMean", [x, x.graph.constInt64(axes)], { keepdims: { i: keepdims ? 1 : 0 } });
}
export function reduceMax(x: Value, axes: number[], keepdims = false): Value {
  return one("ReduceMax", [x, x.graph.constInt64(axes)], { keepdims: { i: keepdims ? 1 : 0 } });
}
export function unsqueeze(x: Value, axes: number[]): Value {
  return one("Unsqueeze", [x, x.graph.constInt64(axes)]);
}
export function squeeze(x: Value, axes: number[]): Value {
  return one("Squeeze", [x, x.graph.constInt64(axes)]);
}
/** Reshape to constant dims (0 keeps, −1 infers); `hint` names symbolic dims the rule cannot know. */
export function reshape(x: Value, dims: number[], hint?: Shape): Value {
  return one("Reshape", [x, x.graph.constInt64(dims)], {}, hint);
}
export function slice(x: Value, starts: number[], ends: number[], axes: number[]): Value {
  const g = x.graph;
  return one("Slice", [x, g.constInt64(starts), g.constInt64(ends), g.constInt64(axes)]);
}
export function oneHot(labels: Value, depth: number): Value {
  const g = labels.graph;
  return one("OneHot", [labels, g.constInt64([depth], []), g.constFloat([0, 1], [2])], { axis: { i: -1 } });
}

/** Reshape `x` to the (run-time) shape of `like`. */
export function reshapeLike(x: Value, like: Value): Value {
  if (isStatic(like.shape)) return reshape(x, like.shape as number[]);
  return one("Reshape", [x, one("Shape", [like])], {}, like.shape);
}
/** Broadcast `x` to the (run-time) shape of `like`. */
export function expandLike(x: Value, like: Value): Value {
  if (sameShape(x.shape, like.shape)) return x;
  if (isStatic(like.shape)) return one("Expand", [x, x.graph.constInt64(like.shape as number[])]);
  return one("Expand", [x, one("Shape", [like])], {}, like.shape);
}
export function zerosLike(x: Value): Value {
  return expandLike(x.graph.constFloat([0]), x);
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Sums a broadcast gradient back to the shape of the operand it came from: over leading axes the
 * operand lacked and over axes where it had size 1.
 */
export function unbroadcast(dy: Value, operand: Value): Value {
  if (sameShape(dy.shape, operand.shape)) return dy;
  const lead = dy.rank - operand.rank;
  const axes: number[] = [];
  for (let i = 0; i < dy.rank; i++) {
    if (i < lead) axes.push(i);
    else if (operand.shape[i - lead] === 1 && dy.shape[i] !== 1) axes.push(i);
  }
  let r = axes.length ? reduceSum(dy, axes, true) : dy;
  if (!sameShape(r.shape, operand.shape)) r = reshapeLike(r, operand);
  return r;
}
