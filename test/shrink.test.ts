// `distill shrink` beyond widths: depth multipliers (MLP hidden layers, CNN conv blocks with their
// pooling kept), a ladder of width × depth ordered by parameter count, a ladder listed in the
// config (shrink.models), the teacher-assistant rung, the report's charts; on a small slice of
// real MNIST, and the bad inputs (one line, exit 2, nothing written).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LayerSpec, ModelSpec } from "../src/config/schema.js";
import type { EpochMetric } from "../src/eval/types.js";
import type { DataGeometry } from "../src/nn/spec.js";
import { buildLadder, depthBlocks, parameterCount, scaleDepth } from "../src/tune/ladder.js";
import type { ShrinkResults } from "../src/tune/shrink.js";
import { loadConfig } from "../src/config/load.js";
import { UserError } from "../src/errors.js";
import { assertBisection } from "./helpers/bisection.js";
import { once } from "./helpers/child.js";
import "../src/distill/methods/index.js"; // registers the methods the kd: block accepts

const dir = mkdtempSync(join(tmpdir(), "distill-shrink-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const env = { ...process.env, DISTILL_CACHE: join(dir, "cache"), DISTILL_THREADS: "1" };
const IMAGE: DataGeometry = { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] };
const DIGITS = [..."0123456789"];

const linear = (units: number, name?: string): LayerSpec => ({ type: "linear", units, ...(name ? { name } : {}) });
const conv = (filters: number, extra: Partial<LayerSpec> = {}): LayerSpec => ({ type: "conv", filters, kernel: 3, stride: 1, padding: 1, groups: 1, ...extra }) as LayerSpec;
const relu: LayerSpec = { type: "relu" };
const types = (ls: LayerSpec[]) => ls.map((l) => (l.type === "linear" ? `linear${l.units}` : l.type === "conv" ? `conv${l.filters}` : l.type));

test("depth of an MLP: hidden linear layers with their activation and dropout, dropped from the end or repeated (names made unique)", () => {
  const layers: LayerSpec[] = [linear(32, "h1"), relu, { type: "dropout", p: 0.2 }, linear(16), relu, linear(10)];
  assert.deepEqual(depthBlocks(layers).map((b) => [b.head, b.bodyEnd]), [[0, 3], [3, 5]]);
  assert.deepEqual(types(scaleDepth(layers, 0.5, "x")), ["linear32", "relu", "dropout", "linear10"]);
  assert.deepEqual(types(scaleDepth(layers, 1, "x")), types(layers));
  const deep = scaleDepth(layers, 2, "x");
  assert.deepEqual(types(deep), ["linear32", "relu", "dropout", "linear32", "relu", "dropout", "linear16", "relu", "linear16", "relu", "linear10"]);
  assert.deepEqual(deep.map((l) => (l as { name?: string }).name).filter(Boolean), ["h1", "h1.2"]);
  // 1.5 × 2 blocks = 3: the first block twice, the second once.
  assert.deepEqual(types(scaleDepth(layers, 1.5, "x")), ["linear32", "relu", "dropout", "linear32", "relu", "dropout", "linear16", "relu", "linear10"]);
  // Never below one block.
  assert.deepEqual(types(scaleDepth(layers, 0.1, "x")), ["linear32", "relu", "dropout", "linear10"]);
  assert.throws(() => scaleDepth([linear(10)], 2, "cfg.yaml"), /cfg\.yaml: student\.model: no hidden linear or conv layer/);
});

test("depth of a CNN: conv[-bn]-relu blocks; a dropped block keeps its pooling, a repeated conv keeps the spatial size; every variant builds with the parameters counted by hand", () => {
  const layers: LayerSpec[] = [conv(8), { type: "batchnorm" }, relu, { type: "maxpool", size: 2 }, conv(16, { stride: 2, padding: 0 }), relu, { type: "maxpool", size: 2 }, { type: "flatten" }, linear(32), relu, linear(10)];
  assert.equal(depthBlocks(layers).length, 2, "the head's linear layers are not conv blocks");
  const model = (ls: LayerSpec[]): ModelSpec => ({ input: "image", layers: ls });
  const count = (ls: LayerSpec[]) => parameterCount(model(ls), DIGITS, IMAGE, "cfg.yaml", "student.model");
  // 0.5: conv8-bn-relu, both pools → 8 × 7 × 7 into the head.
  const shallow = scaleDepth(layers, 0.5, "x");
  assert.deepEqual(types(shallow), ["conv8", "batchnorm", "relu", "maxpool", "maxpool", "flatten", "linear32", "relu", "linear10"]);
  assert.equal(count(shallow), (8 * 9 + 8) + 2 * 8 + (8 * 7 * 7 * 32 + 32) + (32 * 10 + 10));
  // 2: each conv twice, the copy 3×3 stride 1 padding 1 (28 → 28, and 6 → 6 after the stride-2 conv), pools once.
  const deep = scaleDepth(layers, 2, "x");
  assert.deepEqual(types(deep), ["conv8", "batchnorm", "relu", "conv8", "batchnorm", "relu", "maxpool", "conv16", "relu", "conv16", "relu", "maxpool", "flatten", "linear32", "relu", "linear10"]);
  assert.deepEqual(deep[9], { type: "conv", filters: 16, kernel: 3, stride: 1, padding: 1, groups: 1 });
  // 28 → pool 14 → conv stride 2, no padding: 6 → copy 6 → pool 3: 16 × 3 × 3 into the head.
  const convs = (8 * 9 + 8) + (8 * 8 * 9 + 8) + 2 * 2 * 8 + (16 * 8 * 9 + 16) + (16 * 16 * 9 + 16);
  assert.equal(count(deep), convs + (16 * 3 * 3 * 32 + 32) + (32 * 10 + 10));
});

test("the ladder: widths × depths ordered by parameter count; a model that does not build is named", () => {
  const student: ModelSpec = { input: "flat", layers: [linear(16), relu, linear(16), relu, linear(10)] };
  const ladder = buildLadder({ student, widths: [0.5, 1], depths: [0.5, 1, 2], classLabels: DIGITS, geometry: IMAGE, configPath: "cfg.yaml" });
  assert.equal(ladder.length, 6);
  for (let i = 1; i < ladder.length; i++) assert.ok(ladder[i - 1]!.params <= ladder[i]!.params, "smallest first");
  for (const r of ladder) {
    const u = Math.round(16 * r.width!), k = Math.max(1, Math.round(2 * r.depth!));
    assert.equal(r.params, 784 * u + u + (k - 1) * (u * u + u) + 10 * u + 10, r.id);
  }
  assert.deepEqual(ladder.map((r) => r.id), ["w0.5-d0.5", "w0.5-d1", "w0.5-d2", "w1-d0.5", "w1-d1", "w1-d2"]);
  const models = [{ name: "big", model: student }, { name: "tiny", model: { input: "flat" as const, layers: [linear(10)] } }];
  assert.deepEqual(buildLadder({ student, widths: [1], depths: [1], models, classLabels: DIGITS, geometry: IMAGE, configPath: "c" }).map((r) => r.id), ["m1-tiny", "m0-big"]);
  const broken = [{ name: "huge-kernel", model: { input: "image" as const, layers: [conv(4, { kernel: 40, padding: 0 }), { type: "flatten" } as LayerSpec, linear(10)] } }];
  assert.throws(() => buildLadder({ student, widths: [1], depths: [1], models: broken, classLabels: DIGITS, geometry: IMAGE, configPath: "c.yaml" }),
    (e: unknown) => e instanceof UserError && e.message === "c.yaml: shrink.models[0] (huge-kernel): seq/conv1: kernel 40 with padding 0+0 does not fit input size 28");
});

const STUDY = `
seeds: 1
data: { dataset: mnist, trainLimit: 2000, validation: 500, testLimit: 500 }
student:
  model: { layers: [ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 4, alpha: 0.9 }
`;
const TEACHER = `
teacher:
  model: { layers: [ {type: linear, units: 128}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 3, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
`;

function config(name: string, body: string): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `name: ${name}\n${body}`);
  return path;
}
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env });
const readJson = <T>(p: string) => JSON.parse(readFileSync(p, "utf8")) as T;
const stages = (runDir: string) => new Set(readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as EpochMetric).stage));

