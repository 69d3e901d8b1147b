// Each distillation method's loss, built on a graph the way training builds it, against the
// formula computed here in float64; the learning-rate schedule against hand values.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Graph, type Tensor } from "../src/engine/graph.js";
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
  const feeds: Record<string, Tensor> = { student: { dtype: "float32", shape: [2, 3], data: Float32Array.from(student.flat()) } };
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

// ---- the redesigned interface: config → terms → loss, for every method --------------------------

import { resolveKd } from "../src/config/kd.js";
import { kdSchema } from "../src/config/schema.js";
import { validateConfig } from "../src/config/load.js";
import type { KdTerm } from "../src/config/schema.js";
import { attentionReference, dkdReference, rkdReference } from "./helpers/kd-reference.js";
import { evaluateTerms, tensor } from "./helpers/term-eval.js";
import { averageSoftTargets } from "../src/distill/teacher-ensemble.js";

const kdOf = (raw: unknown, labeled = true) => resolveKd(kdSchema.parse(raw), labeled);
const near = (a: number, b: number, what: string, tol = 1e-5) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test("kd block: the original form is logit KD; one method gets cross-entropy unless it has its own; terms are taken as written", () => {
  assert.deepEqual(kdOf({ temperature: 8 }).terms, [{ method: "logit-kd", weight: 1, temperature: 8, alpha: 0.5 }]);
  assert.deepEqual(kdOf({ method: "dkd", beta: 2 }).terms, [{ method: "dkd", weight: 1, alpha: 0.5, beta: 2, temperature: 1, ceWeight: 1 }]);
  assert.deepEqual(kdOf({ method: "rkd", teacher: "a", student: "b" }).terms.map((t) => t.method), ["cross-entropy", "rkd"]);
  assert.deepEqual(kdOf({ method: "rkd", teacher: "a", student: "b" }, false).terms.map((t) => t.method), ["rkd"]);
  const terms = kdOf({ terms: [{ method: "logit-kd" }, { method: "fitnet", weight: 0.5, teacher: "t", student: "s" }] }).terms;
  assert.deepEqual(terms, [{ method: "logit-kd", weight: 1, temperature: 2, alpha: 0.5 }, { method: "fitnet", weight: 0.5, teacher: "t", student: "s" }]);
  // A feature term's weight when none is given is its method's own (its loss is on another scale than the cross-entropy's).
  assert.deepEqual(kdOf({ method: "fitnet", teacher: "t", student: "s" }).terms, [{ method: "cross-entropy", weight: 1 }, { method: "fitnet", weight: 100, teacher: "t", student: "s" }]);
  assert.deepEqual(kdOf({ terms: [{ method: "fitnet", weight: 0, teacher: "t", student: "s" }] }).terms[0]!.weight, 0, "a weight given is kept, 0 included");
  assert.equal(kdOf({ method: "attention", teacher: "t", student: "s" }).terms[1]!.weight, 300, "attention's tuned weight (docs/methods.md)");
  // The resolved form is a fixed point (a run folder stores and reloads it).
  assert.deepEqual(kdOf({ terms }).terms, terms);
});

