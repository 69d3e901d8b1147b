// `npm run bench:methods [-- --seeds 3 --epochs 4 --train 6000 --out table.md --only dkd,rkd]`: every
// distillation method on Fashion-MNIST with the same teacher, student and budget, written as a table
// (by default to .cache/bench-methods[-full]/table.md; docs/methods.md quotes it, with its reading). A
// benchmark, not a test: it measures, it asserts nothing.
//
// The first run trains the teacher and the label-only baseline and distils with logit KD; every
// other method is a run of its own on that teacher (as an .onnx file) with `skipBaseline`, all
// sharing one cache, so the teacher's logits and taps are computed once for the whole benchmark.
//
// `--teacher examples/teachers/fashion-mnist-teacher.onnx --train all --epochs 15 --seeds 5` is the full
// budget (issue #28): the shipped teacher, examples/fashion-mnist.yaml's student and schedule, every
// training image but 5,000 held out. Each method's per-seed figures land in <work>/results/<method>.json
// as it finishes, so two processes can share the list (`--only`) and `--table` writes the table from
// whatever has finished, with paired intervals against the baseline and logit KD.

import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { validateConfig } from "../src/config/load.js";
import { runDistillation } from "../src/run/pipeline.js";
import type { RunState } from "../src/distill/run-folder.js";
import type { EpochMetric, RunResults } from "../src/eval/types.js";
import { pairedDifference, type PairedDifference } from "../src/report/headline.js";
import { comparePaired } from "../src/tune/compare.js";

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : fallback);
const text = (name: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : undefined);
const teacherFile = text("teacher") && resolve(text("teacher")!);
const seeds = opt("seeds", 3), epochs = opt("epochs", 4);
const trainLimit = text("train") === "all" ? undefined : opt("train", 6000);
const validation = opt("validation", teacherFile ? 5000 : 2000);
const only = text("only")?.split(",");
const workDir = join(process.cwd(), ".cache", teacherFile ? "bench-methods-full" : "bench-methods");
const out = text("out") ?? join(workDir, "table.md");

const conv = (filters: number, name: string) => ({ type: "conv", filters, kernel: 3, padding: 1, name });
const relu = (name: string) => ({ type: "relu", name });
const pool = (name: string) => ({ type: "maxpool", size: 2, name });
const optimizer = { kind: "adamw", lr: 0.003, weightDecay: 0.0001 };
const schedule = { kind: "cosine", warmupEpochs: 1 };

// Teacher ≈ 0.22M parameters, student ≈ 27k (8× smaller). Taps: pool2 (conv features, 7×7) and
// embed (the penultimate layer), small enough to cache for every training image.
const teacherModel = { input: "image", layers: [conv(32, "conv1"), relu("relu1"), pool("pool1"), conv(64, "conv2"), relu("relu2"), pool("pool2"), { type: "flatten" }, { type: "linear", units: 64, name: "fc" }, relu("embed"), { type: "linear", units: 10 }] };
const studentModel = { input: "image", layers: [conv(8, "conv1"), relu("relu1"), pool("pool1"), conv(16, "conv2"), relu("relu2"), pool("pool2"), { type: "flatten" }, { type: "linear", units: 32, name: "fc" }, relu("embed"), { type: "linear", units: 10 }] };

const hint = { teacher: "pool2", student: "pool2" };
const embed = { teacher: "embed", student: "embed" };
// Term weights are mdistiller's CIFAR-100 defaults (FitNet 100, AT 1000, RKD 1 with 25/50, SP 3000).
const METHODS: { name: string; kd: unknown }[] = [
  { name: "logit-kd", kd: { temperature: 4, alpha: 0.9 } },
  { name: "dkd", kd: { method: "dkd", alpha: 1, beta: 8, temperature: 4 } },
  { name: "fitnet", kd: { method: "fitnet", weight: 100, ...hint } },
  { name: "attention", kd: { method: "attention", weight: 1000, ...hint } },
  { name: "rkd", kd: { method: "rkd", ...embed } },
  { name: "similarity", kd: { method: "similarity", weight: 3000, ...hint } },
  { name: "logit-kd + fitnet", kd: { terms: [{ method: "logit-kd", temperature: 4, alpha: 0.9 }, { method: "fitnet", weight: 100, ...hint }] } },
  { name: "logit-kd + attention", kd: { terms: [{ method: "logit-kd", temperature: 4, alpha: 0.9 }, { method: "attention", weight: 1000, ...hint }] } },
  // No teacher at all: the student's own weight average (≈ 190 steps here, so a 100-step horizon).
  { name: "ema-teacher", kd: { method: "ema-teacher", decay: 0.99, temperature: 4, alpha: 0.5 } },
];

