// In-graph optimizer updates against hand-written torch.optim reference implementations.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Graph } from "../src/engine/graph.js";
import * as F from "../src/engine/ops.js";
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
  const initial = new Map([["w", { shape: [3], data: Float32Array.from(W0) }]]);
  for (const s of compiled.stateNames) if (s !== "w") initial.set(s, { shape: [3], data: new Float32Array(3) });
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
