// Every shipped example runs end to end with the command its header gives (`distill run`, `tune` or
// `shrink`), at a tiny budget set from the command line (a few hundred images, one epoch, one
// seed) into a temporary folder, with the working directory at the repository root as a user's
// would be: a renamed key, a stale value or a path the code no longer reads is a broken README line.
// Files an example expects the user to make first (a CSV table, PNG folders, a teacher .onnx, a
// file of soft targets) are made here the way its header says, small. Examples that need optional
// data (Fashion-MNIST from Debian, the sentiment package's texts) skip locally, saying so, and
// fail under CI=true when it is missing.

import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import "../src/distill/methods/index.js";
import { loadConfig, loadRunConfig } from "../src/config/load.js";
import type { Seq2SeqConfig } from "../src/config/seq2seq.js";
import { Graph } from "../src/engine/graph.js";
import { encodeModel } from "../src/engine/onnx.js";
import * as F from "../src/engine/functional.js";
import { exportOnnx } from "../src/nn/model.js";
import { Rng } from "../src/util/random.js";
import { buildModel } from "../src/nn/spec.js";
import type { RunResults } from "../src/eval/types.js";
import { CLI } from "./helpers/child.js";
import { fashionMnistMissing, lacks, sentimentMissing } from "./helpers/optional.js";

const root = join(import.meta.dirname, "..", "..");
const examples = join(root, "examples");
const dir = mkdtempSync(join(tmpdir(), "distill-examples-"));
const env = { ...process.env, DISTILL_CACHE: join(dir, "cache"), DISTILL_THREADS: "1" };
const TEST_LIMIT = 100;

function distill(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd: root, env });
}
function node(script: string, args: string[]) {
  const r = spawnSync(process.execPath, [join(root, "dist", "examples", script), ...args], { encoding: "utf8", cwd: root, env });
  assert.equal(r.status, 0, r.stderr);
}

/**
 * What an example needs made before it runs, made small; given the example's tiny-budget --set
 * lines, returns its own extra ones.
 */
const prepared = new Map<string, (tiny: string[]) => string[]>();

