// A teacher given as a file of its outputs (teacher.softTargets), on real MNIST: the logits of a
// real .onnx teacher exported by `distill label --export` (.npy) and rewritten as .jsonl and .csv
// teach the student exactly what the .onnx teacher teaches; rows matched by id on an image folder,
// shuffled and given as probabilities; an ensemble of a file and an .onnx teacher equals the
// ensemble of the two .onnx teachers; every bad file is one line, exit 2, nothing written.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";
import { gzipSync } from "node:zlib";
import { validateConfig } from "../src/config/load.js";
import "../src/distill/methods/index.js"; // registers the methods the kd: block accepts
import { labelCommand } from "../src/distill/label.js";
import { resumeDistillation, runDistillation } from "../src/run/pipeline.js";
import type { RunState } from "../src/distill/run-folder.js";
import { loadFileTeacher, npyBytes, readNpy } from "../src/distill/soft-target-file.js";
import { teacherSoftTargets } from "../src/distill/soft-targets.js";
import { planData } from "../src/distill/data-plan.js";
import { loadData, subset } from "../src/data/load.js";
import { loadDataset } from "../src/data/datasets.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import { topOneAgreement } from "../src/eval/metrics.js";
import { decodeModel } from "../src/engine/onnx.js";
import { createProgress } from "../src/util/progress.js";
import { writeImageFolders } from "../examples/write-image-folders.js";
import { mlpModel, trainAndExport } from "./helpers/mnist-models.js";

