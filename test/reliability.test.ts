// Faults a long-running, shared tool meets, each with real processes, files and signals: inputs that
// used to end as "internal error", two runs sharing one soft-target cache, a corrupted cache file,
// a write limit hit mid-run, SIGTERM, and files written by another version of distill.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Graph } from "../src/engine/graph.js";
import { encodeModel } from "../src/engine/onnx.js";
import * as F from "../src/engine/functional.js";
import { buildModel } from "../src/nn/spec.js";
import { exportOnnx } from "../src/nn/model.js";
import { readCheckpoint } from "../src/distill/checkpoint.js";
import { cachedPayload, readCacheFile } from "../src/util/cache-file.js";
import { UserError } from "../src/errors.js";
import { CliChild, once } from "./helpers/child.js";

const dir = mkdtempSync(join(tmpdir(), "distill-faults-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");

function config(name: string, extra = ""): string {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `
name: ${name}
seeds: 1
data: { dataset: mnist, trainLimit: 2000, validation: 300, testLimit: 500 }
teacher:
  model: { layers: [ {type: linear, units: 32}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 2, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
student:
  model: { layers: [ {type: linear, units: 64}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 2, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 4, alpha: 0.9 }
${extra}`);
  return path;
}

function cli(args: string[], opts: { cache?: string; cwd?: string } = {}) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: opts.cwd, env: { ...process.env, DISTILL_CACHE: opts.cache ?? join(dir, "cache") } });
}

/** Exit 2 with the error as one line: the only line, or (after --quiet's task lines) the last. */
function oneLineExit2(r: { status: number | null; stderr: string }, pattern: RegExp, afterProgress = false): void {
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split("\n");
  if (!afterProgress) assert.equal(lines.length, 1, r.stderr);
  assert.equal(lines.filter((l) => l.startsWith("distill: ")).length, 1, r.stderr);
  assert.doesNotMatch(r.stderr, /internal error/);
  assert.match(lines[lines.length - 1]!, pattern);
}

/**
 * A frozen teacher file (untrained weights are enough to count forward passes; runs with it set
 * teacher.allowChanceAccuracy, as it scores at chance).
 */
function teacherFile(name: string, nan = false): string {
  const path = join(dir, `${name}.onnx`);
  if (nan) {
    const g = new Graph();
    const x = g.input("input", ["batch", 784]);
    const w = g.initializer("w", { dtype: "float32", shape: [784, 10], data: new Float32Array(7840).fill(NaN) });
    g.output(F.matmul(x, w), "logits");
    writeFileSync(path, encodeModel(g));
  } else {
    const m = buildModel({ input: "flat", layers: [{ type: "linear", units: 10 }] }, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
    writeFileSync(path, exportOnnx(m, m.initParameters(0)));
  }
  return path;
}

const runState = (runDir: string) => JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as { softTargets?: { computedSamples: number; key: string } };

test("inputs that used to be internal errors: duplicate layer names, a NaN teacher, --output on a file, a bad --set", () => {
  let r = cli(["run", config("dup", ""), "--output", join(dir, "dup"), "--set", "student.model.layers[0].name=fc", "--set", "student.model.layers[2].name=fc"]);
  oneLineExit2(r, /dup\.yaml: student\.model: layers\[2\]: the name "fc" is already used by layers\[0\]$/);
  assert.ok(!existsSync(join(dir, "dup")));

  // The NaN teacher fails while labelling; nothing stays behind, so the same command with a good
  // teacher is not refused as "already exists".
  const out = join(dir, "nan-teacher");
  r = cli(["run", config("nan"), "--quiet", "--output", out, "--set", `teacher=${JSON.stringify({ onnx: teacherFile("nan", true) })}`]);
  oneLineExit2(r, /nan\.onnx: the teacher's output logits is NaN \(not a finite logit\) for training example \d+; fix or replace the teacher$/);
  assert.ok(!existsSync(out), "no run folder (config, state, copied teacher) left behind");

  const notes = join(dir, "notes.txt");
  writeFileSync(notes, "mine");
  r = cli(["run", config("notes"), "--output", notes]);
  oneLineExit2(r, /notes\.txt: exists and is not a folder/);
  assert.equal(readFileSync(notes, "utf8"), "mine");
  r = cli(["run", config("notes"), "--output", join(notes, "sub")]);
  oneLineExit2(r, /notes\.txt\/sub: cannot mkdir: a part of this path is a file, not a folder \(ENOTDIR\)$/);

  // A bad value from the command line names the command line, not the YAML file.
  r = cli(["run", config("setbad"), "--set", "kd.temperature=-1"]);
  oneLineExit2(r, /^distill: --set kd\.temperature=-1: kd\.temperature: expected a number > 0, got -1$/);

  // A relative data folder is named as typed.
  r = cli(["run", config("reldata"), "--output", join(dir, "reldata"), "--set", "data.dir=no-such-data"], { cwd: dir });
  oneLineExit2(r, /^distill: \S*\/no-such-data: dataset folder not found/);
});

test("two runs started at once on one teacher and one cache: both finish, the teacher labels the transfer set once", async () => {
  const cache = join(dir, "shared-cache");
  const teacher = teacherFile("shared");
  const sets = ["--set", `teacher=${JSON.stringify({ onnx: teacher, allowChanceAccuracy: true })}`, "--set", "student.train.epochs=1", "--set", "data.trainLimit=6000"];
  // Which cache file the runs will want: a labelling pass of the same teacher and data into a scratch cache.
  const probeCache = join(dir, "shared-probe");
  const probe = cli(["label", config("twin-probe"), "--quiet", "--cache-dir", probeCache, ...sets.slice(0, 2), ...sets.slice(4)]);
  assert.equal(probe.status, 0, probe.stderr);
  const [chunk] = readdirSync(join(probeCache, "soft-targets"));
  // This test process holds that file's lock while both runs start, so both are certain to find it
  // taken; once both say they wait, the lock is let go and they meet each other on it.
  const lock = join(cache, "soft-targets", `${chunk}.lock`);
  mkdirSync(dirname(lock), { recursive: true });
  writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }));
  const twins = ["twin-a", "twin-b"].map((name) => new CliChild(["run", config(name), "--quiet", "--output", join(dir, name), ...sets], { ...process.env, DISTILL_CACHE: cache }));
  const waiting = /is computing these soft targets; waiting for it/;
  for (const t of twins) await t.waitUntil(() => waiting.test(t.stderr), "the wait for the lock's owner");
  rmSync(lock);
  const [a, b] = await Promise.all(twins.map((t) => t.exitWithin()));
  assert.equal(a!.code, 0, twins[0]!.stderr);
  assert.equal(b!.code, 0, twins[1]!.stderr);
  const sa = runState(join(dir, "twin-a")).softTargets!, sb = runState(join(dir, "twin-b")).softTargets!;
  assert.equal(sa.key, sb.key);
  assert.deepEqual([sa.computedSamples, sb.computedSamples].sort((x, y) => x - y), [0, 5700], "5,700 transfer samples labelled once in all, by one of them");
  const files = readdirSync(join(cache, "soft-targets"));
  assert.deepEqual(files, [chunk], "one cache file (5,700 samples are one chunk), no lock or temporary file left");
  assert.equal(readCacheFile(join(cache, "soft-targets", chunk!), 5700 * 40).status, "hit");
});

