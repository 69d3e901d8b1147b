// Small graph builders the feature and relation methods share: flattening per sample, L2
// normalisation, smooth-L1, pooling one feature map to another's size. Shapes keep a symbolic batch.

import { formatShape, type Shape, type Value } from "../../engine/graph.js";
import * as F from "../../engine/functional.js";

/** [N, …] → [N, D]. */
export function flattenSamples(x: Value): Value {
  return x.rank === 2 ? x : F.flatten(x, 1);
}

/** Each row of [N, D] divided by its L2 norm (torch's F.normalize; eps keeps a zero row at zero). */
export function l2NormalizeRows(x: Value, axis = 1, eps = 1e-12): Value {
  const g = x.graph;
  const norm = F.sqrt(F.add(F.reduceSum(F.mul(x, x), [axis], true), g.constFloat([eps * eps])));
  return F.div(x, norm);
}

/** Smooth-L1 with β = 1, averaged over every element (torch's F.smooth_l1_loss default). */
export function smoothL1Mean(a: Value, b: Value): Value {
  const g = a.graph;
  const d = F.unary("Abs", F.sub(a, b));
  const small = F.emit("Less", [d, g.constFloat([1])])[0]!;
  const elementwise = F.where(small, F.scale(F.mul(d, d), 0.5), F.sub(d, g.constFloat([0.5])));
  return F.reduceMean(elementwise, elementwise.shape.map((_, i) => i));
}

/** Average-pools [N, C, H, W] down to [N, C, h, w] when H, W are multiples of h, w (adaptive pooling's exact case). */
export function poolTo(x: Value, h: number, w: number): Value {
  const [H, W] = x.shape.slice(2) as number[];
  if (H === h && W === w) return x;
  return F.emit("AveragePool", [x], {
    kernel_shape: { ints: [H! / h, W! / w] },
    strides: { ints: [H! / h, W! / w] },
    pads: { ints: [0, 0, 0, 0] },
    count_include_pad: { i: 1 },
  })[0]!;
}

/** Why two feature maps cannot be brought to one H×W by pooling, or undefined when they can. */
export function spatialMismatch(student: Shape, teacher: Shape): string | undefined {
  const [hs, ws] = student.slice(2), [ht, wt] = teacher.slice(2);
  if ([hs, ws, ht, wt].some((d) => typeof d !== "number")) return `spatial sizes must be static (${formatShape(student)} and ${formatShape(teacher)})`;
  const fits = (a: number, b: number, c: number, d: number) => a % c === 0 && b % d === 0;
  if (fits(hs as number, ws as number, ht as number, wt as number) || fits(ht as number, wt as number, hs as number, ws as number)) return undefined;
  return `${hs}×${ws} and ${ht}×${wt} differ and neither is a multiple of the other (pooling cannot match them)`;
}

/** Both maps pooled to the smaller of the two H×W (as mdistiller's adaptive_avg_pool2d). */
export function matchSpatial(student: Value, teacher: Value): [Value, Value] {
  const [hs, ws] = student.shape.slice(2) as number[], [ht, wt] = teacher.shape.slice(2) as number[];
  if (hs! * ws! > ht! * wt!) return [poolTo(student, ht!, wt!), teacher];
  return [student, poolTo(teacher, hs!, ws!)];
}

/** log Σ exp(x) over the last axis of [N, K], kept as [N, 1]: every entry of x − logSoftmax(x) equals it. */
export function logSumExp(x: Value): Value {
  return F.reduceMean(F.sub(x, F.logSoftmax(x, -1)), [1], true);
}

export function describeTaps(taps: Map<string, Shape>): string {
  return [...taps].map(([n, s]) => `${n} ${formatShape(s)}`).join(", ") || "none";
}
