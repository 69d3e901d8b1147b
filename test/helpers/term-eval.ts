// Builds a config's loss terms the way training does (WeightedTerms on a LossContext), with the
// student's logits and taps as plain graph inputs, and evaluates the loss and its logged parts.

import type { KdTerm } from "../../src/config/schema.js";
import { Graph, type Tensor, type Value } from "../../src/engine/graph.js";
import { encodeModel } from "../../src/engine/onnx.js";
import { Session } from "../../src/engine/runtime.js";
import { WeightedTerms } from "../../src/distill/weighted-terms.js";
import type { LossContext } from "../../src/nn/train-step.js";

/** Numbers with their shape, as tests write them. */
export interface Rows {
  shape: number[];
  data: number[];
}

export const tensor = (rows: unknown[]): Rows => {
  const shape: number[] = [];
  for (let v: unknown = rows; Array.isArray(v); v = v[0]) shape.push(v.length);
  return { shape, data: (rows as number[]).flat(Infinity as 1) as number[] };
};

export async function evaluateTerms(
  terms: KdTerm[],
  o: { logits: Rows; labels?: number[]; teacherLogits?: Rows; studentTaps?: Record<string, Rows>; teacherTaps?: Record<string, Rows> },
  /** Filled with the initial values of the trainable tensors the terms declare (adapters). */
  declared: Map<string, Float32Array> = new Map(),
): Promise<Record<string, number>> {
  const g = new Graph();
  const batched = (shape: number[]) => ["N", ...shape.slice(1)];
  const logits = g.input("student_logits", batched(o.logits.shape));
  const feeds: Record<string, Tensor> = { student_logits: { dtype: "float32", shape: o.logits.shape, data: Float32Array.from(o.logits.data) } };
  for (const [name, t] of Object.entries(o.studentTaps ?? {})) {
    g.taps.set(name, g.input(`student_tap.${name}`, batched(t.shape)));
    feeds[`student_tap.${name}`] = { dtype: "float32", shape: t.shape, data: Float32Array.from(t.data) };
  }
  const ctx: LossContext = {
    graph: g,
    logits,
    taps: g.taps,
    input: (name, shape, dtype = "float32") => g.input(name, shape, dtype),
    param: (name, shape, init): Value => {
      feeds[name] = { dtype: "float32", shape, data: init };
      declared.set(name, init);
      return g.input(name, shape);
    },
  };
  const weighted = new WeightedTerms(terms, o.labels !== undefined);
  const teacherTapShapes = new Map(Object.entries(o.teacherTaps ?? {}).map(([n, t]) => [n, t.shape.slice(1)]));
  const { loss, terms: parts } = weighted.build(ctx, { seed: 0, numClasses: o.logits.shape[1]!, teacherTapShapes });
  g.output(loss, "loss");
  for (const [k, v] of Object.entries(parts ?? {})) g.output(v, k);
  const n = o.logits.shape[0]!;
  if (o.labels) feeds["labels"] = { dtype: "int64", shape: [n], data: BigInt64Array.from(o.labels.map(BigInt)) };
  if (o.teacherLogits) feeds["teacher_logits"] = { dtype: "float32", shape: o.teacherLogits.shape, data: Float32Array.from(o.teacherLogits.data) };
  for (const [name, t] of Object.entries(o.teacherTaps ?? {})) feeds[`teacher_tap.${name}`] = { dtype: "float32", shape: t.shape, data: Float32Array.from(t.data) };
  const session = await Session.create(encodeModel(g), { threads: 1 });
  try {
    const wanted = Object.fromEntries(Object.entries(feeds).filter(([k]) => session.inputNames.includes(k)));
    const out = await session.run(wanted);
    return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, (v.data as Float32Array)[0]!]));
  } finally {
    await session.dispose();
  }
}