test("the cache lock: a live owner is waited for, a dead owner's lock (kill -9) is taken over", async () => {
  const file = join(dir, "lock-test", "x.bin");
  mkdirSync(dirname(file), { recursive: true });
  const payload = new Uint8Array([1, 2, 3, 4]);
  // Live owner: this process. The waiter must not compute; it gets what the owner writes.
  writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.pid, host: (await import("node:os")).hostname(), since: "now" }));
  let waits = 0;
  const waiting = cachedPayload(file, 4, async () => new Uint8Array([9, 9, 9, 9]), { pollMs: 20, onWait: () => waits++ });
  await new Promise((r) => setTimeout(r, 150));
  const { writeCacheFile } = await import("../src/util/cache-file.js");
  writeCacheFile(file, payload);
  (await import("node:fs")).rmSync(`${file}.lock`);
  const got = await waiting;
  assert.equal(got.computed, false);
  assert.deepEqual([...got.payload], [1, 2, 3, 4]);
  assert.ok(waits > 0, "it waited");

  // Dead owner: a process that is gone (it exited; its pid no longer runs).
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  const file2 = join(dir, "lock-test", "y.bin");
  writeFileSync(`${file2}.lock`, JSON.stringify({ pid: Number(dead.stdout), host: (await import("node:os")).hostname(), since: "then" }));
  const taken = await cachedPayload(file2, 4, async () => payload, { pollMs: 20 });
  assert.equal(taken.computed, true);
  assert.ok(!existsSync(`${file2}.lock`));
});

test("a same-size corrupted cache file is detected, reported once as a warning, and recomputed", () => {
  const cache = join(dir, "corrupt-cache");
  const teacher = teacherFile("corrupt");
  const args = (name: string) => ["run", config(name), "--quiet", "--output", join(dir, name), "--set", `teacher=${JSON.stringify({ onnx: teacher, allowChanceAccuracy: true })}`, "--set", "student.train.epochs=1"];
  let r = cli(args("corrupt-1"), { cache });
  assert.equal(r.status, 0, r.stderr);
  // 1,700 transfer samples: one chunk, one file.
  const [chunk] = readdirSync(join(cache, "soft-targets"));
  const file = join(cache, "soft-targets", chunk!);
  const bytes = readFileSync(file);
  bytes[bytes.length - 5]! ^= 0xff; // one payload byte, same size
  writeFileSync(file, bytes);
  r = cli(args("corrupt-2"), { cache });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr.match(/warning: .*damaged cache file \(checksum mismatch\); recomputing it/g)?.length, 1, r.stderr);
  assert.equal(runState(join(dir, "corrupt-2")).softTargets!.computedSamples, 1700);
  assert.equal(readCacheFile(file, 1700 * 40).status, "hit", "rewritten whole");
});

