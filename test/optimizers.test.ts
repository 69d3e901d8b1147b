// In-graph optimizer updates against hand-written torch.optim reference implementations.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Graph, type Tensor } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { compileTrainStep, TrainingSession } from "../src/engine/training.js";
import type { OptimizerConfig } from "../src/engine/optimizers.js";

// Loss L(w) = Σ c·w + ½ Σ w², so ∇L = c + w: simple enough to follow by hand, not constant.
const C = [0.5, -1.5, 2.0];
const W0 = [1.0, -2.0, 0.25];

async function runGraph(opt: OptimizerConfig, lrs: number[], clip?: number): Promise<{ w: number[]; norms: number[] }> {
  const g = new Graph();
  const w = g.input("w", [3]);
  const loss = F.add(F.reduceSum(F.mul(w, g.constFloat(C, [3])), [0]), F.scale(F.reduceSum(F.mul(w, w), [0]), 0.5));
  const compiled = compileTrainStep({ graph: g, loss, params: new Map([["w", w]]), optimizer: opt, clipGradNorm: clip, reportGradNorm: true });
  const initial = new Map<string, Tensor<"float32">>([["w", { dtype: "float32", shape: [3], data: Float32Array.from(W0) }]]);
  for (const s of compiled.stateNames) if (s !== "w") initial.set(s, { dtype: "float32", shape: [3], data: new Float32Array(3) });
  const session = await TrainingSession.create(compiled, opt, initial, { threads: 1 });
  const norms: number[] = [];
  for (const lr of lrs) norms.push((await session.run({}, lr)).gradNorm);
  const out = Array.from(session.state("w").data);
  await session.dispose();
  return { w: out, norms };
}

function reference(opt: OptimizerConfig, lrs: number[], clip?: number): number[] {
  const w = W0.slice();
  const buf = [0, 0, 0], m = [0, 0, 0], v = [0, 0, 0];
  lrs.forEach((lr, step) => {
    let grad = w.map((wi, i) => C[i]! + wi);
    if (clip !== undefined) {
      const norm = Math.sqrt(grad.reduce((a, x) => a + x * x, 0));
      const coef = Math.min(1, clip / (norm + 1e-6));
      grad = grad.map((x) => x * coef);
    }
    const wd = opt.weightDecay ?? 0;
    if (opt.kind === "sgd") {
      const mu = opt.momentum ?? 0;
      for (let i = 0; i < 3; i++) {
        let d = grad[i]! + wd * w[i]!;
        if (mu) {
          buf[i] = step === 0 ? d : mu * buf[i]! + d; // torch: the buffer starts as the first gradient
          d = opt.nesterov ? d + mu * buf[i]! : buf[i]!;
        }
        w[i] = w[i]! - lr * d;
      }
    } else {
      const b1 = opt.beta1 ?? 0.9, b2 = opt.beta2 ?? 0.999, eps = opt.eps ?? 1e-8, t = step + 1;
      for (let i = 0; i < 3; i++) {
        let d = grad[i]!;
        if (opt.kind === "adamw") w[i] = w[i]! * (1 - lr * wd);
        else d += wd * w[i]!;
        m[i] = b1 * m[i]! + (1 - b1) * d;
        v[i] = b2 * v[i]! + (1 - b2) * d * d;
        const mhat = m[i]! / (1 - b1 ** t), denom = Math.sqrt(v[i]!) / Math.sqrt(1 - b2 ** t) + eps;
        w[i] = w[i]! - (lr * mhat) / denom;
      }
    }
  });
  return w;
}

