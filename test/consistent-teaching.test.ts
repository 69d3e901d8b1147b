// Augmentations of training batches (train.flip, train.mixup) and consistent teaching
// (kd.teaching: consistent, Beyer et al. 2022): flips and mixup change a batch exactly as specified
// and are functions of (seed, epoch, step); the teacher built into the step graph is the same
// function as the cached one (same first-step loss without augmentation), and with flips it teaches
// from the flipped images, as a teacher session run on the batch does; a run interrupted with
// consistent teaching and mixup resumes to the very parameters of an uninterrupted one; bad inputs
// are one line, exit 2, nothing written.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import "../src/distill/methods/index.js";
import { validateConfig } from "../src/config/load.js";
import type { TrainSpec } from "../src/config/schema.js";
import { Batches } from "../src/data/batches.js";
import { loadDataset } from "../src/data/datasets.js";
import { InGraphTeacher, SessionTeacher } from "../src/distill/consistent-teacher.js";
import type { RunState } from "../src/distill/run-folder.js";
import { TeacherOutputs, type BatchTeacher } from "../src/distill/teacher-outputs.js";
import { createStageTrainer, stageBatches, stageTerms, stepFeeds, trainStage, type StageJob } from "../src/distill/train-stage.js";
import { decodeModel } from "../src/engine/onnx.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import type { RunResults } from "../src/eval/types.js";
import { exportOnnx } from "../src/nn/model.js";
import { buildModel, dataGeometry } from "../src/nn/spec.js";
import { resumeDistillation, runDistillation } from "../src/run/pipeline.js";
import { createProgress } from "../src/util/progress.js";
import { Rng } from "../src/util/random.js";
import { CLI } from "./helpers/child.js";

const dir = mkdtempSync(join(tmpdir(), "distill-consistent-"));
const cacheDir = join(dir, "cache");
const mnist = loadDataset("mnist");
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
const PIXELS = 784;
const firstIndices = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

/** Image `index` of MNIST's training set as float32 pixels, optionally mirrored left–right. */
function image(index: number, mirrored = false): Float32Array {
  const out = Float32Array.from(mnist.train.inputs.subarray(index * PIXELS, (index + 1) * PIXELS));
  if (mirrored) for (let y = 0; y < 28; y++) out.subarray(y * 28, y * 28 + 28).reverse();
  return out;
}

const rowOf = (input: Float32Array | BigInt64Array, i: number) => (input as Float32Array).slice(i * PIXELS, (i + 1) * PIXELS);
const firstBatch = (b: Batches, epoch = 0, from = 0) => {
  const batch = b.epoch(epoch, from).next().value!;
  return { ...batch, input: batch.input.slice(), indices: batch.indices.slice(), labels: batch.labels.slice(), ...(batch.mix ? { mix: { lambda: batch.mix.lambda, partner: batch.mix.partner.slice() } } : {}) };
};

