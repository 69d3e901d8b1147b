// Pruning (unstructured and structured) on a trained MNIST model, and `distill compare` on a real run
// folder: variants made, measured, Pareto fronts marked, compare.json and compare.html written.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli } from "../src/cli/args.js";
import { checkModel, parameterCountOf } from "../src/compress/check.js";
import { compareRun, paretoFront, type CompareResult } from "../src/compress/compare.js";
import { keepForParams, pruneStructured, pruneUnstructured } from "../src/compress/prune.js";
import { decodeModel } from "../src/engine/onnx.js";
import { allIndices, firstN } from "../src/data/split.js";
import { cnnModel, mnist, trainAndExport } from "./helpers/mnist-models.js";
import { tinyRun } from "./helpers/tiny-run.js";

describe("pruning a trained CNN", () => {
  let cnn: Uint8Array;
  const { test } = mnist();
  const indices = firstN(allIndices(test.count), 1000);
  before(async () => {
    cnn = await trainAndExport(cnnModel(), 6000, 2);
  });

  it("unstructured: exact sparsity globally and per layer, same dense size, smaller gzip; global keeps accuracy at 50 %, better than per layer", async () => {
    const ref = await checkModel(cnn, "cnn", { set: test, indices, latencyRuns: 5 });
    const acc: Record<string, number> = {};
    for (const scope of ["global", "layer"] as const) {
      const { bytes, report } = pruneUnstructured(cnn, "cnn", 0.5, scope);
      assert.ok(Math.abs(report.sparsity - 0.5) < 0.01, `${scope}: sparsity ${report.sparsity}`);
      if (scope === "layer") for (const [name, [zeros, of]] of Object.entries(report.layers)) assert.equal(zeros, Math.floor(of * 0.5), name);
      const p = await checkModel(bytes, scope, { set: test, indices, latencyRuns: 5, referenceLogits: ref.logits });
      assert.ok(Math.abs(p.metrics.onnxBytes - ref.metrics.onnxBytes) < 200, "zeros do not shrink the dense file");
      assert.ok(p.metrics.onnxGzipBytes < ref.metrics.onnxGzipBytes * 0.8, "but they compress");
      acc[scope] = p.metrics.accuracy;
    }
    assert.ok(ref.metrics.accuracy - acc["global"]! < 0.03, `global: accuracy ${acc["global"]} vs ${ref.metrics.accuracy}`);
    assert.ok(acc["global"]! >= acc["layer"]!, `global ${acc["global"]} vs per layer ${acc["layer"]}: halving the 72-weight first conv costs more`);
    // The global threshold prunes the big fc layer hardest: its share of zeros exceeds the small first conv's.
    const g = pruneUnstructured(cnn, "cnn", 0.5, "global").report.layers;
    const share = (k: string) => g[k]![0] / g[k]![1];
    assert.ok(share("linear1.weight") > share("conv1.weight"), JSON.stringify(g));
  });

  it("structured: shapes really shrink through ReLU, pooling and flatten; the pruned model runs and keeps most accuracy at 75 %", async () => {
    const { bytes, report } = pruneStructured(cnn, "cnn", 0.75);
    assert.deepEqual(report.layers, { "conv1.weight": [6, 8], "conv2.weight": [12, 16], "linear1.weight": [24, 32] });
    const d = decodeModel(bytes);
    assert.deepEqual(d.initializers.get("conv2.weight")!.dims, [12, 6, 3, 3]);
    assert.deepEqual(d.initializers.get("linear1.weight")!.dims, [24, 12 * 7 * 7]);
    assert.deepEqual(d.initializers.get("linear2.weight")!.dims, [10, 24], "the classes stay");
    assert.equal(report.paramsAfter, parameterCountOf(bytes, "pruned"));
    const ref = await checkModel(cnn, "cnn", { set: test, indices, latencyRuns: 5 });
    const p = await checkModel(bytes, "pruned", { set: test, indices, latencyRuns: 5, referenceLogits: ref.logits });
    assert.ok(p.metrics.onnxBytes < ref.metrics.onnxBytes * 0.7);
    assert.ok(p.metrics.accuracy > 0.6, `accuracy after removing 25 % of channels without fine-tuning: ${p.metrics.accuracy}`);
    // A parameter budget is met from below, closely.
    const target = Math.round(report.paramsBefore / 4);
    const budget = pruneStructured(cnn, "cnn", keepForParams(cnn, "cnn", target)).report.paramsAfter;
    assert.ok(budget <= target && budget > target * 0.85, `budget ${target}, got ${budget}`);
  });

  it("structured, through exported BatchNorm (Mul and Add by a per-channel scale and shift computed from bn.* tensors)", async () => {
    const bnCnn = await trainAndExport(cnnModel({ batchNorm: true }), 3000, 1);
    const { bytes, report } = pruneStructured(bnCnn, "bn-cnn", 0.75);
    assert.deepEqual(report.layers, { "conv1.weight": [6, 8], "conv2.weight": [12, 16], "linear1.weight": [24, 32] }, "every layer loses channels, not only the fc one");
    const d = decodeModel(bytes);
    for (const name of ["weight", "bias", "running_mean", "running_var"]) assert.deepEqual(d.initializers.get(`bn1.${name}`)!.dims, [6], `bn1.${name}`);
    assert.deepEqual(d.initializers.get("bn2.running_var")!.dims, [12]);
    const ref = await checkModel(bnCnn, "bn-cnn", { set: test, indices, latencyRuns: 3 });
    const p = await checkModel(bytes, "pruned", { set: test, indices, latencyRuns: 3, referenceLogits: ref.logits });
    assert.ok(p.metrics.accuracy > ref.metrics.accuracy - 0.15, `accuracy ${p.metrics.accuracy} after removing 25 % of channels (source ${ref.metrics.accuracy})`);
    assert.ok((p.metrics.agreement ?? 0) > 0.8, `agreement ${p.metrics.agreement}`);
  });
});

