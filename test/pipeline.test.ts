// `distill run` end to end on a small slice of real MNIST: artefacts and their metadata, the
// teacher's forward passes counted where they run (once per transfer sample over every stage, seed
// and later run), kill -9 mid-stage + resume that must skip finished work and restore Adam,
// dropout and jitter exactly, refusal to overwrite, and one-line errors for bad input and
// damaged run folders.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/config/load.js";
import { runDistillation } from "../src/run/pipeline.js";
import { readCheckpoint } from "../src/distill/checkpoint.js";
import { forwardPassesOn, OnnxClassifier } from "../src/eval/evaluate.js";
import type { EpochMetric, RunResults } from "../src/eval/types.js";
import { loadDataset } from "../src/data/datasets.js";
import { splitTrainValidation } from "../src/data/split.js";
import { decodeModel } from "../src/engine/onnx.js";
import { buildModel } from "../src/nn/spec.js";
import { exportOnnx } from "../src/nn/model.js";
import { createProgress } from "../src/util/progress.js";
import { Writable } from "node:stream";
import { CliChild, once } from "./helpers/child.js";

const dir = mkdtempSync(join(tmpdir(), "distill-pipeline-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
const mnist = loadDataset("mnist");
// The transfer set of every config below: the training part of the first 2500 images.
const transfer = splitTrainValidation(2500, 500, 0).train;

// The student trains with Adam, dropout and pixel jitter: resuming it must restore the step count
// (Adam's bias correction), the moments, and the mask and jitter streams.
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
  model: { layers: [ {type: linear, units: 24}, {type: relu}, {type: dropout, p: 0.1}, {type: linear, units: 10} ] }
  train: { epochs: 4, batchSize: 64, jitter: 1, optimizer: {kind: adam, lr: 0.005} }
kd: { temperature: 4, alpha: 0.9 }
${extra}`);
  return path;
}

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache"), ...env } });
}

const readJsonl = (p: string) => readFileSync(p, "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochMetric);
const withoutTimes = (ms: EpochMetric[]) => ms.map(({ seconds: _s, ...rest }) => rest);
/** Logits of the transfer set from a fresh session of `bytes`, bypassing every cache. */
async function transferLogits(bytes: Uint8Array): Promise<Float32Array> {
  const c = await OnnxClassifier.fromBytes(bytes, "reference teacher");
  try {
    return await c.logits(mnist.train, transfer);
  } finally {
    await c.dispose();
  }
}

/** The logits in a soft-target cache file (after its 40-byte header: magic + SHA-256). */
function cachedLogits(path: string): Float32Array {
  const payload = readFileSync(path).subarray(40);
  return new Float32Array(payload.buffer.slice(payload.byteOffset, payload.byteOffset + payload.byteLength));
}

// Fixtures made on first use, so every test also runs alone (node --test --test-name-pattern).
const cacheApi = join(dir, "cache-api");
/** The run every comparison is against: `full.yaml` uninterrupted, through the library. */
const uninterruptedRun = once(async () => {
  const cfg = loadConfig(config("full"), { output: join(dir, "full") });
  return runDistillation(cfg, { configPath: "full.yaml", quiet: true, cacheDir: cacheApi, progress: silent() });
});
const uninterruptedDir = async () => (await uninterruptedRun()).runDir;

/** Environment of a `distill` child held after `epochs` epochs of the stage whose checkpoint is `checkpoint` (test-only barrier). */
const pausedAfter = (checkpoint: string, epochs: number) => ({ ...process.env, DISTILL_CACHE: join(dir, "cache"), DISTILL_TEST_PAUSE_AFTER_EPOCH: `${checkpoint}:${epochs}` });

/**
 * `distill run full.yaml` killed with SIGKILL once the baseline's second of 4 epochs is checkpointed
 * (the teacher finished, the baseline half-way), and that checkpoint's bytes (a finished run drops its checkpoints).
 */
const killedRun = once(async () => {
  const runDir = join(dir, "killed");
  const child = new CliChild(["run", config("full"), "--quiet", "--output", runDir], pausedAfter("baseline-s0.ckpt", 2));
  await child.waitForLine(/^distill-test: paused after baseline-s0\.ckpt epoch 2$/);
  child.process.kill("SIGKILL");
  assert.equal((await child.exitWithin()).signal, "SIGKILL", "the child died by SIGKILL");
  const ckpt = join(runDir, "checkpoints", "baseline-s0.ckpt");
  return { runDir, ckpt, checkpointBytes: readFileSync(ckpt) };
});

test("distill run writes every artefact, each model with its metadata", async () => {
  const cacheDir = cacheApi;
  const { runDir, results } = await uninterruptedRun();
  for (const f of ["config.yaml", "run.json", "teacher.onnx", "baseline.onnx", "student.onnx", "metrics.jsonl", "results.json", "report.html"])
    assert.ok(existsSync(join(runDir, f)), `${f} written`);
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "baseline", "student"]);
  for (const m of results.models) {
    const s = m.perSeed[0]!;
    assert.equal(s.total, 1000);
    assert.ok(s.accuracy > 0.8, `${m.role} accuracy ${s.accuracy}`);
    assert.ok(s.onnxGzipBytes < s.onnxBytes, `${m.role}: gzip ${s.onnxGzipBytes} of ${s.onnxBytes} bytes`);
    // One seed: the summary is that seed's figures.
    assert.deepEqual([m.summary.latencyP50Ms.mean, m.summary.accuracy.mean], [s.latencyP50Ms, s.accuracy]);
  }
  assert.equal(results.models[0]!.perSeed[0]!.agreement, null);
  assert.ok(results.models[2]!.perSeed[0]!.agreement! > 0.8);
  assert.ok(results.models[0]!.perSeed[0]!.params > 5 * results.models[2]!.perSeed[0]!.params);
  assert.match(results.codeVersion, /^0\.1\.0/);
  // 2 teacher + 4 baseline + 4 student epochs, each with the loss terms of its method.
  const lines = readJsonl(join(runDir, "metrics.jsonl"));
  assert.deepEqual(lines.map((l) => `${l.stage}${l.epoch}`), ["teacher1", "teacher2", "baseline1", "baseline2", "baseline3", "baseline4", "student1", "student2", "student3", "student4"]);
  assert.deepEqual(Object.keys(lines[9]!.terms).sort(), ["loss_ce", "loss_kd"]);
  // Teacher quality first: scored on the 500 validation samples, the same accuracy its last epoch
  // measured there, against the baseline's last epoch. (This 2-epoch teacher with dropout and jitter
  // is in fact no better than the 4-epoch baseline, and is told so.)
  const report = results.teacherReport!;
  assert.equal(report.samples, 500);
  assert.equal(report.accuracy, lines[1]!.valAccuracy);
  assert.equal(report.confidenceHistogram.reduce((a, b) => a + b, 0), 500);
  assert.equal(report.baselineAccuracy, lines[5]!.valAccuracy);
  assert.equal(report.warning !== undefined, report.accuracy <= report.baselineAccuracy!);

  // Every exported model says what it is and how it wants its input. MNIST's pixel statistics
  // over the 60,000 training images are the well-known 0.1307 and 0.3081.
  for (const stage of ["teacher", "baseline", "student"]) {
    const meta = decodeModel(readFileSync(join(runDir, "models", `${stage}-s0.onnx`))).metadata;
    assert.deepEqual(
      [meta["distill.stage"], meta["distill.seed"], meta["distill.run"], meta["distill.dataset"]],
      [stage, "0", "full", "mnist"],
    );
    assert.deepEqual([meta["distill.input_layout"], meta["distill.input_shape"], meta["distill.input_dtype"]], ["flat", '["batch",784]', "float32"]);
    assert.deepEqual([meta["distill.output_name"], meta["distill.probabilities_name"]], ["logits", "probabilities"]);
    assert.deepEqual(JSON.parse(meta["distill.class_labels"]!), mnist.classLabels);
    const pre = JSON.parse(meta["distill.input_preprocessing"]!) as { scale: number; mean: number[]; std: number[] };
    assert.equal(pre.scale, 1 / 255);
    assert.ok(Math.abs(pre.mean[0]! - 0.1307) < 1e-4 && Math.abs(pre.std[0]! - 0.3081) < 1e-4, `mean ${pre.mean}, std ${pre.std}`);
    assert.deepEqual(readFileSync(join(runDir, `${stage}.onnx`)), readFileSync(join(runDir, "models", `${stage}-s0.onnx`)));
  }

  // The teacher ran forward once per transfer sample (2000), though the student trained 4 epochs,
  // and once per validation sample (500) for the teacher report; counted on the classifier sessions
  // themselves, whichever object the pipeline loaded.
  const teacherBytes = readFileSync(join(runDir, "teacher.onnx"));
  assert.equal(forwardPassesOn(mnist.train, teacherBytes), 2500);
  const cached = readdirSync(join(cacheDir, "soft-targets"));
  assert.equal(cached.length, 1);
  assert.deepEqual(cachedLogits(join(cacheDir, "soft-targets", cached[0]!)), await transferLogits(teacherBytes));
});

test("the teacher runs once per transfer sample across stages, seeds and later runs", async () => {
  // One epoch everywhere: a teacher (trained in the run, no adapter) that no earlier test ran.
  const cacheDir = join(dir, "cache-seeds");
  const run = async (name: string, seeds: number) => {
    const cfg = loadConfig(config(name), { output: join(dir, name), seeds, epochs: 1, set: ["data.testLimit=200"] });
    return runDistillation(cfg, { configPath: `${name}.yaml`, quiet: true, cacheDir, progress: silent() });
  };
  const two = await run("two-seeds", 2);
  assert.deepEqual(two.results.models.map((m) => [m.role, m.perSeed.length]), [["teacher", 1], ["baseline", 2], ["student", 2]]);
  const bytes = readFileSync(join(dir, "two-seeds", "teacher.onnx"));
  assert.equal(forwardPassesOn(mnist.train, bytes), 2500, "2 seeds × (baseline + student): one pass per transfer and validation sample");
  await run("again", 1);
  assert.equal(forwardPassesOn(mnist.train, bytes), 2500, "a later run reads the cache");
  const [file] = readdirSync(join(cacheDir, "soft-targets")).filter((f) => f.endsWith(".bin"));
  assert.deepEqual(cachedLogits(join(cacheDir, "soft-targets", file!)), await transferLogits(bytes));
});

test("kill -9 mid-stage, then distill resume: finished work is kept, the rest trains once, the result is bit-identical", async () => {
  const uninterrupted = await uninterruptedDir();
  const { runDir, ckpt } = await killedRun();
  const saved = readCheckpoint(ckpt)!;
  assert.equal(saved.epochsDone, 2, "killed after the baseline's second epoch");
  assert.ok(!existsSync(join(runDir, "stages", "baseline-s0.json")) && !existsSync(join(runDir, "results.json")), "killed before the baseline finished");
  const teacherRecord = readFileSync(join(runDir, "stages", "teacher-s0.json"));
  const teacherModel = readFileSync(join(runDir, "models", "teacher-s0.onnx"));
  // What was finished at the kill: the teacher's record and the checkpointed baseline epochs.
  const finished = [...(JSON.parse(teacherRecord.toString()) as { history: EpochMetric[] }).history, ...saved.history];
  assert.ok(finished.every((m) => m.seconds > 0));

  const r = cli(["resume", runDir, "--quiet"]);
  assert.equal(r.status, 0, r.stderr);
  // Epochs trained by the resumed process, from its one-line-per-epoch log: only the missing ones.
  const trained = r.stderr.split("\n").filter((l) => /^(teacher|baseline|student) epoch \d+\/\d+: /.test(l)).map((l) => l.split(":")[0]);
  assert.deepEqual(trained, ["baseline epoch 3/4", "baseline epoch 4/4", "student epoch 1/4", "student epoch 2/4", "student epoch 3/4", "student epoch 4/4"]);
  // The finished stage is untouched, and the epochs done before the kill keep their timings.
  const historyOf = (b: Buffer) => (JSON.parse(b.toString()) as { history: EpochMetric[] }).history;
  assert.deepEqual(historyOf(readFileSync(join(runDir, "stages", "teacher-s0.json"))), historyOf(teacherRecord));
  assert.deepEqual(readFileSync(join(runDir, "models", "teacher-s0.onnx")), teacherModel);
  const after = readJsonl(join(runDir, "metrics.jsonl"));
  assert.deepEqual(finished.map((m) => `${m.stage}${m.epoch}`), ["teacher1", "teacher2", "baseline1", "baseline2"]);
  assert.deepEqual(after.slice(0, finished.length), finished, "records and seconds of finished epochs survive");
  // And the outcome equals the uninterrupted run: Adam's step count and moments, the dropout
  // masks and the jitter stream were all restored.
  for (const f of ["teacher.onnx", "baseline.onnx", "student.onnx"])
    assert.deepEqual(readFileSync(join(runDir, f)), readFileSync(join(uninterrupted, f)), `${f} is bit-identical`);
  assert.deepEqual(withoutTimes(after), withoutTimes(readJsonl(join(uninterrupted, "metrics.jsonl"))));
  const a = JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as RunResults;
  const b = JSON.parse(readFileSync(join(uninterrupted, "results.json"), "utf8")) as RunResults;
  for (const role of [0, 1, 2]) {
    const { accuracy, nll, ece, agreement, onnxBytes } = a.models[role]!.perSeed[0]!;
    const o = b.models[role]!.perSeed[0]!;
    assert.deepEqual({ accuracy, nll, ece, agreement, onnxBytes }, { accuracy: o.accuracy, nll: o.nll, ece: o.ece, agreement: o.agreement, onnxBytes: o.onnxBytes });
  }
});

test("resume and report on a folder that is not a run, a damaged checkpoint, a broken run.json: one line, exit 2", async () => {
  const uninterrupted = await uninterruptedDir();
  // (--quiet progress lines may come first; the error is the one last line.)
  const oneLine = (r: ReturnType<typeof cli>, pattern: RegExp) => {
    assert.equal(r.status, 2, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.filter((l) => l.startsWith("distill:")).length, 1, r.stderr);
    assert.match(lines[lines.length - 1]!, pattern);
    assert.doesNotMatch(r.stderr, /internal error|at .*\.js:\d+/);
  };
  const empty = mkdtempSync(join(dir, "not-a-run-"));
  oneLine(cli(["resume", empty]), new RegExp(`^distill: ${empty}: not a run folder \\(no run\\.json\\)`));
  oneLine(cli(["report", empty]), new RegExp(`^distill: ${join(empty, "results.json")}: not found`));
  assert.deepEqual(readdirSync(empty), [], "nothing written");

  // A run stopped mid-baseline (a copy of the uninterrupted run without its last stages), then damaged.
  const partial = join(dir, "partial");
  cpSync(uninterrupted, partial, { recursive: true });
  for (const f of ["results.json", "report.html", "baseline.onnx", "student.onnx", "stages/baseline-s0.json", "stages/student-s0.json", "models/baseline-s0.onnx", "models/student-s0.onnx", "checkpoints/student-s0.ckpt"])
    rmSync(join(partial, f), { force: true });
  const ckpt = join(partial, "checkpoints", "baseline-s0.ckpt");
  const whole = (await killedRun()).checkpointBytes;
  mkdirSync(dirname(ckpt), { recursive: true });
  writeFileSync(ckpt, whole.subarray(0, whole.length - 100));
  // The shared cache holds this baseline (the uninterrupted run cached it) and would be reused without
  // reading the checkpoint: resume against a cache without it, so the baseline trains from its checkpoint.
  const noBaseline = { DISTILL_CACHE: join(dir, "cache-without-baseline") };
  oneLine(cli(["resume", partial, "--quiet"], noBaseline), new RegExp(`^distill: ${ckpt}: damaged checkpoint \\(tensor .* runs past the end\\); delete it to restart this stage from scratch$`));
  writeFileSync(ckpt, "not a checkpoint");
  oneLine(cli(["resume", partial, "--quiet"], noBaseline), new RegExp(`^distill: ${ckpt}: damaged checkpoint \\(no checkpoint header\\)`));
  assert.ok(!existsSync(join(partial, "results.json")));

  // run.json that is not JSON, or JSON that is not a run state.
  const state = join(partial, "run.json");
  writeFileSync(state, "{ not json");
  oneLine(cli(["resume", partial, "--quiet"]), new RegExp(`^distill: ${state}: not valid JSON`));
  for (const bad of ["[]", "null", '{"configPath": 7}'])  {
    writeFileSync(state, bad);
    oneLine(cli(["resume", partial, "--quiet"]), new RegExp(`^distill: ${state}: not a distill run state`));
  }
  // report on a run whose results.json is broken.
  writeFileSync(join(partial, "results.json"), "{");
  oneLine(cli(["report", partial]), new RegExp(`^distill: ${join(partial, "results.json")}: is not valid JSON`));
});

test("an existing run folder is never overwritten", async () => {
  const uninterrupted = await uninterruptedDir();
  const before = readFileSync(join(uninterrupted, "results.json"));
  const r = cli(["run", config("full"), "--quiet", "--output", uninterrupted]);
  assert.equal(r.status, 2);
  assert.match(r.stderr.trim(), /already exists.*distill resume/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
  assert.deepEqual(readFileSync(join(uninterrupted, "results.json")), before);
});

test("bad input: one line naming the file, exit code 2, no stack trace", async () => {
  const uninterrupted = await uninterruptedDir();
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
  const five = buildModel({ input: "flat", layers: [{ type: "linear", units: 5 }] }, ["a", "b", "c", "d", "e"], { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
  const fivePath = join(dir, "five.onnx");
  writeFileSync(fivePath, exportOnnx(five, five.initParameters(0)));
  r = cli(["run", config("five"), "--quiet", "--output", join(dir, "five"), "--set", `teacher=${JSON.stringify({ onnx: fivePath })}`]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), /five\.onnx: the teacher outputs 5 classes, but the student and mnist have 10$/);
  assert.ok(!existsSync(join(dir, "five")), "no run folder left behind");
  void data;

  // A teacher whose weights hold a NaN: its soft targets are not finite.
  const ten = buildModel({ input: "flat", layers: [{ type: "linear", units: 10 }] }, mnist.classLabels, { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
  const tenParams = ten.initParameters(0);
  tenParams.get("linear1.weight").data[300] = NaN;
  const nanPath = join(dir, "nan-teacher.onnx");
  writeFileSync(nanPath, exportOnnx(ten, tenParams));
  r = cli(["run", config("nanteacher"), "--quiet", "--output", join(dir, "nanteacher"), "--set", `teacher=${JSON.stringify({ onnx: nanPath })}`]);
  assert.equal(r.status, 2, r.stderr);
  const last = r.stderr.trim().split("\n").at(-1)!;
  assert.match(last, new RegExp(`^distill: ${nanPath.replace(/[.]/g, "\\.")}: the teacher's output logits is NaN \\(not a finite logit\\) for training example \\d+; fix or replace the teacher$`));
  assert.equal(r.stderr.split("\n").filter((l) => l.startsWith("distill:")).length, 1);
  assert.ok(!existsSync(join(dir, "nanteacher")), "no run folder left behind");

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

test("a teacher no better than labels alone is called weak: printed, in results.json and the report", async () => {
  // An untrained (random-weight) teacher: chance accuracy, far below the baseline (allowed to go on:
  // an imported teacher at chance otherwise stops the run, test/teacher-adapter.test.ts).
  const weak = buildModel({ input: "flat", layers: [{ type: "linear", units: 10 }] }, mnist.classLabels, { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
  const weakPath = join(dir, "weak.onnx");
  writeFileSync(weakPath, exportOnnx(weak, weak.initParameters(3)));
  const out = join(dir, "weak");
  const r = cli(["run", config("weak"), "--output", out, "--epochs", "1", "--set", `teacher=${JSON.stringify({ onnx: weakPath, allowChanceAccuracy: true })}`, "--set", "data.testLimit=200"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr + r.stdout, /warning: weak teacher: validation accuracy \d+\.\d+ % is not above the label-only baseline's/);
  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as RunResults;
  assert.ok(results.teacherReport!.accuracy < results.teacherReport!.baselineAccuracy!);
  assert.match(results.teacherReport!.warning!, /^weak teacher/);
  assert.match(readFileSync(join(out, "report.html"), "utf8"), /id="teacher-warning">weak teacher/);
});

test("compress: the distilled student quantized as the run's last stage, evaluated beside the others", async () => {
  const out = join(dir, "compressed");
  const r = cli(["run", config("compressed", "compress: { quantize: [dynamic, static, fp16], calibrationSamples: 256 }"), "--quiet", "--output", out, "--epochs", "1", "--set", "data.testLimit=500"]);
  assert.equal(r.status, 0, r.stderr);
  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as RunResults;
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "baseline", "student", "student-int8", "student-int8-static", "student-fp16"]);
  const student = results.models[2]!.perSeed[0]!;
  for (const m of results.models.slice(3)) {
    const v = m.perSeed[0]!;
    assert.ok(existsSync(join(out, m.file)), m.file);
    assert.ok(Math.abs(v.accuracy - student.accuracy) < 0.02, `${m.role}: ${v.accuracy} vs ${student.accuracy}`);
    assert.equal(v.params, student.params, "parameters are the student's, whatever their precision");
    assert.ok(v.onnxBytes < (m.role === "student-fp16" ? 0.6 : 0.4) * student.onnxBytes, `${m.role}: ${v.onnxBytes} vs ${student.onnxBytes} bytes`);
  }
  assert.match(readFileSync(join(out, "report.html"), "utf8"), /student-int8-static/);
});

test("a diverging loss stops the run with a one-line message saying what to change", () => {
  const runDir = join(dir, "nan");
  const r = cli(["run", config("nan"), "--quiet", "--output", runDir, "--set", "teacher.train.optimizer.lr=1e30"]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr.trim(), /^distill: teacher \(seed 0\): loss became (NaN|Infinity|-Infinity) at epoch 1, batch \d+; .*lr/);
  assert.ok(!existsSync(join(runDir, "teacher.onnx")));
});

test("distill eval measures an exported model exactly as the run did", async () => {
  const uninterrupted = await uninterruptedDir();
  const r = cli(["eval", join(uninterrupted, "student.onnx"), "--data", "mnist", "--limit", "1000", "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { accuracy: number; errors: number; nll: number; total: number; onnxBytes: number; latencyP50Ms: number };
  const results = JSON.parse(readFileSync(join(uninterrupted, "results.json"), "utf8")) as RunResults;
  const want = results.models.find((m) => m.role === "student")!.perSeed[0]!;
  assert.deepEqual({ accuracy: got.accuracy, errors: got.errors, nll: got.nll, total: got.total, onnxBytes: got.onnxBytes }, { accuracy: want.accuracy, errors: want.errors, nll: want.nll, total: want.total, onnxBytes: want.onnxBytes });
  const table = cli(["eval", join(uninterrupted, "student.onnx"), "--data", "mnist", "--limit", "1000"]);
  assert.match(table.stdout, new RegExp(`accuracy +${(want.accuracy * 100).toFixed(2)}% \\(${want.errors} errors of 1000\\)`));
  // Two models: each as alone, then their ensemble — here the student and the baseline.
  const pair = cli(["eval", join(uninterrupted, "student.onnx"), join(uninterrupted, "baseline.onnx"), "--data", "mnist", "--limit", "1000", "--json"]);
  assert.equal(pair.status, 0, pair.stderr);
  const [one, two, both] = pair.stdout.trim().split("\n").map((l) => JSON.parse(l) as { errors: number; nll: number; ensemble?: string[] });
  assert.equal(one!.errors, want.errors);
  const baseline = results.models.find((m) => m.role === "baseline")!.perSeed[0]!;
  assert.equal(two!.errors, baseline.errors);
  assert.equal(both!.ensemble!.length, 2);
  // log is concave: the mean distribution's NLL is at most the mean of the two NLLs.
  assert.ok(both!.nll <= (one!.nll + two!.nll) / 2 + 1e-9, `ensemble NLL ${both!.nll} against ${one!.nll}, ${two!.nll}`);
});

test("Ctrl-C stops with exit code 130 and says how to resume; the resumed run equals an uninterrupted one", async () => {
  const uninterrupted = await uninterruptedDir();
  const runDir = join(dir, "sigint");
  // Held after the teacher's first of 2 epochs, then interrupted as a terminal's Ctrl-C would. Its own
  // cache: an earlier test's run of full.yaml has put this teacher in the shared one (no epoch would run).
  const cache = join(dir, "cache-sigint");
  const child = new CliChild(["run", config("full"), "--quiet", "--output", runDir], { ...pausedAfter("teacher-s0.ckpt", 1), DISTILL_CACHE: cache });
  await child.waitForLine(/^distill-test: paused after teacher-s0\.ckpt epoch 1$/);
  child.process.kill("SIGINT");
  assert.equal((await child.exitWithin()).code, 130, child.stderr);
  assert.match(child.stderr, new RegExp(`interrupted; continue with: distill resume ${runDir.replace(/[.]/g, "\\.")}`));
  assert.ok(readCheckpoint(join(runDir, "checkpoints", "teacher-s0.ckpt"))!.epochsDone >= 1, "the teacher's checkpoint reads back whole");
  assert.ok(!existsSync(join(runDir, "results.json")));
  const r = cli(["resume", runDir, "--quiet"], { DISTILL_CACHE: cache });
  assert.equal(r.status, 0, r.stderr);
  for (const f of ["teacher.onnx", "baseline.onnx", "student.onnx"])
    assert.deepEqual(readFileSync(join(runDir, f)), readFileSync(join(uninterrupted, f)), `${f} is bit-identical`);
});
