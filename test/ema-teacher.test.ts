// The mean teacher (ema-teacher): an exponential moving average of the student's own weights,
// carried as state of the training step. Checked on real MNIST batches against a host-side average
// of the per-step parameters, its loss against logit KD's formula with the average's eval-mode
// logits, its gradient against logit KD fed those logits as constants (no gradient through the
// teacher), the K-steps-per-call Loop against single steps, and a resume through a checkpoint file.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KdTerm } from "../src/config/schema.js";
import { validateConfig } from "../src/config/load.js";
import { readCheckpoint, writeCheckpoint } from "../src/distill/checkpoint.js";
import { WeightedTerms } from "../src/distill/weighted-terms.js";
import { Session } from "../src/engine/runtime.js";
import type { Tensor } from "../src/engine/graph.js";
import * as L from "../src/nn/layers.js";
import { exportOnnx, Model } from "../src/nn/model.js";
import { ParameterSet } from "../src/nn/module.js";
import { ModelTrainer } from "../src/nn/train-step.js";
import { LABELS, mnist } from "./helpers/mnist-models.js";

const BATCH = 32;
const { train } = mnist();

/** BatchNorm (buffers averaged too) and dropout (masks by step: a resume must keep the step count). */
function model(): Model {
  const net = new L.Sequential([new L.Linear({ outFeatures: 24 }), new L.BatchNorm(), new L.ReLU(), new L.Dropout({ p: 0.2 }), new L.Linear({ outFeatures: 10 })]);
  return new Model(net, { shape: [784], scale: 1 / 255 }, LABELS);
}

function batch(i: number, m: Model, withLabels = true): Record<string, Tensor> {
  const start = i * BATCH;
  const feeds: Record<string, Tensor> = { input: { dtype: "float32", shape: [BATCH, ...m.input.shape], data: Float32Array.from(train.inputs.subarray(start * 784, (start + BATCH) * 784)) } };
  if (withLabels) feeds["labels"] = { dtype: "int64", shape: [BATCH], data: BigInt64Array.from(train.labels.subarray(start, start + BATCH), BigInt) };
  return feeds;
}

const EMA: KdTerm = { method: "ema-teacher", weight: 1, decay: 0.9, rampUp: true, temperature: 2, alpha: 0.5 };
const PREFIX = "kd.ema-teacher.ema.";

async function trainer(m: Model, term: KdTerm = EMA): Promise<ModelTrainer> {
  const terms = new WeightedTerms([term], true);
  return ModelTrainer.create({
    model: m, params: m.initParameters(3), optimizer: { kind: "sgd", momentum: 0.9 }, seed: 5, fetchLogits: true, threads: 1,
    loss: (ctx) => terms.build(ctx, { seed: 3, numClasses: 10, teacherTapShapes: new Map() }),
  });
}

function averagedParameters(m: Model, state: Map<string, Tensor<"float32">>): ParameterSet {
  const decls = m.declarations();
  return new ParameterSet(decls, new Map(decls.map((d) => [d.name, state.get(PREFIX + d.name)!])));
}

test("ema-teacher: the average after n steps equals d·ema + (1−d)·θ over the per-step parameters (decay ramp included)", async () => {
  const m = model();
  const t = await trainer(m);
  const names = m.declarations().map((d) => d.name);
  const ema = new Map(names.map((n) => [n, Float32Array.from(t.snapshot().state.get(n)!.data)]));
  const steps = 12;
  for (let s = 1; s <= steps; s++) {
    await t.step(batch(s, m), 0.05);
    const state = t.snapshot().state;
    const keep = Math.fround(Math.min(Math.fround(0.9), Math.fround(1 - Math.fround(1 / (s + 1)))));
    const take = Math.fround(1 - keep);
    for (const n of names) {
      const theta = state.get(n)!.data, avg = ema.get(n)!;
      for (let i = 0; i < avg.length; i++) avg[i] = Math.fround(Math.fround(avg[i]! * keep) + Math.fround(theta[i]! * take));
    }
  }
  const state = t.snapshot().state;
  assert.deepEqual([...state.get("kd.ema-teacher.steps")!.data], [steps]);
  for (const n of names) {
    const got = state.get(PREFIX + n)!.data, want = ema.get(n)!;
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    assert.ok(worst <= 1e-6, `${n}: max |graph − host| = ${worst}`);
    assert.notDeepEqual(got, state.get(n)!.data, `${n}: the average is not the current weights`);
  }
  await t.dispose();
});

