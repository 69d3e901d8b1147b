// The label-only baseline in the model cache (src/distill/model-cache.ts, src/run/student-stage.ts)
// with real `distill run` processes on a slice of MNIST: a run with another kd reuses the first
// run's baseline (same weights, same history, this run's name in the file), what training it again
// would give bit for bit; a changed student recipe or another seed trains a new entry;
// student.cacheBaseline: false trains it here and leaves the cache alone; a bad value is refused.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { EpochMetric, RunResults } from "../src/eval/types.js";
import { decodeModel } from "../src/engine/onnx.js";
import { readCachedModel } from "../src/distill/model-cache.js";
import { cacheRunConfig } from "./helpers/cache-run.js";

const dir = mkdtempSync(join(tmpdir(), "distill-baseline-cache-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const cache = join(dir, "cache");

const config = (name: string, kd: string) => cacheRunConfig(dir, name, kd, 2);

const run = (name: string, args: string[] = [], kd = "kd: { temperature: 4, alpha: 0.9 }") =>
  spawnSync(process.execPath, [CLI, "run", config(name, kd), "--quiet", "--output", join(dir, name), ...args], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: cache } });
const results = (name: string) => JSON.parse(readFileSync(join(dir, name, "results.json"), "utf8")) as RunResults;
const baselineEpochs = (name: string) => readFileSync(join(dir, name, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochMetric).filter((m) => m.stage === "baseline");
const entries = () => (existsSync(join(cache, "baselines")) ? readdirSync(join(cache, "baselines")).sort() : []);
const weights = (file: string) => [...decodeModel(readFileSync(file)).initializers].map(([name, t]) => [name, t.dims, Array.from(t.data)]);
const baselineFile = (name: string, seed = 0) => join(dir, name, "models", `baseline-s${seed}.onnx`);
const baselineErrors = (name: string) => results(name).models.find((m) => m.role === "baseline")!.perSeed.map((s) => s.errors);
const REUSED = /^baseline seed (\d+): reused from the cache \((.+\/baseline\.onnx), trained \d{4}-\d\d-\d\d \d\d:\d\d in \d+\.\d s, validation accuracy \d+\.\d\d %\)$/m;

test("a run with another kd reuses the baseline: no epoch trained, the same weights and history, its own name in the file", () => {
  const a = run("first");
  assert.equal(a.status, 0, a.stderr);
  assert.doesNotMatch(a.stderr, REUSED);
  const [key] = entries();
  assert.deepEqual(entries(), [key], "one entry, no lock beside it");
  const hit = readCachedModel(cache, "baseline", key!);
  assert.equal(hit.status, "hit");
  const record = (hit as { value: { record: { history: EpochMetric[]; fields: Record<string, unknown> } } }).value.record;
  assert.equal(record.fields["role"], "baseline");
  assert.deepEqual(record.history, baselineEpochs("first"));

  const b = run("second", [], "kd: { temperature: 2, alpha: 0.5 }");
  assert.equal(b.status, 0, b.stderr);
  const line = REUSED.exec(b.stderr);
  assert.ok(line, b.stderr);
  assert.deepEqual([line[1], line[2]], ["0", join(cache, "baselines", key!, "baseline.onnx")]);
  assert.doesNotMatch(b.stderr, /baseline epoch/);
  assert.deepEqual(baselineEpochs("second"), baselineEpochs("first"), "metrics.jsonl carries the cached history (the curves and the checks read it)");
  assert.deepEqual(weights(baselineFile("second")), weights(baselineFile("first")));
  assert.equal(decodeModel(readFileSync(baselineFile("second"))).metadata["distill.run"], "second");
  assert.deepEqual(baselineErrors("second"), baselineErrors("first"));
  // The distilled students differ (another kd): only the baseline was shared.
  assert.notDeepEqual(weights(join(dir, "second", "models", "student-s0.onnx")), weights(join(dir, "first", "models", "student-s0.onnx")));
});

test("student.cacheBaseline: false trains it here, bit-identical to the cached one, and leaves the cache alone", () => {
  const before = entries();
  assert.equal(before.length, 1, "the first test's entry");
  const r = run("no-cache", ["--set", "student.cacheBaseline=false"]);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, REUSED);
  assert.equal(baselineEpochs("no-cache").length, 2);
  assert.deepEqual(entries(), before);
  assert.deepEqual(weights(baselineFile("no-cache")), weights(baselineFile("first")), "what the cache returns is what training gives");
  assert.deepEqual(baselineErrors("no-cache"), baselineErrors("first"));
});

test("another student recipe or another seed trains a new entry; a bad cacheBaseline is refused with one line and nothing written", () => {
  const before = entries();
  const lr = run("other-lr", ["--set", "student.train.optimizer.lr=0.04"]);
  assert.equal(lr.status, 0, lr.stderr);
  assert.doesNotMatch(lr.stderr, REUSED);
  assert.equal(entries().length, before.length + 1);
  const seeds = run("two-seeds", ["--set", "seeds=[0,1]"]);
  assert.equal(seeds.status, 0, seeds.stderr);
  assert.deepEqual([...seeds.stderr.matchAll(new RegExp(REUSED.source, "gm"))].map((m) => m[1]), ["0"], "seed 0 reused, seed 1 trained");
  assert.equal(entries().length, before.length + 2);
  assert.deepEqual(weights(baselineFile("two-seeds")), weights(baselineFile("first")));

  const bad = run("bad", ["--set", "student.cacheBaseline=\"yes\""]);
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr.trim(), /^distill: .*student\.cacheBaseline: expected true or false/);
  assert.equal(bad.stderr.trim().split("\n").length, 1);
  assert.ok(!existsSync(join(dir, "bad")));
});