const lrs = [0.1, 0.05, 0.2, 0.1];
const cases: [string, OptimizerConfig, number?][] = [
  ["plain SGD", { kind: "sgd", momentum: 0 }],
  ["SGD momentum 0.9", { kind: "sgd", momentum: 0.9 }],
  ["SGD Nesterov + weight decay", { kind: "sgd", momentum: 0.9, nesterov: true, weightDecay: 0.01 }],
  ["Adam", { kind: "adam" }],
  ["Adam with L2 weight decay", { kind: "adam", weightDecay: 0.1, beta1: 0.8, beta2: 0.99 }],
  ["AdamW decoupled weight decay", { kind: "adamw", weightDecay: 0.1 }],
  ["SGD momentum with gradient clipping", { kind: "sgd", momentum: 0.9 }, 1.0],
];

describe("optimizers match torch.optim update rules", () => {
  for (const [name, opt, clip] of cases) {
    it(name, async () => {
      const got = await runGraph(opt, lrs, clip);
      const want = reference(opt, lrs, clip);
      got.w.forEach((x, i) => assert.ok(Math.abs(x - want[i]!) < 1e-5, `${name}: w[${i}] = ${x}, reference ${want[i]}`));
      // The reported gradient norm is the norm before clipping: at step 1 it is ‖c + w0‖.
      const g0 = Math.hypot(...W0.map((w, i) => w + C[i]!));
      assert.ok(Math.abs(got.norms[0]! - g0) < 1e-5, `grad norm ${got.norms[0]} vs ${g0}`);
    });
  }
  it("a clipped step is shorter than an unclipped one", async () => {
    const free = await runGraph({ kind: "sgd", momentum: 0 }, [0.1]);
    const clipped = await runGraph({ kind: "sgd", momentum: 0 }, [0.1], 0.5);
    const dist = (w: number[]) => Math.hypot(...w.map((x, i) => x - W0[i]!));
    assert.ok(Math.abs(dist(clipped.w) - 0.05) < 1e-5, `clipped step length ${dist(clipped.w)}`);
    assert.ok(dist(free.w) > dist(clipped.w));
  });
});

describe("SGD momentum folded into the weight-gradient Gemm", () => {
  it("gives the same parameters as the unfolded update (which grad-norm reporting forces)", async () => {
    const { Model } = await import("../src/nn/model.js");
    const L = await import("../src/nn/layers.js");
    const { ModelTrainer } = await import("../src/nn/train-step.js");
    const { crossEntropy } = await import("../src/nn/losses.js");
    const model = new Model(new L.Sequential([new L.Linear({ outFeatures: 16 }), new L.ReLU(), new L.Linear({ outFeatures: 3 })]), { shape: [8] }, ["a", "b", "c"]);
    const x = Float32Array.from({ length: 32 * 8 }, (_, i) => Math.sin(i * 0.37));
    const y = BigInt64Array.from({ length: 32 }, (_, i) => BigInt(i % 3));
    const results: Float32Array[] = [];
    for (const reportGradNorm of [false, true]) {
      const trainer = await ModelTrainer.create({
        model, params: model.initParameters(1), optimizer: { kind: "sgd", momentum: 0.9 }, reportGradNorm, threads: 1,
        loss: (ctx) => ({ loss: crossEntropy(ctx.logits, ctx.input("labels", ["N"], "int64")) }),
      });
      for (let s = 0; s < 4; s++) await trainer.step({ input: { dtype: "float32", shape: [32, 8], data: x }, labels: { dtype: "int64", shape: [32], data: y } }, 0.1 / (s + 1));
      results.push(trainer.parameters().get("linear1.weight").data.slice());
      await trainer.dispose();
    }
    const maxDiff = results[0]!.reduce((m, v, i) => Math.max(m, Math.abs(v - results[1]![i]!)), 0);
    assert.ok(maxDiff < 1e-6, `max difference ${maxDiff}`);
    // And the fold really happened: a Gemm with a C input and beta = 0.9 in the step graph.
    const g = new Graph();
    const xin = model.inputValue(g, "input");
    const { logits, paramInputs } = model.build(g, "train", { kind: "inputs" }, xin);
    const loss = crossEntropy(logits, g.input("labels", ["N"], "int64"));
    compileTrainStep({ graph: g, loss, params: paramInputs, optimizer: { kind: "sgd", momentum: 0.9 } });
    assert.ok(g.nodes.some((n) => n.opType === "Gemm" && n.inputs[2]?.name.endsWith("momentum") && "beta" in n.attrs));
  });
});

