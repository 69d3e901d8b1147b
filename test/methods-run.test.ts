// Feature distillation end to end on a small slice of real MNIST: the teacher's taps are computed
// once and cached (and counted), the learned adapter is not part of the exported student, each term
// is logged per epoch, and a tap that is missing or cannot be bridged fails before any training.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { validateConfig } from "../src/config/load.js";
import { resumeDistillation, runDistillation } from "../src/run/pipeline.js";
import type { RunState } from "../src/distill/run-folder.js";
import { decodeModel } from "../src/engine/onnx.js";
import type { EpochMetric } from "../src/eval/types.js";
import { createProgress } from "../src/util/progress.js";

const dir = mkdtempSync(join(tmpdir(), "distill-methods-"));
const cacheDir = join(dir, "cache");
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
const train = { epochs: 1, batchSize: 50, optimizer: { kind: "adam", lr: 0.003 } };
const conv = (filters: number, name: string, kernel = 3, padding = 1) => ({ type: "conv", filters, kernel, padding, name });

function config(name: string, kd: unknown, teacher?: unknown) {
  return validateConfig({
    name,
    output: join(dir, name),
    data: { dataset: "mnist", trainLimit: 800, validation: 200, testLimit: 200 },
    teacher: teacher ?? { model: { layers: [conv(6, "conv1"), { type: "relu", name: "relu1" }, { type: "maxpool", size: 2, name: "pool1" }, { type: "flatten" }, { type: "linear", units: 10 }] }, train },
    student: { model: { layers: [conv(3, "conv1"), { type: "relu", name: "relu1" }, { type: "maxpool", size: 2 }, conv(4, "conv2", 5, 0), { type: "relu", name: "relu2" }, { type: "flatten" }, { type: "linear", units: 10 }] }, train },
    kd,
  }, `${name}.yaml`);
}

test("logit KD + FitNets hint: taps cached once, adapter dropped from the export, every term logged", async () => {
  const kd = { terms: [{ method: "logit-kd" }, { method: "fitnet", weight: 0.5, teacher: "pool1", student: "relu1" }] };
  const { runDir } = await runDistillation(config("hint", kd), { configPath: "hint.yaml", quiet: true, cacheDir, progress: silent() });
  const state = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as RunState;
  assert.equal(state.softTargets!.computedSamples, 600);
  assert.deepEqual(state.teacherTaps, { taps: ["pool1"], samples: 600, computedSamples: 600 });
  const student = decodeModel(readFileSync(join(runDir, "student.onnx")));
  const baseline = decodeModel(readFileSync(join(runDir, "baseline.onnx")));
  assert.deepEqual([...student.initializers.keys()].sort(), [...baseline.initializers.keys()].sort());
  assert.ok(![...student.initializers.keys()].some((k) => k.includes("adapter")));
  const lines = readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochMetric);
  const last = lines.find((l) => l.stage === "student")!;
  assert.deepEqual(Object.keys(last.terms).sort(), ["fitnet.loss_hint", "logit-kd.loss_ce", "logit-kd.loss_kd"]);
  assert.ok(last.terms["fitnet.loss_hint"]! > 0);

  // The same teacher given as an .onnx file (distill's own export: kept byte for byte, so the same
  // cache key) and another feature method on the same tap: every tap comes from the cache.
  const attention = (name: string) => config(name, { method: "attention", teacher: "pool1", student: "relu1", weight: 100 }, { onnx: join(runDir, "teacher.onnx") });
  for (const [name, computed] of [["attention", 0], ["attention-again", 0]] as const) {
    const run = await runDistillation(attention(name), { configPath: `${name}.yaml`, quiet: true, cacheDir, progress: silent() });
    const s = JSON.parse(readFileSync(join(run.runDir, "run.json"), "utf8")) as RunState;
    assert.deepEqual(s.teacherTaps, { taps: ["pool1"], samples: 600, computedSamples: computed });
    assert.equal(s.softTargets, undefined); // attention + cross-entropy need no teacher logits
  }
});

