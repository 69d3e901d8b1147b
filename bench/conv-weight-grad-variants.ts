// `node dist/bench/conv-weight-grad-variants.js [ROUNDS]`: the weight gradient of the bench CNN's
// two 3×3, pad-1 convolutions (conv1 [128,1,28,28] → 32, conv2 [128,32,14,14] → 64) in several
// formulations, alternated round by round; ms per run, median (JSON lines). Each variant is checked
// against the engine's (engine/conv-grad.ts) to float tolerance before it is timed.
// LAYERS='[{"name":"c8","c":8,"m":64,"h":14}, …]' times other channel counts (where conv-grad.ts's
// IM2COL_MIN_CHANNELS and TAP_SLICES_BELOW_CHANNELS come from). The evidence for conv-grad.ts's choice (docs/engine.md, "Weight gradient").

import os from "node:os";
import { Graph, type Value } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { convGrad, weightGradByIm2col, weightGradByTapSlices } from "../src/engine/conv-grad.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session, type Tensor } from "../src/engine/runtime.js";

const rounds = Number(process.argv[2] ?? 7);
const N = 128, K = 3, PAD = 1;
const layers = process.env["LAYERS"] ? (JSON.parse(process.env["LAYERS"]) as { name: string; c: number; m: number; h: number }[]) : [
  { name: "conv1", c: 1, m: 32, h: 28 },
  { name: "conv2", c: 32, m: 64, h: 14 },
];
const convAttrs = { pads: { ints: [PAD, PAD, PAD, PAD] }, kernel_shape: { ints: [K, K] } };

type Variant = (g: Graph, x: Value, dy: Value, c: number, m: number, h: number) => Value;

/** Gather along `axis` with a constant [rows, columns] index table. */
const gatherAxis = (g: Graph, data: Value, indices: number[][], axis: number): Value =>
  F.gather(data, g.constInt64(indices.flat(), [indices.length, indices[0]!.length]), axis);

/** For every output pixel (row-major), the positions its K×K taps read in the padded image. */
function tapPositions(h: number, w: number): number[][] {
  const wp = w + 2 * PAD;
  const rows: number[][] = [];
  for (let i = 0; i < h; i++)
    for (let j = 0; j < w; j++) {
      const taps: number[] = [];
      for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) taps.push((i + a) * wp + (j + b));
      rows.push(taps);
    }
  return rows;
}

/** im2col over an NHWC copy of the padded input: [N·H·W, K·K·C], one Gather (axis 1). */
function nhwcCols(g: Graph, x: Value, c: number, h: number): Value {
  const hp = h + 2 * PAD;
  const padded = F.emit("Pad", [F.transpose(x, [0, 2, 3, 1]), g.constInt64([0, PAD, PAD, 0, 0, PAD, PAD, 0])])[0]!;
  const cols = gatherAxis(g, F.reshape(padded, [0, hp * hp, c]), tapPositions(h, h), 1); // [N, H·W, K·K, C]
  return F.reshape(cols, [-1, K * K * c], ["P", K * K * c]);
}

