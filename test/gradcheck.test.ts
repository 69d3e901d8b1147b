// Finite-difference gradient checks for every differentiable op and every layer, both modes of
// BatchNorm and Dropout, with the symbolic batch dimension the training graphs use. Each check
// probes random coordinates and one random direction over all coordinates (helpers/gradcheck.ts).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { gradients } from "../src/engine/autodiff.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";
import { Graph, type Value } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { ForwardContext, type Module, initialValue, type Mode } from "../src/nn/module.js";
import * as L from "../src/nn/layers.js";
import { Rng } from "../src/util/random.js";
import { gradCheck, randomData, type CheckInput, type GradCheckOptions } from "./helpers/gradcheck.js";
import { nchwcBlockSize } from "../src/engine/nchwc.js";

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
function inp(g: Graph, name: string, shape: number[], seed: number, low = -1, high = 1): CheckInput {
  return { value: g.input(name, shape), data: randomData(size(shape), seed, low, high) };
}

describe("op gradients", () => {
  const binaries: [string, (a: Value, b: Value) => Value][] = [
    ["Add", F.add],
    ["Sub", F.sub],
    ["Mul", F.mul],
    ["Div", F.div],
  ];
  for (const [name, fn] of binaries) {
    it(`${name} with broadcasting`, async () => {
      await gradCheck(name, (g) => {
        const a = inp(g, "a", [3, 4, 5], 1);
        const b = inp(g, "b", [4, 1], 2, 0.5, 2); // broadcast over axes 0 and 2; kept away from 0 for Div
        return { inputs: [a, b], output: fn(a.value, b.value) };
      });
    });
  }
  const unaries: [string, (x: Value) => Value, number, number][] = [
    ["Neg", F.neg, -1, 1],
    ["Exp", F.exp, -1, 1],
    ["Log", F.log, 0.5, 2],
    ["Sqrt", F.sqrt, 0.5, 2],
    ["Tanh", F.tanh, -2, 2],
    ["Sigmoid", F.sigmoid, -3, 3],
    ["Relu", F.relu, -1, 1],
    ["Erf", F.erf, -2, 2],
    ["Pow(x, 3)", (x) => F.pow(x, 3), -1, 1],
    ["Pow(x, 2)", (x) => F.pow(x, 2), -1, 1],
    ["Pow(x, 0.5)", (x) => F.pow(x, 0.5), 0.5, 2],
    ["Pow(x, -0.5)", (x) => F.pow(x, -0.5), 0.5, 2],
    ["Pow(x, -2)", (x) => F.pow(x, -2), 0.5, 2],
    ["Pow(x, 1.5)", (x) => F.pow(x, 1.5), 0.5, 2],
    ["Identity", (x) => F.mul(F.identity(x), x), -1, 1],
    ["Cast float32 → float32", (x) => F.mul(F.cast(x, "float32"), x), -1, 1],
    ["Reciprocal", (x) => F.unary("Reciprocal", x), 0.5, 2],
    ["Abs", (x) => F.unary("Abs", x), -1, 1],
  ];
  for (const [name, fn, lo, hi] of unaries) {
    it(name, async () => {
      await gradCheck(name, (g) => {
        const x = inp(g, "x", [4, 6], 3, lo, hi);
        return { inputs: [x], output: fn(x.value) };
      });
    });
  }
  for (const [ta, tb] of [
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1],
  ] as const) {
    it(`Gemm transA=${ta} transB=${tb} with bias and alpha/beta`, async () => {
      await gradCheck(`Gemm${ta}${tb}`, (g) => {
        const a = inp(g, "a", ta ? [5, 3] : [3, 5], 4);
        const b = inp(g, "b", tb ? [4, 5] : [5, 4], 5);
        const c = inp(g, "c", [4], 6);
        return { inputs: [a, b, c], output: F.gemm(a.value, b.value, { c: c.value, transA: ta, transB: tb, alpha: 0.7, beta: 1.3 }) };
      });
    });
  }
  it("MatMul 2-D and batched", async () => {
    await gradCheck("MatMul2d", (g) => {
      const a = inp(g, "a", [3, 5], 7), b = inp(g, "b", [5, 2], 8);
      return { inputs: [a, b], output: F.matmul(a.value, b.value) };
    });
    await gradCheck("MatMul3d", (g) => {
      const a = inp(g, "a", [2, 3, 5], 7), b = inp(g, "b", [2, 5, 2], 8);
      return { inputs: [a, b], output: F.matmul(a.value, b.value) };
    });
  });
  it("MatMul with broadcast batch axes", async () => {
    await gradCheck("MatMul3d×2d", (g) => {
      const a = inp(g, "a", [2, 3, 5], 7), b = inp(g, "b", [5, 4], 8); // b is shared by both batches
      return { inputs: [a, b], output: F.matmul(a.value, b.value) };
    });
    await gradCheck("MatMul batch 1 vs 2", (g) => {
      const a = inp(g, "a", [2, 1, 3, 5], 7), b = inp(g, "b", [3, 5, 2], 8); // [2,1] vs [3] → [2,3]
      return { inputs: [a, b], output: F.matmul(a.value, b.value) };
    });
  });
  it("Transpose, Reshape, Flatten, Unsqueeze, Squeeze", async () => {
    await gradCheck("shape ops", (g) => {
      const x = inp(g, "x", [2, 3, 4], 9);
      const t = F.transpose(x.value, [2, 0, 1]); // [4, 2, 3]
      const r = F.reshape(t, [4, 6]);
      const u = F.squeeze(F.unsqueeze(r, [0]), [0]);
      return { inputs: [x], output: F.mul(F.flatten(F.reshape(u, [2, 2, 6]), 1), F.flatten(F.reshape(u, [2, 2, 6]), 1)) };
    });
  });
  it("Concat and Slice", async () => {
    await gradCheck("concat/slice", (g) => {
      const a = inp(g, "a", [2, 3], 10), b = inp(g, "b", [2, 4], 11);
      const c = F.concat([a.value, b.value], 1);
      return { inputs: [a, b], output: F.mul(F.slice(c, [1], [6], [1]), F.slice(c, [0], [5], [1])) };
    });
  });
  it("Slice on several axes, negative axes and negative ends", async () => {
    await gradCheck("slice multi", (g) => {
      const x = inp(g, "x", [4, 5, 6], 18);
      // rows 1..2 of axis 0, columns 2..4 of the last axis (written −1), axis 1 from 1 to −1.
      const s1 = F.slice(x.value, [1, 2, 1], [3, 5, -1], [0, -1, 1]); // [2, 3, 3]
      return { inputs: [x], output: F.mul(s1, s1) };
    });
  });
  it("Expand, ReduceSum, ReduceMean (static and symbolic batch)", async () => {
    await gradCheck("reduce", (g) => {
      const x = inp(g, "x", [3, 4, 5], 12);
      const s = F.reduceSum(F.mul(x.value, x.value), [1], false); // [3, 5]
      const m = F.reduceMean(x.value, [0, 2], true); // [1, 4, 1]
      const e = F.expandLike(m, x.value);
      return { inputs: [x], output: F.add(F.mul(e, x.value), F.unsqueeze(s, [1])) };
    });
    await gradCheck("reduce-symbolic", (g) => {
      const x = { value: g.input("x", ["N", 6]), data: randomData(24, 13), shape: [4, 6] };
      const m = F.reduceMean(F.mul(x.value, x.value), [0], true);
      return { inputs: [x], output: F.mul(F.sub(x.value, m), x.value), outputShape: [4, 6] };
    });
  });
  it("ReduceMax over one and two axes, kept and dropped", async () => {
    await gradCheck("reducemax", (g) => {
      const x = inp(g, "x", [3, 4, 5], 20);
      return { inputs: [x], output: F.add(F.unsqueeze(F.reduceMax(x.value, [1]), [1]), F.reduceMax(x.value, [0, 2], true)) };
    });
  });
  it("Softmax and LogSoftmax", async () => {
    await gradCheck("softmax", (g) => {
      const x = inp(g, "x", [4, 7], 14, -3, 3);
      return { inputs: [x], output: F.add(F.softmax(x.value), F.scale(F.logSoftmax(x.value), 0.3)) };
    });
  });
  it("Softmax and LogSoftmax on a non-last axis", async () => {
    for (const axis of [0, 1]) {
      await gradCheck(`softmax axis ${axis}`, (g) => {
        const x = inp(g, "x", [3, 4, 5], 19, -3, 3);
        return { inputs: [x], output: F.add(F.softmax(x.value, axis), F.scale(F.logSoftmax(x.value, axis), 0.3)) };
      });
    }
  });
  it("Where", async () => {
    await gradCheck("where", (g) => {
      const a = inp(g, "a", [4, 5], 15), b = inp(g, "b", [5], 16);
      const cond = F.greater(a.value, g.constFloat([0]));
      return { inputs: [a, b], output: F.where(cond, F.mul(a.value, a.value), b.value) };
    });
  });
  it("Gather (embedding lookup with repeated ids)", async () => {
    await gradCheck("gather", (g) => {
      const table = inp(g, "table", [6, 3], 17);
      const ids = { value: g.input("ids", [2, 4], "int64"), data: BigInt64Array.from([0, 1, 1, 5, 3, 3, 3, 0].map(BigInt)), wrt: false };
      return { inputs: [table, ids], output: F.gather(table.value, ids.value) };
    });
  });
});

