// The engine's onnxruntime wrapper: outputs fetched into caller-owned buffers (what the training
// session relies on to allocate nothing per step) really are written there by onnxruntime.

import { it } from "node:test";
import assert from "node:assert/strict";
import { Graph } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";

it("Session.run writes outputs into pre-allocated buffers and returns those same buffers", async () => {
  const g = new Graph();
  const x = g.input("x", [2, 3]);
  g.output(F.mul(x, x), "square");
  g.output(F.neg(x), "negated");
  const session = await Session.create(encodeModel(g), { threads: 1 });
  try {
    const data = Float32Array.of(1, -2, 3, 0.5, 4, -6);
    const target = new Float32Array(6).fill(NaN);
    const into = { square: { dtype: "float32" as const, shape: [2, 3], data: target } };
    const out = await session.run({ x: { dtype: "float32", shape: [2, 3], data } }, into, ["square", "negated"]);
    assert.equal(out["square"]!.data, target, "the caller's buffer is handed back, not a copy");
    assert.deepEqual([...target], [1, 4, 9, 0.25, 16, 36]);
    assert.deepEqual([...(out["negated"]!.data as Float32Array)], [-1, 2, -3, -0.5, -4, 6]);
    // A second run overwrites the same memory.
    data.set([2, 2, 2, 2, 2, 2]);
    await session.run({ x: { dtype: "float32", shape: [2, 3], data } }, into, ["square"]);
    assert.deepEqual([...target], [4, 4, 4, 4, 4, 4]);
  } finally {
    await session.dispose();
  }
});
