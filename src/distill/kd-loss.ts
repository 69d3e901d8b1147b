// The distillation loss as a plain function on arrays, evaluated by the same engine and graph
// builders that training uses (not a separate JavaScript formula).

import { Graph } from "../engine/graph.js";
import { gradients } from "../engine/autodiff.js";
import { encodeModel } from "../engine/onnx.js";
import { Session } from "../engine/runtime.js";
import { kdLossGraph } from "../nn/losses.js";

export interface KdLossInput {
  student: number[][];
  teacher: number[][];
  labels: number[];
  temperature: number;
  alpha: number;
}

function matrix(rows: number[][], what: string): { data: Float32Array; n: number; k: number } {
  const n = rows.length;
  const k = rows[0]?.length ?? 0;
  if (!n || !k) throw new Error(`kdLoss: ${what} must be a non-empty [N][K] array`);
  const data = new Float32Array(n * k);
  rows.forEach((r, i) => {
    if (r.length !== k) throw new Error(`kdLoss: ${what}[${i}] has ${r.length} values, expected ${k}`);
    data.set(r, i * k);
  });
  return { data, n, k };
}

/**
 * (1−α)·CE(labels, s) + α·T²·KL(softmax(t/T) ‖ softmax(s/T)), batch mean, and its gradient with
 * respect to the student logits.
 */
export async function kdLoss(input: KdLossInput): Promise<{ loss: number; gradStudent: number[][] }> {
  const s = matrix(input.student, "student");
  const t = matrix(input.teacher, "teacher");
  if (s.n !== t.n || s.k !== t.k) throw new Error(`kdLoss: student is [${s.n}][${s.k}] but teacher is [${t.n}][${t.k}]`);
  if (input.labels.length !== s.n) throw new Error(`kdLoss: ${input.labels.length} labels for ${s.n} rows`);
  if (!(input.temperature > 0)) throw new Error(`kdLoss: temperature must be > 0, got ${input.temperature}`);
  if (!(input.alpha >= 0 && input.alpha <= 1)) throw new Error(`kdLoss: alpha must be in [0, 1], got ${input.alpha}`);
  input.labels.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= s.k) throw new Error(`kdLoss: labels[${i}] = ${l} is not a class index in [0, ${s.k})`);
  });

  const g = new Graph();
  const student = g.input("student", [s.n, s.k]);
  const teacher = g.input("teacher", [s.n, s.k]);
  const labels = g.input("labels", [s.n], "int64");
  const { loss } = kdLossGraph(student, teacher, labels, input.temperature, input.alpha);
  const [grad] = gradients(g, loss, [student]);
  g.output(loss, "loss");
  g.output(grad!, "grad_student");
  const session = await Session.create(encodeModel(g), { threads: 1 });
  try {
    const out = await session.run({
      student: { dtype: "float32", shape: [s.n, s.k], data: s.data },
      teacher: { dtype: "float32", shape: [s.n, s.k], data: t.data },
      labels: { dtype: "int64", shape: [s.n], data: BigInt64Array.from(input.labels.map(BigInt)) },
    });
    const gd = out["grad_student"]!.data as Float32Array;
    const gradStudent = Array.from({ length: s.n }, (_, i) => Array.from(gd.subarray(i * s.k, (i + 1) * s.k)));
    return { loss: (out["loss"]!.data as Float32Array)[0]!, gradStudent };
  } finally {
    await session.dispose();
  }
}