// The full budget's student is examples/fashion-mnist.yaml's, unnamed as there (layer names seed the
// initial weights), so its baseline and logit KD rows are that example's run: conv16-pool-conv32-pool-fc10,
// 20,490 parameters. Taps by their automatic names: the student's maxpool2 [32, 7, 7] and linear1 [10]
// against the shipped teacher's maxpool2 [64, 7, 7] and relu5 [256].
const FULL_STUDENT = { input: "image", layers: [
  { type: "conv", filters: 16, kernel: 3, padding: 1 }, { type: "relu" }, { type: "maxpool", size: 2 },
  { type: "conv", filters: 32, kernel: 3, padding: 1 }, { type: "relu" }, { type: "maxpool", size: 2 },
  { type: "flatten" }, { type: "linear", units: 10 }] };
const fullHint = { teacher: "maxpool2", student: "maxpool2" };
const kdRecipe = { method: "logit-kd", temperature: 2, alpha: 0.5 };
// The example's recipe first (its run trains the baseline too), then the field's defaults: logit KD at
// Hinton's T = 4, α = 0.9, and mdistiller's CIFAR-100 term weights, untuned.
const FULL_METHODS: { name: string; kd: unknown }[] = [
  { name: "logit-kd", kd: { temperature: 2, alpha: 0.5 } },
  { name: "similarity", kd: { method: "similarity", weight: 3000, ...fullHint } },
  { name: "logit-kd T4 α0.9", kd: { temperature: 4, alpha: 0.9 } },
  { name: "attention", kd: { method: "attention", weight: 1000, ...fullHint } },
  // mdistiller's CIFAR-100 setting, then its ImageNet one (DKD's defaults since this benchmark): the
  // CIFAR one weighs the non-target part 8 · T² = 128× the cross-entropy.
  { name: "dkd α1 β8 T4", kd: { method: "dkd", alpha: 1, beta: 8, temperature: 4 } },
  { name: "dkd α0.5 β0.5 T1", kd: { method: "dkd", alpha: 0.5, beta: 0.5, temperature: 1 } },
  { name: "logit-kd + attention", kd: { terms: [kdRecipe, { method: "attention", weight: 1000, ...fullHint }] } },
  { name: "fitnet", kd: { method: "fitnet", weight: 100, ...fullHint } },
  // RKD on the student's logits: its angle term costs N³·d per batch, and on flatten1 (d = 1,568) an
  // epoch took 3 minutes instead of 10 s.
  { name: "rkd", kd: { method: "rkd", teacher: "relu5", student: "linear1" } },
  // ≈ 6,450 steps: a 1,000-step horizon.
  { name: "ema-teacher", kd: { method: "ema-teacher", decay: 0.999, temperature: 4, alpha: 0.5 } },
  { name: "logit-kd + fitnet", kd: { terms: [kdRecipe, { method: "fitnet", weight: 100, ...fullHint }] } },
];

function configFor(name: string, kd: unknown, teacherOnnx?: string) {
  const train = { epochs, batchSize: 128, optimizer, schedule };
  return validateConfig(
    {
      name: name.replace(/[^A-Za-z0-9._-]+/g, "_"),
      output: join(workDir, "runs", name.replace(/[^A-Za-z0-9._-]+/g, "_")),
      seeds,
      data: { dataset: "fashion-mnist", ...(trainLimit !== undefined ? { trainLimit: trainLimit + validation } : {}), validation },
      teacher: teacherOnnx ? { onnx: teacherOnnx } : { model: teacherModel, train: { ...train, epochs: epochs + 2 } },
      student: { model: teacherFile ? FULL_STUDENT : studentModel, train },
      kd,
    },
    `bench:methods ${name}`,
  );
}

interface Row {
  method: string;
  errors: number[];
  trainSeconds: number[];
  teacherPasses: { needed: number; ran: number };
}