const variants: Record<string, Variant> = {
  "engine (conv-grad.ts)": (g, x, dy, c, m) => {
    // Only the kernel's shape matters to the weight gradient; the unused constant is pruned.
    const w = g.constFloat(new Float32Array(m * c * K * K), [m, c, K, K]);
    return convGrad(g, x, w, undefined, dy, dy, convAttrs)[1]!;
  },
  "K·K shifted GEMMs (the engine of round 1)": (g, x, dy, c, m, h) => {
    // dW[:, :, a, b] = Σ dY · X shifted by (a, b); rows kept at the padded width Wp so that each
    // shift is one contiguous slice of X as [C, N, (Hp + 1)·Wp].
    const wp = h + 2 * PAD;
    const padded = F.emit("Pad", [F.transpose(x, [1, 0, 2, 3]), g.constInt64([0, 0, PAD, PAD, 0, 0, PAD + 1, PAD])])[0]!;
    const xFlat = F.reshape(padded, [c, -1, (wp + 1) * wp], [c, "N", (wp + 1) * wp]);
    const dyWide = F.emit("Pad", [dy, g.constInt64([0, 0, 0, 0, 0, 0, 0, wp - h])])[0]!;
    const dyFlat = F.reshape(F.transpose(dyWide, [0, 2, 3, 1]), [-1, m], ["P", m]);
    const taps: Value[] = [];
    for (let a = 0; a < K; a++)
      for (let b = 0; b < K; b++) {
        const shifted = F.slice(xFlat, [a * wp + b], [a * wp + b + h * wp], [2]);
        taps.push(F.unsqueeze(F.gemm(F.reshape(shifted, [c, -1], [c, "P"]), dyFlat), [2]));
      }
    return F.reshape(F.transpose(F.concat(taps, 2), [1, 0, 2]), [m, c, K, K]);
  },
  "im2col NHWC Gather(axis 1) + one Gemm(transA) (the engine before round 4)": (g, x, dy, c, m, h) => {
    const a = nhwcCols(g, x, c, h);
    const b = F.reshape(F.transpose(dy, [0, 2, 3, 1]), [-1, m], ["P", m]);
    const dw = F.gemm(a, b, { transA: 1 }); // [K·K·C, M]
    return F.transpose(F.reshape(dw, [K, K, c, m]), [3, 2, 0, 1]);
  },
  "im2col NHWC Gather(axis 1) + one Gemm(dYᵀ·cols)": (g, x, dy, c, m, h) => {
    const a = nhwcCols(g, x, c, h);
    const b = F.reshape(F.transpose(dy, [0, 2, 3, 1]), [-1, m], ["P", m]);
    const dw = F.gemm(b, a, { transA: 1 }); // [M, K·K·C]
    return F.transpose(F.reshape(dw, [m, K, K, c]), [0, 3, 1, 2]);
  },
  "im2col NCHW by 9 Slices, Concat, Transpose + Gemm(dY as [M, P], colsᵀ)": (g, x, dy, c, m, h) => {
    const padded = F.emit("Pad", [x, g.constInt64([0, 0, PAD, PAD, 0, 0, PAD, PAD])])[0]!; // [N, C, Hp, Wp]
    const shifts: Value[] = [];
    for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) shifts.push(F.unsqueeze(F.slice(padded, [a, b], [a + h, b + h], [2, 3]), [0]));
    const stacked = F.transpose(F.concat(shifts, 0), [0, 2, 1, 3, 4]); // [K·K, C, N, H, W]
    const colsT = F.reshape(stacked, [K * K * c, -1], [K * K * c, "P"]);
    const b = F.reshape(F.transpose(dy, [1, 0, 2, 3]), [m, -1], [m, "P"]);
    const dw = F.gemm(b, colsT, { transB: 1 }); // [M, K·K·C]
    return F.transpose(F.reshape(dw, [m, K, K, c]), [0, 3, 1, 2]);
  },
  "im2col NHWC Gather(axis 1) + one Gemm(dY planes [M, P], cols) (the engine of round 4)": (g, x, dy, c, m, h) => {
    const b = nhwcCols(g, x, c, h);
    const a = F.reshape(F.transpose(dy, [1, 0, 2, 3]), [m, -1], [m, "P"]);
    return F.transpose(F.reshape(F.gemm(a, b), [m, K, K, c]), [0, 3, 1, 2]);
  },
  "engine's im2col + GEMM (stride 1: ≥ 16 channels)": (g, x, dy) => weightGradByIm2col(g, x, dy, K, K, [1, 1], [PAD, PAD, PAD, PAD]),
  "engine's tap slices + batched MatMul + ReduceSum (stride 1: < 16 channels)": (g, x, dy) => weightGradByTapSlices(g, x, dy, K, K, [PAD, PAD, PAD, PAD]),
  "colsᵀ from [C, N, H, W] by 9 Slices + Concat, Gemm(colsᵀ, dY NHWC), no transposed operand": (g, x, dy, c, m, h) => {
    const padded = F.emit("Pad", [F.transpose(x, [1, 0, 2, 3]), g.constInt64([0, 0, PAD, PAD, 0, 0, PAD, PAD])])[0]!; // [C, N, Hp, Wp]
    const shifts = [];
    for (let a = 0; a < K; a++) for (let b = 0; b < K; b++) shifts.push(F.unsqueeze(F.slice(padded, [a, b], [a + h, b + h], [2, 3]), [0]));
    const colsT = F.reshape(F.concat(shifts, 0), [K * K * c, -1], [K * K * c, "P"]); // [(tap, c), (n, i, j)]
    const dyPix = F.reshape(F.transpose(dy, [0, 2, 3, 1]), [-1, m], ["P", m]);
    const dw = F.gemm(colsT, dyPix); // [K·K·C, M]
    return F.transpose(F.reshape(dw, [K, K, c, m]), [3, 2, 0, 1]);
  },
  "im2col NHWC Slice+Concat + one Gemm": (g, x, dy, c, m, h) => {
    const padded = F.emit("Pad", [F.transpose(x, [0, 2, 3, 1]), g.constInt64([0, PAD, PAD, 0, 0, PAD, PAD, 0])])[0]!; // [N, Hp, Wp, C]
    const byColumn = F.concat(Array.from({ length: K }, (_, b) => F.slice(padded, [b], [b + h], [2])), 3); // [N, Hp, W, K·C]
    const cols = F.concat(Array.from({ length: K }, (_, a) => F.slice(byColumn, [a], [a + h], [1])), 3); // [N, H, W, K·K·C]
    const a = F.reshape(cols, [-1, K * K * c], ["P", K * K * c]);
    const b = F.reshape(F.transpose(dy, [0, 2, 3, 1]), [-1, m], ["P", m]);
    const dw = F.gemm(b, a, { transA: 1 }); // [M, K·K·C]
    return F.transpose(F.reshape(dw, [m, K, K, c]), [0, 3, 1, 2]);
  },
  "im2col NCHW Gather(axis 2) + batched MatMul + ReduceSum": (g, x, dy, c, m, h) => {
    const hp = h + 2 * PAD;
    const padded = F.emit("Pad", [x, g.constInt64([0, 0, PAD, PAD, 0, 0, PAD, PAD])])[0]!;
    const taps = tapPositions(h, h);
    const byTap = Array.from({ length: K * K }, (_, t) => taps.map((row) => row[t]!)); // [K·K, H·W]
    const cols = gatherAxis(g, F.reshape(padded, [0, c, hp * hp]), byTap, 2); // [N, C, K·K, H·W]
    const a = F.reshape(cols, [0, c * K * K, h * h], [N, c * K * K, h * h]);
    const b = F.transpose(F.reshape(dy, [0, m, h * h], [N, m, h * h]), [0, 2, 1]); // [N, H·W, M]
    const dw = F.reduceSum(F.matmul(a, b), [0]); // [C·K·K, M]
    return F.transpose(F.reshape(dw, [c, K, K, m]), [3, 0, 1, 2]);
  },
  "Conv over batch-as-channels": (g, x, dy, c, m) => {
    const xt = F.transpose(x, [1, 0, 2, 3]);
    const dyt = F.transpose(dy, [1, 0, 2, 3]);
    const out = g.addNode("Conv", [xt, dyt], { pads: { ints: [PAD, PAD, PAD, PAD] } }, [{ shape: [c, m, K, K], dtype: "float32" }])[0]!;
    return F.transpose(out, [1, 0, 2, 3]);
  },
};