test("ema-teacher: the loss is logit KD's with the average's eval-mode logits as teacher, and no gradient flows through the teacher", async () => {
  const m = model();
  const t = await trainer(m);
  for (let s = 0; s < 6; s++) await t.step(batch(s, m), 0.05);
  const before = t.snapshot();
  // The teacher's logits on the next batch, from the average exported as a standalone eval model.
  const exported = await Session.create(exportOnnx(m, averagedParameters(m, before.state)), { threads: 1 });
  const next = batch(6, m);
  const teacherLogits = (await exported.run({ input: next["input"]! }))["logits"]!.data as Float32Array;
  await exported.dispose();
  const res = await t.step(next, 0.05);
  const student = res.outputs["logits"]!.data as Float32Array;
  const labels = next["labels"]!.data as BigInt64Array;
  // Logit KD in float64: (1−α)·CE + α·T²·KL(softmax(t/T) ‖ softmax(s/T)), batch mean.
  const T = 2, alpha = 0.5;
  const logSoftmax = (row: ArrayLike<number>, temp: number) => {
    const z = Array.from(row, (v) => v / temp), mx = Math.max(...z);
    const lse = mx + Math.log(z.reduce((a, v) => a + Math.exp(v - mx), 0));
    return z.map((v) => v - lse);
  };
  let ce = 0, kl = 0;
  for (let i = 0; i < BATCH; i++) {
    const s = student.subarray(i * 10, i * 10 + 10), te = teacherLogits.subarray(i * 10, i * 10 + 10);
    ce -= logSoftmax(s, 1)[Number(labels[i])]! / BATCH;
    const lp = logSoftmax(te, T), lq = logSoftmax(s, T);
    kl += lp.reduce((a, v, c) => a + Math.exp(v) * (v - lq[c]!), 0) / BATCH;
  }
  const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 2e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
  near(res.terms["loss_ce"]!, ce, "loss_ce");
  near(res.terms["loss_kd"]!, T * T * kl, "loss_kd");
  near(res.loss, (1 - alpha) * ce + alpha * T * T * kl, "loss");
  assert.ok(kl > 1e-4, `the average differs from the student (KL ${kl})`);

  // The same step by logit KD with those logits fed as constants: the same update, so nothing
  // reached the parameters through the teacher's branch.
  const kd = await trainer(m, { method: "logit-kd", weight: 1, temperature: T, alpha });
  kd.restore(before);
  const kdRes = await kd.step({ ...next, teacher_logits: { dtype: "float32", shape: [BATCH, 10], data: teacherLogits } }, 0.05);
  near(kdRes.loss, res.loss, "logit KD's loss");
  const after = t.parameters(), kdAfter = kd.parameters();
  for (const [n, v] of after.tensors) {
    const w = kdAfter.get(n).data;
    const worst = v.data.reduce((a, x, i) => Math.max(a, Math.abs(x - w[i]!)), 0);
    assert.ok(worst <= 1e-5, `${n}: max |ema-teacher − logit KD| after the step = ${worst}`);
  }
  await Promise.all([t.dispose(), kd.dispose()]);
});

test("ema-teacher: K steps per call through the Loop, and a resume through a checkpoint file, are bit-identical to single steps", async () => {
  const m = model();
  const straight = await trainer(m);
  for (let s = 0; s < 8; s++) await straight.step(batch(s, m), 0.05);

  const looped = await trainer(m);
  await looped.stepMany([0, 1, 2, 3].map((s) => batch(s, m)), [0.05, 0.05, 0.05, 0.05]);
  const path = join(mkdtempSync(join(tmpdir(), "distill-ema-")), "ckpt.bin");
  const snap = looped.snapshot();
  writeCheckpoint(path, { stage: "student", seed: 3, epochsDone: 1, stepsTaken: snap.stepsTaken, history: [], state: snap.state });
  await looped.dispose();

  const resumed = await trainer(m);
  const saved = readCheckpoint(path)!;
  assert.ok([...saved.state.keys()].some((k) => k.startsWith(PREFIX)), "the checkpoint holds the average");
  resumed.restore({ state: saved.state, stepsTaken: saved.stepsTaken });
  await resumed.stepMany([4, 5, 6, 7].map((s) => batch(s, m)), [0.05, 0.05, 0.05, 0.05]);

  const want = straight.snapshot().state, got = resumed.snapshot().state;
  assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
  for (const [n, v] of want) assert.deepEqual(got.get(n)!.data, v.data, n);
  await Promise.all([straight.dispose(), resumed.dispose()]);
});