describe("flips and mixup of training batches", () => {
  const indices = firstIndices(640);
  const batches = (opts: { flip?: boolean; mixup?: number; jitter?: number; seed?: number }) =>
    new Batches(mnist.train, indices, { batchSize: 64, shuffle: true, seed: opts.seed ?? 3, dropLast: true, ...opts });

  test("flip: each image is itself or its mirror image, about half mirrored, the same for the same (seed, epoch, step)", () => {
    const flipped = firstBatch(batches({ flip: true }));
    const plain = firstBatch(batches({}));
    assert.deepEqual(flipped.indices, plain.indices, "flips leave the order alone");
    let mirrored = 0;
    for (let i = 0; i < flipped.size; i++) {
      const row = rowOf(flipped.input, i), idx = flipped.indices[i]!;
      const isPlain = row.every((v, p) => v === image(idx)[p]);
      const isMirror = row.every((v, p) => v === image(idx, true)[p]);
      assert.ok(isPlain || isMirror, `row ${i} is image ${idx} or its mirror`);
      if (isMirror && !isPlain) mirrored++;
    }
    assert.ok(mirrored >= 16 && mirrored <= 48, `${mirrored} of 64 mirrored`);
    // Step 3 of epoch 2 drawn alone (as a resume does) equals step 3 of a full pass.
    // (The yielded buffers are reused: copy step 3's as it passes.)
    let third: Float32Array | undefined, b = 0;
    for (const batch of batches({ flip: true }).epoch(2)) if (b++ === 3) third = (batch.input as Float32Array).slice();
    assert.deepEqual(firstBatch(batches({ flip: true }), 2, 3).input, third);
    assert.notDeepEqual(firstBatch(batches({ flip: true }), 1).input, firstBatch(batches({ flip: true }), 0).input);
  });

  test("flip after jitter: the shifts are those of the unflipped batch", () => {
    const both = firstBatch(batches({ jitter: 2, flip: true })), shifted = firstBatch(batches({ jitter: 2 }));
    for (let i = 0; i < both.size; i++) {
      const row = rowOf(both.input, i), ref = rowOf(shifted.input, i);
      const mirror = ref.slice();
      for (let y = 0; y < 28; y++) mirror.subarray(y * 28, y * 28 + 28).reverse();
      assert.ok(row.every((v, p) => v === ref[p]) || row.every((v, p) => v === mirror[p]), `row ${i}`);
    }
  });

  test("mixup: row i is λ·x_i + (1 − λ)·x_partner(i) in float32, partners a permutation of the batch, one λ ~ Beta(α, α) per step", () => {
    const mixed = firstBatch(batches({ mixup: 0.4 }));
    const { lambda, partner } = mixed.mix!;
    assert.ok(lambda > 0 && lambda < 1, `λ = ${lambda}`);
    assert.deepEqual([...partner].sort((a, b) => a - b), [...firstIndices(64)], "a permutation of the rows");
    assert.ok(partner.some((j, i) => j !== i));
    for (let i = 0; i < mixed.size; i++) {
      const a = image(mixed.indices[i]!), b = image(mixed.indices[partner[i]!]!);
      const row = rowOf(mixed.input, i);
      for (let p = 0; p < PIXELS; p++) assert.equal(row[p], Math.fround(lambda * a[p]! + (1 - lambda) * b[p]!), `row ${i} pixel ${p}`);
    }
    assert.deepEqual(firstBatch(batches({ mixup: 0.4 })), mixed, "the same batch again");
    const steps = [...batches({ mixup: 0.4 }).epoch(0)].map((b) => b.mix!.lambda);
    assert.equal(new Set(steps).size, steps.length, "a λ per step");
    assert.equal(firstBatch(batches({ mixup: 0.4 }), 0, 5).mix!.lambda, steps[5], "drawn alone, step 5 has its own λ");
  });

  test("Beta(α, α) draws: mean 1/2 and variance 1/(4(2α + 1))", () => {
    for (const alpha of [0.2, 1, 4]) {
      const rng = new Rng(11, `beta:${alpha}`), n = 20000;
      const xs = Array.from({ length: n }, () => rng.beta(alpha, alpha));
      const mean = xs.reduce((a, b) => a + b, 0) / n;
      const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
      const expected = 1 / (4 * (2 * alpha + 1));
      // Standard errors at n = 20,000: ≤ 0.0032 for the mean, ≤ 2 % of the variance.
      assert.ok(Math.abs(mean - 0.5) < 0.012, `α ${alpha}: mean ${mean}`);
      assert.ok(Math.abs(variance / expected - 1) < 0.06, `α ${alpha}: variance ${variance}, expected ${expected}`);
      assert.ok(xs.every((x) => x >= 0 && x <= 1));
    }
  });
});

// A small teacher with BatchNorm (eval mode must use its running statistics), trained briefly so
// they are not the initial ones; the student is flat, so the in-graph teacher reshapes its input.
const geometry = dataGeometry(mnist.train);
const teacherModel = buildModel({ input: "image", layers: [{ type: "conv", filters: 6, kernel: 3, padding: 1 }, { type: "batchnorm" }, { type: "relu" }, { type: "maxpool", size: 2 }, { type: "flatten" }, { type: "linear", units: 10 }] } as never, mnist.classLabels, geometry);
const studentSpec = { layers: [{ type: "linear", units: 32 }, { type: "relu" }, { type: "linear", units: 10 }] };
const trainSpec = (extra: Partial<TrainSpec> = {}): TrainSpec => ({ epochs: 1, batchSize: 50, optimizer: { kind: "adam", lr: 0.003, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 }, schedule: { kind: "constant", warmupEpochs: 0 }, jitter: 0, ...extra });
const trainIndices = firstIndices(300);
let teacherBytes: Uint8Array;

async function teacher(): Promise<Uint8Array> {
  if (teacherBytes) return teacherBytes;
  const { params } = await trainStage({
    stage: "teacher", seed: 1, model: teacherModel, train: trainSpec(), terms: [{ method: "cross-entropy", weight: 1 }], set: mnist.train, trainIndices,
    validationIndices: new Int32Array(0), useLabels: true, checkpointPath: join(dir, "teacher.ckpt"), progress: silent(),
  });
  return (teacherBytes = exportOnnx(teacherModel, params));
}