describe("layer gradients", () => {
  async function layerCheck(label: string, layer: Module, shape: number[], mode: Mode, opts: { batch?: number; low?: number; high?: number; step?: number; nchwc?: GradCheckOptions["nchwc"] } = {}) {
    await gradCheck(label, (g) => {
      const batch = opts.batch ?? 3;
      const x: CheckInput = { value: g.input("x", ["N", ...shape]), data: randomData(batch * size(shape), 21, opts.low ?? -1, opts.high ?? 1), shape: [batch, ...shape] };
      const params: CheckInput[] = [];
      const rng = new Rng(5, label);
      const ctx = new ForwardContext(g, mode, (d) => {
        const v = g.input(d.name, d.shape);
        const data = initialValue(d, 3);
        // Constant inits (BN γ=1, β=0) would hide errors that a generic value exposes.
        if (d.init.kind === "constant") for (let i = 0; i < data.length; i++) data[i] = d.name.endsWith("var") ? rng.uniform(0.5, 1.5) : rng.uniform(-1, 1) + data[i]!;
        params.push({ value: v, data, wrt: d.role === "param" });
        return v;
      });
      layer.path = label;
      const y = layer.forward(ctx, x.value);
      // Dropout's mask comes from the step's random stream: a fixed stream is a fixed mask.
      const masks: CheckInput[] = ctx.randomStream ? [{ value: ctx.randomStream, data: BigInt64Array.of(7n), wrt: false, shape: [] }] : [];
      const outShape = y.shape.map((d) => (typeof d === "number" ? d : batch));
      return { inputs: [x, ...params, ...masks], output: y, outputShape: outShape };
    }, { step: opts.step, nchwc: opts.nchwc });
  }

  it("Linear", () => layerCheck("linear", new L.Linear({ outFeatures: 4 }), [5], "train"));
  it("Conv2d 3×3 pad 1", () => layerCheck("conv", new L.Conv2d({ outChannels: 3, kernelSize: 3, padding: 1 }), [2, 5, 5], "train"));
  it("Conv2d 3×3 no padding on a non-square input", () => layerCheck("conv_np", new L.Conv2d({ outChannels: 3, kernelSize: 3 }), [2, 5, 7], "train"));
  it("Conv2d 5×5 pad 2, 1×1", async () => {
    await layerCheck("conv5", new L.Conv2d({ outChannels: 2, kernelSize: 5, padding: 2 }), [3, 6, 5], "train");
    await layerCheck("conv1x1", new L.Conv2d({ outChannels: 2, kernelSize: 1 }), [3, 4, 4], "train");
  });
  it("Conv2d stride 2 (dropped trailing rows)", () => layerCheck("conv_s2", new L.Conv2d({ outChannels: 2, kernelSize: 3, stride: 2 }), [2, 6, 6], "train"));
  it("Conv2d without bias", () => layerCheck("conv_nobias", new L.Conv2d({ outChannels: 3, kernelSize: 3, padding: 1, bias: false }), [2, 5, 5], "train"));
  it("Conv2d groups 1, stride 2 with padding (even and odd sizes)", async () => {
    await layerCheck("conv_s2p1", new L.Conv2d({ outChannels: 3, kernelSize: 3, stride: 2, padding: 1 }), [2, 6, 6], "train");
    await layerCheck("conv_s2p1_odd", new L.Conv2d({ outChannels: 2, kernelSize: 3, stride: 2, padding: 1 }), [3, 7, 5], "train");
    await layerCheck("conv_s3p2", new L.Conv2d({ outChannels: 2, kernelSize: 5, stride: 3, padding: 2, bias: false }), [2, 8, 7], "train");
  });
  it("Conv2d weight gradient as tap slices (stride 1, < 16 channels) and im2col (≥ 16, or ≥ 4 strided): pad 1, none on a non-square input, stride 2 on odd sizes", async () => {
    await layerCheck("conv_taps", new L.Conv2d({ outChannels: 3, kernelSize: 3, padding: 1 }), [4, 5, 5], "train");
    await layerCheck("conv_i2c", new L.Conv2d({ outChannels: 3, kernelSize: 3, padding: 1 }), [16, 5, 5], "train", { batch: 2 });
    await layerCheck("conv_i2c_np", new L.Conv2d({ outChannels: 2, kernelSize: 3, bias: false }), [5, 5, 7], "train");
    await layerCheck("conv_i2c_s2", new L.Conv2d({ outChannels: 3, kernelSize: 3, stride: 2, padding: 1 }), [4, 7, 6], "train");
  });
  it("Conv2d on onnxruntime's blocked (NCHWc) kernels, as training steps run it: pad 1; stride 2 with padding; no bias, no padding", async (t) => {
    const block = await nchwcBlockSize();
    if (!block) return t.skip("this onnxruntime build has no NCHWc kernels (nchwcBlockSize() is undefined)");
    const counts: number[] = [];
    const nchwc = { block, blocked: (n: number) => counts.push(n) };
    // Two convolutions so the second one's input gradient (a forward Conv of dY) is blocked too.
    const twoConvs = (o: { stride?: number; padding?: number; bias?: boolean }) =>
      new L.Sequential([new L.Conv2d({ outChannels: block, kernelSize: 3, ...o }), new L.Tanh(), new L.Conv2d({ outChannels: 2 * block, kernelSize: 3, padding: 1 })]);
    await layerCheck("nchwc_p1", twoConvs({ padding: 1 }), [block, 5, 5], "train", { batch: 2, nchwc });
    await layerCheck("nchwc_s2", twoConvs({ stride: 2, padding: 1 }), [block, 7, 6], "train", { batch: 2, nchwc });
    await layerCheck("nchwc_nobias", twoConvs({ bias: false }), [block, 6, 5], "train", { batch: 2, nchwc });
    // Both forward Convs plus the second one's input gradient (stride 1) run blocked; the first's
    // input gradient is blocked only at stride 1 (at stride 2 it is a ConvTranspose).
    assert.deepEqual(counts, [4, 3, 4]);
  });
  it("Conv2d depthwise (groups = channels)", () => layerCheck("dwconv", new L.Conv2d({ outChannels: 3, kernelSize: 3, padding: 1, groups: 3 }), [3, 5, 5], "train"));
  it("Conv2d depthwise with multiplier 2, stride 2", () => layerCheck("dwconv2", new L.Conv2d({ outChannels: 6, kernelSize: 3, stride: 2, padding: 1, groups: 3 }), [3, 6, 6], "train"));
  it("Conv2d grouped (2 groups)", () => layerCheck("gconv", new L.Conv2d({ outChannels: 4, kernelSize: 3, padding: 1, groups: 2 }), [4, 4, 4], "train"));
  it("MaxPool2d 2×2 (also on odd sizes and padded) and overlapping 3×3 stride 2", async () => {
    await layerCheck("maxpool", new L.MaxPool2d({ kernelSize: 2 }), [2, 4, 4], "train");
    await layerCheck("maxpool_odd", new L.MaxPool2d({ kernelSize: 2 }), [2, 5, 7], "train");
    // Two inputs of one window lie 0.007 apart here: a smaller step keeps the probe off that kink.
    await layerCheck("maxpool_pad", new L.MaxPool2d({ kernelSize: 2, padding: 1 }), [2, 5, 4], "train", { step: 1e-3 });
    await layerCheck("maxpool3", new L.MaxPool2d({ kernelSize: 3, stride: 2 }), [2, 7, 7], "train");
  });
  it("Conv2d → MaxPool2d 2×2 (the bias gradient sums the pooled gradient), also padded and on odd sizes", async () => {
    const convPool = (padding: number) => new L.Sequential([new L.Conv2d({ outChannels: 3, kernelSize: 3, padding: 1 }), new L.MaxPool2d({ kernelSize: 2, padding })]);
    await layerCheck("conv_pool", convPool(0), [2, 4, 4], "train");
    await layerCheck("conv_pool_odd_pad", convPool(1), [2, 5, 7], "train", { step: 1e-3 });
  });
  it("AvgPool2d, also padded", async () => {
    await layerCheck("avgpool", new L.AvgPool2d({ kernelSize: 2 }), [2, 4, 4], "train");
    await layerCheck("avgpool_pad", new L.AvgPool2d({ kernelSize: 3, stride: 2, padding: 1 }), [2, 5, 5], "train");
  });
  it("GlobalAvgPool", () => layerCheck("gap", new L.GlobalAvgPool(), [3, 4, 4], "train"));
  it("BatchNorm train mode, 2-D and 4-D", async () => {
    await layerCheck("bn2d", new L.BatchNorm(), [4], "train", { batch: 5 });
    await layerCheck("bn4d", new L.BatchNorm(), [3, 3, 3], "train", { batch: 4 });
  });
  it("BatchNorm eval mode", () => layerCheck("bn_eval", new L.BatchNorm(), [3, 2, 2], "eval"));
  it("LayerNorm", () => layerCheck("ln", new L.LayerNorm(), [6], "train"));
  it("ReLU, GELU, Tanh, Sigmoid", async () => {
    await layerCheck("relu", new L.ReLU(), [7], "train");
    await layerCheck("gelu", new L.GELU(), [7], "train", { low: -3, high: 3 });
    await layerCheck("tanh", new L.Tanh(), [7], "train");
    await layerCheck("sigmoid", new L.Sigmoid(), [7], "train");
  });
  it("Dropout train mode (fixed mask) and eval mode", async () => {
    await layerCheck("dropout", new L.Dropout({ p: 0.3 }), [8], "train");
    await layerCheck("dropout_eval", new L.Sequential([new L.Dropout({ p: 0.3 }), new L.Tanh()]), [8], "eval");
  });
  it("Flatten + Linear on an image", () => layerCheck("flat", new L.Sequential([new L.Flatten(), new L.Linear({ outFeatures: 3 })]), [2, 3, 3], "train"));
  // Ids with padding inside a text (an unknown bigram), at the end, and one text with no tokens.
  const ids = [1, 2, 0, 2, 6, 0, 0, 0, 3, 3, 5, 1, 0, 0, 0, 0];
  async function tokenLayerCheck(label: string, layers: Module[], nchwc?: GradCheckOptions["nchwc"]) {
    await gradCheck(label, (g) => {
      const x = { value: g.input("ids", ["N", 4], "int64"), data: BigInt64Array.from(ids.map(BigInt)), wrt: false, shape: [4, 4] };
      const params: CheckInput[] = [];
      const ctx = new ForwardContext(g, "train", (d) => {
        const v = g.input(d.name, d.shape);
        params.push({ value: v, data: initialValue(d, 3) });
        return v;
      });
      const net = new L.Sequential(layers);
      net.path = label;
      const y = net.forward(ctx, x.value);
      return { inputs: [x, ...params], output: y, outputShape: y.shape.map((d) => (typeof d === "number" ? d : 4)) };
    }, { nchwc });
  }
  it("Embedding (padding embeds to zeros)", () => tokenLayerCheck("emb", [new L.Embedding({ vocabSize: 7, dim: 3 })]));
  it("Embedding + MeanPool (mask-aware mean)", () => tokenLayerCheck("embmean", [new L.Embedding({ vocabSize: 7, dim: 3 }), new L.MeanPool()]));
  it("Embedding + Conv1d (odd and even kernels) + MaxOverTime", async () => {
    await tokenLayerCheck("conv1d_k3", [new L.Embedding({ vocabSize: 7, dim: 3 }), new L.Conv1d({ outChannels: 4, kernelSize: 3 }), new L.MaxOverTime()]);
    await tokenLayerCheck("conv1d_k2", [new L.Embedding({ vocabSize: 7, dim: 3 }), new L.Conv1d({ outChannels: 2, kernelSize: 2 }), new L.Tanh(), new L.MeanPool()]);
  });
  it("Embedding + two Conv1d (odd and even kernels: asymmetric padding) on the blocked (NCHWc) kernels, as training steps run them", async (t) => {
    const block = await nchwcBlockSize();
    if (!block) return t.skip("this onnxruntime build has no NCHWc kernels (nchwcBlockSize() is undefined)");
    const counts: number[] = [];
    const nchwc = { block, blocked: (n: number) => counts.push(n) };
    for (const k of [3, 2])
      await tokenLayerCheck(`nchwc_conv1d_k${k}`, [new L.Embedding({ vocabSize: 7, dim: block }), new L.Conv1d({ outChannels: block, kernelSize: k }), new L.Tanh(), new L.Conv1d({ outChannels: block, kernelSize: k }), new L.MeanPool()], nchwc);
    // Per check: both forward Convs and both input gradients (the first reaches the embeddings).
    assert.deepEqual(counts, [4, 4]);
  });
  it("Residual block with 1×1 shortcut, and Concat branches", async () => {
    const res = new L.Residual(
      new L.Sequential([new L.Conv2d({ outChannels: 4, kernelSize: 3, padding: 1 }), new L.BatchNorm(), new L.ReLU()]),
      new L.Conv2d({ outChannels: 4, kernelSize: 1 }),
    );
    // A smaller step: a weight change moves many pre-activations, and ReLU kinks spoil large steps.
    await layerCheck("res", res, [2, 4, 4], "train", { step: 1e-3 });
    const cat = new L.Concat([new L.Sequential([new L.Linear({ outFeatures: 2 })]), new L.Sequential([new L.Linear({ outFeatures: 3 }), new L.Tanh()])]);
    await layerCheck("cat", cat, [4], "train");
  });
});

describe("max-pool gradient where maxima tie", () => {
  it("2×2 pooling sends each window's gradient to its first maximum in row-major order, as PyTorch", async () => {
    const g = new Graph();
    const x = g.input("x", ["N", 1, 2, 4]);
    const y = F.emit("MaxPool", [x], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } })[0]!;
    const loss = F.reduceSum(F.mul(y, g.constFloat([3, 5], [1, 1, 1, 2])), [0, 1, 2, 3]);
    g.output(gradients(g, loss, [x])[0]!, "dx");
    const session = await Session.create(encodeModel(g), { threads: 1 });
    // Window 1 is all ties; in window 2 the maximum 7 appears at (0, 1) and at (1, 0).
    const data = Float32Array.from([2, 2, 1, 7, 2, 2, 7, 0]);
    const out = await session.run({ x: { dtype: "float32", shape: [1, 1, 2, 4], data } });
    await session.dispose();
    assert.deepEqual(Array.from(out["dx"]!.data as Float32Array), [3, 0, 0, 5, 0, 0, 0, 0]);
  });
});