async function runMethod(name: string, kd: unknown, teacherOnnx?: string, withBaseline = teacherOnnx === undefined): Promise<{ results: RunResults; runDir: string; row: Row; baseline?: Row }> {
  const config = configFor(name, kd, teacherOnnx);
  rmSync(config.output, { recursive: true, force: true });
  const started = performance.now();
  const { runDir, results } = await runDistillation(config, { configPath: `bench:methods ${name}`, quiet: true, cacheDir: join(workDir, "cache"), skipBaseline: !withBaseline });
  const state = JSON.parse(readFileSync(join(runDir, "run.json"), "utf8")) as RunState;
  const metrics = readFileSync(join(runDir, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as EpochMetric);
  const secondsOf = (stage: string) => config.seeds.map((s) => metrics.filter((m) => m.stage === stage && m.seed === s).reduce((a, m) => a + m.seconds, 0));
  const errorsOf = (role: string) => results.models.find((m) => m.role === role)!.perSeed.map((p) => p.errors);
  const passes = {
    needed: (state.softTargets?.samples ?? 0) + (state.teacherTaps?.samples ?? 0),
    ran: (state.softTargets?.computedSamples ?? 0) + (state.teacherTaps?.computedSamples ?? 0),
  };
  process.stderr.write(`${name}: ${errorsOf("student").join(", ")} errors, ${((performance.now() - started) / 1000).toFixed(0)} s, load ${os.loadavg()[0]!.toFixed(1)}\n`);
  const row: Row = { method: name, errors: errorsOf("student"), trainSeconds: secondsOf("student"), teacherPasses: passes };
  const baseline = !withBaseline ? undefined : { method: "baseline (labels only)", errors: errorsOf("baseline"), trainSeconds: secondsOf("baseline"), teacherPasses: { needed: 0, ran: 0 } };
  return { results, runDir, row, baseline };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) => (xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)) : 0);
const signed = (x: number) => `${x > 0 ? "+" : x < 0 ? "−" : "±"}${Math.abs(x).toFixed(1)}`;

function table(rows: Row[], teacherErrors: number, testTotal: number): string {
  const base = mean(rows[0]!.errors), kd = mean(rows.find((r) => r.method === "logit-kd")?.errors ?? [NaN]);
  const lines = [
    "| method | test errors (of " + testTotal + ") mean ± std | Δ vs baseline | Δ vs logit KD | train time / seed | teacher forward passes (needed; run here) |",
    "|---|---|---|---|---|---|",
    `| teacher | ${teacherErrors} | | | | |`,
  ];
  for (const r of rows) {
    const m = mean(r.errors);
    lines.push(`| ${r.method} | ${m.toFixed(1)} ± ${std(r.errors).toFixed(1)} | ${r === rows[0] ? "" : signed(m - base)} | ${r.method === "logit-kd" || r === rows[0] ? "" : signed(m - kd)} | ${mean(r.trainSeconds).toFixed(0)} s | ${r.teacherPasses.needed.toLocaleString("en")}; ${r.teacherPasses.ran.toLocaleString("en")} |`);
  }
  return lines.join("\n");
}

interface FullResult {
  rows: Row[];
  teacher: { errors: number; total: number; params: number };
  studentParams: number;
  seconds: number;
  load: { start: number[]; end: number[] };
  date: string;
}

const fileOf = (name: string) => join(workDir, "results", `${name.replace(/[^A-Za-z0-9._-]+/g, "_")}.json`);
const interval = (d: PairedDifference) => (d.ci95 ? `[${signed(d.ci95[0])}, ${signed(d.ci95[1])}]` : "—");

/** The full-budget table from every finished method's results file: paired by seed against the baseline and logit KD. */
function fullTable(): string {
  const done = FULL_METHODS.map((m) => m.name).filter((n) => existsSync(fileOf(n))).map((n) => JSON.parse(readFileSync(fileOf(n), "utf8")) as FullResult);
  const first = done.find((r) => r.rows.length === 2);
  if (!first) throw new Error(`bench:methods: no results for "logit-kd" (the run with the baseline) under ${join(workDir, "results")} yet`);
  const [baseline, kd] = first.rows as [Row, Row];
  const lines = [
    `| method | test errors (of ${first.teacher.total}) per seed | mean ± std | Δ vs baseline, 95 % interval, p | Δ vs logit KD (T 2, α 0.5), 95 % interval, p | train time / seed |`,
    "|---|---|---|---|---|---|",
    `| teacher (shipped) | ${first.teacher.errors} | | | | |`,
  ];
  for (const r of [baseline, kd, ...done.filter((x) => x !== first).map((x) => x.rows[0]!)]) {
    const vs = (other: Row) => {
      if (r === other) return "";
      const d = pairedDifference(r.errors, other.errors), p = comparePaired(r.errors, other.errors).pValue;
      return `${signed(d.mean)} ${interval(d)}, ${p === null ? "p —" : p < 0.001 ? "p < 0.001" : `p = ${p.toFixed(3)}`}`;
    };
    lines.push(`| ${r.method} | ${r.errors.join(", ")} | ${mean(r.errors).toFixed(1)} ± ${std(r.errors).toFixed(1)} | ${vs(baseline)} | ${r === baseline ? "" : vs(kd)} | ${mean(r.trainSeconds).toFixed(0)} s |`);
  }
  const when = done.map((d) => d.date).sort();
  return `Measured by \`npm run bench:methods -- --teacher examples/teachers/fashion-mnist-teacher.onnx --train ${trainLimit ?? "all"} --epochs ${epochs} --seeds ${seeds}\`
(${when[0]} to ${when.at(-1)}; ${done.map((d) => `${d.rows.at(-1)!.method} ${d.seconds.toFixed(0)} s at load ${d.load.start[0]!.toFixed(1)}–${d.load.end[0]!.toFixed(1)}`).join("; ")}).
Student ${first.studentParams.toLocaleString("en")} parameters; teacher ${first.teacher.params.toLocaleString("en")}.

${lines.join("\n")}
`;
}