/** The first step's loss and terms of a logit-KD student (T 2, α 0.5) taught by `source`. */
async function firstStep(source: BatchTeacher | InGraphTeacher, train: TrainSpec): Promise<{ loss: number; terms: Record<string, number> }> {
  const job: StageJob = {
    stage: "student", seed: 0, model: buildModel(studentSpec as never, mnist.classLabels, geometry), train, terms: [{ method: "logit-kd", weight: 1, temperature: 2, alpha: 0.5 }],
    set: mnist.train, trainIndices, validationIndices: new Int32Array(0), useLabels: true, teacher: source, checkpointPath: join(dir, "unused.ckpt"), progress: silent(),
  };
  const terms = stageTerms(job);
  const trainer = await createStageTrainer(job, terms);
  try {
    const batch = stageBatches(job).epoch(0).next().value!;
    const r = await trainer.step(await stepFeeds(job, terms, batch), 0.003);
    return { loss: r.loss, terms: r.terms };
  } finally {
    await trainer.dispose();
  }
}

/** The teacher's logits on the training images, gathered per batch: the cache. */
async function cachedTeacher(bytes: Uint8Array): Promise<TeacherOutputs> {
  const c = await OnnxClassifier.fromBytes(bytes, "teacher");
  const logits = await c.logits(mnist.train, trainIndices);
  await c.dispose();
  return new TeacherOutputs(TeacherOutputs.rowsFor(trainIndices, mnist.train.count), { sampleShape: [10], data: logits }, new Map());
}

const sessionTeacher = (bytes: Uint8Array) => SessionTeacher.open({ bytes, inputName: "input", sampleShape: [1, 28, 28], inputDType: "float32", logitsName: "logits", taps: new Map() });

describe("consistent teaching", () => {
  test("without augmentation the teacher in the step graph, and in a session per batch, give the cached teacher's first-step loss", async () => {
    const bytes = await teacher();
    const cached = await firstStep(await cachedTeacher(bytes), trainSpec());
    const inGraph = await firstStep(InGraphTeacher.fromExport(teacherModel, bytes, "teacher"), trainSpec());
    const session = await sessionTeacher(bytes);
    const perBatch = await firstStep(session, trainSpec());
    assert.equal(session.passes, 50, "one batch through the teacher");
    await session.dispose();
    assert.ok(cached.terms["loss_kd"]! > 0.01, `a real KD term: ${cached.terms["loss_kd"]}`);
    for (const [name, r] of [["in-graph", inGraph], ["session", perBatch]] as const) {
      assert.ok(Math.abs(r.loss - cached.loss) < 1e-5, `${name}: ${r.loss} vs cached ${cached.loss}`);
      assert.ok(Math.abs(r.terms["loss_kd"]! - cached.terms["loss_kd"]!) < 1e-5, `${name} loss_kd`);
    }
  });

  test("with flips the teacher teaches from the flipped images: not the cached clean outputs, but the teacher's on the flipped batch", async () => {
    const bytes = await teacher();
    const flip = trainSpec({ flip: true });
    const inGraph = await firstStep(InGraphTeacher.fromExport(teacherModel, bytes, "teacher"), flip);
    const cached = await firstStep(await cachedTeacher(bytes), flip);
    // The teacher evaluated independently on the first batch's images, each mirrored where the batch has it mirrored.
    const batch = firstBatch(new Batches(mnist.train, trainIndices, { batchSize: 50, shuffle: true, seed: 0, dropLast: true, flip: true }));
    const c = await OnnxClassifier.fromBytes(bytes, "teacher");
    const mirroredSet = { ...mnist.train, inputs: Uint8Array.from(batch.input as Float32Array), count: 50 };
    const onFlipped = await c.logits(mirroredSet, firstIndices(50));
    await c.dispose();
    const given: BatchTeacher = { kind: "cached", tapShapes: new Map(), forBatch: async () => ({ logits: { dtype: "float32", shape: [50, 10], data: onFlipped }, taps: new Map() }) };
    const expected = await firstStep(given, flip);
    assert.ok(Math.abs(inGraph.terms["loss_kd"]! - expected.terms["loss_kd"]!) < 1e-5, `in-graph ${inGraph.terms["loss_kd"]} vs the teacher on the flipped images ${expected.terms["loss_kd"]}`);
    assert.ok(Math.abs(inGraph.terms["loss_kd"]! - cached.terms["loss_kd"]!) > 1e-3, `in-graph ${inGraph.terms["loss_kd"]} vs cached clean ${cached.terms["loss_kd"]}`);
    assert.ok(Math.abs(inGraph.terms["loss_ce"]! - cached.terms["loss_ce"]!) < 1e-6, "the same student on the same batch");
    const session = await sessionTeacher(bytes);
    const perBatch = await firstStep(session, flip);
    await session.dispose();
    assert.ok(Math.abs(perBatch.terms["loss_kd"]! - expected.terms["loss_kd"]!) < 1e-5, "the session teacher sees the flipped batch too");
  });

  test("mixup: the hard-label term is λ·CE(y_i) + (1 − λ)·CE(y_partner)", async () => {
    const bytes = await teacher();
    const mixed = trainSpec({ mixup: 0.5 });
    const job = { set: mnist.train, trainIndices, train: mixed, seed: 0 };
    const batch = firstBatch(stageBatches(job));
    const { lambda, partner } = batch.mix!;
    const r = await firstStep(InGraphTeacher.fromExport(teacherModel, bytes, "teacher"), mixed);
    // The same student's first-step logits on the mixed batch, through its export with the initial weights.
    const model = buildModel(studentSpec as never, mnist.classLabels, geometry);
    const c = await OnnxClassifier.fromBytes(exportOnnx(model, model.initParameters(0)), "student");
    const logits = await c.logits({ ...mnist.train, inputs: new Float32Array(batch.input as Float32Array) as never, kind: "table", sampleShape: [PIXELS], count: 50 }, firstIndices(50));
    await c.dispose();
    const ce = (row: number, label: number) => {
      const z = logits.subarray(row * 10, row * 10 + 10), max = Math.max(...z);
      return Math.log(z.reduce((a, v) => a + Math.exp(v - max), 0)) + max - z[label]!;
    };
    let expected = 0;
    for (let i = 0; i < 50; i++) expected += lambda * ce(i, Number(batch.labels[i])) + (1 - lambda) * ce(i, Number(batch.labels[partner[i]!]));
    expected /= 50;
    assert.ok(Math.abs(r.terms["loss_ce"]! - expected) < 1e-4, `loss_ce ${r.terms["loss_ce"]} vs ${expected} (λ ${lambda})`);
  });
});