test("a missing tap or one no adapter can bridge fails before training, naming the key and the taps", async () => {
  const run = (name: string, kd: unknown) => runDistillation(config(name, kd), { configPath: `${name}.yaml`, quiet: true, cacheDir, progress: silent() });
  await assert.rejects(run("missing", { method: "rkd", teacher: "pool9", student: "relu1" }), (e: Error) => {
    assert.equal(e.message, 'missing.yaml: kd.teacher: the teacher has no tap "pool9" (available: conv1 [N, 6, 28, 28], relu1 [N, 6, 28, 28], pool1 [N, 6, 14, 14], flatten1 [N, 1176], linear1 [N, 10])');
    return true;
  });
  // Student relu2 is 10×10 (5×5 conv, no padding, after pooling), the teacher's pool1 14×14: no pooling matches them.
  await assert.rejects(
    run("unbridgeable", { terms: [{ method: "logit-kd" }, { method: "attention", teacher: "pool1", student: "relu2" }] }),
    { name: "UserError", message: "unbridgeable.yaml: kd.terms[1] (attention): student: relu2 and teacher: pool1: 10×10 and 14×14 differ and neither is a multiple of the other (pooling cannot match them)" },
  );
  assert.ok(!existsSync(join(dir, "missing")) && !existsSync(join(dir, "unbridgeable")), "no run folder left behind");
});

test("teacher assistants and born-again generations: a chain of stages, each teaching the next from its own cached logits", async () => {
  const mlp = (units: number) => ({ layers: [{ type: "linear", units }, { type: "relu" }, { type: "linear", units: 10 }] });
  const cfg = validateConfig({
    name: "chain",
    output: join(dir, "chain"),
    data: { dataset: "mnist", trainLimit: 800, validation: 200, testLimit: 200 },
    teacher: { model: mlp(64), train },
    student: { model: mlp(8), train },
    kd: { temperature: 2, alpha: 0.5, assistants: [mlp(24)], generations: 2 },
  }, "chain.yaml");
  assert.deepEqual(cfg.kd.assistants!.length, 1);
  const { runDir, results } = await runDistillation(cfg, { configPath: "chain.yaml", quiet: true, cacheDir, progress: silent() });
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "assistant1", "generation1", "baseline", "student"]);
  const state = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as RunState;
  // Every link's logits: one pass over the 600 transfer images each, never per epoch.
  const passes = Object.fromEntries(Object.entries(state.chain!).map(([k, v]) => [k, { samples: v.samples, computedSamples: v.computedSamples }]));
  assert.deepEqual(passes, { assistant1: { samples: 600, computedSamples: 600 }, generation1: { samples: 600, computedSamples: 600 } });
  // And how soft each link's targets are at T = 2 (the no-gain check reads the last link's): above 0, below log 10.
  for (const link of Object.values(state.chain!)) assert.ok(link.softTargetEntropy! > 0 && link.softTargetEntropy! < Math.log(10), JSON.stringify(link));
  assert.equal(results.models[1]!.perSeed[0]!.params, 784 * 24 + 24 + 24 * 10 + 10);
  // A chain passes on logits only: a term that taps layers is refused before training.
  await assert.rejects(
    runDistillation(validateConfig({ ...cfg, output: join(dir, "chain-taps"), kd: { generations: 2, terms: [{ method: "rkd", teacher: "linear1", student: "linear1" }] } }, "chain-taps.yaml"), { configPath: "chain-taps.yaml", quiet: true, cacheDir, progress: silent() }),
    { message: "chain-taps.yaml: kd.generations: a chain of teachers passes on logits only, but a term taps layers (linear1)" },
  );
});

