// `kd.teacherWeights: accuracy`: several teachers' soft targets averaged with each teacher's
// accuracy on the validation split as its weight. Two teachers of very different quality — a
// nearest-class-mean classifier (about 80 % on MNIST) and an untrained linear layer (about chance)
// — get exactly the accuracies measured here, independently, as their weights.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { validateConfig } from "../src/config/load.js";
import { loadDataset } from "../src/data/datasets.js";
import { splitTrainValidation } from "../src/data/split.js";
import { runDistillation } from "../src/run/pipeline.js";
import type { RunState } from "../src/distill/run-folder.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import { exportOnnx } from "../src/nn/model.js";
import { buildModel } from "../src/nn/spec.js";
import { createProgress } from "../src/util/progress.js";

const dir = mkdtempSync(join(tmpdir(), "distill-teacher-weights-"));
const mnist = loadDataset("mnist");
const PRE = { scale: 1 / 255, mean: 0.13, std: 0.31 };

/** A linear teacher; `centroids`: nearest class mean in the normalised pixel space (w_c = μ_c, b_c = −|μ_c|²/2), else untrained. */
function teacher(name: string, centroids: boolean): string {
  const m = buildModel({ input: "flat", layers: [{ type: "linear", units: 10 }] }, mnist.classLabels, { kind: "image", sampleShape: [1, 28, 28], scale: PRE.scale, mean: [PRE.mean], std: [PRE.std] });
  const params = m.initParameters(1);
  if (centroids) {
    const w = params.get("linear1.weight"), b = params.get("linear1.bias");
    const inFirst = w.shape[0] === 784; // [in, out] or [out, in]
    const sums = new Float64Array(10 * 784), counts = new Float64Array(10);
    for (let i = 0; i < 5000; i++) {
      const c = mnist.train.labels[i]!;
      counts[c]!++;
      for (let p = 0; p < 784; p++) sums[c * 784 + p]! += ((mnist.train.inputs[i * 784 + p] as number) * PRE.scale - PRE.mean) / PRE.std;
    }
    for (let c = 0; c < 10; c++) {
      let norm = 0;
      for (let p = 0; p < 784; p++) {
        const mu = sums[c * 784 + p]! / counts[c]!;
        w.data[inFirst ? p * 10 + c : c * 784 + p] = mu;
        norm += mu * mu;
      }
      b.data[c] = -norm / 2;
    }
  }
  const path = join(dir, `${name}.onnx`);
  writeFileSync(path, exportOnnx(m, params));
  return path;
}

async function validationLogits(path: string, indices: Int32Array): Promise<Float32Array> {
  const c = await OnnxClassifier.fromFile(path);
  try {
    return await c.logits(mnist.train, indices);
  } finally {
    await c.dispose();
  }
}

/** Top-1 accuracy of rows of scores (logits or probabilities: argmax is the same). */
function accuracyOf(scores: ArrayLike<number>, indices: Int32Array): number {
  let correct = 0;
  indices.forEach((idx, i) => {
    const row = Array.from({ length: 10 }, (_, c) => scores[i * 10 + c]!);
    if (row.indexOf(Math.max(...row)) === mnist.train.labels[idx]) correct++;
  });
  return correct / indices.length;
}

async function validationAccuracy(path: string, indices: Int32Array): Promise<number> {
  return accuracyOf(await validationLogits(path, indices), indices);
}