const runConfig = (name: string, teacherSpec: unknown, kd: Record<string, unknown>) => validateConfig({
  name, output: join(dir, "runs", name), seeds: 1,
  data: { dataset: "mnist", trainLimit: 700, validation: 100, testLimit: 200 },
  teacher: teacherSpec,
  student: { model: studentSpec, train: { epochs: 2, batchSize: 50, jitter: 1, flip: true, mixup: 0.4, optimizer: { kind: "adam", lr: 0.003 } } },
  kd,
}, `${name}.yaml`);

describe("distill run with kd.teaching: consistent", () => {
  const trainedTeacher = { model: { input: "image", layers: [{ type: "conv", filters: 4, kernel: 3, padding: 1 }, { type: "batchnorm" }, { type: "relu" }, { type: "maxpool", size: 2 }, { type: "flatten" }, { type: "linear", units: 10 }] }, train: { epochs: 1, batchSize: 50, optimizer: { kind: "adam", lr: 0.003 } } };
  const kd = { temperature: 2, alpha: 0.5, teaching: "consistent" };

  test("no soft targets are cached, the teacher passes are epochs × images, and an interrupted run with mixup resumes to the same parameters bit for bit", async () => {
    const straight = await runDistillation(runConfig("straight", trainedTeacher, kd), { configPath: "straight.yaml", quiet: true, cacheDir, progress: silent(), skipBaseline: true });
    const state = JSON.parse(readFileSync(join(straight.runDir, "run.json"), "utf8")) as RunState;
    assert.equal(state.softTargets, undefined, "no soft targets computed");
    const student = straight.results.models.find((m) => m.role === "student")!;
    assert.deepEqual(student.teacherPasses, { teaching: "consistent", perModel: 2 * 600 });
    assert.match(readFileSync(join(straight.runDir, "report.html"), "utf8"), /Teacher passes.*1,200 <span class="sd">consistent/s);
    assert.match(readFileSync(join(straight.runDir, "config.yaml"), "utf8"), /teaching: consistent/);

    const cut = runConfig("cut", trainedTeacher, kd);
    await assert.rejects(runDistillation(cut, { configPath: "cut.yaml", quiet: true, cacheDir, progress: silent(), skipBaseline: true, stopAfterEpochs: 1 }), /stopped after epoch 1/);
    assert.ok(existsSync(join(cut.output, "checkpoints", "student-s0.ckpt")), "the student's stage was interrupted mid-way");
    const resumed = await resumeDistillation(cut.output, { quiet: true, cacheDir, progress: silent() });
    const weights = (runDir: string) => decodeModel(readFileSync(join(runDir, "student.onnx"))).initializers;
    assert.deepEqual(weights(resumed.runDir), weights(straight.runDir));
  });

  test("cached teaching records the transfer set as its passes; an .onnx teacher teaches consistently through its own session", async () => {
    const cached = await runDistillation(runConfig("cached", trainedTeacher, { temperature: 2, alpha: 0.5 }), { configPath: "cached.yaml", quiet: true, cacheDir, progress: silent(), skipBaseline: true });
    assert.deepEqual(cached.results.models.find((m) => m.role === "student")!.teacherPasses, { teaching: "cached", perModel: 600 });
    const file = join(dir, "teacher.onnx");
    writeFileSync(file, readFileSync(join(cached.runDir, "teacher.onnx")));
    const onnx = await runDistillation(runConfig("onnx", { onnx: file }, kd), { configPath: "onnx.yaml", quiet: true, cacheDir, progress: silent(), skipBaseline: true });
    const results = onnx.results as RunResults;
    assert.deepEqual(results.models.find((m) => m.role === "student")!.teacherPasses, { teaching: "consistent", perModel: 1200 });
    assert.equal((JSON.parse(readFileSync(join(onnx.runDir, "run.json"), "utf8")) as RunState).softTargets, undefined);
  });
});