test("ema-teacher without labels: only the soft term; settings are checked", async () => {
  const m = model();
  const terms = new WeightedTerms([EMA], false);
  const t = await ModelTrainer.create({ model: m, params: m.initParameters(3), optimizer: { kind: "adam" }, seed: 5, threads: 1, loss: (ctx) => terms.build(ctx, { seed: 3, numClasses: 10, teacherTapShapes: new Map() }) });
  const first = await t.step(batch(0, m, false), 0.01);
  assert.deepEqual(Object.keys(first.terms), ["loss_kd"]);
  assert.ok(Number.isFinite(first.loss) && first.loss >= 0);
  await t.dispose();
  assert.equal(terms.usesTeacher, false, "no separate teacher is needed");
  // Batches mixing unlabelled samples (data.unlabeled): its hard-label part takes the labelled rows.
  assert.deepEqual(new WeightedTerms([EMA], true, 0.5).needEveryLabel, []);
});

test("ema-teacher in a config: one term with its own cross-entropy; bad settings and a chain it would ignore are one line naming the key", () => {
  const base = { name: "e", data: { dataset: "mnist" }, teacher: { onnx: "t.onnx" }, student: { model: { layers: [{ type: "linear", units: 10 }] }, train: { epochs: 1, optimizer: { kind: "sgd", lr: 0.1 } } } };
  const kd = (block: unknown) => validateConfig({ ...base, kd: block }, "e.yaml").kd;
  assert.deepEqual(kd({ method: "ema-teacher" }).terms, [{ method: "ema-teacher", weight: 1, decay: 0.99, rampUp: true, temperature: 2, alpha: 0.5 }]);
  assert.throws(() => kd({ method: "ema-teacher", decay: 1 }), /e\.yaml: kd\.decay: expected a number from 0 up to \(not including\) 1, got 1/);
  assert.throws(() => kd({ method: "ema-teacher", decy: 0.9 }), /kd: unknown key "decy" \(did you mean "decay"\?/);
  assert.throws(() => kd({ method: "ema-teacher", generations: 2 }), /kd\.generations: a chain of teachers teaches each link, but no term learns from a teacher \(ema-teacher\)/);
  assert.deepEqual(kd({ terms: [{ method: "logit-kd" }, { method: "ema-teacher", weight: 0.5 }], generations: 2 }).generations, 2);
});

test("ema-teacher needs no separate teacher: a run without `teacher:` trains baseline and student only; a term that learns from a teacher refuses that config", async () => {
  const { writeFileSync, readFileSync, existsSync } = await import("node:fs");
  const { spawnSync } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const dir = mkdtempSync(join(tmpdir(), "distill-ema-noteacher-"));
  const CLI = join(fileURLToPath(new URL(".", import.meta.url)), "../src/cli/main.js");
  const config = (kd: string) => `name: no-teacher
seeds: 1
data: { dataset: mnist, trainLimit: 1500, validation: 300, testLimit: 500 }
student:
  model: { layers: [ {type: linear, units: 32}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 64, optimizer: {kind: adam, lr: 0.003} }
kd: ${kd}
`;
  const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
  writeFileSync(join(dir, "ema.yaml"), config("{ method: ema-teacher, decay: 0.99, temperature: 4, alpha: 0.5 }"));
  const ok = cli(["run", join(dir, "ema.yaml"), "--output", join(dir, "run"), "--quiet"]);
  assert.equal(ok.status, 0, ok.stderr);
  const results = JSON.parse(readFileSync(join(dir, "run", "results.json"), "utf8")) as { models: { role: string; perSeed: { agreement?: number }[] }[] };
  assert.deepEqual(results.models.map((m) => m.role), ["baseline", "student"]);
  assert.equal(results.models[1]!.perSeed[0]!.agreement ?? null, null, "no teacher to agree with");
  assert.ok(!existsSync(join(dir, "run", "teacher.onnx")));
  assert.match(readFileSync(join(dir, "run", "report.html"), "utf8"), /id="no-teacher"/);
  writeFileSync(join(dir, "kd.yaml"), config("{ temperature: 4, alpha: 0.9 }"));
  const bad = cli(["run", join(dir, "kd.yaml"), "--output", join(dir, "bad")]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /kd\.yaml: teacher: required \(kd: logit-kd learns from a teacher\)/);
  assert.equal(bad.stderr.trim().split("\n").length, 1);
  assert.ok(!existsSync(join(dir, "bad")));
});