test("a write limit hit mid-run (ulimit -f): one line naming the file, the finished teacher kept, resume continues once space is back", () => {
  const runDir = join(dir, "full-disk");
  // 300 KiB: the teacher's checkpoints (25k parameters + momentum ≈ 200 KB) fit, the student's (51k ≈ 400 KB) do not.
  const r = spawnSync("bash", ["-c", `ulimit -f 300; exec "${process.execPath}" "${CLI}" run "${config("fulldisk")}" --quiet --output "${runDir}"`], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
  oneLineExit2(r, /checkpoints\/.*baseline-s0\.ckpt.*: cannot write: file too large for this process's limit \(ulimit -f\) or the file system; raise it and resume \(EFBIG\)$/, true);
  const teacherRecord = join(runDir, "stages", "teacher-s0.json");
  assert.ok(existsSync(teacherRecord), "the finished teacher stage is kept");
  const historyOf = () => (JSON.parse(readFileSync(teacherRecord, "utf8")) as { history: unknown[] }).history;
  const before = historyOf();
  const teacherBytes = readFileSync(join(runDir, "models", "teacher-s0.onnx"));
  assert.deepEqual(readdirSync(join(runDir, "checkpoints")).filter((f) => f.endsWith(".tmp") || f.startsWith(".")), [], "no half-written file");
  const resumed = cli(["resume", runDir, "--quiet"]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.ok(existsSync(join(runDir, "results.json")));
  // Retraining would have rewritten the epoch timings and the model: both are as they were.
  assert.deepEqual(historyOf(), before, "the teacher was not trained again");
  assert.deepEqual(readFileSync(join(runDir, "models", "teacher-s0.onnx")), teacherBytes);
});

/**
 * `distill run` held after the teacher's first of 2 epochs (test-only barrier), then sent SIGTERM as
 * Docker, Kubernetes or CI stop a job; a copy of the stopped folder is kept for the version test.
 */
const terminatedRun = once(async () => {
  const runDir = join(dir, "sigterm");
  // Its own cache: the write-limit test's run has put this teacher in the shared one (no epoch would run).
  const child = new CliChild(["run", config("sigterm"), "--quiet", "--output", runDir], { ...process.env, DISTILL_CACHE: join(dir, "cache-sigterm"), DISTILL_TEST_PAUSE_AFTER_EPOCH: "teacher-s0.ckpt:1" });
  await child.waitForLine(/^distill-test: paused after teacher-s0\.ckpt epoch 1$/);
  child.process.kill("SIGTERM");
  const exit = await child.exitWithin();
  const stopped = join(dir, "sigterm-stopped");
  cpSync(runDir, stopped, { recursive: true });
  return { runDir, stopped, exit, stderr: child.stderr };
});

test("SIGTERM stops like Ctrl-C: exit 143, the resume command, nothing half-written; the resume finishes the run", async () => {
  const { runDir, exit, stderr } = await terminatedRun();
  assert.equal(exit.code, 143, stderr);
  assert.match(stderr, /terminated; continue with: distill resume /);
  const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [e.name]));
  assert.deepEqual(walk(runDir).filter((f) => f.endsWith(".tmp")), []);
  assert.ok(readCheckpoint(join(runDir, "checkpoints", "teacher-s0.ckpt")), "the checkpoint reads back whole");
  assert.ok(!existsSync(join(runDir, "results.json")));
  const r = cli(["resume", runDir, "--quiet"], { cache: join(dir, "cache-sigterm") });
  assert.equal(r.status, 0, r.stderr);
  // The teacher's 2 epochs and both students' 2 each, every epoch once: the interrupted one is not redone.
  const epochs = readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => { const m = JSON.parse(l) as { stage: string; epoch: number }; return `${m.stage}${m.epoch}`; });
  assert.deepEqual(epochs, ["teacher1", "teacher2", "baseline1", "baseline2", "student1", "student2"]);
});

test("files from another version of distill are refused by name, never misread", async () => {
  const runDir = (await terminatedRun()).stopped; // a resumable run folder
  const ckpt = join(runDir, "checkpoints", "teacher-s0.ckpt");
  const bytes = readFileSync(ckpt);
  const future = join(dir, "future.ckpt");
  writeFileSync(future, Buffer.concat([Buffer.from("DSTLCKP2", "latin1"), bytes.subarray(8)]));
  assert.throws(() => readCheckpoint(future), (e: unknown) => e instanceof UserError && /checkpoint format 2 was written by another version of distill; this one reads format 1/.test(e.message));

  const statePath = join(runDir, "run.json");
  const state = JSON.parse(readFileSync(statePath, "utf8")) as Record<string, unknown>;
  assert.equal(state["formatVersion"], 1);
  writeFileSync(statePath, JSON.stringify({ ...state, formatVersion: 2, codeVersion: "9.9.9" }));
  const r = cli(["resume", runDir]);
  oneLineExit2(r, /run\.json: run folder format 2 was written by distill 9\.9\.9; this distill reads format 1/);
});