test("teacherWeights: accuracy weighs each teacher by its validation accuracy", async () => {
  const good = teacher("centroids", true), poor = teacher("untrained", false);
  const train = { epochs: 1, batchSize: 50, optimizer: { kind: "adam", lr: 0.003 } };
  const config = validateConfig({
    name: "weighted", output: join(dir, "weighted"),
    data: { dataset: "mnist", trainLimit: 1000, validation: 200, testLimit: 100 },
    teacher: { onnx: good }, student: { model: { layers: [{ type: "linear", units: 8 }, { type: "relu" }, { type: "linear", units: 10 }] }, train },
    kd: { temperature: 2, alpha: 0.5, teachers: [{ onnx: poor, weight: 5 }], teacherWeights: "accuracy" },
  }, "weighted.yaml");
  const silent = createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
  const { runDir } = await runDistillation(config, { configPath: "weighted.yaml", quiet: true, cacheDir: join(dir, "cache"), progress: silent, skipBaseline: true });
  const state = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as RunState;
  // The run's validation split: 200 of the first 1,000 training images, seed 0.
  const validation = splitTrainValidation(1000, 200, 0).validation;
  const want = [await validationAccuracy(good, validation), await validationAccuracy(poor, validation)];
  assert.ok(want[0]! > 0.6 && want[1]! < 0.3, `teachers of different quality: ${want}`);
  // (1 − errors/n there, correct/n here: equal up to the last bit of a double.)
  const got = state.ensemble!.weights;
  assert.equal(got.length, 2);
  got.forEach((w, i) => assert.ok(Math.abs(w - want[i]!) < 1e-12, `teacher ${i}: weight ${w}, validation accuracy ${want[i]} (the given weight was ${i ? 5 : 1})`));
});

test("several teachers: the teacher report (and so the weak-teacher check) scores the ensemble the student learns from", async () => {
  const good = join(dir, "centroids.onnx"), poor = join(dir, "untrained.onnx");
  const train = { epochs: 1, batchSize: 50, optimizer: { kind: "adam", lr: 0.003 } };
  const config = validateConfig({
    name: "ensemble-report", output: join(dir, "ensemble-report"),
    data: { dataset: "mnist", trainLimit: 1000, validation: 200, testLimit: 100 },
    teacher: { onnx: good }, student: { model: { layers: [{ type: "linear", units: 10 }] }, train },
    kd: { temperature: 2, alpha: 0.5, teachers: [{ onnx: poor, weight: 20 }] },
  }, "ensemble-report.yaml");
  const silent = createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
  const { runDir } = await runDistillation(config, { configPath: "ensemble-report.yaml", quiet: true, cacheDir: join(dir, "cache-report"), progress: silent });
  const state = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as RunState;
  const validation = splitTrainValidation(1000, 200, 0).validation;
  // Independently: softmax of each teacher at T = 1, mixed 1 : 20.
  const [a, b] = [await validationLogits(good, validation), await validationLogits(poor, validation)];
  const softmax = (z: Float32Array, i: number) => {
    const row = Array.from(z.subarray(i * 10, i * 10 + 10)), m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m)), s = e.reduce((x, y) => x + y, 0);
    return e.map((v) => v / s);
  };
  const mixed = new Float64Array(validation.length * 10);
  for (let i = 0; i < validation.length; i++) {
    const pa = softmax(a, i), pb = softmax(b, i);
    for (let c = 0; c < 10; c++) mixed[i * 10 + c] = (pa[c]! + 20 * pb[c]!) / 21;
  }
  const want = accuracyOf(mixed, validation), alone = accuracyOf(a, validation);
  const report = state.teacherReport!;
  assert.equal(report.members, 2);
  assert.ok(Math.abs(report.accuracy - want) < 1e-12, `ensemble accuracy ${report.accuracy}, computed here ${want}`); // 1 − errors/n there
  assert.ok(want < alone - 0.05, `the untrained teacher at weight 20 drags the ensemble (${want}) below the good teacher alone (${alone})`);
  // The baseline is judged against the ensemble, which it beats although the main teacher alone beats it.
  assert.ok(report.baselineAccuracy! > want && report.baselineAccuracy! < alone, `baseline ${report.baselineAccuracy} between the ensemble ${want} and the main teacher ${alone}`);
  assert.match(report.warning ?? "", /^weak teacher \(the ensemble of 2\): validation accuracy/);
});
