// The teacher cache (src/distill/model-cache.ts) with real `distill run` processes on a slice of
// MNIST: a second run with the same teacher trains no epoch of it, a changed teacher field trains
// again, teacher.cache: false opts out, a damaged entry is found and trained again with one
// warning, and two runs started at once on one teacher train it once.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { EpochMetric, RunResults } from "../src/eval/types.js";
import { decodeModel } from "../src/engine/onnx.js";
import { readCachedModel, type ModelCacheRecord } from "../src/distill/model-cache.js";
import { CliChild, once } from "./helpers/child.js";
import { cacheRunConfig } from "./helpers/cache-run.js";

const dir = mkdtempSync(join(tmpdir(), "distill-teacher-cache-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");

const config = (name: string, kd = "kd: { temperature: 4, alpha: 0.9 }") => cacheRunConfig(dir, name, kd);

const run = (name: string, cache: string, args: string[] = [], kd?: string) =>
  spawnSync(process.execPath, [CLI, "run", config(name, kd), "--quiet", "--output", join(dir, name), ...args], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: cache } });
const results = (name: string) => JSON.parse(readFileSync(join(dir, name, "results.json"), "utf8")) as RunResults;
const teacherEpochs = (name: string) => readFileSync(join(dir, name, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochMetric).filter((m) => m.stage === "teacher").length;
/** The first run's entry in the shared cache (later tests add others). */
const firstKey = () => results("first").teacherTraining!.cache!.key;
const entries = (cache: string) => (existsSync(join(cache, "teachers")) ? readdirSync(join(cache, "teachers")).sort() : []);
/** A model's weights by name (its metadata names the run that exported it). */
const weights = (file: string) => [...decodeModel(readFileSync(file)).initializers].map(([name, t]) => [name, t.dims, Array.from(t.data)]);
const REUSED = /^teacher: reused from the cache \((.+\/teacher\.onnx), trained \d{4}-\d\d-\d\d \d\d:\d\d in \d+\.\d s, validation accuracy \d+\.\d\d %\)$/m;

const cache = join(dir, "cache");
/** The first run of the teacher: trained and cached. */
const first = once(async () => {
  const r = run("first", cache);
  assert.equal(r.status, 0, r.stderr);
  return r;
});

test("a second run with the same teacher (another student and kd) reuses it: no teacher epoch, one line, the same file", async () => {
  const r1 = await first();
  assert.doesNotMatch(r1.stderr, REUSED);
  assert.equal(teacherEpochs("first"), 2);
  const a = results("first").teacherTraining!;
  assert.equal(a.source, "trained");
  assert.equal(a.epochs, 2);
  const [key] = entries(cache);
  assert.deepEqual(entries(cache), [key], "one entry, no lock or temporary file beside it");
  const record = JSON.parse(readFileSync(join(cache, "teachers", key!, "teacher.json"), "utf8")) as ModelCacheRecord;
  assert.deepEqual([record.key, record.epochs, record.history.length, record.validationAccuracy], [key, 2, 2, a.validationAccuracy]);
  assert.equal((record.fields["data"] as { train: { samples: number } }).train.samples, 1200);

  const r2 = run("second", cache, [], "kd: { temperature: 2, alpha: 0.5 }");
  assert.equal(r2.status, 0, r2.stderr);
  const line = REUSED.exec(r2.stderr);
  assert.ok(line, r2.stderr);
  assert.equal(line[1], join(cache, "teachers", key!, "teacher.onnx"));
  assert.equal(teacherEpochs("second"), 0, "metrics.jsonl holds no teacher epoch");
  assert.doesNotMatch(r2.stderr, /teacher epoch/);
  const b = results("second").teacherTraining!;
  assert.deepEqual(b, { ...a, source: "reused", cache: { key: key!, dir: join(cache, "teachers", key!) } }, "the training cost is the cached one's");
  assert.deepEqual(readFileSync(join(dir, "second", "teacher.onnx")), readFileSync(join(dir, "first", "teacher.onnx")));
  assert.deepEqual(readFileSync(join(dir, "second", "models", "teacher-s0.onnx")), readFileSync(join(dir, "first", "teacher.onnx")));
  // The same teacher file: its soft targets come from their cache too.
  const state = JSON.parse(readFileSync(join(dir, "second", "run.json"), "utf8")) as { softTargets: { computedSamples: number } };
  assert.equal(state.softTargets.computedSamples, 0);
  assert.match(readFileSync(join(dir, "second", "report.html"), "utf8"), /id="teacher-training">Reused from the teacher cache/);
});

test("a changed teacher field trains a new teacher; teacher.cache: false trains without touching the cache", async () => {
  await first();
  const before = entries(cache);
  const r = run("other-lr", cache, ["--set", "teacher.train.optimizer.lr=0.04"]);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, REUSED);
  assert.equal(teacherEpochs("other-lr"), 2);
  assert.equal(results("other-lr").teacherTraining!.source, "trained");
  const after = entries(cache);
  assert.equal(after.length, before.length + 1, "a second entry");

  const off = run("no-cache", cache, ["--set", "teacher.cache=false"]);
  assert.equal(off.status, 0, off.stderr);
  assert.doesNotMatch(off.stderr, REUSED);
  assert.equal(teacherEpochs("no-cache"), 2);
  assert.deepEqual(results("no-cache").teacherTraining!.cache, null);
  assert.deepEqual(entries(cache), after, "the cache is untouched");
  // Trained again from the same config and seed: the weights the cache holds (the file differs in the run's name only).
  assert.deepEqual(weights(join(dir, "no-cache", "teacher.onnx")), weights(join(dir, "first", "teacher.onnx")));

  const bad = spawnSync(process.execPath, [CLI, "run", config("bad-cache"), "--output", join(dir, "bad-cache"), "--set", `teacher=${JSON.stringify({ onnx: join(dir, "first", "teacher.onnx"), cache: false })}`], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: cache } });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr.trim(), /^distill: --set teacher=.*: teacher\.cache: only used with model/);
  assert.ok(!existsSync(join(dir, "bad-cache")));
});