/** A tiny flat-MNIST teacher (a linear layer), for the examples that point at a teacher file. */
function mnistTeacher(): string {
  const path = join(dir, "teacher.onnx");
  if (!existsSync(path)) {
    const m = buildModel({ input: "flat", layers: [{ type: "linear", units: 10 }] }, [..."0123456789"], { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
    writeFileSync(path, exportOnnx(m, m.initParameters(0)));
  }
  return path;
}

/** "Exported from PyTorch", as examples/foreign-teacher.yaml describes: pixel_values [N, 28, 28, 1] normalised, softmax → probs. */
function foreignTeacher(): string {
  const g = new Graph();
  const x = g.input("pixel_values", ["N", 28, 28, 1]);
  const rng = new Rng(3);
  const w = g.initializer("fc.weight", { dtype: "float32", shape: [784, 10], data: Float32Array.from({ length: 7840 }, () => rng.uniform(-0.1, 0.1)) });
  g.output(F.softmax(F.matmul(F.reshape(x, [-1, 784]), w), -1), "probs");
  const path = join(dir, "foreign.onnx");
  writeFileSync(path, encodeModel(g));
  return path;
}

const set = (key: string, value: unknown) => ["--set", `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`];

prepared.set("digits-csv.yaml", () => {
  const data = join(dir, "data", "digits-csv");
  node("write-digits-csv.js", [data, "--limit", "600"]);
  return [...set("data.train", join(data, "train.csv")), ...set("data.test", join(data, "test.csv"))];
});
prepared.set("fashion-folder.yaml", () => {
  const data = join(dir, "data", "fashion-folder");
  node("write-image-folders.js", ["fashion-mnist", data, "--limit", "400"]);
  return [...set("data.train", join(data, "train")), ...set("data.test", join(data, "test"))];
});
// The untrained teachers below score at chance, which stops a run unless it is allowed.
const allowChance = set("teacher.allowChanceAccuracy", true);
prepared.set("foreign-teacher.yaml", () => [...set("teacher.onnx", foreignTeacher()), ...allowChance]);
prepared.set("label-sharded.yaml", (tiny) => {
  // The header's commands: two shards labelled into two caches, merged by copying into the run's.
  const teacher = [...set("teacher.onnx", mnistTeacher()), ...allowChance];
  const labelled = join(env.DISTILL_CACHE, "soft-targets");
  mkdirSync(labelled, { recursive: true });
  for (const shard of ["0/2", "1/2"]) {
    const cache = join(dir, `shard-${shard[0]}`);
    const r = distill(["label", join(examples, "label-sharded.yaml"), "--shard", shard, "--cache-dir", cache, "--quiet", ...tiny, ...teacher]);
    assert.equal(r.status, 0, r.stderr);
    // A tiny transfer set is one chunk of 8,192 samples: shard 1 has none to label.
    const files = existsSync(join(cache, "soft-targets")) ? readdirSync(join(cache, "soft-targets")) : [];
    for (const f of files) copyFileSync(join(cache, "soft-targets", f), join(labelled, f));
  }
  return teacher;
});
prepared.set("soft-targets-file.yaml", () => {
  // The header's second command: the teacher's logits on every training image, as a .npy.
  const file = join(dir, "teacher-logits.npy");
  const r = distill(["label", join(examples, "demo.yaml"), "--export", file, "--quiet", ...set("teacher", { onnx: mnistTeacher() })]);
  assert.equal(r.status, 0, r.stderr);
  return [...set("teacher.softTargets", file), ...allowChance];
});
prepared.set("mnist-unlabeled.yaml", () => set("data.unlabeled", [{ restOfTrain: true, limit: 300 }]));

/** Optional data an example reads: why it is missing, or undefined. */
function missingData(file: string, config: ExampleConfig): string | undefined {
  if (config.task === "seq2seq") return undefined;
  if (file.startsWith("fashion-")) return fashionMnistMissing();
  if (JSON.stringify(config.data).includes("node_modules/sentiment")) return sentimentMissing();
  return undefined;
}

/** The command of an example's header, at a tiny budget. */
function command(file: string, config: ExampleConfig, out: string): string[] {
  const path = join(examples, file);
  if (config.task === "seq2seq") {
    // A sequence run: a few hundred words, one epoch, short latency timing, a narrow teacher beam.
    const tiny = [
      ...set("seeds", 1), ...set("student.train.epochs", 1), ...(config.teacher.model ? set("teacher.train.epochs", 1) : []), ...set("data.trainLimit", 300), ...set("data.testLimit", TEST_LIMIT),
      ...set("data.validationLimit", 30), ...set("kd.beam", 2), ...set("evaluate.latencyRuns", 10),
    ];
    return ["run", path, "--quiet", "--output", out, ...tiny];
  }
  const data = config.data as { trainLimit?: number | null; validation?: number | null };
  const budget = [
    ...set("seeds", 1), ...set("student.train.epochs", 1), ...set("data.trainLimit", 400), ...set("data.testLimit", TEST_LIMIT),
    // A validation split as large as the example's would leave nothing to train on; none stays none.
    ...(data.validation === 0 ? [] : set("data.validation", 80)),
    ...(config.teacher?.model ? set("teacher.train.epochs", 1) : []),
  ];
  const tiny = [...budget, ...(prepared.get(file)?.(budget) ?? [])];
  const tune = (config as { tune?: { strategy: string; space: Record<string, unknown> } }).tune;
  if (tune) {
    // A grid keeps its own keys (a method's weights are only valid for it): two values of the first, one of the rest.
    const grid = Object.fromEntries(Object.entries(tune.space).map(([k, v], i) => [k, Array.isArray(v) ? v.slice(0, i === 0 ? 2 : 1) : v]));
    const small = tune.strategy === "halving"
      ? [...set("tune.trials", 2), ...set("tune.eta", 2), ...set("tune.budget", { epochs: 2 })]
      : tune.strategy === "grid" ? set("tune.space", grid) : set("tune.space", { "kd.temperature": [1, 4], "kd.alpha": [0.9] });
    return ["tune", path, "--output", out, ...tiny, ...small, ...set("tune.epochs", 1), ...set("tune.seeds", 1)];
  }
  if (file.startsWith("shrink-")) {
    const models = (config as { shrink?: unknown }).shrink !== undefined;
    return ["shrink", path, "--output", out, "--keep", "0.5", ...(models ? ["--every-rung"] : ["--widths", "1", "--depths", "0.5,1"]), ...tiny];
  }
  return ["run", path, "--quiet", "--output", out, ...tiny];
}

/** A classifier config (DistillConfig's fields at the top), or a sequence one tagged task: seq2seq. */
type ExampleConfig = ReturnType<typeof loadConfig> & { task?: undefined } | (Seq2SeqConfig & { task: "seq2seq" });
function exampleConfig(path: string): ExampleConfig {
  const loaded = loadRunConfig(path);
  return loaded.task === "seq2seq" ? { ...loaded.config, task: "seq2seq" } : loaded.config;
}

const files = readdirSync(examples).filter((f) => f.endsWith(".yaml")).sort();

test("the examples are all here", () => {
  assert.ok(files.length >= 20, `found ${files.length} example configs`);
  const long = loadConfig(join(examples, "hinton-mnist-long.yaml"));
  assert.equal(long.teacher?.train?.optimizer.maxNorm, 3.5);
});

for (const file of files) {
  test(`examples/${file} runs end to end at a tiny budget`, (t: TestContext) => {
    const config = exampleConfig(join(examples, file));
    if (lacks(t, `the data of examples/${file}`, missingData(file, config))) return;
    const out = join(dir, "runs", file.replace(/\.yaml$/, ""));
    const args = command(file, config, out);
    const r = distill(args);
    assert.equal(r.status, 0, `distill ${args.join(" ")}\n${r.stderr}`);
    assert.ok(existsSync(join(out, "report.html")), "report.html written");
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as Record<string, unknown>;
    if (file === "label-sharded.yaml") {
      const state = JSON.parse(readFileSync(join(out, "run.json"), "utf8")) as { softTargets: { computedSamples: number } };
      assert.equal(state.softTargets.computedSamples, 0, "the merged shards answered every soft target");
    }
    if (file === "fashion-mnist-consistent.yaml") {
      const student = (results as unknown as RunResults).models.find((m) => m.role === "student")!;
      assert.equal(student.teacherPasses?.teaching, "consistent", "the teacher ran on the student's batches");
    }
    if (args[0] === "run") {
      const run = results as unknown as RunResults;
      // A sequence run's distilled students are student-<method>.
      assert.ok(run.models.some((m) => m.role === "student" || m.role.startsWith("student-")), run.models.map((m) => m.role).join());
      // --set reached the run: one seed, the test set cut to TEST_LIMIT (or the table's own test rows, fewer).
      for (const m of run.models) {
        assert.equal(m.perSeed.length, 1, m.role);
        assert.ok(m.perSeed[0]!.total <= TEST_LIMIT && m.perSeed[0]!.total > 0, `${m.role}: ${m.perSeed[0]!.total} test samples`);
      }
    } else if (args[0] === "tune") assert.ok((results["trials"] as unknown[]).length >= 2, "trials ran");
    else assert.ok((results["rungs"] as unknown[]).length >= 1, "rungs trained");
  });
}
