// The feature, relation and decoupled distillation losses as plain functions on arrays, evaluated
// by the same engine and graph builders that training uses (each method's file holds the math), with
// the gradient with respect to the student's input. Batch means follow mdistiller's reference code.

import { formatShape, Graph, type Tensor, type Value } from "../engine/graph.js";
import { gradients } from "../engine/autodiff.js";
import { encodeModel } from "../engine/onnx.js";
import { Session } from "../engine/runtime.js";
import * as F from "../engine/functional.js";
import { attentionTransfer } from "./methods/attention.js";
import { dkdTerms } from "./methods/dkd.js";
import { rkdTerms } from "./methods/rkd.js";
import { similarityPreserving } from "./methods/similarity.js";

/** A nested array of numbers: [N, K], [N, C, H, W]… */
export type NestedArray = number[] | NestedArray[];

function tensorOf(fn: string, what: string, x: NestedArray): Tensor<"float32"> {
  const shape: number[] = [];
  for (let v: unknown = x; Array.isArray(v); v = v[0]) shape.push(v.length);
  if (shape.length === 0 || shape.some((d) => d === 0)) throw new Error(`${fn}: ${what} must be a non-empty nested array`);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let at = 0;
  const walk = (v: unknown, depth: number, path: string) => {
    if (depth === shape.length) {
      if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${fn}: ${what}${path} is ${JSON.stringify(v)}, expected a finite number`);
      data[at++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) throw new Error(`${fn}: ${what}${path} is not an array of ${shape[depth]} (the shape is ${formatShape(shape)})`);
    v.forEach((e, i) => walk(e, depth + 1, `${path}[${i}]`));
  };
  walk(x, 0, "");
  return { dtype: "float32", shape, data };
}

function nested(data: Float32Array, shape: number[], offset = 0): NestedArray {
  if (shape.length === 1) return Array.from(data.subarray(offset, offset + shape[0]!));
  const inner = shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: shape[0]! }, (_, i) => nested(data, shape.slice(1), offset + i * inner)) as NestedArray;
}

/** Builds loss(student, teacher[, labels]) on a fresh graph, runs it and its student gradient once. */
async function evaluate<T extends NestedArray>(
  student: Tensor<"float32">,
  teacher: Tensor<"float32">,
  labels: BigInt64Array | undefined,
  build: (s: Value, t: Value, l: Value | undefined) => Value,
): Promise<{ loss: number; gradStudent: T }> {
  const g = new Graph();
  const s = g.input("student", student.shape);
  const t = g.input("teacher", teacher.shape);
  const l = labels ? g.input("labels", [labels.length], "int64") : undefined;
  const loss = build(s, t, l);
  const [grad] = gradients(g, loss, [s]);
  g.output(loss, "loss");
  g.output(grad!, "grad_student");
  const session = await Session.create(encodeModel(g), { threads: 1 });
  try {
    const feeds: Record<string, Tensor> = {
      student,
      teacher,
    };
    if (labels) feeds["labels"] = { dtype: "int64", shape: [labels.length], data: labels };
    const out = await session.run(feeds);
    return { loss: (out["loss"]!.data as Float32Array)[0]!, gradStudent: nested(out["grad_student"]!.data as Float32Array, student.shape) as T };
  } finally {
    await session.dispose();
  }
}

function sameBatch(fn: string, s: Tensor<"float32">, t: Tensor<"float32">): void {
  if (s.shape[0] !== t.shape[0]) throw new Error(`${fn}: student has ${s.shape[0]} samples but teacher has ${t.shape[0]}`);
}

function nonNegative(fn: string, name: string, v: number): void {
  if (!(v >= 0 && Number.isFinite(v))) throw new Error(`${fn}: ${name} must be a finite number ≥ 0, got ${v}`);
}

export interface DkdLossInput {
  student: number[][];
  teacher: number[][];
  labels: number[];
  alpha: number;
  beta: number;
  temperature: number;
}

/** Decoupled KD (Zhao et al. 2022): α·TCKD + β·NCKD, each KL summed over classes, × T², batch mean. */
export async function dkdLoss(input: DkdLossInput): Promise<{ loss: number; gradStudent: number[][] }> {
  const fn = "dkdLoss";
  const s = tensorOf(fn, "student", input.student), t = tensorOf(fn, "teacher", input.teacher);
  if (s.shape.length !== 2 || formatShape(s.shape) !== formatShape(t.shape)) throw new Error(`${fn}: student ${formatShape(s.shape)} and teacher ${formatShape(t.shape)} must be the same [N][K]`);
  if (input.labels.length !== s.shape[0]) throw new Error(`${fn}: ${input.labels.length} labels for ${s.shape[0]} rows`);
  input.labels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= s.shape[1]!) throw new Error(`${fn}: labels[${i}] = ${l} is not a class index in [0, ${s.shape[1]})`);
  });
  if (!(input.temperature > 0)) throw new Error(`${fn}: temperature must be > 0, got ${input.temperature}`);
  nonNegative(fn, "alpha", input.alpha);
  nonNegative(fn, "beta", input.beta);
  return evaluate(s, t, BigInt64Array.from(input.labels.map(BigInt)), (sv, tv, lv) => {
    const { tckd, nckd } = dkdTerms(sv, tv, lv!, input.temperature);
    return F.add(F.scale(tckd, input.alpha), F.scale(nckd, input.beta));
  });
}

export interface RkdLossInput {
  /** Embeddings [N, Ds]. */
  student: number[][];
  /** Embeddings [N, Dt] (Dt may differ from Ds). */
  teacher: number[][];
  distanceWeight: number;
  angleWeight: number;
}

/** Relational KD (Park et al. 2019): distance-wise + angle-wise smooth-L1 terms; the teacher gets no gradient. */
export async function rkdLoss(input: RkdLossInput): Promise<{ loss: number; gradStudent: number[][] }> {
  const fn = "rkdLoss";
  const s = tensorOf(fn, "student", input.student), t = tensorOf(fn, "teacher", input.teacher);
  if (s.shape.length !== 2 || t.shape.length !== 2) throw new Error(`${fn}: student and teacher must be embeddings [N][D]`);
  sameBatch(fn, s, t);
  if (s.shape[0]! < 2) throw new Error(`${fn}: relations need at least 2 samples`);
  nonNegative(fn, "distanceWeight", input.distanceWeight);
  nonNegative(fn, "angleWeight", input.angleWeight);
  return evaluate(s, t, undefined, (sv, tv) => {
    const { distance, angle } = rkdTerms(sv, tv);
    return F.add(F.scale(distance, input.distanceWeight), F.scale(angle, input.angleWeight));
  });
}

export interface AttentionLossInput {
  /** Feature maps [N, Cs, H, W]. */
  student: number[][][][];
  /** Feature maps [N, Ct, H, W]. */
  teacher: number[][][][];
  /** Exponent of |f| (the paper's p, usually 2). */
  p: number;
}

/** Attention transfer (Zagoruyko & Komodakis 2017): mean squared difference of L2-normalised attention maps. */
export async function attentionLoss(input: AttentionLossInput): Promise<{ loss: number; gradStudent: number[][][][] }> {
  const fn = "attentionLoss";
  const s = tensorOf(fn, "student", input.student), t = tensorOf(fn, "teacher", input.teacher);
  if (s.shape.length !== 4 || t.shape.length !== 4) throw new Error(`${fn}: student and teacher must be feature maps [N][C][H][W]`);
  sameBatch(fn, s, t);
  if (s.shape[2] !== t.shape[2] || s.shape[3] !== t.shape[3]) throw new Error(`${fn}: student ${formatShape(s.shape)} and teacher ${formatShape(t.shape)} must have the same H×W`);
  if (!(input.p > 0)) throw new Error(`${fn}: p must be > 0, got ${input.p}`);
  return evaluate(s, t, undefined, (sv, tv) => attentionTransfer(sv, tv, input.p));
}

export interface SimilarityLossInput {
  /** Activations [N, …] (flattened per sample). */
  student: NestedArray;
  teacher: NestedArray;
}

/** Similarity-preserving KD (Tung & Mori 2019): ‖row-normalised G_t − G_s‖²_F / N², G = F·Fᵀ. */
export async function similarityLoss<T extends NestedArray>(input: { student: T; teacher: NestedArray }): Promise<{ loss: number; gradStudent: T }> {
  const fn = "similarityLoss";
  const s = tensorOf(fn, "student", input.student), t = tensorOf(fn, "teacher", input.teacher);
  if (s.shape.length < 2 || t.shape.length < 2) throw new Error(`${fn}: student and teacher must be [N][…] with at least one feature per sample`);
  sameBatch(fn, s, t);
  return evaluate<T>(s, t, undefined, (sv, tv) => similarityPreserving(sv, tv));
}