test("several teachers: soft targets of the main and a further .onnx teacher averaged with their weights", async () => {
  const cfg = validateConfig({
    name: "ensemble",
    output: join(dir, "ensemble"),
    data: { dataset: "mnist", trainLimit: 800, validation: 200, testLimit: 200 },
    teacher: { onnx: join(dir, "chain", "teacher.onnx") },
    student: { model: { layers: [{ type: "linear", units: 8 }, { type: "relu" }, { type: "linear", units: 10 }] }, train },
    kd: { temperature: 2, alpha: 0.5, teachers: [{ onnx: join(dir, "hint", "teacher.onnx"), weight: 2 }] },
  }, "ensemble.yaml");
  // A cache of its own: the earlier runs' teachers are these very files and would answer from theirs.
  const { runDir } = await runDistillation(cfg, { configPath: "ensemble.yaml", quiet: true, cacheDir: join(dir, "cache-ensemble"), progress: silent() });
  const state = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as RunState;
  assert.equal(state.softTargets!.computedSamples, 600); // each teacher labels the 600 transfer images once
  // The further teacher on the 600 transfer images, then both on the 200 validation images (the ensemble's teacher report).
  assert.deepEqual(state.ensemble, { weights: [1, 2], computedSamples: 1000 });
  assert.equal(state.teacherReport!.members, 2);
  assert.ok(existsSync(join(runDir, "teachers", "teacher2.onnx")));
  await assert.rejects(
    runDistillation(validateConfig({ ...cfg, output: join(dir, "ensemble-bad"), kd: { ...cfg.kd, teachers: [{ onnx: join(dir, "nope.onnx") }] } }, "e.yaml"), { configPath: "e.yaml", quiet: true, cacheDir, progress: silent() }),
    { message: `${join(dir, "nope.onnx")}: no such file` },
  );
});

test("ema-teacher end to end: no soft targets are asked of the teacher, the export is the bare student, and an interrupted stage resumes bit-identically", async () => {
  const mlp = (units: number) => ({ layers: [{ type: "linear", units }, { type: "relu" }, { type: "dropout", p: 0.1 }, { type: "linear", units: 10 }] });
  const make = (name: string) => validateConfig({
    name, output: join(dir, name), seeds: 1,
    data: { dataset: "mnist", trainLimit: 800, validation: 200, testLimit: 200 },
    teacher: { model: mlp(32), train },
    student: { model: mlp(8), train: { ...train, epochs: 2 } },
    kd: { method: "ema-teacher", decay: 0.9, temperature: 2, alpha: 0.5 },
  }, `${name}.yaml`);
  // No baseline, so that the interruption below falls in the student's stage (the teacher trains 1 epoch).
  const straight = await runDistillation(make("ema"), { configPath: "ema.yaml", quiet: true, cacheDir, progress: silent(), skipBaseline: true });
  const state = JSON.parse(readFileSync(join(straight.runDir, "run.json"), "utf8")) as RunState;
  assert.equal(state.softTargets, undefined, "no soft targets computed for a teacher-free method");
  const metrics = readFileSync(join(straight.runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochMetric);
  assert.deepEqual(Object.keys(metrics.find((m) => m.stage === "student")!.terms!).sort(), ["loss_ce", "loss_kd"]);
  const student = decodeModel(readFileSync(join(straight.runDir, "student.onnx")));
  assert.ok(![...student.initializers.keys()].some((name) => name.includes("ema")), "the average is not part of the exported student");
  assert.equal(student.metadata["distill.parameters"], String(784 * 8 + 8 + 8 * 10 + 10));

  const cut = make("ema-cut");
  await assert.rejects(runDistillation(cut, { configPath: "ema-cut.yaml", quiet: true, cacheDir, progress: silent(), skipBaseline: true, stopAfterEpochs: 1 }), /stopped after epoch 1/);
  assert.ok(existsSync(join(cut.output, "checkpoints")), "the student's stage was interrupted mid-way");
  const resumed = await resumeDistillation(cut.output, { quiet: true, cacheDir, progress: silent() });
  // The runs' names differ (metadata); the trained weights must not.
  assert.deepEqual(decodeModel(readFileSync(join(resumed.runDir, "student.onnx"))).initializers, student.initializers);
});
