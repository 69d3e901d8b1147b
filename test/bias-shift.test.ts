// Hinton et al. (2015) §3's omitted-class experiment: students distilled without the 3s, then the
// class's output bias raised — by a given shift, and by one estimated without labels (the student
// predicts the class as often as the teacher on the same inputs). The shifted model is the student's
// own graph plus one Add, run by onnxruntime.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { estimateBiasShift } from "../src/eval/bias-correction.js";
import { predictions } from "../src/eval/metrics.js";
import { loadConfig } from "../src/config/load.js";
import { runDistillation } from "../src/run/pipeline.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import { loadDataset } from "../src/data/datasets.js";
import type { RunResults } from "../src/eval/types.js";
import { createProgress } from "../src/util/progress.js";
import { Rng } from "../src/util/random.js";
import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";

const dir = mkdtempSync(join(tmpdir(), "distill-bias-"));
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });

describe("estimating the shift", () => {
  test("recovers a bias that was taken away: the shifted student predicts the class as often as the teacher", () => {
    // Teacher logits: random; the student = the teacher with class 2's logit lowered by 3.
    const k = 5, n = 2000, rng = new Rng(7, "logits");
    const teacher = Float32Array.from({ length: n * k }, () => rng.normal() * 2);
    const student = teacher.map((v, i) => (i % k === 2 ? v - 3 : v));
    const shift = estimateBiasShift(student, teacher, k, [2]);
    assert.deepEqual(Array.from(shift).filter((_, c) => c !== 2), [0, 0, 0, 0], "other classes untouched");
    // Any shift in the gap that restores the argmax of every row matches the share; 3 is one of them.
    const shifted = student.map((v, i) => (i % k === 2 ? v + shift[2]! : v));
    const share = (l: Float32Array) => predictions(l, k).reduce((s, p) => s + (p === 2 ? 1 : 0), 0) / n;
    assert.equal(share(shifted), share(teacher));
    assert.ok(shift[2]! > 2 && shift[2]! <= 3.001, `shift ${shift[2]}`);
  });
});

describe("the omitted-class run (MNIST without 3s)", () => {
  test("students trained without 3s; bias-shifted variants evaluated per seed, the shift recorded and inside the .onnx", async () => {
    const path = join(dir, "no3.yaml");
    writeFileSync(path, `name: no3
seeds: 2
data: { dataset: mnist, trainLimit: 4000, validation: 1000, testLimit: 2000, transferOmits: ["3"], omittedClassShift: 3.5 }
teacher:
  model: { layers: [ {type: linear, units: 256}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 3, batchSize: 64, optimizer: {kind: adam, lr: 0.002} }
student:
  model: { layers: [ {type: linear, units: 64}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 3, batchSize: 64, optimizer: {kind: adam, lr: 0.003} }
kd: { temperature: 8, alpha: 0.9 }
`);
    const { runDir } = await runDistillation(loadConfig(path, { output: join(dir, "run") }), { configPath: path, quiet: true, cacheDir: join(dir, "cache"), progress: silent() });
    const r = JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as RunResults;
    assert.deepEqual(r.models.map((m) => m.role), ["teacher", "baseline", "student", "student-bias-given", "student-bias-estimated"]);
    const threes = (role: string) => {
      const c = r.details!.confusion[role]!;
      return c[3]!.reduce((a, b) => a + b, 0) - c[3]![3]!;
    };
    const total3 = Array.from(loadDataset("mnist").test.labels.subarray(0, 2000)).filter((l) => l === 3).length;
    assert.equal(threes("baseline"), 2 * total3, "a baseline that never saw a 3 gets every 3 wrong (2 seeds)");
    assert.ok(threes("student") < 2 * total3, "the distilled student recognises some 3s from soft targets alone");
    assert.ok(threes("student-bias-given") < threes("student"), "raising the bias recovers 3s");
    assert.equal(r.biasShift!.given, 3.5);
    assert.match(readFileSync(join(runDir, "report.html"), "utf8"), /<table id="omitted-errors">/);
    assert.deepEqual(r.biasShift!.classes, ["3"]);
    const estimated = r.biasShift!.estimated;
    assert.equal(Object.keys(estimated).length, 2);
    // The estimated model is the student's graph plus the recorded shift on logit 3, nothing else.
    const seed1 = estimated[1]![0]!;
    const student = await OnnxClassifier.fromFile(join(runDir, "models", "student-s1.onnx"));
    const shifted = await OnnxClassifier.fromFile(join(runDir, "bias-shifted", "student-bias-estimated-s1.onnx"));
    try {
      const set = loadDataset("mnist").test, idx = Int32Array.from({ length: 50 }, (_, i) => i);
      const a = await student.logits(set, idx), b = await shifted.logits(set, idx);
      for (let i = 0; i < a.length; i++) assert.ok(Math.abs(b[i]! - a[i]! - (i % 10 === 3 ? seed1 : 0)) < 1e-4, `logit ${i}`);
      const recorded = JSON.parse(shifted.metadata["distill.logit_shift"]!) as number[];
      assert.equal(recorded.length, 10);
      recorded.forEach((v, c) => assert.ok(Math.abs(v - (c === 3 ? seed1 : 0)) < 1e-3, `distill.logit_shift[${c}] = ${v}`));
    } finally {
      await student.dispose();
      await shifted.dispose();
    }
  });
});

describe("bad inputs", () => {
  test("a class the data does not have, a shift without omitted classes, no validation split: one line, exit 2, nothing written", () => {
    const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
    const cases: [string, string, RegExp][] = [
      ["unknown", `transferOmits: ["cat"]`, /data\.transferOmits: "cat" is not a class of this data \(0, 1, 2/],
      ["shift-alone", "omittedClassShift: 3.5", /data\.omittedClassShift: only used with transferOmits/],
      ["no-validation", `transferOmits: ["3"], validation: 0`, /data\.transferOmits: the omitted classes' bias shift is estimated on the validation split's inputs/],
    ];
    for (const [name, data, message] of cases) {
      const path = join(dir, `bad-${name}.yaml`), out = join(dir, "runs", `bad-${name}`);
      writeFileSync(path, `name: bad-${name}\noutput: ${out}\ndata: { dataset: mnist, trainLimit: 1000, ${data} }\nteacher: { model: { layers: [ {type: linear, units: 10} ] }, train: { epochs: 1, optimizer: {kind: adam, lr: 0.001} } }\nstudent: { model: { layers: [ {type: linear, units: 10} ] }, train: { epochs: 1, optimizer: {kind: adam, lr: 0.001} } }\n`);
      const r = spawnSync(process.execPath, [CLI, "run", path], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${name}: one line: ${r.stderr}`);
      assert.ok(!existsSync(out), `${name}: nothing written`);
    }
  });
});