const dir = mkdtempSync(join(tmpdir(), "distill-softfile-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
const mnist = loadDataset("mnist");
const LABELS = mnist.classLabels;

const teacherA = join(dir, "teacher-a.onnx"), teacherB = join(dir, "teacher-b.onnx");
const npyA = join(dir, "a.npy"), npyB = join(dir, "b.npy");

function config(name: string, teacher: unknown, extra: { kd?: Record<string, unknown>; data?: Record<string, unknown>; epochs?: number } = {}) {
  return {
    name, output: join(dir, "runs", name), seeds: 1,
    data: extra.data ?? { dataset: "mnist", trainLimit: 800, validation: 200, testLimit: 300 },
    teacher,
    student: { model: { layers: [{ type: "linear", units: 16 }, { type: "relu" }, { type: "linear", units: 10 }] }, train: { epochs: extra.epochs ?? 1, batchSize: 50, optimizer: { kind: "adam", lr: 0.003 } } },
    kd: extra.kd?.["terms"] ? extra.kd : { temperature: 2, alpha: 0.5, ...extra.kd },
  };
}

async function run(name: string, teacher: unknown, extra: Parameters<typeof config>[2] = {}, cacheDir = join(dir, "cache")) {
  const cfg = validateConfig(config(name, teacher, extra), `${name}.yaml`);
  const out = await runDistillation(cfg, { configPath: `${name}.yaml`, quiet: true, cacheDir, progress: silent() });
  return { ...out, state: JSON.parse(readFileSync(join(out.runDir, "run.json"), "utf8")) as RunState };
}

/** The student's exported weights, by name. */
function studentWeights(runDir: string): Map<string, Float32Array> {
  const m = decodeModel(readFileSync(join(runDir, "student.onnx")));
  return new Map([...m.initializers].map(([k, t]) => [k, t.data as Float32Array]));
}

function maxDrift(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let drift = 0;
  for (const [k, w] of a) for (let i = 0; i < w.length; i++) drift = Math.max(drift, Math.abs(w[i]! - b.get(k)![i]!));
  return drift;
}

function rowsOf(values: Float32Array | Float64Array, k: number): number[][] {
  return Array.from({ length: values.length / k }, (_, r) => Array.from(values.subarray(r * k, (r + 1) * k)));
}

test("setup: two real .onnx teachers, and the first one's logits on all 60,000 training images from distill label --export", async () => {
  writeFileSync(teacherA, await trainAndExport(mlpModel(48), 4000, 1));
  writeFileSync(teacherB, await trainAndExport(mlpModel(24), 2000, 1, 5e-3));
  const cfg = validateConfig(config("label", { onnx: teacherA }), "label.yaml");
  const lines: string[] = [];
  await labelCommand(cfg, "label.yaml", { export: npyA, cacheDir: join(dir, "cache-label"), quiet: true, log: (l) => lines.push(l) });
  assert.match(lines[0]!, /^labelled 60000 samples: 60000 computed, 0 from cache, .*logits \[60000, 10\] written to .*a\.npy$/);
  await labelCommand(validateConfig(config("label-b", { onnx: teacherB }), "label-b.yaml"), "label-b.yaml", { export: npyB, cacheDir: join(dir, "cache-label"), quiet: true, log: () => undefined });
  const npy = readNpy(readFileSync(npyA), npyA);
  assert.deepEqual([npy.rows, npy.width], [60000, 10]);
  // The file holds the teacher's logits: row i is training image i.
  const teacher = await OnnxClassifier.fromFile(teacherA);
  const some = Int32Array.from([0, 1, 7, 599, 59999]);
  const direct = await teacher.logits(mnist.train, some);
  await teacher.dispose();
  some.forEach((idx, i) => {
    for (let c = 0; c < 10; c++) assert.ok(Math.abs(npy.values[idx * 10 + c]! - direct[i * 10 + c]!) < 1e-5);
  });
});

test("a file teacher (.npy, .jsonl.gz, .csv with its columns in another order) teaches exactly what the .onnx teacher does", async () => {
  const onnxRun = await run("onnx", { onnx: teacherA });
  // Its cached soft targets on the transfer set, against the file's rows there.
  const plan = await planData(validateConfig(config("plan", { onnx: teacherA }), "plan.yaml"), "plan.yaml");
  const teacher = await OnnxClassifier.fromFile(teacherA);
  const cached = await teacherSoftTargets({ teacher, set: plan.dataset.train, indices: plan.transferIndices, cacheDir: join(dir, "cache") });
  await teacher.dispose();
  assert.equal(cached.computedSamples, 0, "the .onnx run cached them");

  const npy = readNpy(readFileSync(npyA), npyA);
  const jsonl = join(dir, "a.jsonl.gz"), csv = join(dir, "a.csv");
  // Shortest round-trip decimals: the float32 values come back bit for bit.
  writeFileSync(jsonl, gzipSync(rowsOf(npy.values, 10).map((r) => JSON.stringify(r)).join("\n") + "\n"));
  const order = [...LABELS].reverse();
  writeFileSync(csv, [order.join(","), ...rowsOf(npy.values, 10).map((r) => order.map((l) => r[LABELS.indexOf(l)]).join(","))].join("\n") + "\n");

  for (const [name, file] of [["npy", npyA], ["jsonl", jsonl], ["csv", csv]] as const) {
    const fromFile = loadFileTeacher({ softTargets: file }, plan.dataset.train, LABELS, plan.transferIndices, "teacher").logits(plan.transferIndices);
    let worst = 0;
    for (let i = 0; i < fromFile.length; i++) worst = Math.max(worst, Math.abs(fromFile[i]! - cached.logits[i]!));
    assert.ok(worst < 1e-5, `${name}: the file's logits differ from the cached ones by ${worst}`);

    const fileRun = await run(`file-${name}`, { softTargets: file });
    assert.equal(fileRun.state.softTargets!.computedSamples, 0, "no teacher forward passes");
    assert.equal(fileRun.state.softTargets!.samples, 600);
    // The teacher report comes from the file's validation rows: the same teacher, the same figures.
    assert.deepEqual({ ...fileRun.state.teacherReport, computedSamples: 0, baselineAccuracy: 0 }, { ...onnxRun.state.teacherReport, computedSamples: 0, baselineAccuracy: 0 });
    assert.deepEqual(fileRun.results.models.map((m) => m.role), ["baseline", "student"], "no teacher model to test");
    assert.equal(fileRun.results.models[1]!.perSeed[0]!.agreement, null);
    const drift = maxDrift(studentWeights(onnxRun.runDir), studentWeights(fileRun.runDir));
    assert.ok(drift < 1e-4, `${name}: the student's weights drift by ${drift}`);
    assert.equal(fileRun.results.models[1]!.summary.errors.mean, onnxRun.results.models.find((m) => m.role === "student")!.summary.errors.mean);
    assert.ok(existsSync(join(fileRun.runDir, `teacher-soft-targets${name === "jsonl" ? ".jsonl.gz" : `.${name}`}`)), "the file is kept in the run folder");
    const html = readFileSync(join(fileRun.runDir, "report.html"), "utf8");
    assert.match(html, /id="no-teacher">The teacher is a file of its outputs/);
    // No test agreement; the students' agreement with the file on the validation split instead.
    const va = fileRun.results.validationAgreement!;
    assert.equal(va.samples, 200);
    assert.deepEqual(Object.keys(va.perRole), ["baseline", "student"]);
    const student = await OnnxClassifier.fromFile(join(fileRun.runDir, "student.onnx"));
    const onValidation = await student.logits(plan.dataset.train, plan.validationIndices);
    await student.dispose();
    const fileRows = Float32Array.from(Array.from(plan.validationIndices).flatMap((idx) => Array.from(npy.values.subarray(idx * 10, idx * 10 + 10))));
    assert.equal(va.perRole["student"]![0], topOneAgreement(onValidation, fileRows, 10));
    assert.match(html, /id="validation-agreement">.*student \d+\.\d+ %/);
  }
});

test("a resumed run reads the run folder's copy of the file: the original may be gone", async () => {
  const copy = join(dir, "moved.npy");
  writeFileSync(copy, readFileSync(npyA));
  const cfg = validateConfig(config("cut", { softTargets: copy }, { epochs: 2 }), "cut.yaml");
  await assert.rejects(runDistillation(cfg, { configPath: "cut.yaml", quiet: true, cacheDir: join(dir, "cache"), progress: silent(), stopAfterEpochs: 1 }), /stopped after epoch 1/);
  rmSync(copy);
  const resumed = await resumeDistillation(cfg.output, { quiet: true, cacheDir: join(dir, "cache"), progress: silent() });
  const straight = await run("straight", { softTargets: npyA }, { epochs: 2 });
  assert.deepEqual(studentWeights(resumed.runDir), studentWeights(straight.runDir));
});

test("gradual pruning of a file-teacher run's student fine-tunes against the run folder's copy of the file", async () => {
  const { pruneGradually } = await import("../src/compress/gradual.js");
  const runDir = join(dir, "runs", "file-npy");
  const g = await pruneGradually(runDir, readFileSync(join(runDir, "student.onnx")), "student.onnx", { sparsity: 0.5, scope: "global", epochs: 1, interval: 5, cacheDir: join(dir, "cache") });
  assert.equal(g.role, "student");
  assert.equal(g.schedule.at(-1)!.sparsity, 0.5);
});

test("rows by id: an image folder's file paths, the rows shuffled, probabilities in a .jsonl field; extra rows are ignored", async () => {
  const root = join(dir, "folder");
  await writeImageFolders(subset(mnist.train, Int32Array.from({ length: 400 }, (_, i) => i)), LABELS, join(root, "train"));
  await writeImageFolders(subset(mnist.test, Int32Array.from({ length: 100 }, (_, i) => i)), LABELS, join(root, "test"));
  const data = { format: "image-folder", train: join(root, "train"), test: join(root, "test"), validation: 100 };
  const ds = await loadData(data as never, { cacheDir: join(dir, "cache") });
  assert.equal(ds.train.ids![0], "0/001.png");
  const teacher = await OnnxClassifier.fromFile(teacherA);
  const logits = await teacher.logits(ds.train, Int32Array.from({ length: ds.train.count }, (_, i) => i));
  await teacher.dispose();
  const probs = rowsOf(logits, 10).map((r) => {
    const m = Math.max(...r), e = r.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
  // Shuffled (a fixed permutation), plus rows for samples this run does not have.
  const order = Array.from({ length: ds.train.count }, (_, i) => (i * 7919) % ds.train.count);
  const lines = order.map((i) => JSON.stringify({ path: ds.train.ids![i], p: probs[i] }));
  lines.push(JSON.stringify({ path: "elsewhere/1.png", p: probs[0] }));
  const file = join(dir, "by-id.jsonl");
  writeFileSync(file, lines.join("\n") + "\n");

  const plan = await planData(validateConfig(config("by-id-plan", { onnx: teacherA }, { data }), "p.yaml"), "p.yaml", { cacheDir: join(dir, "cache") });
  const fileTeacher = loadFileTeacher({ softTargets: file, id: "path", scores: "p" }, plan.dataset.train, LABELS, plan.transferIndices, "teacher");
  assert.ok(fileTeacher.probabilities, "outputs: auto recognises probabilities");
  const got = fileTeacher.logits(plan.transferIndices);
  plan.transferIndices.forEach((idx, row) => {
    // log p = z − logsumexp z: the same softmax as the logits.
    const z = Array.from(logits.subarray(idx * 10, idx * 10 + 10)), m = Math.max(...z), lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    for (let c = 0; c < 10; c++) assert.ok(Math.abs(got[row * 10 + c]! - (z[c]! - lse)) < 1e-4, `sample ${idx} class ${c}`);
  });

  const byId = await run("by-id", { softTargets: file, id: "path", scores: "p" }, { data, epochs: 10 });
  assert.equal(byId.state.softTargets!.samples, 300);
  const valLabels = Array.from(plan.validationIndices, (i) => plan.dataset.train.labels[i]!);
  const valRight = Array.from(plan.validationIndices).filter((idx, i) => {
    const z = Array.from(logits.subarray(idx * 10, idx * 10 + 10));
    return z.indexOf(Math.max(...z)) === valLabels[i];
  }).length;
  assert.equal(byId.state.teacherReport!.accuracy, valRight / 100, "teacher report from the file's validation rows");
  // Probabilities, logged, are the logits shifted per row: the same softened targets, the same student.
  const fromModel = await run("by-id-onnx", { onnx: teacherA }, { data, epochs: 10 });
  assert.ok(maxDrift(studentWeights(fromModel.runDir), studentWeights(byId.runDir)) < 1e-3);
  const accuracy = byId.results.models.find((m) => m.role === "student")!.summary.accuracy.mean;
  assert.ok(accuracy > 0.3, `the student learns (accuracy ${accuracy}; chance 0.1)`);
});

test("an ensemble of a file teacher and an .onnx teacher equals the ensemble of the two .onnx teachers", async () => {
  const kd = (second: unknown) => ({ kd: { teachers: [{ ...(second as object), weight: 2 }] } });
  const cache = join(dir, "cache-ensemble");
  const both = await run("ens-onnx", { onnx: teacherA }, kd({ onnx: teacherB }), cache);
  const mainFile = await run("ens-main-file", { softTargets: npyA }, kd({ onnx: teacherB }), cache);
  const extraFile = await run("ens-extra-file", { onnx: teacherA }, kd({ softTargets: npyB }), cache);
  assert.deepEqual(both.state.ensemble!.weights, [1, 2]);
  for (const other of [mainFile, extraFile]) {
    assert.deepEqual(other.state.ensemble!.weights, [1, 2]);
    const drift = maxDrift(studentWeights(both.runDir), studentWeights(other.runDir));
    assert.ok(drift < 1e-4, `the student's weights drift by ${drift}`);
  }
  assert.ok(existsSync(join(extraFile.runDir, "teachers", "teacher2-soft-targets.npy")));
  // The weights matter: weighing the file teacher 1 instead of 2 teaches something else.
  const evenly = await run("ens-even", { onnx: teacherA }, { kd: { teachers: [{ softTargets: npyB, weight: 1 }] } }, cache);
  const drift = maxDrift(studentWeights(both.runDir), studentWeights(evenly.runDir));
  assert.ok(drift > 1e-3, `weights 1:2 and 1:1 give the same student (drift ${drift})`);
});

test("bad soft-target files and settings: one line naming the file and row or field, exit 2, nothing written", () => {
  const bad = join(dir, "bad");
  const cli = (name: string, teacher: unknown, extra: Parameters<typeof config>[2] = {}, args: string[] = []) => {
    const cfg = join(dir, `${name}.yaml`);
    writeFileSync(cfg, JSON.stringify({ ...config(name, teacher, extra), output: join(bad, name) }));
    const r = spawnSync(process.execPath, [CLI, args[0] ?? "run", cfg, ...args.slice(1)], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
    assert.equal(r.status, 2, `${name}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(!existsSync(join(bad, name)), `${name}: no run folder`);
    return r.stderr.trim();
  };
  const npy = readNpy(readFileSync(npyA), npyA);
  const write = (name: string, content: string | Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  const probs = (rows: number) => rowsOf(npy.values.subarray(0, rows * 10), 10).map((r) => {
    const e = r.map((v) => Math.exp(v)), s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });

  const short = write("short.npy", npyBytes(Float32Array.from(probs(100).flat()), 100, 10));
  assert.equal(cli("rows", { softTargets: short, outputs: "probabilities" }),
    `distill: ${short}: has 100 rows, but the training source has 60000 samples (row i is training sample i, data.unlabeled's samples after the labelled ones); give one row per sample, or match rows by id with teacher.id`);
  const nan = write("nan.jsonl", probs(6).map((r, i) => JSON.stringify(r).replace(/^\[[^,]*/, i === 4 ? "[NaN" : "$&")).join("\n"));
  assert.equal(cli("nan", { softTargets: nan }), `distill: ${nan}: line 5: score 0 (class 0) is NaN, not a finite number`);
  const inf = write("inf.jsonl", `[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]\n[0, 0, -Infinity, 0, 0, 0, 0, 0, 0, 1]\n`);
  assert.equal(cli("inf-jsonl", { softTargets: inf }), `distill: ${inf}: line 2: score 2 (class 2) is -Infinity, not a finite number`);
  const infCsv = write("inf.csv", `${LABELS.join(",")}\n${"0,".repeat(9)}0\n${"0,".repeat(9)}inf\n`);
  assert.equal(cli("inf", { softTargets: infCsv }), `distill: ${infCsv}: row 3: score 9 (class 9) is Infinity, not a finite number`);
  const nine = write("nine.npy", npyBytes(new Float32Array(60000 * 9), 60000, 9));
  assert.equal(cli("classes", { softTargets: nine }), `distill: ${nine}: has 9 scores per row, but the data have 10 classes (0, 1, 2, 3, 4, 5, 6, 7, 8, 9); the teacher's classes must be the labels'`);
  const unknown = write("unknown.csv", `${LABELS.slice(0, 9).join(",")},ten\n${"0,".repeat(9)}0\n`);
  assert.equal(cli("column", { softTargets: unknown }), `distill: ${unknown}: header: column "ten" is not a class of the data (expected one column per class: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9; name the id column with teacher.id)`);
  assert.equal(cli("id-column", { softTargets: unknown, id: "name" }), `distill: ${unknown}: teacher.id: no column "name" (the header has 0, 1, 2, 3, 4, 5, 6, 7, 8, ten)`);
  const notProbs = write("not-probs.jsonl", "[0.5, 0.5, 0, 0, 0, 0, 0, 0, 0, 0]\n[0.9, 0.5, 0, 0, 0, 0, 0, 0, 0, 0]\n");
  assert.equal(cli("not-probs", { softTargets: notProbs, outputs: "probabilities" }), `distill: ${notProbs}: line 2: teacher.outputs is probabilities, but the row sums to 1.40000`);
  // By id: MNIST's IDX files name no samples; an image folder's missing path is named.
  const ids = write("ids.jsonl", `{"id": "a", "scores": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]}\n`);
  assert.match(cli("no-ids", { softTargets: ids, id: "id" }), /ids\.jsonl: teacher\.id: the training data have no sample ids to match/);
  const byId = readFileSync(join(dir, "by-id.jsonl"), "utf8").split("\n").filter((l) => !l.includes('"0/001.png"')).join("\n");
  const missing = write("missing-id.jsonl", byId);
  const folder = { format: "image-folder", train: join(dir, "folder", "train"), test: join(dir, "folder", "test"), validation: 100 };
  assert.match(cli("missing-id", { softTargets: missing, id: "path", scores: "p" }, { data: folder }), /missing-id\.jsonl: teacher\.id: no row for sample "0\/001\.png" \(training example 0\)$/);
  assert.equal(cli("npy-id", { softTargets: npyA, id: "path" }), `distill: ${npyA}: teacher.id: a .npy file holds numbers only, no ids; match rows by index (leave out id) or use .jsonl or .csv`);
  const txt = write("scores.txt", "1 2 3\n");
  assert.equal(cli("txt", { softTargets: txt }), `distill: ${txt}: teacher.softTargets: expected a .npy, .jsonl or .csv file (optionally .gz), got .txt`);
  // A further teacher's file is checked like the main one's.
  assert.equal(cli("extra", { onnx: teacherA }, { kd: { teachers: [{ softTargets: short }] } }).startsWith(`distill: ${short}: has 100 rows`), true);
  // Taps need a model; distill label needs one to run.
  assert.match(cli("taps", { softTargets: npyA }, { kd: { terms: [{ method: "logit-kd" }, { method: "fitnet", teacher: "linear1", student: "linear1" }] } }),
    /taps\.yaml: kd: a term taps the teacher's layers \(linear1\), but teacher\.softTargets is a file of its outputs, without layers/);
  assert.match(cli("label", { softTargets: npyA }, {}, ["label"]), /label\.yaml: teacher\.softTargets: the teacher is a file of its outputs .* already; distill label runs an \.onnx teacher/);
  // Settings that do not go together.
  assert.match(cli("both", { softTargets: npyA, onnx: teacherA }), /both\.yaml: teacher: give one of onnx \(a trained classifier\), model \(trained here\) or softTargets \(a file of its outputs\), not onnx and softTargets/);
  assert.match(cli("preprocessing", { softTargets: npyA, preprocessing: { layout: "flat" } }), /preprocessing\.yaml: teacher\.preprocessing: only used with onnx/);
  assert.match(cli("extra-both", { onnx: teacherA }, { kd: { teachers: [{ onnx: teacherB, softTargets: npyB }] } }), /kd\.teachers\[0\]: expected one of onnx \(a classifier\) or softTargets/);
});

test("a Fortran-ordered .npy (scikit-learn's predict_proba saved with numpy.save) is read as numpy reads it", () => {
  // Written to the .npy spec by hand: version 1.0, a header padded to 64 bytes, then the float64
  // values column by column (fortran_order: True), as numpy.save writes an F-contiguous array.
  const rows = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.05, 0.05, 0.9]];
  let header = "{'descr': '<f8', 'fortran_order': True, 'shape': (4, 3), }";
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const columnMajor = Float64Array.from([0, 1, 2].flatMap((c) => rows.map((r) => r[c]!)));
  const bytes = new Uint8Array(10 + header.length + columnMajor.byteLength);
  bytes.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(new TextEncoder().encode(header), 10);
  bytes.set(new Uint8Array(columnMajor.buffer), 10 + header.length);
  const npy = readNpy(bytes, "proba.npy");
  assert.deepEqual([npy.rows, npy.width], [4, 3]);
  assert.deepEqual(rowsOf(npy.values, 3), rows);
});

test("outputs: logits on a file of probabilities is refused, as auto would have read them as probabilities", () => {
  const file = join(dir, "declared-logits.jsonl");
  writeFileSync(file, "[0.7, 0.2, 0.1]\n[0.1, 0.8, 0.1]\n");
  const read = (outputs: "logits" | "auto") => loadFileTeacher({ softTargets: file, outputs }, { count: 2 }, ["a", "b", "c"], Int32Array.from([0, 1]), "teacher");
  assert.throws(() => read("logits"), { message: `${file}: teacher.outputs is logits, but every row is ≥ 0 and sums to 1: probabilities; set outputs: probabilities, or leave it out (auto)` });
  assert.equal(read("auto").probabilities, true);
});

test("data.id: a csv's id column names its rows (kept through testFraction's hold-out) and is not a feature", async () => {
  const csv = join(dir, "named.csv");
  writeFileSync(csv, "name,a,b,label\n" + Array.from({ length: 20 }, (_, i) => `row-${i},${i},${i % 3},${i % 2 ? "odd" : "even"}`).join("\n") + "\n");
  const ds = await loadData({ format: "csv", train: csv, testFraction: 0.25, label: "label", id: "name" } as never);
  assert.deepEqual(ds.featureNames, ["a", "b"]);
  assert.equal(ds.train.ids!.length + ds.test.ids!.length, 20);
  ds.train.ids!.forEach((id, i) => assert.equal(`row-${ds.train.inputs[i * 2]}`, id, "each id stays with its row"));
  assert.throws(() => validateConfig({ ...config("id-idx", { onnx: teacherA }), data: { dataset: "mnist", id: "name" } }, "x.yaml"), /data\.id: only used with format image-folder, csv or jsonl/);
});

test("the example config loads and names a file teacher", async () => {
  const { loadConfig } = await import("../src/config/load.js");
  const examples = join(dirname(fileURLToPath(import.meta.url)), "../../examples");
  const example = loadConfig(join(examples, "soft-targets-file.yaml"));
  // Relative to the config's folder: the repository's runs/, whatever the working directory.
  assert.deepEqual(example.teacher, { softTargets: join(examples, "../runs/demo-teacher-logits.npy"), outputs: "auto" });
});