test("a damaged cache entry (same size, or truncated) is found, reported once, and trained again", async () => {
  await first();
  const key = firstKey();
  const own = join(dir, "cache-damaged");
  mkdirSync(join(own, "teachers"), { recursive: true });
  // A copy of the first run's entry, then one byte flipped: the size is right, the digest is not.
  for (const f of ["teacher.onnx", "teacher.json"]) {
    mkdirSync(join(own, "teachers", key!), { recursive: true });
    writeFileSync(join(own, "teachers", key!, f), readFileSync(join(cache, "teachers", key!, f)));
  }
  const onnx = join(own, "teachers", key!, "teacher.onnx");
  const bytes = readFileSync(onnx);
  bytes[bytes.length - 9]! ^= 0xff;
  writeFileSync(onnx, bytes);
  assert.equal(readCachedModel(own, "teacher", key!).status, "damaged");
  const r = run("damaged", own);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.match(/warning: .*damaged cached teacher \(teacher\.onnx: checksum mismatch\); recomputing it/g)?.length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, REUSED);
  assert.equal(teacherEpochs("damaged"), 2);
  assert.equal(readCachedModel(own, "teacher", key!).status, "hit", "written whole again");
  assert.deepEqual(weights(onnx), weights(join(dir, "first", "teacher.onnx")));
  assert.equal(decodeModel(readFileSync(onnx)).metadata["distill.run"], "damaged", "the file is the retraining run's export");

  // Truncated (a copy cut short): caught by its size.
  writeFileSync(onnx, bytes.subarray(0, 1000));
  const read = readCachedModel(own, "teacher", key!);
  assert.equal(read.status, "damaged");
  assert.match((read as { why: string }).why, /teacher\.onnx has 1000 bytes where \d+ were recorded/);
});

test("two runs started at once on one teacher and one cache: it trains once, the other run waits and reuses it", async () => {
  await first();
  const key = firstKey();
  const shared = join(dir, "cache-twins");
  // This test process holds the entry's lock while both runs start, so both are certain to find it
  // taken; once both say they wait, the lock is let go and they meet each other on it.
  const lock = join(shared, "teachers", `${key}.lock`);
  mkdirSync(dirname(lock), { recursive: true });
  writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
  const twins = ["twin-a", "twin-b"].map((name) => new CliChild(["run", config(name), "--quiet", "--output", join(dir, name)], { ...process.env, DISTILL_CACHE: shared }));
  const waiting = /is training this teacher \(.*\); waiting for it/;
  for (const t of twins) await t.waitUntil(() => waiting.test(t.stderr), "the wait for the lock's owner");
  rmSync(lock);
  const exits = await Promise.all(twins.map((t) => t.exitWithin()));
  exits.forEach((e, i) => assert.equal(e.code, 0, twins[i]!.stderr));
  const sources = ["twin-a", "twin-b"].map((n) => results(n).teacherTraining!.source).sort();
  assert.deepEqual(sources, ["reused", "trained"]);
  assert.deepEqual(["twin-a", "twin-b"].map(teacherEpochs).sort(), [0, 2], "2 teacher epochs in all, in one of them");
  assert.deepEqual(readFileSync(join(dir, "twin-a", "teacher.onnx")), readFileSync(join(dir, "twin-b", "teacher.onnx")));
  assert.deepEqual(readdirSync(join(shared, "teachers")), [key], "one entry, no lock left");
  assert.deepEqual(readdirSync(join(shared, "teachers", key!)).sort(), ["teacher.json", "teacher.onnx"], "no temporary file left");
  assert.equal(readCachedModel(shared, "teacher", key!).status, "hit");
});
