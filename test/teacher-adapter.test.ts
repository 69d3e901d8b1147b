// A teacher trained elsewhere: an ONNX model that wants NHWC input normalised its own way and
// returns probabilities under a name of its own. The adapter must make it take raw pixels and give
// logits whose softmax is the model's own distribution, checked against the original model run on
// preprocessing computed independently here; then a whole `distill run` uses it as the teacher.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Graph } from "../src/engine/graph.js";
import { decodeModel, encodeModel } from "../src/engine/onnx.js";
import * as F from "../src/engine/functional.js";
import { Session } from "../src/engine/runtime.js";
import { Rng } from "../src/util/random.js";
import { loadDataset } from "../src/data/datasets.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import { adaptTeacher, looksLikeProbabilities, prepareTeacher, withDataRecord } from "../src/distill/teacher-adapter.js";
import { UserError } from "../src/errors.js";

const dir = mkdtempSync(join(tmpdir(), "distill-foreign-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const MEAN = 0.1307, STD = 0.3081;

/**
 * Weights of a rough but real classifier on normalised MNIST pixels: w[:, c] is class c's mean image
 * less the mean of all, from 2,000 training images (well above chance, so a run may distil from it).
 */
function classTemplates(): Float32Array {
  const train = loadDataset("mnist").train;
  const sums = new Float64Array(784 * 10), all = new Float64Array(784), counts = new Float64Array(10);
  for (let i = 0; i < 2000; i++) {
    const c = train.labels[i]!;
    counts[c]!++;
    for (let p = 0; p < 784; p++) {
      const v = (train.inputs[i * 784 + p]! / 255 - MEAN) / STD;
      sums[p * 10 + c]! += v;
      all[p]! += v / 2000;
    }
  }
  // Scaled so that the logits stay a few units apart (float32 softmax keeps every class above 0).
  return Float32Array.from({ length: 7840 }, (_, j) => 0.005 * (sums[j]! / counts[j % 10]! - all[Math.floor(j / 10)]!));
}

/** "Exported from PyTorch": pixel_values [N, 28, 28, 1] normalised, a linear layer, softmax → probs. */
function foreignModel(withSoftmax: boolean): Uint8Array {
  const g = new Graph();
  const x = g.input("pixel_values", ["N", 28, 28, 1]);
  const w = g.initializer("fc.weight", { dtype: "float32", shape: [784, 10], data: classTemplates() });
  const logits = F.matmul(F.reshape(x, [-1, 784]), w);
  g.output(withSoftmax ? F.softmax(logits, -1) : logits, withSoftmax ? "probs" : "scores");
  return encodeModel(g);
}

const spec = { output: "probs", preprocessing: { layout: "nhwc" as const, scale: 1 / 255, mean: [MEAN], std: [STD] } };
const image = { height: 28, width: 28, channels: 1 };

test("the adapted teacher takes raw pixels and returns log-probabilities of the model's own output", async () => {
  const original = foreignModel(true);
  const adapted = adaptTeacher(original, spec, true, image, "foreign.onnx");
  const meta = decodeModel(adapted).metadata;
  assert.equal(meta["distill.output_name"], "teacher_logits");
  assert.deepEqual(JSON.parse(meta["distill.teacher_adapter"]!).originalInput, "pixel_values");

  const data = loadDataset("mnist");
  const n = 32;
  const indices = Int32Array.from({ length: n }, (_, i) => i);
  const c = await OnnxClassifier.fromBytes(adapted, "adapted");
  const got = await c.logits(data.test, indices);
  await c.dispose();

  // Independently: (x/255 − mean)/std in NHWC (one channel: the same order as H×W), the original model.
  const x = new Float32Array(n * 784);
  for (let i = 0; i < n * 784; i++) x[i] = (data.test.inputs[i]! / 255 - MEAN) / STD;
  const s = await Session.create(original);
  const probs = (await s.run({ pixel_values: { dtype: "float32", shape: [n, 28, 28, 1], data: x } }))["probs"]!.data as Float32Array;
  await s.dispose();
  let worst = 0;
  for (let i = 0; i < n * 10; i++) worst = Math.max(worst, Math.abs(got[i]! - Math.log(probs[i]!)));
  assert.ok(worst < 1e-4, `max |adapted − log p| = ${worst}`);
});

test("outputs: auto tells probabilities from logits by running the model", async () => {
  const sample = async (bytes: Uint8Array) => {
    const c = await OnnxClassifier.fromBytes(bytes, "probe");
    try {
      return { scores: await c.logits(loadDataset("mnist").train, Int32Array.from({ length: 16 }, (_, i) => i)), classes: c.numClasses };
    } finally {
      await c.dispose();
    }
  };
  const fromProbs = await prepareTeacher(foreignModel(true), spec, image, "p.onnx", sample);
  assert.equal(JSON.parse(decodeModel(fromProbs).metadata["distill.teacher_adapter"]!).probabilities, true);
  const fromLogits = await prepareTeacher(foreignModel(false), { ...spec, output: "scores" }, image, "l.onnx", sample);
  assert.equal(JSON.parse(decodeModel(fromLogits).metadata["distill.teacher_adapter"]!).probabilities, false);
  assert.equal(looksLikeProbabilities(new Float32Array([0.2, 0.8, 0.5, 0.5]), 2), true);
  assert.equal(looksLikeProbabilities(new Float32Array([0.2, 0.8, -1, 2]), 2), false);
});

test("a tensor name that is not in the graph is one error naming teacher.output and the outputs", () => {
  assert.throws(() => adaptTeacher(foreignModel(true), { ...spec, output: "prob" }, true, image, "f.onnx"),
    (e: unknown) => e instanceof UserError && e.message === 'f.onnx: teacher.output: no tensor named "prob" in the graph (outputs: probs)');
  assert.throws(() => adaptTeacher(foreignModel(true), { ...spec, preprocessing: { ...spec.preprocessing, mean: [0.1, 0.2] } }, true, image, "f.onnx"),
    (e: unknown) => e instanceof UserError && /teacher\.preprocessing\.mean: has 2 values for 1-channel images/.test(e.message));
});

/** A linear teacher taking [N, ...perSample] float inputs and giving 10 logits under "scores". */
function linearTeacher(perSample: number[]): Uint8Array {
  const g = new Graph();
  const x = g.input("x", ["N", ...perSample]);
  const size = perSample.reduce((a, b) => a * b, 1);
  const rng = new Rng(3);
  const w = g.initializer("w", { dtype: "float32", shape: [size, 10], data: Float32Array.from({ length: size * 10 }, () => rng.uniform(-0.1, 0.1)) });
  g.output(F.matmul(F.reshape(x, [-1, size]), w), "scores");
  return encodeModel(g);
}

/** `distill run` on MNIST with `teacher`; the result of the CLI and the run folder it was given. */
function runWith(name: string, teacher: string): { status: number | null; stderr: string; runDir: string } {
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, `
name: ${name}
data: { dataset: mnist, trainLimit: 600, validation: 200, testLimit: 100 }
teacher: ${teacher}
student:
  model: { layers: [ {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 64, optimizer: {kind: adam, lr: 0.003} }
`);
  const runDir = join(dir, `run-${name}`);
  const r = spawnSync(process.execPath, [CLI, "run", config, "--quiet", "--output", runDir], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
  return { status: r.status, stderr: r.stderr.trim(), runDir };
}

test("a teacher whose input does not take the data's samples: one line with both shapes, pointing at teacher.preprocessing, exit 2, nothing written", () => {
  const narrow = join(dir, "narrow.onnx");
  writeFileSync(narrow, linearTeacher([100]));
  const r = runWith("narrow", `{ onnx: ${narrow} }`);
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr, `distill: ${narrow}: teacher.preprocessing: the model's input x takes [100] per sample, but the data's samples are 28×28 images, 1 channel (784 values); declare teacher.preprocessing (layout, resize) to fit its input, or use a teacher made for this data`);
  assert.ok(!existsSync(r.runDir), "no run folder");
  // With preprocessing declared: the shape the layout would feed is named too.
  const nchw = join(dir, "nchw.onnx");
  writeFileSync(nchw, linearTeacher([1, 32, 32]));
  assert.throws(() => adaptTeacher(readFileSync(nchw), { preprocessing: { layout: "nhwc", scale: 1, mean: [0], std: [1], resize: { width: 32, height: 32 } } }, false, image, "nchw.onnx"),
    (e: unknown) => e instanceof UserError && e.message === "nchw.onnx: teacher.preprocessing: the model's input x takes [1, 32, 32] per sample, but the data's samples are 28×28 images, 1 channel (784 values); as declared (layout nhwc, resized to 32×32) it would get [32, 32, 1]; declare teacher.preprocessing (layout, resize) to fit its input, or use a teacher made for this data");
  // The same declaration in the model's layout is accepted.
  assert.ok(adaptTeacher(readFileSync(nchw), { preprocessing: { layout: "nchw", scale: 1, mean: [0], std: [1], resize: { width: 32, height: 32 } } }, false, image, "nchw.onnx").length > 0);
});

test("teacher.outputs declared against what the model gives (either way) is refused by the rule auto applies", async () => {
  const sample = async (bytes: Uint8Array) => {
    const c = await OnnxClassifier.fromBytes(bytes, "probe");
    try {
      return { scores: await c.logits(loadDataset("mnist").train, Int32Array.from({ length: 16 }, (_, i) => i)), classes: c.numClasses };
    } finally {
      await c.dispose();
    }
  };
  await assert.rejects(prepareTeacher(foreignModel(true), { ...spec, outputs: "logits" }, image, "p.onnx", sample),
    (e: unknown) => e instanceof UserError && e.message === "p.onnx: teacher.outputs: is logits, but on 16 training samples every row of the output is ≥ 0 and sums to 1: probabilities; set outputs: probabilities, or leave it out (auto)");
  await assert.rejects(prepareTeacher(foreignModel(false), { ...spec, output: "scores", outputs: "probabilities" }, image, "l.onnx", sample),
    (e: unknown) => e instanceof UserError && /^l\.onnx: teacher\.outputs: is probabilities, but on 16 training samples row 0 (holds -|sums to )[\d.]+: logits; set outputs: logits, or leave it out \(auto\)$/.test(e.message));
  // Declared as they are: accepted, as auto would have it.
  const declared = await prepareTeacher(foreignModel(true), { ...spec, outputs: "probabilities" }, image, "p.onnx", sample);
  assert.equal(JSON.parse(decodeModel(declared).metadata["distill.teacher_adapter"]!).probabilities, true);
});

test("distill run with the foreign teacher: adapted once, copied into the run folder, distilled", () => {
  const teacherPath = join(dir, "foreign.onnx");
  writeFileSync(teacherPath, foreignModel(true));
  const config = join(dir, "foreign.yaml");
  writeFileSync(config, `
name: foreign
data: { dataset: mnist, trainLimit: 1500, validation: 300, testLimit: 300 }
teacher: { onnx: ${teacherPath}, output: probs, preprocessing: { layout: nhwc, scale: 0.00392156862745098, mean: [${MEAN}], std: [${STD}] } }
student:
  model: { layers: [ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 64, optimizer: {kind: adam, lr: 0.003} }
`);
  const runDir = join(dir, "run");
  const r = spawnSync(process.execPath, [CLI, "run", config, "--quiet", "--output", runDir], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
  assert.equal(r.status, 0, r.stderr);
  const kept = decodeModel(readFileSync(join(runDir, "teacher.onnx")));
  assert.equal(kept.inputs[0]!.name, "distill_raw_pixels");
  assert.deepEqual(kept.outputs.map((o) => o.name), ["teacher_logits"]);
  const results = JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as { models: { role: string; perSeed: { agreement: number | null }[] }[] };
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "baseline", "student"]);
  // The adapted copy names the run's data like every model distill writes, so shift (and eval) need no option.
  assert.deepEqual([kept.metadata["distill.dataset"], JSON.parse(kept.metadata["distill.data"]!)], ["mnist", { format: "idx", dataset: "mnist" }]);
  const shift = spawnSync(process.execPath, [CLI, "shift", join(runDir, "teacher.onnx"), "--transfer", "mnist", "--limit", "200", "--json"], { encoding: "utf8" });
  assert.equal(shift.status, 0, shift.stderr);
  // Adapted once: the copy is exactly one pass of the adapter over the user's file (a second pass
  // would wrap distill_raw_pixels again), and it records the user's own input.
  // Plus the run's data record, which every model distill writes carries.
  const dataRecord = { "distill.dataset": kept.metadata["distill.dataset"]!, "distill.data": kept.metadata["distill.data"]! };
  assert.deepEqual(readFileSync(join(runDir, "teacher.onnx")), Buffer.from(withDataRecord(adaptTeacher(foreignModel(true), spec, true, image, teacherPath), dataRecord)));
  assert.equal(JSON.parse(kept.metadata["distill.teacher_adapter"]!).originalInput, "pixel_values");
  const state = (d: string) => JSON.parse(readFileSync(join(d, "run.json"), "utf8")) as { softTargets: { key: string; computedSamples: number } };
  assert.equal(state(runDir).softTargets.computedSamples, 1200, "the 1,200 transfer images labelled by the adapted teacher");
  // The adapted copy given as a teacher again is used as it is: the same bytes, so the same
  // soft-target cache entry, and no image labelled a second time.
  const again = join(dir, "again");
  const r2 = spawnSync(process.execPath, [CLI, "run", config, "--quiet", "--output", again, "--set", `teacher=${JSON.stringify({ onnx: join(runDir, "teacher.onnx") })}`], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual(readFileSync(join(again, "teacher.onnx")), readFileSync(join(runDir, "teacher.onnx")));
  assert.deepEqual(state(again).softTargets, { ...state(runDir).softTargets, computedSamples: 0 });
});

test("an imported teacher at chance on validation stops the run before any student trains, naming preprocessing, layout and outputs; allowChanceAccuracy lets it go on", () => {
  // What a teacher fed the wrong preprocessing often does: one answer whatever the image.
  const g = new Graph();
  const x = g.input("pixel_values", ["N", 28, 28, 1]);
  const bias = g.initializer("fc.bias", { dtype: "float32", shape: [10], data: Float32Array.from({ length: 10 }, (_, c) => (c === 3 ? 5 : 0)) });
  const zeros = g.initializer("fc.weight", { dtype: "float32", shape: [784, 10], data: new Float32Array(7840) });
  g.output(F.add(F.matmul(F.reshape(x, [-1, 784]), zeros), bias), "scores");
  const oneAnswer = join(dir, "one-answer.onnx");
  writeFileSync(oneAnswer, encodeModel(g));
  const teacher = `{ onnx: ${oneAnswer}, output: scores, preprocessing: { layout: nhwc, scale: 0.00392156862745098, mean: [${MEAN}], std: [${STD}] } }`;
  const stopped = runWith("one-answer", teacher);
  assert.equal(stopped.status, 2, stopped.stderr);
  // --quiet still logs finished tasks (the soft targets); the error is the last line, and one line.
  assert.match(stopped.stderr.split("\n").at(-1)!, new RegExp(`^distill: ${oneAnswer}: teacher: accuracy \\d+\\.\\d+ % on 200 validation samples is at or below chance \\(\\d+\\.\\d+ %, always answering the most common class\\); the model is most likely mis-wired: check teacher\\.preprocessing \\(scale, mean, std\\), its layout \\(flat, nchw, nhwc\\), and teacher\\.output and teacher\\.outputs \\(logits or probabilities\\); set teacher\\.allowChanceAccuracy: true to distill from it anyway$`));
  assert.ok(!existsSync(stopped.runDir), "no run folder: nothing trained");
  const allowed = runWith("one-answer-allowed", teacher.replace("{ onnx", "{ allowChanceAccuracy: true, onnx"));
  assert.equal(allowed.status, 0, allowed.stderr);
  const results = JSON.parse(readFileSync(join(allowed.runDir, "results.json"), "utf8")) as { teacherReport: { accuracy: number; chanceAccuracy: number } };
  assert.ok(results.teacherReport.accuracy <= results.teacherReport.chanceAccuracy, JSON.stringify(results.teacherReport));
});

test("preprocessing.resize: a teacher trained on 32×32 images gets MNIST's 28×28 resized in its graph (bilinear, half-pixel centres)", async () => {
  // The "teacher" returns its (resized) input pixels as scores, so the resize can be read back.
  const g = new Graph();
  const x = g.input("pixels", ["N", 1, 32, 32]);
  g.output(F.reshape(x, [-1, 1024]), "scores");
  const adapted = adaptTeacher(encodeModel(g), { output: "scores", outputs: "logits", preprocessing: { layout: "nchw", scale: 1, mean: [0], std: [1], resize: { width: 32, height: 32 } } }, false, image, "t32.onnx");
  const digit = loadDataset("mnist").test.inputs.subarray(0, 784) as Uint8Array;
  const s = await Session.create(adapted, { threads: 1 });
  let got: Float32Array;
  try {
    got = (await s.run({ distill_raw_pixels: { dtype: "float32", shape: [1, 784], data: Float32Array.from(digit) } }))["teacher_logits"]!.data as Float32Array;
  } finally {
    await s.dispose();
  }
  // Reference: output pixel centre (o + 0.5)·28/32 − 0.5 in input coordinates, clamped, interpolated.
  const at = (o: number) => Math.min(27, Math.max(0, ((o + 0.5) * 28) / 32 - 0.5));
  const px = (r: number, c: number) => digit[r * 28 + c]!;
  for (let r = 0; r < 32; r++)
    for (let c = 0; c < 32; c++) {
      const y = at(r), xx = at(c), y0 = Math.floor(y), x0 = Math.floor(xx), y1 = Math.min(27, y0 + 1), x1 = Math.min(27, x0 + 1), dy = y - y0, dx = xx - x0;
      const want = (1 - dy) * ((1 - dx) * px(y0, x0) + dx * px(y0, x1)) + dy * ((1 - dx) * px(y1, x0) + dx * px(y1, x1));
      assert.ok(Math.abs(got[r * 32 + c]! - want) < 1e-3, `pixel (${r}, ${c}): ${got[r * 32 + c]} vs ${want}`);
    }
});