async function fullMain(): Promise<void> {
  mkdirSync(join(workDir, "results"), { recursive: true });
  if (!args.includes("--table")) {
    for (const [i, m] of FULL_METHODS.entries()) {
      if (only && !only.includes(m.name)) continue;
      const load = os.loadavg(), started = performance.now();
      const run = await runMethod(m.name, m.kd, teacherFile, i === 0);
      const teacher = run.results.models[0]!.perSeed[0]!;
      const result: FullResult = {
        rows: run.baseline ? [run.baseline, run.row] : [run.row],
        teacher: { errors: teacher.errors, total: teacher.total, params: teacher.params },
        studentParams: run.results.models.find((x) => x.role === "student")!.perSeed[0]!.params,
        seconds: (performance.now() - started) / 1000, load: { start: load, end: os.loadavg() }, date: new Date().toISOString().slice(0, 16),
      };
      writeFileSync(fileOf(m.name) + ".tmp", JSON.stringify(result, null, 2));
      renameSync(fileOf(m.name) + ".tmp", fileOf(m.name));
    }
  }
  const doc = fullTable();
  writeFileSync(out, doc);
  process.stdout.write(doc);
}

async function main(): Promise<void> {
  if (teacherFile) return fullMain();
  mkdirSync(workDir, { recursive: true });
  rmSync(join(workDir, "cache"), { recursive: true, force: true }); // count every teacher pass once, honestly
  const load0 = os.loadavg();
  const started = performance.now();
  const first = await runMethod("logit-kd", METHODS[0]!.kd);
  const teacherOnnx = join(first.runDir, "teacher.onnx");
  const rows: Row[] = [first.baseline!, first.row];
  for (const m of METHODS.slice(1)) if (!only || only.includes(m.name)) rows.push((await runMethod(m.name, m.kd, teacherOnnx)).row);
  const wall = (performance.now() - started) / 1000;
  const teacher = first.results.models[0]!.perSeed[0]!;
  const doc = `# Distillation methods on Fashion-MNIST

Measured by \`npm run bench:methods -- --seeds ${seeds} --epochs ${epochs} --train ${trainLimit}\` (${new Date().toISOString().slice(0, 10)}, ${wall.toFixed(0)} s wall
for everything; load average ${load0.map((l) => l.toFixed(1)).join(" ")} at the start and ${os.loadavg().map((l) => l.toFixed(1)).join(" ")} at the end on ${os.cpus().length} cores shared with other work, so
the times are noisy). **Budget, the same for every method:** the first ${(trainLimit ?? 0).toLocaleString("en")} Fashion-MNIST training images (2,000 more
held out for validation), ${epochs} epochs of AdamW (lr 0.003, cosine, 1 warm-up epoch), batch 128, no jitter; seeds ${Array.from({ length: seeds }, (_, i) => i).join(", ")};
the full 10,000-image test set. Teacher: CNN conv32-pool-conv64-pool-fc64-fc10 (${teacher.params.toLocaleString("en")} parameters, ${epochs + 2} epochs, seed 0).
Student: CNN conv8-pool-conv16-pool-fc32-fc10 (${first.results.models[1]!.perSeed[0]!.params.toLocaleString("en")} parameters). Feature terms tap \`pool2\` (teacher
[64, 7, 7], student [16, 7, 7]; FitNets through a learned 1×1 conv); RKD taps \`embed\` (64 and 32 wide). Term weights are
mdistiller's defaults (FitNets 100, attention 1000, RKD 25·distance + 50·angle, similarity 3000, DKD α = 1, β = 8,
T = 4 without its warm-up); logit KD at T = 4, α = 0.9. Feature, relation and similarity methods add the
cross-entropy term (weight 1), as mdistiller's distillers do.

${table(rows, teacher.errors, teacher.total)}

Δ: change in mean test errors (negative = fewer errors). Teacher forward passes: "needed" is what the
method asks of the teacher (its logits and/or taps on every transfer image, computed once, never per epoch
or seed); "run here" is what this benchmark actually ran, the rest coming from the shared on-disk cache
(logits are computed in the first run; the \`pool2\` taps once, by the first method that needs them).
Training time is per seed, the student's epochs only (no evaluation).
`;
  writeFileSync(out, doc);
  process.stdout.write(doc);
}

await main();