describe("max-norm constraint (optimizer.maxNorm)", () => {
  // Loss Σ C·W + Σ b + ½ Σ W², so ∇W = C + W: rows of W grow past the bound within a step or two.
  const CW = [[3, -4, 0], [0.1, 0.2, -0.1]];
  const W = [[0.5, 0.5, 0.5], [0.1, -0.1, 0.2]];
  const bound = 2, lr = 0.5;

  async function run(opt: OptimizerConfig, steps: number): Promise<{ w: number[]; b: number[] }> {
    const g = new Graph();
    const w = g.input("w", [2, 3]), b = g.input("b", [3]);
    const loss = F.add(
      F.add(F.reduceSum(F.mul(w, g.constFloat(CW.flat(), [2, 3])), [0, 1]), F.scale(F.reduceSum(F.mul(w, w), [0, 1]), 0.5)),
      F.scale(F.reduceSum(b, [0]), 5),
    );
    const compiled = compileTrainStep({ graph: g, loss, params: new Map([["w", w], ["b", b]]), optimizer: opt });
    const initial = new Map<string, Tensor<"float32">>([
      ["w", { dtype: "float32", shape: [2, 3], data: Float32Array.from(W.flat()) }],
      ["b", { dtype: "float32", shape: [3], data: new Float32Array(3) }],
    ]);
    for (const s of compiled.stateNames) if (!initial.has(s)) initial.set(s, { dtype: "float32", shape: s.startsWith("w.") ? [2, 3] : [3], data: new Float32Array(s.startsWith("w.") ? 6 : 3) });
    const session = await TrainingSession.create(compiled, opt, initial, { threads: 1 });
    for (let s = 0; s < steps; s++) await session.run({}, lr);
    const out = { w: Array.from(session.state("w").data), b: Array.from(session.state("b").data) };
    await session.dispose();
    return out;
  }

  it("scales each unit's incoming weights back to the bound after an SGD step, as a float64 reference does", async () => {
    const steps = 3;
    const got = await run({ kind: "sgd", momentum: 0, maxNorm: bound }, steps);
    const ref = W.map((r) => r.slice());
    for (let s = 0; s < steps; s++)
      for (const [u, row] of ref.entries()) {
        for (let j = 0; j < 3; j++) row[j] = row[j]! - lr * (CW[u]![j]! + row[j]!);
        const norm = Math.hypot(...row);
        if (norm > bound) for (let j = 0; j < 3; j++) row[j] = (row[j]! * bound) / norm;
      }
    got.w.forEach((v, i) => assert.ok(Math.abs(v - ref.flat()[i]!) < 1e-6, `w[${i}] = ${v}, reference ${ref.flat()[i]}`));
    // Row 0 hit the bound, row 1 stayed inside it (so it was not touched); the bias is free.
    assert.ok(Math.abs(Math.hypot(...got.w.slice(0, 3)) - bound) < 1e-5);
    assert.ok(Math.hypot(...got.w.slice(3)) < bound);
    const free = await run({ kind: "sgd", momentum: 0 }, steps);
    assert.ok(Math.hypot(...free.w.slice(0, 3)) > bound, "without the constraint row 0 grows past the bound");
    assert.deepEqual(got.b, free.b, "rank-1 parameters are not constrained");
  });

  it("applies after Adam's update too", async () => {
    const got = await run({ kind: "adam", maxNorm: 0.5 }, 4);
    for (const row of [got.w.slice(0, 3), got.w.slice(3)]) assert.ok(Math.hypot(...row) <= 0.5 + 1e-6, `row norm ${Math.hypot(...row)}`);
  });
});
