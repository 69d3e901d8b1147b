// `node dist/bench/nchwc-conv.js [ROUNDS]`: the CNN step's conv2 forward ([128,32,14,14] → 64) and
// input gradient ([128,64,14,14] → 32), 3×3 pad 1, weight fed as an input as in training, as plain
// Conv and on onnxruntime's blocked kernels (engine/nchwc.ts), alternated; ms per run, median
// (JSON lines). The evidence for blocked convolutions in training steps (docs/engine.md, "Blocked (NCHWc) convolutions").

import os from "node:os";
import { Graph } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { encodeModel } from "../src/engine/onnx.js";
import { blockConvolutions, nchwcBlockSize } from "../src/engine/nchwc.js";
import { Session, type Tensor } from "../src/engine/runtime.js";

const rounds = Number(process.argv[2] ?? 7), N = 128;
const block = await nchwcBlockSize();
if (!block) throw new Error("this onnxruntime build has no NCHWc kernels");
for (const { name, c, m, h } of [{ name: "conv2 forward", c: 32, m: 64, h: 14 }, { name: "conv2 input gradient", c: 64, m: 32, h: 14 }]) {
  const feeds: Record<string, Tensor> = {
    x: { dtype: "float32", shape: [N, c, h, h], data: Float32Array.from({ length: N * c * h * h }, (_, i) => Math.sin(i * 0.37)) },
    w: { dtype: "float32", shape: [m, c, 3, 3], data: Float32Array.from({ length: m * c * 9 }, (_, i) => Math.cos(i * 0.11) * 0.1) },
  };
  const build = (blocked: boolean) => {
    const g = new Graph();
    const y = F.one("Conv", [g.input("x", ["N", c, h, h]), g.input("w", [m, c, 3, 3])], { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } });
    // A sum as the output, so that copying [N, M, H, W] out of onnxruntime is not timed.
    g.output(F.reduceSum(y, [0, 1, 2, 3]), "sum");
    g.output(F.reduceSum(y, [0, 2, 3]), "per_channel");
    if (blocked && blockConvolutions(g, block) !== 1) throw new Error("the Conv was not blocked");
    return Session.create(encodeModel(g));
  };
  const sessions = { plain: await build(false), blocked: await build(true) };
  const a = (await sessions.plain.run(feeds))["per_channel"]!.data as Float32Array;
  const b = (await sessions.blocked.run(feeds))["per_channel"]!.data as Float32Array;
  const worst = a.reduce((mx, v, i) => Math.max(mx, Math.abs(v - b[i]!) / Math.max(1, Math.abs(v))), 0);
  if (!(worst < 1e-4)) throw new Error(`${name}: blocked and plain differ by ${worst}`);
  const ms: Record<string, number[]> = { plain: [], blocked: [] };
  for (let r = 0; r < rounds; r++)
    for (const [k, s] of Object.entries(sessions)) {
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await s.run(feeds);
      ms[k]!.push((performance.now() - t0) / 5);
    }
  const median = (v: number[]) => Number(v.sort((p, q) => p - q)[Math.floor(v.length / 2)]!.toFixed(2));
  console.log(JSON.stringify({ name, block, plainMs: median(ms["plain"]!), blockedMs: median(ms["blocked"]!), loadavg1m: Number(os.loadavg()[0]!.toFixed(2)) }));
  await Promise.all(Object.values(sessions).map((s) => s.dispose()));
}
