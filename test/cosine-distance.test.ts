// cosineDistance (1 − cosine similarity of matching rows, batch mean) against the formula in
// float64, at the points whose value is known (parallel 0, orthogonal 1, opposite 2), and its
// gradient against central differences.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Graph } from "../src/engine/graph.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";
import { cosineDistance } from "../src/nn/losses.js";
import { gradCheck, randomData } from "./helpers/gradcheck.js";

async function distance(a: number[][], b: number[][]): Promise<number> {
  const g = new Graph();
  const [n, d] = [a.length, a[0]!.length];
  const x = g.input("a", [n, d]), y = g.input("b", [n, d]);
  g.output(cosineDistance(x, y), "distance");
  const s = await Session.create(encodeModel(g), { threads: 1 });
  try {
    const out = await s.run({ a: { dtype: "float32", shape: [n, d], data: Float32Array.from(a.flat()) }, b: { dtype: "float32", shape: [n, d], data: Float32Array.from(b.flat()) } });
    return (out["distance"]!.data as Float32Array)[0]!;
  } finally {
    await s.dispose();
  }
}

function reference(a: number[][], b: number[][]): number {
  const dot = (u: number[], v: number[]) => u.reduce((s, x, i) => s + x * v[i]!, 0);
  return a.reduce((s, u, i) => s + 1 - dot(u, b[i]!) / Math.sqrt(dot(u, u) * dot(b[i]!, b[i]!)), 0) / a.length;
}

test("cosineDistance: 0 for parallel rows, 1 for orthogonal, 2 for opposite, their mean over the batch", async () => {
  assert.ok(Math.abs((await distance([[1, 2, 3]], [[2, 4, 6]])) - 0) < 1e-6);
  assert.ok(Math.abs((await distance([[1, 0, 0]], [[0, 5, 0]])) - 1) < 1e-6);
  assert.ok(Math.abs((await distance([[1, -2, 0.5]], [[-3, 6, -1.5]])) - 2) < 1e-6);
  // Scale does not matter, only direction: the mean of the three rows above.
  assert.ok(Math.abs((await distance([[1, 2, 3], [1, 0, 0], [1, -2, 0.5]], [[0.2, 0.4, 0.6], [0, 5, 0], [-3, 6, -1.5]])) - 1) < 1e-6);
});

test("cosineDistance matches the float64 formula on random rows", async () => {
  const rows = (seed: number) => Array.from({ length: 5 }, (_, i) => [...randomData(7, seed + i)]);
  const a = rows(10), b = rows(20);
  const got = await distance(a, b), want = reference(a, b);
  assert.ok(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
  assert.ok(want > 0.3 && want < 1.7, "random rows: neither parallel nor opposite");
});

test("cosineDistance's gradients match central differences in both inputs", async () => {
  await gradCheck("cosineDistance", (g) => {
    const a = g.input("a", [4, 6]), b = g.input("b", [4, 6]);
    return { inputs: [{ value: a, data: randomData(24, 3) }, { value: b, data: randomData(24, 4) }], output: cosineDistance(a, b) };
  });
});