/** The assistant study, made on first use; the teacher it trains serves the later studies (so each test also runs alone). */
const assistedShrink = once(async () => {
  const out = join(dir, "assisted");
  const r = cli(["shrink", config("assisted", STUDY + TEACHER), "--keep", "1", "--widths", "0.125,0.25", "--assistant", "--output", out]);
  assert.equal(r.status, 0, r.stderr);
  return { out, stdout: r.stdout, teacherOnnx: join(out, "trials", "teacher", "teacher.onnx") };
});

test("the assistant rung: no rung keeps 1.0 × a stronger teacher, so the largest is trained again through an assistant sized between them; its gain is measured", async () => {
  const { out, stdout } = await assistedShrink();
  const s = readJson<ShrinkResults>(join(out, "results.json"));
  assert.equal(s.chosen, undefined, `a 4-unit student does not reach the teacher's ${s.teacherValAccuracy}`);
  const a = s.assistant!;
  assert.ok(a && !("skipped" in a), JSON.stringify(a));
  assert.equal(a.rung, "w0.25", "the largest rung, none passing");
  // Between 128 and 4 hidden units, as kd.assistants: {count: 1} chooses: √(128 · 4) ≈ 23.
  assert.equal((a.assistant.layers[0] as { units: number }).units, 23);
  assert.equal(a.assistantParams, 784 * 23 + 23 + 23 * 10 + 10);
  const own = s.rungs.find((g) => g.id === "w0.25")!;
  assert.ok(Math.abs(a.gain - (a.valAccuracy - own.valAccuracy)) < 1e-12);
  assert.equal(a.passes, a.valAccuracy >= s.teacherValAccuracy);
  // The trial really distilled through an assistant stage; the rung's own trial did not.
  assert.ok(stages(join(out, "trials", "w0.25-ta")).has("assistant1"));
  assert.ok(!stages(join(out, "trials", "w0.25")).has("assistant1"));
  const html = readFileSync(join(out, "report.html"), "utf8");
  assert.match(html, /<th>with assistant<\/th>/);
  assert.match(html, new RegExp(`<tr data-rung="w0\\.25">.*<td class="assistant">${a.valAccuracy.toFixed(4)}`));
  assert.match(stdout, /assistant: w0\.25 through an assistant of 18295 parameters/);
});

