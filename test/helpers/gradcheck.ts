// Finite-difference gradient checks: the engine's analytic gradients against central
// differences of the same onnxruntime graph, at random coordinates and along one random direction.

import assert from "node:assert/strict";
import { Graph, type Value } from "../../src/engine/graph.js";
import * as F from "../../src/engine/functional.js";
import { gradients } from "../../src/engine/autodiff.js";
import { encodeModel } from "../../src/engine/onnx.js";
import { blockConvolutions } from "../../src/engine/nchwc.js";
import { Session, type Tensor } from "../../src/engine/runtime.js";
import { Rng } from "../../src/util/random.js";

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
  /** Step of the directional probe (default step/4: a smaller step crosses fewer ReLU/max kinks). */
  directionStep?: number;
  /**
   * Run eligible Convs on onnxruntime's blocked kernels, as training steps do
   * (engine/nchwc.ts); `blocked` receives how many Convs were marked.
   */
  nchwc?: { block: number; blocked?: (count: number) => void };
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
  if (opts.nchwc) opts.nchwc.blocked?.(blockConvolutions(g, opts.nchwc.block));
  const session = await Session.create(encodeModel(g), { threads: 1 });

  const feeds: Record<string, Tensor> = { upstream: { dtype: "float32", shape: outShape, data: rData } };
  for (const i of inputs) feeds[i.value.name] = { dtype: i.value.dtype, shape: i.shape ?? (i.value.shape as number[]), data: i.data } as Tensor;
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
    await directionalCheck(label, inp.value.name, data, analytic, lossAt, rng, { h: opts.directionStep ?? h / 4, rtol, atol });
  }
  await session.dispose();
}

/**
 * One probe along a random direction v over every coordinate at once: (L(x + h·v) − L(x − h·v)) / 2h
 * against ∇L · v. The coordinate probes see a dozen entries; this sees all of them, so a gradient
 * wrong only at a border, a few kernel taps or one overlapping window still moves the sum.
 */
async function directionalCheck(
  label: string,
  name: string,
  data: Float32Array,
  analytic: Float32Array,
  lossAt: () => Promise<number>,
  rng: Rng,
  o: { h: number; rtol: number; atol: number },
): Promise<void> {
  const orig = data.slice();
  const v = Float32Array.from(data, () => rng.uniform(-1, 1));
  const shifted = async (sign: number) => {
    for (let i = 0; i < data.length; i++) data[i] = orig[i]! + sign * o.h * v[i]!;
    return lossAt();
  };
  const plus = await shifted(1), minus = await shifted(-1);
  data.set(orig);
  const numeric = (plus - minus) / (2 * o.h);
  let a = 0;
  for (let i = 0; i < v.length; i++) a += analytic[i]! * v[i]!;
  const ok = Math.abs(a - numeric) <= o.atol + o.rtol * Math.max(Math.abs(a), Math.abs(numeric));
  assert.ok(ok, `${label}: directional derivative along a random v for ${name}: analytic ∇·v ${a} vs numeric ${numeric}`);
}

export function randomData(n: number, seed: number, low = -1, high = 1): Float32Array {
  const rng = new Rng(seed, "data");
  return Float32Array.from({ length: n }, () => rng.uniform(low, high));
}
