// `distill run` end to end on a small slice of real MNIST: artefacts, soft-target caching (the
// teacher runs N forward passes for N samples, not N × epochs), kill -9 + resume equal to an
// uninterrupted run, refusal to overwrite, and one-line errors for bad input.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/config/load.js";
import { runDistillation } from "../src/distill/pipeline.js";
import { teacherSoftTargets } from "../src/distill/soft-targets.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import type { EpochMetric, RunResults } from "../src/eval/types.js";
import { loadDataset } from "../src/data/datasets.js";
import { allIndices, firstN, splitTrainValidation } from "../src/data/split.js";
import { buildModel } from "../src/nn/spec.js";
import { exportOnnx } from "../src/nn/model.js";
import { createProgress } from "../src/util/progress.js";
import { Writable } from "node:stream";

const dir = mkdtempSync(join(tmpdir(), "distill-pipeline-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });

function config(name: string, extra = ""): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `
name: ${name}
seeds: 1
data: { dataset: mnist, trainLimit: 2500, validation: 500, testLimit: 1000 }
teacher:
  model: { layers: [ {type: linear, units: 128}, {type: relu}, {type: dropout, p: 0.2}, {type: linear, units: 10} ] }
  train: { epochs: 2, batchSize: 64, jitter: 1, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
student:
  model: { layers: [ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 4, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 4, alpha: 0.9 }
${extra}`);
  return path;
}

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache"), ...env } });
}

const readJsonl = (p: string) => readFileSync(p, "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochMetric);
const withoutTimes = (ms: EpochMetric[]) => ms.map(({ seconds: _s, ...rest }) => rest);

let uninterrupted: string;

test("distill run writes every artefact; the teacher runs once per transfer sample, then the cache answers", async () => {
  const cacheDir = join(dir, "cache-api");
  const cfg = loadConfig(config("full"), { output: join(dir, "full") });
  const { runDir, results } = await runDistillation(cfg, { configPath: "full.yaml", quiet: true, cacheDir, progress: silent() });
  uninterrupted = runDir;
  for (const f of ["config.yaml", "run.json", "teacher.onnx", "baseline.onnx", "student.onnx", "metrics.jsonl", "results.json", "report.html"])
    assert.ok(existsSync(join(runDir, f)), `${f} written`);
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "baseline", "student"]);
  for (const m of results.models) {
    const s = m.perSeed[0]!;
    assert.equal(s.total, 1000);
    assert.ok(s.accuracy > 0.8, `${m.role} accuracy ${s.accuracy}`);
    assert.ok(s.latencyP50Ms > 0 && s.throughput > 0 && s.onnxGzipBytes < s.onnxBytes);
  }
  assert.equal(results.models[0]!.perSeed[0]!.agreement, null);
  assert.ok(results.models[2]!.perSeed[0]!.agreement! > 0.8);
  assert.ok(results.models[0]!.perSeed[0]!.params > 5 * results.models[2]!.perSeed[0]!.params);
  assert.match(results.codeVersion, /^0\.1\.0/);
  // 2 teacher + 4 baseline + 4 student epochs, each with the loss terms of its method.
  const lines = readJsonl(join(runDir, "metrics.jsonl"));
  assert.deepEqual(lines.map((l) => `${l.stage}${l.epoch}`), ["teacher1", "teacher2", "baseline1", "baseline2", "baseline3", "baseline4", "student1", "student2", "student3", "student4"]);
  assert.deepEqual(Object.keys(lines[9]!.terms).sort(), ["loss_ce", "loss_kd"]);

  // Soft targets: 2000 transfer samples, 4 student epochs → 2000 teacher passes, not 8000.
  const state = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as { softTargets: { samples: number; computedSamples: number } };
  assert.deepEqual({ ...state.softTargets, key: undefined }, { key: undefined, samples: 2000, computedSamples: 2000 });
  const cached = readdirSync(join(cacheDir, "soft-targets"));
  assert.equal(cached.length, 1);
  assert.equal(statSync(join(cacheDir, "soft-targets", cached[0]!)).size, 40 + 2000 * 10 * 4); // magic + SHA-256 + logits

  // The same teacher and data again: all from the cache, no forward pass.
  const data = loadDataset("mnist");
  const teacher = await OnnxClassifier.fromFile(join(runDir, "teacher.onnx"));
  // The transfer set: the training part of the first 2500 images (500 went to validation).
  const indices = splitTrainValidation(2500, 500, 0).train;
  const again = await teacherSoftTargets({ teacher, set: data.train, indices, cacheDir });
  assert.equal(again.computedSamples, 0);
  assert.equal(teacher.samplesRun, 0);
  // A different transfer set is a different key: computed, exactly once per sample.
  const other = await teacherSoftTargets({ teacher, set: data.train, indices: firstN(allIndices(data.train.count), 300), cacheDir });
  assert.equal(other.computedSamples, 300);
  assert.equal(teacher.samplesRun, 300);
  const direct = await teacher.logits(data.train, firstN(allIndices(data.train.count), 300));
  assert.deepEqual(other.logits, direct);
  await teacher.dispose();
});

