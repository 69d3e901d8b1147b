// `node dist/bench/gemm-orientation.js [ROUNDS] [THREADS,…]`: the bench CNN's conv2 weight-gradient product
// (P = 128·14·14 = 25,088 pixels, C·kh·kw = 288, M = 64) as MLAS runs it in each operand layout,
// from operands already laid out (layout costs excluded), at 2 and 1 threads (or those given),
// alternated round by round; ms per run, median (JSON lines). Why weightGradByIm2col (engine/conv-grad.ts) computes
// colsᵀ · dY rather than dY · cols (docs/engine.md, "GEMM orientation").

import os from "node:os";
import { Graph, type Value } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session, type Tensor } from "../src/engine/runtime.js";

const rounds = Number(process.argv[2] ?? 9);
const threadCounts = (process.argv[3] ?? "2,1").split(",").map(Number);
const M = 64, P = 25088, C = 288, CHUNKS = 8;
const filled = (shape: number[]): Tensor => ({ dtype: "float32", shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => Math.sin(i * 0.37)) });
const operands: Record<string, number[]> = {
  dyRows: [M, P], cols: [P, C], colsT: [C, P], dyPixels: [P, M], colsTChunks: [CHUNKS, C, P / CHUNKS], dyRowChunks: [CHUNKS, M, P / CHUNKS],
};
const forms: Record<string, (input: (name: string) => Value) => Value> = {
  "dY[M, P] · cols[P, 288] (the engine of round 4)": (i) => F.gemm(i("dyRows"), i("cols")),
  "colsᵀ[288, P] · dY[P, M] (the engine since round 5)": (i) => F.gemm(i("colsT"), i("dyPixels")),
  "dY[P, M]ᵀ · cols[P, 288] (transA; before round 4)": (i) => F.gemm(i("dyPixels"), i("cols"), { transA: 1 }),
  [`colsᵀ in ${CHUNKS} runs of P, batched MatMul + ReduceSum`]: (i) => F.reduceSum(F.matmul(i("colsTChunks"), F.reshape(i("dyPixels"), [CHUNKS, P / CHUNKS, M])), [0]),
  [`dY in ${CHUNKS} runs of P · cols, batched MatMul + ReduceSum`]: (i) => F.reduceSum(F.matmul(i("dyRowChunks"), F.reshape(i("cols"), [CHUNKS, P / CHUNKS, C])), [0]),
};
const feeds = Object.fromEntries(Object.entries(operands).map(([name, shape]) => [name, filled(shape)]));
const timed: { form: string; threads: number; session: Session; feeds: Record<string, Tensor>; ms: number[] }[] = [];
for (const threads of threadCounts)
  for (const [form, build] of Object.entries(forms)) {
    const g = new Graph();
    const used: string[] = [];
    // A sum as the output, so that copying the product out of onnxruntime is not timed.
    g.output(F.reduceSum(build((name) => (used.push(name), g.input(name, operands[name]!))), [0, 1]), "sum");
    timed.push({ form, threads, session: await Session.create(encodeModel(g), { threads }), feeds: Object.fromEntries(used.map((n) => [n, feeds[n]!])), ms: [] });
  }
for (let r = 0; r < rounds; r++)
  for (const t of timed) {
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) await t.session.run(t.feeds);
    t.ms.push((performance.now() - t0) / 5);
  }
for (const { form, threads, ms, session } of timed) {
  const median = ms.sort((a, b) => a - b)[Math.floor(ms.length / 2)]!;
  console.log(JSON.stringify({ form, threads, msPerRun: Number(median.toFixed(2)), gflops: Number(((2 * M * P * C) / median / 1e6).toFixed(1)), loadavg1m: Number(os.loadavg()[0]!.toFixed(2)) }));
  await session.dispose();
}