test("kd block: bad input is one line naming the key", () => {
  const base = { name: "x", data: { dataset: "mnist" }, teacher: { onnx: "t.onnx" }, student: { model: { layers: [{ type: "linear", units: 10 }] }, train: { epochs: 1, optimizer: { kind: "sgd", lr: 0.1 } } } };
  const bad = (kd: unknown, data: object = {}) => () => validateConfig({ ...base, data: { ...base.data, ...data }, kd }, "c.yaml");
  assert.throws(bad({ method: "fitnets" }), /c\.yaml: kd\.method: expected one of cross-entropy, logit-kd, .*, got "fitnets"/);
  assert.throws(bad({ method: "dkd", betta: 2 }), /kd: unknown key "betta" \(did you mean "beta"\?/);
  assert.throws(bad({ terms: [{ method: "logit-kd" }, { method: "fitnet", teacher: "t" }] }), /kd\.terms\[1\]\.student: required/);
  assert.throws(bad({ terms: [{ method: "attention", teacher: "t", student: "s", weight: -1 }] }), /kd\.terms\[0\]\.weight: expected a number ≥ 0, got -1/);
  assert.throws(bad({ terms: [], temperature: 2 }), /kd\.temperature: unknown key/);
  assert.throws(bad({ method: "dkd" }, { transfer: "unlabeled" }), /kd: dkd needs labels, but data\.transfer is unlabeled/);
});

const logits = [[1, 2, 0.5, -1], [0.2, -0.3, 3, 0], [-2, 0, 1, 4]];
const teacherLogits = [[3, 1, 0, -2], [0, 0, 5, 1], [-1, -1, 2, 2.5]];
const labels3 = [0, 2, 3];

test("dkd through the trainer's terms: CE + α·TCKD + β·NCKD, each part logged", async () => {
  const [term] = kdOf({ method: "dkd", alpha: 0.5, beta: 4, temperature: 2 }).terms as [KdTerm];
  const got = await evaluateTerms([term], { logits: tensor(logits), labels: labels3, teacherLogits: tensor(teacherLogits) });
  const ref = dkdReference(logits, teacherLogits, labels3, 0.5, 4, 2);
  const ce = -logits.reduce((a, row, i) => a + logSoftmax(row, 1)[labels3[i]!]!, 0) / logits.length;
  near(got["loss_ce"]!, ce, "ce");
  near(got["loss_tckd"]!, ref.tckd, "tckd", 1e-4);
  near(got["loss_nckd"]!, ref.nckd, "nckd", 1e-4);
  near(got["loss"]!, got["loss_ce"]! + ref.loss, "total", 1e-4);
});

test("fitnet: a learned linear adapter maps the student tap onto the teacher's; loss is their MSE", async () => {
  const terms = kdOf({ terms: [{ method: "fitnet", teacher: "fc", student: "h" }] }).terms;
  const s = [[1, 2], [0, -1], [0.5, 0.5]], t = [[1, 0, 2], [0, 1, 0], [2, 2, 2]];
  const declared = new Map<string, Float32Array>();
  const got = await evaluateTerms(terms, { logits: tensor(logits), studentTaps: { h: tensor(s) }, teacherTaps: { fc: tensor(t) } }, declared);
  const w = declared.get("kd.fitnet.adapter.weight")!, b = declared.get("kd.fitnet.adapter.bias")!;
  assert.equal(w.length, 6);
  let sum = 0;
  s.forEach((row, i) => t[i]!.forEach((tv, j) => (sum += (row[0]! * w[j]! + row[1]! * w[3 + j]! + b[j]! - tv) ** 2)));
  near(got["loss_hint"]!, sum / 9, "hint");
});

test("attention and rkd through the trainer's terms, weighted and named per term", async () => {
  const fs = [[[[1, 2], [0, 1]]], [[[0.5, -1], [2, 0]]], [[[0, 0.2], [1, 1]]]];
  const ft = [[[[0, 1], [2, 1]], [[1, 1], [0, 0]]], [[[1, 0], [0, 1]], [[2, 0], [0, 2]]], [[[0.3, 0], [1, 2]], [[1, 0], [1, 0]]]];
  const emb = [[1, 0], [0, 2], [1, 1]], embT = [[0, 1, 1], [2, 0, 1], [1, 1, 0]];
  const terms = kdOf({ terms: [{ method: "attention", weight: 10, teacher: "f", student: "f" }, { method: "rkd", weight: 0.5, teacher: "e", student: "e", distanceWeight: 1, angleWeight: 2 }] }).terms;
  const got = await evaluateTerms(terms, { logits: tensor(logits), studentTaps: { f: tensor(fs), e: tensor(emb) }, teacherTaps: { f: tensor(ft), e: tensor(embT) } });
  const at = attentionReference(fs, ft, 2), rkd = rkdReference(emb, embT);
  near(got["attention.loss_at"]!, at, "at");
  near(got["rkd.loss_rkd_distance"]!, rkd.distance, "distance", 1e-4);
  near(got["rkd.loss_rkd_angle"]!, rkd.angle, "angle", 1e-4);
  near(got["loss"]!, 10 * at + 0.5 * (rkd.distance + 2 * rkd.angle), "weighted sum", 1e-4);
});

test("several teachers: softmax(averaged logits / T) is the weighted mean of the teachers' softened outputs", () => {
  const a = Float32Array.from([2, 0, -1, 0, 3, 1]), b = Float32Array.from([0, 1, 1, 5, 0, 0]);
  const T = 3;
  const out = averageSoftTargets([a, b], [1, 3], 3, T);
  for (let row = 0; row < 2; row++) {
    const got = softmax3(Array.from(out.subarray(row * 3, row * 3 + 3)), T);
    const pa = softmax3(Array.from(a.subarray(row * 3, row * 3 + 3)), T), pb = softmax3(Array.from(b.subarray(row * 3, row * 3 + 3)), T);
    got.forEach((p, c) => near(p, (pa[c]! + 3 * pb[c]!) / 4, `row ${row} class ${c}`));
  }
});

function softmax3(row: number[], t: number): number[] {
  return logSoftmax(row, t).map(Math.exp);
}

test("layering: the config layer imports nothing from the distill layer (methods register their settings with it)", async () => {
  const { readdirSync, readFileSync } = await import("node:fs");
  const { join } = await import("node:path");
  const dir = join(process.cwd(), "src", "config");
  const offending = readdirSync(dir).filter((f) => f.endsWith(".ts")).filter((f) => /from\s+["']\.\.\/distill\//.test(readFileSync(join(dir, f), "utf8")));
  assert.deepEqual(offending, []);
});