describe("bad inputs", () => {
  test("one line naming the file and field, exit 2, nothing written", () => {
    writeFileSync(join(dir, "soft.csv"), "0,1,2,3,4,5,6,7,8,9\n");
    writeFileSync(join(dir, "table.csv"), "a,b,label\n" + Array.from({ length: 60 }, (_, i) => `${i},${i % 7},${i % 2}`).join("\n") + "\n");
    const mnistData = "data: { dataset: mnist, trainLimit: 500, validation: 100 }\n";
    const teacherModelYaml = "teacher:\n  model: { layers: [ {type: linear, units: 10} ] }\n  train: { epochs: 1, optimizer: {kind: adam, lr: 0.003} }\n";
    const student = (train: string) => `student:\n  model: { layers: [ {type: linear, units: 10} ] }\n  train: { epochs: 1, optimizer: {kind: adam, lr: 0.003}${train} }\n`;
    const cases: [string, string, RegExp][] = [
      ["mixup-zero", `${mnistData}${teacherModelYaml}${student(", mixup: 0")}kd: { temperature: 2 }\n`, /student\.train\.mixup: expected a number > 0, got 0/],
      ["flip-table", `data: { format: csv, train: ${join(dir, "table.csv")}, testFraction: 0.2, label: label, validation: 10 }\n${teacherModelYaml}${student(", flip: true")}kd: { temperature: 2 }\n`, /student\.train\.flip: mirrors images, but this data holds table rows; leave it out/],
      ["mixup-table", `data: { format: csv, train: ${join(dir, "table.csv")}, testFraction: 0.2, label: label, validation: 10 }\nteacher:\n  model: { layers: [ {type: linear, units: 2} ] }\n  train: { epochs: 1, mixup: 0.2, optimizer: {kind: adam, lr: 0.003} }\n${student("")}kd: { temperature: 2 }\n`, /teacher\.train\.mixup: mixes images, but this data holds table rows/],
      ["soft-targets", `${mnistData}teacher: { softTargets: ${join(dir, "soft.csv")} }\n${student(", flip: true")}kd: { temperature: 2, teaching: consistent }\n`, /kd\.teaching: consistent runs the teacher on each augmented batch, but teacher\.softTargets is a file of its outputs/],
      ["teaching-typo", `${mnistData}${teacherModelYaml}${student("")}kd: { temperature: 2, teaching: online }\n`, /kd\.teaching: expected one of cached, consistent, got "?online"?/],
      ["ema-mixup", `${mnistData}${student(", mixup: 0.2")}kd: { method: ema-teacher }\n`, /student\.train\.mixup: ema-teacher keeps its averaged model inside its loss term/],
    ];
    for (const [name, body, message] of cases) {
      const path = join(dir, `bad-${name}.yaml`);
      writeFileSync(path, `name: bad-${name}\noutput: ${join(dir, "runs", `bad-${name}`)}\n${body}`);
      const r = spawnSync(process.execPath, [CLI, "run", path], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: cacheDir } });
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
      assert.ok(r.stderr.includes(path), `${name} names the file: ${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${name}: one line: ${r.stderr}`);
      assert.ok(!existsSync(join(dir, "runs", `bad-${name}`)), `${name}: nothing written`);
    }
  });
});