test("kill -9 during training, then distill resume: same models and metrics as the uninterrupted run", async () => {
  const runDir = join(dir, "killed");
  const child = spawn(process.execPath, [CLI, "run", config("full"), "--quiet", "--output", runDir], { env: { ...process.env, DISTILL_CACHE: join(dir, "cache") }, stdio: "ignore" });
  const exited = new Promise<void>((res) => child.on("exit", () => res()));
  // Kill once the baseline has checkpointed an epoch: mid-run, with finished and unfinished stages.
  const deadline = Date.now() + 120_000;
  while (!existsSync(join(runDir, "checkpoints", "baseline-s0.ckpt")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  child.kill("SIGKILL");
  await exited;
  assert.ok(!existsSync(join(runDir, "results.json")), "killed before the end");
  const r = cli(["resume", runDir, "--quiet"]);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ["teacher.onnx", "baseline.onnx", "student.onnx"])
    assert.deepEqual(readFileSync(join(runDir, f)), readFileSync(join(uninterrupted, f)), `${f} is bit-identical`);
  assert.deepEqual(withoutTimes(readJsonl(join(runDir, "metrics.jsonl"))), withoutTimes(readJsonl(join(uninterrupted, "metrics.jsonl"))));
  const a = JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as RunResults;
  const b = JSON.parse(readFileSync(join(uninterrupted, "results.json"), "utf8")) as RunResults;
  for (const role of [0, 1, 2]) {
    const { accuracy, nll, ece, agreement, onnxBytes } = a.models[role]!.perSeed[0]!;
    const o = b.models[role]!.perSeed[0]!;
    assert.deepEqual({ accuracy, nll, ece, agreement, onnxBytes }, { accuracy: o.accuracy, nll: o.nll, ece: o.ece, agreement: o.agreement, onnxBytes: o.onnxBytes });
  }
});

test("an existing run folder is never overwritten", () => {
  const before = readFileSync(join(uninterrupted, "results.json"));
  const r = cli(["run", config("full"), "--quiet", "--output", uninterrupted]);
  assert.equal(r.status, 2);
  assert.match(r.stderr.trim(), /already exists.*distill resume/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.deepEqual(readFileSync(join(uninterrupted, "results.json")), before);
});

test("bad input: one line naming the file, exit code 2, no stack trace", async () => {
  // A truncated teacher .onnx.
  const whole = readFileSync(join(uninterrupted, "teacher.onnx"));
  const truncated = join(dir, "truncated.onnx");
  writeFileSync(truncated, whole.subarray(0, Math.floor(whole.length / 2)));
  let r = cli(["run", config("trunc", ""), "--quiet", "--output", join(dir, "trunc"), "--set", `teacher=${JSON.stringify({ onnx: truncated })}`]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`^distill: ${truncated.replace(/[.]/g, "\\.")}: `));
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);

  // A teacher with 5 classes for a 10-class student.
  const data = loadDataset("mnist");
  const five = buildModel({ input: "flat", layers: [{ type: "linear", units: 5 }] }, ["a", "b", "c", "d", "e"], { height: 28, width: 28, mean: 0.13, std: 0.31 });
  const fivePath = join(dir, "five.onnx");
  writeFileSync(fivePath, exportOnnx(five, five.initParameters(0)));
  r = cli(["run", config("five"), "--quiet", "--output", join(dir, "five"), "--set", `teacher=${JSON.stringify({ onnx: fivePath })}`]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), /five\.onnx: the teacher outputs 5 classes, but the student and mnist have 10$/);
  assert.ok(!existsSync(join(dir, "five")), "no run folder left behind");
  void data;

  // Missing data folder.
  r = cli(["run", config("nodata"), "--quiet", "--output", join(dir, "nodata"), "--set", `data.dir=${join(dir, "no-such-folder")}`]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /no-such-folder/);
  assert.equal(r.stderr.trim().split("\n").length, 1);

  // An impossible student shape (a conv on flat input) is named at build time.
  r = cli(["run", config("shape"), "--quiet", "--output", join(dir, "shape"), "--set", "student.model.layers[0]={type: conv, filters: 8, kernel: 3}", "--set", "student.model.input=flat"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), /^distill: .*shape\.yaml: student\.model: .*conv1: Conv2d expects \[batch, channels, height, width\], got \[N, 784\]$/);
  assert.ok(!existsSync(join(dir, "shape")), "failed before training anything, and left no run folder");
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

test("a diverging loss stops the run with a one-line message saying what to change", () => {
  const runDir = join(dir, "nan");
  const r = cli(["run", config("nan"), "--quiet", "--output", runDir, "--set", "teacher.train.optimizer.lr=1e30"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), /^distill: teacher \(seed 0\): loss became (NaN|Infinity|-Infinity) at epoch 1, batch \d+; .*lr/);
  assert.ok(!existsSync(join(runDir, "teacher.onnx")));
});

test("distill eval measures an exported model exactly as the run did", () => {
  const r = cli(["eval", join(uninterrupted, "student.onnx"), "--data", "mnist", "--limit", "1000", "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { accuracy: number; errors: number; nll: number; total: number; onnxBytes: number; latencyP50Ms: number };
  const results = JSON.parse(readFileSync(join(uninterrupted, "results.json"), "utf8")) as RunResults;
  const want = results.models.find((m) => m.role === "student")!.perSeed[0]!;
  assert.deepEqual({ accuracy: got.accuracy, errors: got.errors, nll: got.nll, total: got.total, onnxBytes: got.onnxBytes }, { accuracy: want.accuracy, errors: want.errors, nll: want.nll, total: want.total, onnxBytes: want.onnxBytes });
  assert.ok(got.latencyP50Ms > 0);
  const table = cli(["eval", join(uninterrupted, "student.onnx"), "--data", "mnist", "--limit", "1000"]);
  assert.match(table.stdout, new RegExp(`accuracy +${(want.accuracy * 100).toFixed(2)}% \\(${want.errors} errors of 1000\\)`));
});

test("Ctrl-C stops at once with exit code 130 and says how to resume", async () => {
  const runDir = join(dir, "sigint");
  const child = spawn(process.execPath, [CLI, "run", config("full"), "--quiet", "--output", runDir], { env: { ...process.env, DISTILL_CACHE: join(dir, "cache") }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  const deadline = Date.now() + 120_000;
  while (!existsSync(join(runDir, "checkpoints", "teacher-s0.ckpt")) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  child.kill("SIGINT");
  assert.equal(await exited, 130);
  assert.match(stderr, new RegExp(`interrupted; continue with: distill resume ${runDir.replace(/[.]/g, "\\.")}`));
  assert.ok(existsSync(join(runDir, "checkpoints", "teacher-s0.ckpt")));
});
