// The package as a user meets it: the README's library example is examples/library.ts word for word
// and runs to the end; distill() validates its object like a YAML file; eval finds the dataset in the
// model's metadata and counts parameters as the report does; a finished run drops its checkpoints;
// the packed tarball carries the examples and the compiled library.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { distill, evaluate, headline, resume, RunAbortedError, shrink, tune, UserError, type DistillConfigInput, type RunResults } from "../src/index.js";
import type { Progress } from "../src/util/progress.js";
import { validationSize } from "../src/config/schema.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const dir = mkdtempSync(join(tmpdir(), "distill-library-"));

test("README's library section shows examples/library.ts exactly", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const example = readFileSync(join(root, "examples/library.ts"), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.includes(example), "README.md has a ```ts block equal to examples/library.ts");
});

test("the library example runs: a distillation from an object, then evaluate() on its student", () => {
  const runDir = join(dir, "example-run");
  const r = spawnSync(process.execPath, [join(root, "dist/examples/library.js"), runDir], {
    cwd: root, encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") },
  });
  assert.equal(r.status, 0, r.stderr);
  const results = JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as RunResults;
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "baseline", "student"]);
  const student = results.models.find((m) => m.role === "student")!;
  assert.match(r.stdout, new RegExp(`student: ${student.summary.errors.mean} errors of 1000`));
  // The paired gain it prints is the one the report's headline computes from results.json.
  const gain = headline(results).baseline!.errors;
  assert.equal(gain.n, 5);
  assert.ok(r.stdout.includes(`distilled − baseline: ${gain.mean.toFixed(1)} errors, 95 % interval [${gain.ci95!.map((x) => x.toFixed(1)).join(", ")}]`), r.stdout);
  // evaluate() read the dataset from the metadata and counts parameters like the run did.
  const line = /student on 500 test images: accuracy (\d\.\d+), (\d+) parameters/.exec(r.stdout);
  assert.ok(line, r.stdout);
  assert.equal(Number(line[2]), student.perSeed[0]!.params);
  assert.ok(Number(line[1]) > 0.5, "a trained student, not chance");
  // Finished: its checkpoints are gone (keepCheckpoints defaults to false), its models are not.
  assert.equal(existsSync(join(runDir, "checkpoints")), false);
  assert.ok(existsSync(join(runDir, "models", "student-s0.onnx")));
});

test("distill() rejects a bad object like a bad YAML file: a UserError naming the key, nothing written", async () => {
  const output = join(dir, "never");
  await assert.rejects(
    // The config is typed: the compiler refuses this inline object (the build fails if it accepts it);
    // at run time the schema refuses it too, for objects the compiler never saw.
    // @ts-expect-error units must be a number
    distill({ name: "x", data: { dataset: "mnist" }, teacher: { onnx: "t.onnx" }, student: { model: { layers: [{ type: "linear", units: "ten" }] } } }, { output, where: "my-config" }),
    (e: unknown) => e instanceof UserError && /^my-config: student\.model\.layers\[0\]\.units: /.test(e.message),
  );
  assert.equal(existsSync(output), false);
});

test("aborting distill() stops at a safe point: a RunAbortedError naming the resume, the caller's process goes on, resume() finishes it", async () => {
  const output = join(dir, "aborted");
  const cacheDir = join(dir, "cache");
  const controller = new AbortController();
  const sigintListeners = process.listenerCount("SIGINT");
  const listenersDuringRun: number[] = [];
  // Abort as the teacher's first epoch ends; the run must stop before its next optimizer step.
  const progress: Progress = {
    log: () => undefined,
    task: (label) => ({
      update: () => undefined,
      finish: () => {
        listenersDuringRun.push(process.listenerCount("SIGINT"), process.listenerCount("SIGTERM"));
        if (label.startsWith("teacher epoch 1/")) controller.abort("test");
      },
    }),
  };
  const train = { epochs: 2, optimizer: { kind: "adam" as const, lr: 0.003 } };
  const config = {
    name: "aborted", data: { dataset: "mnist" as const, trainLimit: 1200, testLimit: 300, validation: 200 },
    teacher: { model: { layers: [{ type: "linear" as const, units: 32 }, { type: "relu" as const }, { type: "linear" as const, units: 10 }] }, train },
    student: { model: { layers: [{ type: "linear" as const, units: 10 }] }, train },
    kd: { temperature: 4, alpha: 0.9 },
  };
  await assert.rejects(distill(config, { output, cacheDir, progress, signal: controller.signal }), (e: unknown) => {
    assert.ok(e instanceof RunAbortedError, String(e));
    assert.equal(e.folder, output);
    assert.equal(e.resumeCommand, `distill resume ${output}`);
    assert.equal(e.reason, "test");
    return true;
  });
  // Signals are the caller's: the library installed no handler of its own while it ran.
  assert.ok(listenersDuringRun.length > 0 && listenersDuringRun.every((n) => n === sigintListeners), `SIGINT/SIGTERM listeners during the run: ${listenersDuringRun}`);
  // Stopped in the teacher's second epoch: its first is checkpointed, nothing after it exists.
  assert.ok(existsSync(join(output, "checkpoints", "teacher-s0.ckpt")));
  assert.equal(existsSync(join(output, "stages", "teacher-s0.json")), false);
  // This process is alive (this line runs), and the folder resumes to the end.
  const { results } = await resume(output, { cacheDir });
  assert.deepEqual(results.models.map((m) => m.role), ["teacher", "baseline", "student"]);
});