const results: { layer: string; variant: string; ms: number[] }[] = [];
for (const { name, c, m, h } of layers) {
  const feeds: Record<string, Tensor> = {
    x: { dtype: "float32", shape: [N, c, h, h], data: Float32Array.from({ length: N * c * h * h }, (_, i) => Math.sin(i * 0.37)) },
    dy: { dtype: "float32", shape: [N, m, h, h], data: Float32Array.from({ length: N * m * h * h }, (_, i) => Math.cos(i * 0.11)) },
  };
  const sessions = new Map<string, Session>();
  for (const [variant, build] of Object.entries(variants)) {
    const g = new Graph();
    g.output(build(g, g.input("x", ["N", c, h, h]), g.input("dy", ["N", m, h, h]), c, m, h), "dw");
    sessions.set(variant, await Session.create(encodeModel(g)));
  }
  let reference: Float32Array | undefined;
  for (const [variant, s] of sessions) {
    const dw = (await s.run(feeds))["dw"]!.data as Float32Array;
    reference ??= dw;
    const scale = Math.max(...reference.map(Math.abs));
    const worst = Math.max(...dw.map((v, i) => Math.abs(v - reference![i]!)));
    if (dw.length !== reference.length || !(worst <= 1e-4 * scale)) throw new Error(`${name}, ${variant}: differs from the engine's by ${worst} (scale ${scale})`);
  }
  const timed = [...sessions].map(([variant, session]) => ({ layer: name, variant, session, ms: [] as number[] }));
  for (let r = 0; r < rounds; r++)
    for (const t of timed) {
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await t.session.run(feeds);
      t.ms.push((performance.now() - t0) / 5);
    }
  for (const t of timed) {
    results.push(t);
    await t.session.dispose();
  }
}
for (const { layer, variant, ms } of results) {
  const sorted = ms.slice().sort((a, b) => a - b);
  console.log(JSON.stringify({ layer, variant, msPerRun: Number(sorted[Math.floor(sorted.length / 2)]!.toFixed(2)), loadavg1m: Number(os.loadavg()[0]!.toFixed(2)) }));
}