describe("distill compare on a run folder", () => {
  let root = "";
  let runDir = "";
  let result: CompareResult;
  before(async () => {
    const run = await tinyRun("compare");
    root = run.root;
    runDir = run.runDir;
    result = await compareRun(runDir, { rounds: 1, finetuneEpochs: 3, cacheDir: run.cacheDir });
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("measures every variant on the run's test set and writes compare.json and compare.html", async () => {
    assert.deepEqual(result.rows.map((r) => r.name), ["teacher", "baseline (labels only)", "distilled student", "student int8", "student fp16", "teacher int8", "teacher pruned"]);
    for (const f of ["compare.json", "compare.html", "compressed/student-int8.onnx", "compressed/student-fp16.onnx", "compressed/teacher-int8.onnx", "compressed/teacher-pruned.onnx"])
      assert.ok(existsSync(join(runDir, f)), `${f} written`);
    const row = (n: string) => result.rows.find((r) => r.name === n)!;
    assert.equal(result.testSamples, 500);
    assert.equal(row("teacher").agreement, null);
    assert.ok(row("student int8").onnxBytes * 2.5 < row("distilled student").onnxBytes);
    assert.ok(row("teacher int8").onnxBytes * 3.5 < row("teacher").onnxBytes);
    assert.ok(Math.abs(row("student int8").accuracy.mean - row("distilled student").accuracy.mean) < 0.02);
    // The pruned teacher is cut to about the student's parameter count and fine-tuned into a working model.
    assert.ok(row("teacher pruned").params <= row("distilled student").params * 1.05);
    const teacher = readFileSync(join(runDir, "teacher.onnx"));
    const unTuned = pruneStructured(teacher, "t", keepForParams(teacher, "t", row("distilled student").params)).bytes;
    const { test } = mnist();
    const before = (await checkModel(unTuned, "pruned", { set: test, indices: firstN(allIndices(test.count), 500), latencyRuns: 1 })).metrics.accuracy;
    // 3 epochs of 39 steps: far from converged, but KD must clearly repair what pruning broke.
    assert.ok(row("teacher pruned").accuracy.mean > before + 0.1, `pruned ${before}, + KD fine-tune ${row("teacher pruned").accuracy.mean}`);
    assert.equal(JSON.parse(decodeModel(readFileSync(join(runDir, "compressed/teacher-pruned.onnx"))).metadata["distill.finetune"]!).epochs, 3);
    // Each front holds the most accurate model and the cheapest one.
    const best = [...result.rows].sort((a, b) => b.accuracy.mean - a.accuracy.mean)[0]!;
    assert.ok(best.paretoLatency && best.paretoSize);
    assert.ok([...result.rows].sort((a, b) => a.onnxBytes - b.onnxBytes)[0]!.paretoSize);
    const html = readFileSync(join(runDir, "compare.html"), "utf8");
    assert.equal((html.match(/<svg /g) ?? []).length, 2);
    assert.equal((html.match(/<tr><td>/g) ?? []).length, 7);
    assert.ok(!/<script/.test(html) && !/https?:\/\//.test(html.replace(/xmlns="[^"]*"/g, "")), "self-contained");
    // For people: what the int8 student gained and lost, never the project's internal targets.
    assert.doesNotMatch(html.replace(/<[^>]+>/g, " "), /target|missed|≥/i);
    assert.match(html, /<p id="int8-summary">The int8 student is [\d.]+× smaller than the fp32 student and /);
    assert.deepEqual(JSON.parse(readFileSync(join(runDir, "compare.json"), "utf8")).rows.length, 7);
  });

  it("Pareto front: dominated points are off it, ties stay on", () => {
    assert.deepEqual(paretoFront([{ accuracy: 0.9, cost: 1 }, { accuracy: 0.8, cost: 2 }, { accuracy: 0.95, cost: 3 }, { accuracy: 0.95, cost: 3 }]), [true, false, true, true]);
  });

  it("bad inputs exit 2 with one line and write nothing", async () => {
    const err: string[] = [];
    const io = { writeOut: () => {}, writeErr: (s: string) => void err.push(s) };
    assert.equal(await runCli(["node", "distill", "compare", join(root, "missing")], io), 2);
    assert.match(err.join(""), /missing: no results\.json: not a finished run folder/);
    err.length = 0;
    assert.equal(await runCli(["node", "distill", "prune", join(runDir, "teacher.onnx"), "-o", join(root, "p.onnx")], io), 2);
    assert.match(err.join(""), /give exactly one of --sparsity/);
    err.length = 0;
    assert.equal(await runCli(["node", "distill", "prune", join(runDir, "teacher.onnx"), "--sparsity", "1.5", "-o", join(root, "p.onnx")], io), 2);
    assert.match(err.join(""), /--sparsity.*between 0 and 1/);
    err.length = 0;
    writeFileSync(join(root, "half.onnx"), readFileSync(join(runDir, "teacher.onnx")).subarray(0, 100));
    assert.equal(await runCli(["node", "distill", "prune", join(root, "half.onnx"), "--keep", "0.5", "-o", join(root, "p.onnx")], io), 2);
    assert.match(err.join(""), /half\.onnx: not a readable ONNX model.*truncated/);
    assert.ok(!existsSync(join(root, "p.onnx")));
  });
});
