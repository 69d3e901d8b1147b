// Finite-difference gradient checks: the engine's analytic gradients against central
// differences of the same onnxruntime graph, at random coordinates.

import assert from "node:assert/strict";
import { Graph, type Value } from "../../src/engine/graph.js";
import * as F from "../../src/engine/ops.js";
import { gradients } from "../../src/engine/autodiff.js";
import { encodeModel } from "../../src/engine/onnx.js";
import { Session, type HostTensor } from "../../src/engine/runtime.js";
import { Rng } from "../../src/nn/random.js";

export interface CheckInput {
  value: Value;
  data: Float32Array | BigInt64Array | Uint8Array;
  /** Differentiate with respect to this input (float inputs only). */
  wrt?: boolean;
  /** Run-time shape where the graph shape is symbolic (e.g. batch "N"). */
  shape?: number[];
}

export interface GradCheckOptions {
  /** Coordinates probed per input. */
  probes?: number;
  step?: number;
  rtol?: number;
  atol?: number;
  seed?: number;
}

/**
 * Builds `build(g)` → output y, takes L = Σ y ⊙ R for a fixed random R (so every output element
 * gets a distinct upstream gradient), and compares dL/dx from autodiff with
 * (L(x + h·e_i) − L(x − h·e_i)) / 2h.
 */
export async function gradCheck(
  label: string,
  build: (g: Graph) => { inputs: CheckInput[]; output: Value; outputShape?: number[] },
  opts: GradCheckOptions = {},
): Promise<void> {
  const g = new Graph();
  const { inputs, output, outputShape } = build(g);
  const rng = new Rng(opts.seed ?? 1, label);
  const outShape = outputShape ?? (output.shape as number[]);
  const rData = Float32Array.from({ length: outShape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1));
  const r = g.input("upstream", output.shape);
  const loss = F.reduceSum(F.mul(output, r), output.shape.map((_, i) => i));
  const wrt = inputs.filter((i) => i.wrt !== false && i.value.dtype === "float32");
  const grads = gradients(g, loss, wrt.map((i) => i.value));
  g.output(loss, "loss");
  grads.forEach((d, i) => g.output(d, `grad${i}`));
  const session = await Session.create(encodeModel(g), { threads: 1 });

  const feeds: Record<string, HostTensor> = { upstream: { dtype: "float32", shape: outShape, data: rData } };
  for (const i of inputs) feeds[i.value.name] = { dtype: i.value.dtype, shape: i.shape ?? (i.value.shape as number[]), data: i.data };
  const base = await session.run(feeds);

  const h = opts.step ?? 1e-2;
  const rtol = opts.rtol ?? 2e-2, atol = opts.atol ?? 2e-3;
  const lossAt = async () => Number((await session.run(feeds, undefined, ["loss"]))["loss"]!.data[0]);
  for (let k = 0; k < wrt.length; k++) {
    const inp = wrt[k]!;
    const data = inp.data as Float32Array;
    const analytic = base[`grad${k}`]!.data as Float32Array;
    assert.equal(analytic.length, data.length, `${label}: gradient of ${inp.value.name} has the wrong size`);
    const probes = Math.min(opts.probes ?? 12, data.length);
    const picked = new Set<number>();
    while (picked.size < probes) picked.add(rng.int(data.length));
    for (const idx of picked) {
      const orig = data[idx]!;
      data[idx] = orig + h;
      const plus = await lossAt();
      data[idx] = orig - h;
      const minus = await lossAt();
      data[idx] = orig;
      const numeric = (plus - minus) / (2 * h);
      const a = analytic[idx]!;
      const ok = Math.abs(a - numeric) <= atol + rtol * Math.max(Math.abs(a), Math.abs(numeric));
      assert.ok(ok, `${label}: d/d${inp.value.name}[${idx}] analytic ${a} vs numeric ${numeric}`);
    }
    // The gradient must not be trivially zero everywhere (that would pass the probes vacuously).
    assert.ok(analytic.some((v) => v !== 0), `${label}: gradient of ${inp.value.name} is identically zero`);
  }
  await session.dispose();
}

export function randomData(n: number, seed: number, low = -1, high = 1): Float32Array {
  const rng = new Rng(seed, "data");
  return Float32Array.from({ length: n }, () => rng.uniform(low, high));
}
