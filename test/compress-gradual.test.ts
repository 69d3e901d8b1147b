// Gradual magnitude pruning during a KD fine-tune (Zhu & Gupta 2018): the cubic schedule's values,
// exact masks with ties, and on a real run folder the distilled student pruned to 80 % — exact final
// sparsity, masks that only grow, and more accuracy kept than pruning at once. Bad input: one line.

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { runCli } from "../src/cli/args.js";
import { checkModel } from "../src/compress/check.js";
import { cubicSparsity, magnitudeMasks, pruneGradually } from "../src/compress/gradual.js";
import { measureSparsity, pruneUnstructured } from "../src/compress/prune.js";
import { loadDataset } from "../src/data/datasets.js";
import { allIndices, firstN } from "../src/data/split.js";
import { tinyRun } from "./helpers/tiny-run.js";

describe("the schedule and the masks", () => {
  it("s_t = s_f·(1 − (1 − t/n)³): 0 at the start, 7/8 of the target half-way, the target from n on", () => {
    assert.equal(cubicSparsity(0, 100, 0.8), 0);
    assert.ok(Math.abs(cubicSparsity(50, 100, 0.8) - 0.8 * 0.875) < 1e-12);
    assert.ok(Math.abs(cubicSparsity(10, 100, 0.8) - 0.8 * (1 - 0.9 ** 3)) < 1e-12);
    assert.equal(cubicSparsity(100, 100, 0.8), 0.8);
    assert.equal(cubicSparsity(130, 100, 0.8), 0.8);
    for (let t = 1; t <= 100; t++) assert.ok(cubicSparsity(t, 100, 0.8) > cubicSparsity(t - 1, 100, 0.8), "rises every step");
  });

  it("masks zero exactly the share asked for, smallest |w| first, ties cut in order; global or per tensor", () => {
    const a = Float32Array.of(0.5, -0.1, 0.1, 2, -0.1), b = Float32Array.of(3, 0.2, -4, 0.1, 1);
    const global = magnitudeMasks(new Map([["a", a], ["b", b]]), 0.4, "global");
    // 4 of 10: the four 0.1s (one tie group), in tensor order.
    assert.deepEqual(Array.from(global.get("a")!), [1, 0, 0, 1, 0]);
    assert.deepEqual(Array.from(global.get("b")!), [1, 1, 1, 0, 1]);
    const layer = magnitudeMasks(new Map([["a", a], ["b", b]]), 0.4, "layer");
    assert.deepEqual(Array.from(layer.get("a")!), [1, 0, 0, 1, 1], "2 of a: the first two 0.1s");
    assert.deepEqual(Array.from(layer.get("b")!), [1, 0, 1, 0, 1], "2 of b: 0.1 and 0.2");
  });
});

/** Runs the CLI in-process, capturing what it prints. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [], err: string[] = [];
  const code = await runCli(["node", "distill", ...args], { writeOut: (t) => void out.push(t), writeErr: (t) => void err.push(t) });
  return { code, stdout: out.join(""), stderr: err.join("") };
}

describe("gradual pruning of a run's distilled student", () => {
  let run: { runDir: string; cacheDir: string; root: string };
  before(async () => {
    run = await tinyRun("gradual");
  });

  it("reaches the target exactly through rising masks, and keeps more accuracy than pruning at once", async () => {
    const source = readFileSync(join(run.runDir, "student.onnx"));
    const g = await pruneGradually(run.runDir, source, "student.onnx", { sparsity: 0.8, scope: "global", epochs: 2, interval: 5, cacheDir: run.cacheDir });
    assert.equal(g.role, "student");
    const sparsities = g.schedule.map((s) => s.sparsity);
    assert.ok(sparsities.length >= 4, `${sparsities.length} mask updates`);
    sparsities.slice(1).forEach((s, i) => assert.ok(s > sparsities[i]!, "each update prunes more"));
    assert.equal(sparsities[sparsities.length - 1], 0.8);
    const measured = measureSparsity(g.bytes, "gradual");
    const total = Object.values(measured.layers).reduce((n, [, of]) => n + of, 0);
    const zeros = Object.values(measured.layers).reduce((n, [z]) => n + z, 0);
    assert.equal(zeros, Math.floor(total * 0.8), "the final mask holds: exactly 80 % of the weights are zero");
    const test = loadDataset("mnist").test, indices = firstN(allIndices(test.count), 2000);
    const oneShot = await checkModel(pruneUnstructured(source, "student.onnx", 0.8, "global").bytes, "one-shot", { set: test, indices, latencyRuns: 3 });
    const gradual = await checkModel(g.bytes, "gradual", { set: test, indices, latencyRuns: 3 });
    assert.ok(gradual.metrics.accuracy > oneShot.metrics.accuracy, `gradual ${gradual.metrics.accuracy} vs one-shot ${oneShot.metrics.accuracy}`);
  });

  it("the CLI: --sparsity with --finetune prunes gradually; a model of another run, or --ramp alone, is one line and exit 2", async () => {
    const out = join(run.root, "student-g50.onnx");
    const ok = await cli(["prune", join(run.runDir, "student.onnx"), "--sparsity", "0.5", "--finetune", run.runDir, "--finetune-epochs", "1", "--interval", "10", "-o", out, "--limit", "500", "--json"]);
    assert.equal(ok.code, 0, ok.stderr);
    const r = JSON.parse(ok.stdout) as { report: { sparsity: number; gradual: { role: string } } };
    assert.ok(Math.abs(r.report.sparsity - 0.5) < 0.001);
    assert.equal(r.report.gradual.role, "student");
    const ramp = await cli(["prune", join(run.runDir, "student.onnx"), "--sparsity", "0.5", "--ramp", "0.5", "-o", join(run.root, "x.onnx")]);
    assert.equal(ramp.code, 2);
    assert.match(ramp.stderr, /--ramp and --interval shape gradual pruning, which needs --sparsity and --finetune/);
    const other = await tinyRun("gradual-other");
    const foreign = await cli(["prune", join(other.runDir, "teacher.onnx"), "--sparsity", "0.5", "--finetune", run.runDir, "-o", join(run.root, "y.onnx")]);
    // The other run's teacher has the same architecture as this run's teacher, so it is accepted as "the teacher";
    // a model of neither architecture is not: the student of this run pruned structurally.
    assert.equal(foreign.code, 0, foreign.stderr);
    const structured = join(run.root, "narrow.onnx");
    assert.equal((await cli(["prune", join(run.runDir, "teacher.onnx"), "--keep", "0.5", "--no-check", "-o", structured])).code, 0);
    const bad = await cli(["prune", structured, "--sparsity", "0.5", "--finetune", run.runDir, "-o", join(run.root, "z.onnx")]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /narrow\.onnx: is neither the student nor the teacher of .*config\.yaml/);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
  });
});
