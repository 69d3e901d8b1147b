// Each distillation method's loss, built on a graph the way training builds it, against the
// formula computed here in float64; the learning-rate schedule against hand values.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Graph } from "../src/engine/graph.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";
import { METHODS } from "../src/distill/methods/index.js";
import { learningRate } from "../src/distill/schedule.js";
import type { LossContext } from "../src/nn/train-step.js";

const student = [[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]];
const teacher = [[3.0, -2.0, 1.0], [-1.0, 0.5, 2.5]];
const labels = [0, 2];

function logSoftmax(row: number[], t: number): number[] {
  const z = row.map((v) => v / t);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
  return z.map((v) => v - lse);
}

function reference(name: string, T: number, alpha: number, withLabels: boolean): Record<string, number> {
  const n = student.length;
  let ce = 0, kl = 0;
  for (let i = 0; i < n; i++) {
    ce -= logSoftmax(student[i]!, 1)[labels[i]!]! / n;
    const lp = logSoftmax(teacher[i]!, T), lq = logSoftmax(student[i]!, T);
    kl += lp.reduce((a, v, c) => a + Math.exp(v) * (v - lq[c]!), 0) / n;
  }
  if (name === "cross-entropy") return { loss: ce, loss_ce: ce };
  const kd = T * T * kl;
  return withLabels ? { loss: (1 - alpha) * ce + alpha * kd, loss_ce: ce, loss_kd: kd } : { loss: kd, loss_kd: kd };
}

async function evaluate(name: string, T: number, alpha: number, withLabels: boolean): Promise<Record<string, number>> {
  const method = METHODS[name]!;
  const needs = method.needs({ temperature: T, alpha });
  const g = new Graph();
  const logits = g.input("student", [2, 3]);
  const ctx = { graph: g, logits, taps: g.taps, input: (n: string, s: never, d?: never) => g.input(n, s, d ?? "float32"), param: () => { throw new Error("no params"); } } as unknown as LossContext;
  const res = method.loss({
    ctx,
    id: "t",
    seed: 0,
    labels: withLabels && needs.labels ? g.input("labels", [2], "int64") : undefined,
    teacherLogits: needs.teacherLogits ? g.input("teacher", [2, 3]) : undefined,
    teacherTaps: new Map(),
    studentTaps: new Map(),
    settings: { temperature: T, alpha },
  });
  g.output(res.loss, "loss");
  for (const [k, v] of Object.entries(res.parts ?? {})) g.output(v, k);
  const s = await Session.create(encodeModel(g));
  const feeds: Record<string, { dtype: "float32" | "int64"; shape: number[]; data: Float32Array | BigInt64Array }> = { student: { dtype: "float32", shape: [2, 3], data: Float32Array.from(student.flat()) } };
  if (s.inputNames.includes("teacher")) feeds["teacher"] = { dtype: "float32", shape: [2, 3], data: Float32Array.from(teacher.flat()) };
  if (s.inputNames.includes("labels")) feeds["labels"] = { dtype: "int64", shape: [2], data: BigInt64Array.from(labels.map(BigInt)) };
  const out = await s.run(feeds);
  await s.dispose();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, (v.data as Float32Array)[0]!]));
}

for (const [name, T, alpha, withLabels] of [["cross-entropy", 1, 0, true], ["logit-kd", 4, 0.9, true], ["logit-kd", 1, 0.5, true], ["logit-kd", 20, 1, false]] as const) {
  test(`method ${name} (T=${T}, α=${alpha}${withLabels ? "" : ", unlabeled"}) equals its formula and logs its terms`, async () => {
    const got = await evaluate(name, T, alpha, withLabels);
    const want = reference(name, T, alpha, withLabels);
    assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
    for (const k of Object.keys(want)) assert.ok(Math.abs(got[k]! - want[k]!) < 1e-5 * Math.max(1, Math.abs(want[k]!)), `${k}: ${got[k]} vs ${want[k]}`);
  });
}

test("learning-rate schedules: warm-up, step decay, cosine", () => {
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
  close(learningRate(0.1, { kind: "constant", warmupEpochs: 0 }, 10, 7, 0.5), 0.1);
  close(learningRate(0.1, { kind: "constant", warmupEpochs: 2 }, 10, 1, 0), 0.05);
  close(learningRate(0.1, { kind: "step", warmupEpochs: 0, stepEvery: 3, gamma: 0.5 }, 10, 6, 0.2), 0.025);
  close(learningRate(0.1, { kind: "cosine", warmupEpochs: 0 }, 10, 5, 0), 0.05);
  close(learningRate(0.1, { kind: "cosine", warmupEpochs: 0 }, 10, 0, 0), 0.1);
  close(learningRate(0.1, { kind: "cosine", warmupEpochs: 2 }, 10, 2, 0), 0.1);
  close(learningRate(0.1, { kind: "cosine", warmupEpochs: 2 }, 10, 6, 0), 0.05);
});