test("tune() and shrink() take a config object like distill(), and check their options as the CLI does", async () => {
  const log = () => undefined;
  const base: DistillConfigInput = {
    name: "object-tune", data: { dataset: "mnist", trainLimit: 1000, testLimit: 200, validation: 200 },
    teacher: { onnx: join(dir, "example-run", "teacher.onnx") },
    student: { model: { layers: [{ type: "linear", units: 10 }] }, train: { epochs: 1, optimizer: { kind: "adam", lr: 0.003 } } },
    kd: { temperature: 4, alpha: 0.9 },
  };
  const none = join(dir, "never-searched");
  await assert.rejects(tune(base, { output: none, log }), /config: tune: required by distill tune/);
  await assert.rejects(tune({ ...base, tune: { space: { "kd.temperature": [2] } } }, { output: none, concurrency: 0, log }), { message: "concurrency: expected a positive integer, got 0" });
  await assert.rejects(shrink(base, { keep: 5, output: none, log }), { message: "keep: expected a fraction in (0, 1] like 0.99, got 5" });
  await assert.rejects(shrink(base, { keep: 0.9, widths: [0, 1], output: none, log }), /widths: expected a non-empty list of positive multipliers/);
  assert.equal(existsSync(none), false, "nothing written");
  const results = await tune({ ...base, tune: { space: { "kd.temperature": [2] }, seeds: 1 } }, { output: join(dir, "object-tune"), concurrency: 1, cacheDir: join(dir, "cache"), log });
  assert.equal(results.configPath, "config");
  assert.deepEqual(results.winner.setting, { "kd.temperature": 2 });
});

test("the validation split scales down with trainLimit unless set", () => {
  assert.equal(validationSize({ validation: null } as never, 60000), 5000);
  assert.equal(validationSize({ validation: null } as never, 2000), 166);
  assert.equal(validationSize({ validation: 300 } as never, 2000), 300);
});

test("evaluate() without --data and without a dataset in the metadata says to name one", async () => {
  const runDir = join(dir, "example-run");
  // Strip the metadata by re-encoding: a model from elsewhere names no dataset.
  const { decodeModel } = await import("../src/engine/onnx.js");
  const bytes = readFileSync(join(runDir, "student.onnx"));
  assert.equal(decodeModel(bytes).metadata["distill.dataset"], "mnist");
  // Both keys that name it: distill.dataset and distill.data (every model distill writes has both).
  const stripped = Buffer.from(bytes.toString("latin1").replaceAll("distill.data", "distill.xxxx"), "latin1");
  await assert.rejects(evaluate(stripped), /metadata names no data distill can load.*--data mnist\|fashion-mnist/);
  const m = await evaluate(stripped, { data: "mnist", limit: 200 });
  assert.equal(m.total, 200);
});

test("distill eval writes through the CLI's output, not to the process's stdout", async () => {
  const { runCli } = await import("../src/cli/args.js");
  const out: string[] = [];
  const err: string[] = [];
  const io = { writeOut: (t: string) => void out.push(t), writeErr: (t: string) => void err.push(t) };
  assert.equal(await runCli(["node", "distill", "eval", join(dir, "example-run", "student.onnx"), "--data", "mnist", "--limit", "200", "--json"], io), 0, err.join(""));
  const line = JSON.parse(out.join("")) as { total: number; data: string };
  assert.deepEqual([line.total, line.data], [200, "mnist"]);
});

test("install: README opens with it and a table of contents; no npm config that npm 11 calls unknown; tarballs ignored", () => {
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const headings = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
  assert.equal(headings[0], "Install");
  assert.match(readme.slice(0, readme.indexOf("## Install")), /\*\*Contents:\*\*.*\(#install\)/s);
  assert.match(readme, /npm pack/);
  // onnxruntime-node reads ONNXRUNTIME_NODE_INSTALL itself; as an .npmrc key or npm flag npm 11 warns.
  for (const f of [".npmrc", "README.md", ".ci/run"]) {
    const text = existsSync(join(root, f)) ? readFileSync(join(root, f), "utf8") : "";
    assert.doesNotMatch(text, /(^|--)onnxruntime-node-install\s*=/m, f);
  }
  assert.match(readFileSync(join(root, ".ci/run"), "utf8"), /^ONNXRUNTIME_NODE_INSTALL=skip npm ci$/m);
  const ignored = spawnSync("git", ["check-ignore", "-q", "distill-0.1.0.tgz"], { cwd: root });
  assert.equal(ignored.status, 0, "npm pack's tarball is git-ignored");
  assert.match(readFileSync(join(root, "examples/sentiment.yaml"), "utf8"), /npm install sentiment/);
});

test("npm pack ships the compiled library, its types and the examples", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
  const files = (JSON.parse(out) as [{ files: { path: string }[] }])[0].files.map((f) => f.path);
  for (const f of ["dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "examples/demo.yaml", "examples/library.ts", "README.md"])
    assert.ok(files.includes(f), `${f} in the tarball`);
  assert.ok(!files.some((f) => f.startsWith("dist/test/")), "no tests in the tarball");
});

test("require() loads the ESM package on Node ≥ 20.19 (require(esm))", (t) => {
  const [major, minor] = process.versions.node.split(".").map(Number) as [number, number];
  if (major === 20 && minor < 19) return t.skip(`Node ${process.versions.node} has no require(esm); the package is ESM-only there`);
  const r = spawnSync(process.execPath, ["-e", "const d = require('distill'); if (typeof d.distill !== 'function') process.exit(3)"], { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
});
