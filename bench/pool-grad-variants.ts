// `node dist/bench/pool-grad-variants.js`: forward 2×2 max-pool + its input gradient on
// [128, 32, 28, 28]: MaxPool-with-Indices + ScatterElements or + MaxUnpool against Indices-free
// formulations (an Equal mask of input and pooled output), alternated; ms per run (JSON lines).
// The evidence for MaxUnpool in the engine's MaxPool gradient (docs/engine.md, "Max-pooling").

import os from "node:os";
import { Graph, type Value } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";

// Layout ops only this measurement uses, declared here rather than in the engine's op table.
F.OPS["SpaceToDepth"] ??= { infer: ({ x }) => [{ shape: [x.shape[0]!, (x.shape[1] as number) * 4, (x.shape[2] as number) / 2, (x.shape[3] as number) / 2], dtype: "float32" }] };
F.OPS["And"] ??= { infer: ({ x: a }) => [{ shape: a.shape, dtype: "bool" }] };
F.OPS["Or"] ??= { infer: ({ x: a }) => [{ shape: a.shape, dtype: "bool" }] };
F.OPS["DepthToSpace"] ??= { infer: ({ x }) => [{ shape: [x.shape[0]!, (x.shape[1] as number) / 4, (x.shape[2] as number) * 2, (x.shape[3] as number) * 2], dtype: "float32" }] };

const N = 128, C = 32, H = 28, W = 28, h = 14, w = 14;
const pool = (x: Value, withIndices: boolean) => F.emit("MaxPool", [x], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } }).slice(0, withIndices ? 2 : 1);
const mask = (a: Value, b: Value) => F.cast(F.one("Equal", [a, b]), "float32");

/**
 * The four window positions as stride-2 slices (each [N, C, h, w], no broadcasting anywhere);
 * position k takes dY where it equals the maximum and no earlier position did (first maximum in
 * row-major order, as the Indices); DepthToSpace interleaves the four back into [N, C, H, W].
 */
function firstMaxByQuarters(g: Graph, x: Value, dy: Value, masked: (m: Value) => Value): Value {
  const [y] = pool(x, false);
  const quarters = [[0, 0], [0, 1], [1, 0], [1, 1]].map(([a, b]) =>
    g.addNode("Slice", [x, g.constInt64([a!, b!]), g.constInt64([H, W]), g.constInt64([2, 3]), g.constInt64([2, 2])], {}, [{ shape: [N, C, h, w], dtype: "float32" }])[0]!);
  const hits = quarters.map((q) => F.one("Equal", [q, y!]));
  const parts = [masked(hits[0]!)];
  let taken = hits[0]!;
  for (let k = 1; k < 4; k++) {
    parts.push(masked(F.one("And", [hits[k]!, F.one("Not", [taken])])));
    if (k < 3) taken = F.one("Or", [taken, hits[k]!]);
  }
  return F.one("DepthToSpace", [F.concat(parts, 1)], { blocksize: { i: 2 }, mode: { s: "DCR" } });
}