test("distill shrink --depths --every-rung: six width × depth rungs by parameter count, each trained; the chosen is the first that keeps, the Pareto fronts are the undominated rungs, both charts drawn", async () => {
  const { teacherOnnx } = await assistedShrink();
  const out = join(dir, "depths");
  const r = cli(["shrink", config("depths", STUDY.replace("units: 16}, {type: relu}", "units: 16}, {type: relu}, {type: linear, units: 16}, {type: relu}") + `teacher: { onnx: ${JSON.stringify(teacherOnnx)} }\n`),
    "--keep", "0.9", "--widths", "0.5,1", "--depths", "0.5,1,2", "--every-rung", "--assistant-gap", "0.95", "--output", out]);
  assert.equal(r.status, 0, r.stderr);
  const s = readJson<ShrinkResults>(join(out, "results.json"));
  assert.deepEqual(s.ladder.map((l) => l.id), ["w0.5-d0.5", "w0.5-d1", "w0.5-d2", "w1-d0.5", "w1-d1", "w1-d2"]);
  assert.ok(s.ladder.every((l) => l.trained));
  assert.deepEqual(s.rungs.map((g) => g.id), s.ladder.map((l) => l.id));
  // The trained students have the parameters the ladder counted: depth really changed the model.
  for (const g of s.rungs) assert.equal(g.params, s.ladder.find((l) => l.id === g.id)!.params);
  const first = s.rungs.find((g) => g.passes);
  assert.equal(s.chosen?.id, first?.id);
  for (const g of s.rungs) {
    assert.equal(g.passes, g.valAccuracy >= 0.9 * s.teacherValAccuracy);
    const beaten = (cost: (x: typeof g) => number) => s.rungs.some((o) => o !== g && cost(o) <= cost(g) && o.valAccuracy >= g.valAccuracy && (cost(o) < cost(g) || o.valAccuracy > g.valAccuracy));
    assert.equal(g.pareto, !beaten((x) => x.params), g.id);
    assert.equal(g.latencyPareto, !beaten((x) => x.latencyP50Ms), g.id);
  }
  assert.ok(s.assistant && "skipped" in s.assistant && /not above --assistant-gap 0\.95/.test(s.assistant.skipped), JSON.stringify(s.assistant));
  const html = readFileSync(join(out, "report.html"), "utf8");
  assert.match(html, /"id":"size"/);
  assert.match(html, /"id":"latency"/);
  assert.equal((html.match(/label":"Pareto front"/g) ?? []).length, 2);
  assert.equal((html.match(/<tr[^>]* data-rung=/g) ?? []).length, 6);
});

test("shrink.models in the config: the listed models ordered by parameter count, bisection over them", async () => {
  const { teacherOnnx } = await assistedShrink();
  const out = join(dir, "models");
  const models = `
shrink:
  models:
    - { name: wide, model: { layers: [ {type: linear, units: 32}, {type: relu}, {type: linear, units: 10} ] } }
    - { name: cnn, model: { layers: [ {type: conv, filters: 4, kernel: 3}, {type: relu}, {type: maxpool, size: 2}, {type: flatten}, {type: linear, units: 10} ] } }
    - { name: narrow, model: { layers: [ {type: linear, units: 4}, {type: relu}, {type: linear, units: 10} ] } }
`;
  const r = cli(["shrink", config("models", STUDY + `teacher: { onnx: ${JSON.stringify(teacherOnnx)} }\n` + models), "--keep", "0.9", "--output", out]);
  assert.equal(r.status, 0, r.stderr);
  const s = readJson<ShrinkResults>(join(out, "results.json"));
  // narrow 3,190; cnn 40 + 4·13·13·10 + 10 = 6,810; wide 25,450.
  assert.deepEqual(s.ladder.map((l) => [l.name, l.params]), [["narrow", 3190], ["cnn", 6810], ["wide", 25450]]);
  for (const g of s.rungs) assert.equal(g.params, s.ladder.find((l) => l.id === g.id)!.params);
  assert.equal(s.rungs.length, s.ladder.filter((l) => l.trained).length);
  for (const g of s.rungs) assert.equal(g.passes, g.valAccuracy >= 0.9 * s.teacherValAccuracy);
  assertBisection(s);
  // Every rung has its row in the report: the trained with their figures, the others saying why not.
  const html = readFileSync(join(out, "report.html"), "utf8");
  assert.deepEqual([...html.matchAll(/<tr[^>]* data-rung="([^"]+)"/g)].map((m) => m[1]), s.ladder.filter((l) => l.trained).map((l) => l.id));
  assert.equal((html.match(/not trained \(bisection\)/g) ?? []).length, s.ladder.filter((l) => !l.trained).length);
});

test("the shrink examples load", () => {
  const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
  const c = loadConfig(join(root, "examples/shrink-models.yaml")) as ReturnType<typeof loadConfig> & { shrink?: { models: unknown[] } };
  assert.ok(c.shrink!.models.length >= 3);
  assert.ok(loadConfig(join(root, "examples/shrink-depth.yaml")).student.model.layers.some((l) => l.type === "conv"));
});

test("bad shrink input: one line naming the option or file and key, exit 2, nothing written", () => {
  const plain = config("plain", STUDY + TEACHER);
  const cases: Array<[string[], RegExp]> = [
    [[plain, "--keep", "0.9", "--depths", "0"], /^distill: --depths: expected depth multipliers > 0 separated by commas like 0\.5,1,2, got "0"$/],
    [[plain, "--keep", "0.9", "--depths", "x"], /^distill: --depths: expected depth multipliers > 0 separated by commas like 0\.5,1,2, got "x"$/],
    [[plain, "--keep", "0.9", "--depths", "1,,2"], /^distill: --depths: expected depth multipliers > 0/],
    [[plain, "--keep", "0.9", "--widths", "0.5,-1"], /^distill: --widths: expected width multipliers > 0 separated by commas like 0\.25,0\.5,1, got "0\.5,-1"$/],
    [[plain, "--keep", "0.9", "--assistant-gap", "2"], /^distill: --assistant-gap: expected an accuracy gap in \[0, 1\) like 0\.02, got "2"$/],
    [[plain, "--keep", "0.9", "--assistant", "--assistant-gap", "0.1"], /^distill: --assistant-gap: give --assistant \(always\) or --assistant-gap/],
    [[config("empty-models", STUDY + TEACHER + "shrink: { models: [] }\n"), "--keep", "0.9"], /empty-models\.yaml: shrink\.models: expected at least one model/],
    [[config("dup-models", STUDY + TEACHER + "shrink: { models: [ {name: a, model: {layers: [{type: linear, units: 10}]}}, {name: a, model: {layers: [{type: linear, units: 10}]}} ] }\n"), "--keep", "0.9"], /dup-models\.yaml: shrink\.models\[1\]\.name: the name "a" is used twice/],
    [[config("broken-model", STUDY + TEACHER + "shrink: { models: [ {name: huge, model: {layers: [{type: conv, filters: 4, kernel: 40}, {type: flatten}, {type: linear, units: 10}]}} ] }\n"), "--keep", "0.9"], /broken-model\.yaml: shrink\.models\[0\] \(huge\): /],
    [[config("models-widths", STUDY + TEACHER + "shrink: { models: [ {name: a, model: {layers: [{type: linear, units: 10}]}} ] }\n"), "--keep", "0.9", "--widths", "1,2"], /^distill: --widths: .*models-widths\.yaml lists its ladder in shrink\.models; give either the list or multipliers, not both$/],
    [[config("flat-student", STUDY.replace("[ {type: linear, units: 16}, {type: relu}, {type: linear, units: 10} ]", "[ {type: linear, units: 10} ]") + TEACHER), "--keep", "0.9", "--depths", "2"], /flat-student\.yaml: student\.model: no hidden linear or conv layer to scale/],
  ];
  for (const [args, pattern] of cases) {
    const out = join(dir, `bad-${args.join("-").replace(/\W/g, "")}`);
    const r = cli(["shrink", ...args, "--output", out]);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr.trim(), pattern);
    assert.ok(!existsSync(out), `${args.join(" ")}: nothing written`);
  }
});