const variants: Record<string, (g: Graph, x: Value, dy: Value) => Value> = {
  "indices+scatter (before)": (_g, x, dy) => {
    const [, indices] = pool(x, true);
    const flat = F.one("ScatterElements", [F.reshape(F.zerosLike(x), [-1]), F.reshape(indices!, [-1]), F.reshape(dy, [-1])], { axis: { i: 0 }, reduction: { s: "add" } });
    return F.reshape(flat, [N, C, H, W]);
  },
  "indices+MaxUnpool (kept)": (_g, x, dy) => {
    const [, indices] = pool(x, true);
    return F.one("MaxUnpool", [dy, indices!, F.one("Shape", [x])], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } }, x.shape);
  },
  "strided quarters, first-max masks (Where), DepthToSpace": (g, x, dy) => firstMaxByQuarters(g, x, dy, (m) => F.where(m, dy, g.constFloat([0]))),
  "strided quarters, first-max masks (Cast·Mul), DepthToSpace": (g, x, dy) => firstMaxByQuarters(g, x, dy, (m) => F.mul(F.cast(m, "float32"), dy)),
  "spaceToDepth mask": (_g, x, dy) => {
    const [y] = pool(x, false);
    const windows = F.reshape(F.one("SpaceToDepth", [x], { blocksize: { i: 2 } }), [N, 4, C, h, w]);
    const d = F.mul(mask(windows, F.reshape(y!, [N, 1, C, h, w])), F.reshape(dy, [N, 1, C, h, w]));
    return F.one("DepthToSpace", [F.reshape(d, [N, 4 * C, h, w])], { blocksize: { i: 2 }, mode: { s: "DCR" } });
  },
  "transposed mask": (_g, x, dy) => {
    const [y] = pool(x, false);
    const windows = F.transpose(F.reshape(x, [N, C, h, 2, w, 2]), [0, 1, 3, 5, 2, 4]);
    const d = F.mul(mask(windows, F.reshape(y!, [N, C, 1, 1, h, w])), F.reshape(dy, [N, C, 1, 1, h, w]));
    return F.reshape(F.transpose(d, [0, 1, 4, 2, 5, 3]), [N, C, H, W]);
  },
  "6-D view mask": (_g, x, dy) => {
    const [y] = pool(x, false);
    const d = F.mul(mask(F.reshape(x, [N, C, h, 2, w, 2]), F.reshape(y!, [N, C, h, 1, w, 1])), F.reshape(dy, [N, C, h, 1, w, 1]));
    return F.reshape(d, [N, C, H, W]);
  },
  "transposed mask, first-max tie-break": (g, x, dy) => {
    const [y] = pool(x, false);
    const windows = F.transpose(F.reshape(x, [N, C, h, 2, w, 2]), [0, 1, 3, 5, 2, 4]);
    const score = F.mul(mask(windows, F.reshape(y!, [N, C, 1, 1, h, w])), g.constFloat([8, 4, 2, 1], [1, 1, 2, 2, 1, 1]));
    const first = mask(score, F.reduceMax(score, [2, 3], true));
    return F.reshape(F.transpose(F.mul(first, F.reshape(dy, [N, C, 1, 1, h, w])), [0, 1, 4, 2, 5, 3]), [N, C, H, W]);
  },
};

const feeds = {
  x: { dtype: "float32" as const, shape: [N, C, H, W], data: Float32Array.from({ length: N * C * H * W }, (_, i) => Math.sin(i * 0.37)) },
  dy: { dtype: "float32" as const, shape: [N, C, h, w], data: Float32Array.from({ length: N * C * h * w }, (_, i) => Math.cos(i)) },
};
const sessions = new Map<string, Session>();
for (const [name, build] of Object.entries(variants)) {
  const g = new Graph();
  g.output(build(g, g.input("x", [N, C, H, W]), g.input("dy", [N, C, h, w])), "dx");
  sessions.set(name, await Session.create(encodeModel(g)));
}
const times = new Map<string, number[]>([...sessions.keys()].map((k) => [k, []]));
let reference: Float32Array | undefined;
for (let round = 0; round < 5; round++)
  for (const [name, session] of sessions) {
    const t0 = performance.now();
    let out: Float32Array | undefined;
    for (let i = 0; i < 5; i++) out = (await session.run(feeds))["dx"]!.data as Float32Array;
    times.get(name)!.push((performance.now() - t0) / 5);
    reference ??= out;
    if (round === 0 && out!.some((v, i) => v !== reference![i])) throw new Error(`${name} computes another gradient`);
  }
for (const [name, ms] of times) {
  const sorted = ms.slice().sort((a, b) => a - b);
  console.log(JSON.stringify({ name, msPerRun: Number(sorted[2]!.toFixed(2)), loadavg1m: Number(os.loadavg()[0]!.toFixed(2)) }));
}
for (const s of sessions.values()) await s.dispose();
