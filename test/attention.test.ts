// Attention and transformer layers: the ops they are built from (rank-4 MatMul, Transpose,
// masked Softmax, Where) under finite differences; multi-head attention's forward pass against a
// float64 reference written out loop by loop (padding, causal and cross masks); finite-difference
// checks of every layer; a transformer text classifier trained on UCI sentences, and its
// raw-string export against the training graph's forward pass.

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { Graph, type Value } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { encodeModel } from "../src/engine/onnx.js";
import { gradients } from "../src/engine/autodiff.js";
import { Session, type Tensor } from "../src/engine/runtime.js";
import { ForwardContext, type Module, initialValue, type Mode } from "../src/nn/module.js";
import * as L from "../src/nn/layers.js";
import { MultiHeadAttention, PositionEmbedding, TokenLinear, TransformerDecoderBlock, TransformerEncoder, TransformerEncoderBlock, sinusoidalPositions } from "../src/nn/attention.js";
import { gradCheck, randomData, type CheckInput } from "./helpers/gradcheck.js";
import { buildVocabulary, tokenizeAll, type Vocabulary } from "../src/data/tokenizer.js";
import { exportTextOnnx } from "../src/nn/text-export.js";
import type { LayerSpec } from "../src/config/schema.js";
import { validateConfig } from "../src/config/load.js";
import "../src/distill/methods/index.js"; // registers the methods the kd: block accepts
import type { Model } from "../src/nn/model.js";
import type { ParameterSet } from "../src/nn/module.js";
import { accuracy, trainTextClassifier } from "./helpers/text-model.js";
import { uciSplit, type Sentences } from "./helpers/uci-sentences.js";

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
function inp(g: Graph, name: string, shape: number[], seed: number, low = -1, high = 1): CheckInput {
  return { value: g.input(name, shape), data: randomData(size(shape), seed, low, high) };
}

describe("attention ops: gradients", () => {
  it("MatMul on rank-4 operands (per-head Q·Kᵀ and weights·V)", async () => {
    await gradCheck("matmul4d", (g) => {
      const a = inp(g, "a", [2, 3, 4, 5], 31), b = inp(g, "b", [2, 3, 5, 4], 32);
      return { inputs: [a, b], output: F.matmul(a.value, b.value) };
    });
  });
  it("Transpose of a rank-4 tensor into a MatMul (keys [N, L, H, dk] → [N, H, dk, L])", async () => {
    await gradCheck("transpose4d", (g) => {
      const q = inp(g, "q", [2, 4, 3, 2], 33), k = inp(g, "k", [2, 4, 3, 2], 34);
      return { inputs: [q, k], output: F.matmul(F.transpose(q.value, [0, 2, 1, 3]), F.transpose(k.value, [0, 2, 3, 1])) };
    });
  });
  it("Softmax on the last axis with an additive −1e9 mask broadcast over heads: masked scores get no gradient", async () => {
    const mask = Float32Array.from([0, 0, -1e9, 0, -1e9, 0, 0, 0, 0, -1e9]); // [2, 1, 1, 5]
    await gradCheck("masked softmax", (g) => {
      const s = inp(g, "s", [2, 3, 4, 5], 35, -3, 3);
      const m = { value: g.input("m", [2, 1, 1, 5]), data: mask, wrt: false };
      return { inputs: [s, m], output: F.softmax(F.add(s.value, m.value), -1) };
    });
    // And the masked entries' gradient is exactly 0 (not merely small).
    const g = new Graph();
    const s = g.input("s", [2, 3, 4, 5]);
    const y = F.softmax(F.add(s, g.constFloat(mask, [2, 1, 1, 5])), -1);
    const loss = F.reduceSum(F.mul(y, g.constFloat(randomData(120, 36), [2, 3, 4, 5])), [0, 1, 2, 3]);
    g.output(gradients(g, loss, [s])[0]!, "ds");
    const out = await runGraph(g, { s: { dtype: "float32", shape: [2, 3, 4, 5], data: randomData(120, 37, -3, 3) } });
    const ds = out["ds"]!.data as Float32Array;
    for (let i = 0; i < ds.length; i++) if (mask[Math.floor(i / 60) * 5 + (i % 5)]! < 0) assert.ok(ds[i] === 0, `ds[${i}] = ${ds[i]} at a masked key`);
  });
  it("Where with a condition broadcast over heads and queries", async () => {
    await gradCheck("where4d", (g) => {
      const a = inp(g, "a", [2, 3, 4, 5], 38), b = inp(g, "b", [2, 3, 4, 5], 39);
      const keep = g.input("keep", [2, 1, 1, 5]);
      const c = { value: keep, data: Float32Array.from([1, 0, 1, 1, 0, 0, 1, 1, 0, 1]), wrt: false };
      return { inputs: [a, b, c], output: F.where(F.greater(keep, g.constFloat([0.5])), F.mul(a.value, a.value), b.value) };
    });
  });
});

async function runGraph(g: Graph, feeds: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const session = await Session.create(encodeModel(g), { threads: 1 });
  try {
    return await session.run(feeds);
  } finally {
    await session.dispose();
  }
}

// ---------------------------------------------------------------- forward pass against a reference

type Matrix = number[][];
const matOf = (data: Float32Array, rows: number, cols: number, at = 0): Matrix =>
  Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => data[at + r * cols + c]!));
/** x·Wᵀ + b for W [out, in] (PyTorch's layout). */
const linear = (x: Matrix, w: Matrix, b: number[]) => x.map((row) => w.map((wr, o) => wr.reduce((s, wv, i) => s + wv * row[i]!, b[o]!)));

/**
 * Multi-head attention for one sample in float64, loop by loop: softmax over allowed keys only
 * (keyMask 0 and, when causal, keys after the query are left out, not merely down-weighted).
 */
function attentionReference(x: Matrix, memory: Matrix, p: Record<string, Float32Array>, heads: number, o: { causal?: boolean; keyMask?: number[] }): Matrix {
  const d = x[0]!.length, dm = memory[0]!.length, dk = d / heads;
  const proj = (input: Matrix, name: string, fanIn: number) => linear(input, matOf(p[`${name}.weight`]!, d, fanIn), Array.from(p[`${name}.bias`]!));
  const q = proj(x, "q", d), k = proj(memory, "k", dm), v = proj(memory, "v", dm);
  const context = x.map(() => new Array<number>(d).fill(0));
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < x.length; i++) {
      const allowed = memory.map((_, j) => (o.keyMask ? o.keyMask[j] === 1 : true) && (!o.causal || j <= i));
      const scores = memory.map((_, j) => {
        let s = 0;
        for (let c = 0; c < dk; c++) s += q[i]![h * dk + c]! * k[j]![h * dk + c]!;
        return s / Math.sqrt(dk);
      });
      const top = Math.max(...scores.filter((_, j) => allowed[j]));
      const e = scores.map((s, j) => (allowed[j] ? Math.exp(s - top) : 0));
      const total = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < memory.length; j++) for (let c = 0; c < dk; c++) context[i]![h * dk + c]! += (e[j]! / total) * v[j]![h * dk + c]!;
    }
  return linear(context, matOf(p["out.weight"]!, d, d), Array.from(p["out.bias"]!));
}

describe("multi-head attention: forward pass against a float64 reference", () => {
  const n = 2, len = 4, d = 6, heads = 2;
  // Sample 0 has two padded positions at the end, sample 1 one in the middle (an unknown bigram).
  const tokenMask = [1, 1, 0, 0, 1, 0, 1, 1];

  async function compare(label: string, opts: { causal?: boolean; padding?: boolean; crossLength?: number }) {
    const g = new Graph();
    const x = g.input("x", ["N", len, d]);
    const xData = randomData(n * len * d, 41, -2, 2);
    const feeds: Record<string, Tensor> = { x: { dtype: "float32", shape: [n, len, d], data: xData } };
    const params: Record<string, Float32Array> = {};
    const ctx = new ForwardContext(g, "train", (decl) => {
      // Random biases too: PyTorch's zero init would hide a bias added in the wrong place.
      params[decl.name] = decl.init.kind === "constant" ? randomData(size(decl.shape), 43, -0.5, 0.5) : initialValue(decl, 42);
      feeds[decl.name] = { dtype: "float32", shape: decl.shape, data: params[decl.name]! };
      return g.input(decl.name, decl.shape);
    });
    const mha = new MultiHeadAttention({ heads, causal: opts.causal });
    let y: Value;
    let memoryData: Float32Array | undefined;
    const dm = 5, lk = opts.crossLength ?? len;
    if (opts.crossLength) {
      const memory = g.input("memory", ["N", lk, dm]), mask = g.input("memory_mask", ["N", lk]);
      memoryData = randomData(n * lk * dm, 44, -2, 2);
      feeds["memory"] = { dtype: "float32", shape: [n, lk, dm], data: memoryData };
      feeds["memory_mask"] = { dtype: "float32", shape: [n, lk], data: Float32Array.from(tokenMask.slice(0, n * lk)) };
      y = mha.attendTo(ctx, x, { value: memory, mask });
    } else {
      if (opts.padding) {
        ctx.tokenMask = g.input("mask", ["N", len]);
        feeds["mask"] = { dtype: "float32", shape: [n, len], data: Float32Array.from(tokenMask) };
      }
      y = mha.forward(ctx, x);
    }
    assert.deepEqual(y.shape, ["N", len, d]);
    g.output(y, "y");
    const got = (await runGraph(g, feeds))["y"]!.data as Float32Array;
    let worst = 0;
    for (let s = 0; s < n; s++) {
      const xs = matOf(xData, len, d, s * len * d);
      const memory = memoryData ? matOf(memoryData, lk, dm, s * lk * dm) : xs;
      const keyMask = opts.crossLength || opts.padding ? tokenMask.slice(s * lk, (s + 1) * lk) : undefined;
      const want = attentionReference(xs, memory, params, heads, { causal: opts.causal, keyMask });
      want.forEach((row, i) => row.forEach((v, c) => (worst = Math.max(worst, Math.abs(v - got[(s * len + i) * d + c]!)))));
    }
    assert.ok(worst < 1e-5, `${label}: max |Δ| ${worst} against the float64 reference`);
  }

  it("self-attention without masks", () => compare("plain", {}));
  it("self-attention leaves padded keys out (the embedding's token mask)", () => compare("padding", { padding: true }));
  it("causal self-attention: position i sees keys ≤ i only, also with padding", async () => {
    await compare("causal", { causal: true });
    await compare("causal+padding", { causal: true, padding: true });
  });
  it("cross-attention: queries from x, keys and values from a memory of another length and width, its padding left out", () => compare("cross", { crossLength: 3 }));

  it("a changed padded key changes nothing; a changed real key does", async () => {
    // The masked keys' embeddings must not leak into the output by any path.
    const g = new Graph();
    const ctx = new ForwardContext(g, "eval", (decl) => g.initializer(decl.name, { dtype: "float32", shape: decl.shape, data: initialValue(decl, 5) }));
    const x = g.input("x", [1, len, d]);
    ctx.tokenMask = g.constFloat([1, 1, 0, 0], [1, len]);
    g.output(new MultiHeadAttention({ heads }).forward(ctx, x), "y");
    const session = await Session.create(encodeModel(g), { threads: 1 });
    const run = async (data: Float32Array) => (await session.run({ x: { dtype: "float32", shape: [1, len, d], data } }))["y"]!.data as Float32Array;
    const base = randomData(len * d, 46);
    const y0 = await run(base);
    const padChanged = base.slice();
    for (let c = 0; c < d; c++) padChanged[2 * d + c] = 7; // position 2 is padding
    const yPad = await run(padChanged);
    for (const i of [0, 1, 3].flatMap((pos) => Array.from({ length: d }, (_, c) => pos * d + c))) assert.equal(yPad[i], y0[i], `output ${i} moved with a padded key`);
    const realChanged = base.slice();
    realChanged[1 * d] = 7; // position 1 is a token
    const yReal = await run(realChanged);
    assert.notEqual(yReal[0], y0[0]);
    await session.dispose();
  });
});

describe("sinusoidal positions", () => {
  it("sin on even, cos on odd features, wavelengths 2π·10000^(2i/d)", () => {
    const t = sinusoidalPositions(50, 8);
    assert.deepEqual(Array.from(t.subarray(0, 8)), [0, 1, 0, 1, 0, 1, 0, 1]);
    assert.ok(Math.abs(t[3 * 8 + 0]! - Math.sin(3)) < 1e-6);
    assert.ok(Math.abs(t[3 * 8 + 1]! - Math.cos(3)) < 1e-6);
    assert.ok(Math.abs(t[49 * 8 + 6]! - Math.sin(49 / 10000 ** (6 / 8))) < 1e-6);
    assert.ok(Math.abs(t[49 * 8 + 7]! - Math.cos(49 / 10000 ** (6 / 8))) < 1e-6);
  });
});

// ---------------------------------------------------------------- layer gradients

describe("attention layers: gradients (finite differences)", () => {
  /** Checks `build`'s output on a float sequence x ["N", len, d] (batch 2), w.r.t. x, every parameter and any extra inputs. */
  async function sequenceCheck(label: string, shape: [number, number], build: (ctx: ForwardContext, x: Value, g: Graph) => { y: Value; extra?: CheckInput[] }, mode: Mode = "train") {
    await gradCheck(label, (g) => {
      const batch = 2;
      const x: CheckInput = { value: g.input("x", ["N", ...shape]), data: randomData(batch * size(shape), 51), shape: [batch, ...shape] };
      const params: CheckInput[] = [];
      const ctx = new ForwardContext(g, mode, (decl) => {
        const v = g.input(decl.name, decl.shape);
        const data = initialValue(decl, 3);
        // Zero biases and unit LayerNorm scales would hide an error in their own gradients.
        if (decl.init.kind === "constant") for (let i = 0; i < data.length; i++) data[i] = data[i]! + (((i * 7919) % 13) / 13 - 0.5);
        params.push({ value: v, data });
        return v;
      });
      const { y, extra = [] } = build(ctx, x.value, g);
      const masks: CheckInput[] = ctx.randomStream ? [{ value: ctx.randomStream, data: BigInt64Array.of(7n), wrt: false, shape: [] }] : [];
      return { inputs: [x, ...params, ...extra, ...masks], output: y, outputShape: y.shape.map((dim) => (typeof dim === "number" ? dim : batch)) };
    });
  }
  const on = (layer: Module, path: string) => (ctx: ForwardContext, x: Value) => {
    layer.path = path;
    return { y: layer.forward(ctx, x) };
  };

  it("TokenLinear", () => sequenceCheck("tokenlinear", [3, 4], on(new TokenLinear({ outFeatures: 5 }), "tl")));
  it("MultiHeadAttention, self, 2 heads", () => sequenceCheck("mha", [4, 6], on(new MultiHeadAttention({ heads: 2 }), "mha")));
  it("MultiHeadAttention, causal", () => sequenceCheck("mha_causal", [4, 6], on(new MultiHeadAttention({ heads: 3, causal: true }), "mha")));
  it("MultiHeadAttention with a key padding mask", () =>
    sequenceCheck("mha_pad", [4, 4], (ctx, x, g) => {
      ctx.tokenMask = g.input("mask", ["N", 4]);
      const mha = new MultiHeadAttention({ heads: 2 });
      mha.path = "mha";
      return { y: mha.forward(ctx, x), extra: [{ value: ctx.tokenMask, data: Float32Array.from([1, 1, 1, 0, 1, 0, 1, 0]), wrt: false, shape: [2, 4] }] };
    }));
  it("MultiHeadAttention, cross: gradients reach both the queries and the memory", () =>
    sequenceCheck("mha_cross", [4, 4], (ctx, x, g) => {
      const memory = g.input("memory", ["N", 3, 5]), mask = g.input("memory_mask", ["N", 3]);
      const mha = new MultiHeadAttention({ heads: 2 });
      mha.path = "cross";
      return {
        y: mha.attendTo(ctx, x, { value: memory, mask }),
        extra: [
          { value: memory, data: randomData(30, 52), shape: [2, 3, 5] },
          { value: mask, data: Float32Array.from([1, 1, 0, 1, 1, 1]), wrt: false, shape: [2, 3] },
        ],
      };
    }));
  it("MultiHeadAttention with attention dropout (fixed mask)", () => sequenceCheck("mha_drop", [4, 4], on(new MultiHeadAttention({ heads: 2, dropout: 0.3 }), "mha")));
  it("PositionEmbedding, learned and sinusoidal", async () => {
    await sequenceCheck("pos_learned", [5, 4], on(new PositionEmbedding({ kind: "learned" }), "pos"));
    await sequenceCheck("pos_sin", [5, 4], (ctx, x) => {
      const pos = new PositionEmbedding({ kind: "sinusoidal" });
      pos.path = "pos";
      return { y: F.mul(pos.forward(ctx, x), x) }; // a product, so the constant table reaches the gradient
    });
  });
  it("TransformerEncoderBlock (pre-norm), plain and causal with dropout", async () => {
    await sequenceCheck("enc", [4, 4], on(new TransformerEncoderBlock({ heads: 2, ffn: 6 }), "enc"));
    await sequenceCheck("enc_causal", [4, 4], on(new TransformerEncoderBlock({ heads: 2, ffn: 6, causal: true, dropout: 0.2 }), "enc"));
  });
  it("TransformerDecoderBlock: causal self-attention, cross-attention to the memory, FFN", () =>
    sequenceCheck("dec", [4, 4], (ctx, x, g) => {
      const memory = g.input("memory", ["N", 3, 4]), mask = g.input("memory_mask", ["N", 3]);
      const dec = new TransformerDecoderBlock({ heads: 2, ffn: 6 });
      dec.path = "dec";
      return {
        y: dec.decode(ctx, x, { value: memory, mask }),
        extra: [
          { value: memory, data: randomData(24, 53), shape: [2, 3, 4] },
          { value: mask, data: Float32Array.from([1, 1, 1, 1, 0, 0]), wrt: false, shape: [2, 3] },
        ],
      };
    }));
  it("a decoder block built without a memory is an error naming the layer", () => {
    const g = new Graph();
    const ctx = new ForwardContext(g, "train", (decl) => g.input(decl.name, decl.shape));
    const dec = new TransformerDecoderBlock({ heads: 2, ffn: 6 });
    dec.path = "dec1";
    assert.throws(() => dec.forward(ctx, g.input("x", ["N", 4, 4])), /dec1: a decoder block attends to an encoder's output/);
    assert.throws(() => new MultiHeadAttention({ heads: 3 }).forward(ctx, g.input("y", ["N", 4, 4])), /width 4 does not divide into 3 heads/);
  });
  it("Embedding → TransformerEncoder (2 blocks) → MeanPool on ids with padding inside, at the end, and a text without tokens", async () => {
    const ids = [1, 2, 0, 2, 6, 0, 0, 0, 3, 3, 5, 1, 0, 0, 0, 0];
    await gradCheck("embedding+transformer", (g) => {
      const x = { value: g.input("ids", ["N", 4], "int64"), data: BigInt64Array.from(ids.map(BigInt)), wrt: false, shape: [4, 4] };
      const params: CheckInput[] = [];
      const ctx = new ForwardContext(g, "train", (decl) => {
        const v = g.input(decl.name, decl.shape);
        params.push({ value: v, data: initialValue(decl, 3) });
        return v;
      });
      const net = new L.Sequential([new L.Embedding({ vocabSize: 7, dim: 4 }), new TransformerEncoder({ layers: 2, heads: 2, ffn: 8 }), new L.MeanPool()]);
      net.path = "net";
      const y = net.forward(ctx, x.value);
      return { inputs: [x, ...params], output: y, outputShape: [4, 4] };
    });
  });
});

// ---------------------------------------------------------------- in a config, trained, exported

describe("transformer text classifier", () => {
  const withStudent = (layers: unknown[]) =>
    validateConfig({ name: "t", data: { dataset: "mnist" }, teacher: { onnx: "t.onnx" }, student: { model: { layers }, train: { epochs: 1, optimizer: { kind: "adam", lr: 0.01 } } } }, "t.yaml");
  it("a config declares it after the embedding; heads must divide the width, and it needs an embedding first", () => {
    const c = withStudent([{ type: "embedding", dims: 16 }, { type: "transformer", layers: 2, heads: 4, ffn: 32 }, { type: "meanpool" }, { type: "linear", units: 2 }]);
    assert.deepEqual(c.student.model.layers[1], { type: "transformer", layers: 2, heads: 4, ffn: 32, positions: "learned", dropout: 0 });
    assert.throws(() => withStudent([{ type: "embedding", dims: 16 }, { type: "transformer", layers: 1, heads: 3, ffn: 32 }, { type: "meanpool" }, { type: "linear", units: 2 }]),
      /^UserError: t\.yaml: student\.model\.layers\[1\]\.heads: expected a divisor of the width 16 that the transformer receives, got 3$/);
    assert.throws(() => withStudent([{ type: "linear", units: 8 }, { type: "transformer", layers: 1, heads: 2, ffn: 8 }]), /layers\[1\]: a transformer works on token sequences/);
    assert.throws(() => withStudent([{ type: "embedding", dims: 16 }, { type: "transformer", layers: 1, heads: 4, ffn: 8, positions: "rotary" }]), /layers\[1\]\.positions: expected one of learned, sinusoidal/);
  });

  const maxTokens = 48;
  const STUDENT: LayerSpec[] = [
    { type: "embedding", dims: 32 },
    { type: "transformer", layers: 1, heads: 4, ffn: 64, positions: "learned", dropout: 0 },
    { type: "meanpool" },
    { type: "linear", units: 2 },
  ];
  let train: Sentences, test: Sentences, vocab: Vocabulary, model: Model, params: ParameterSet;
  before(async () => {
    ({ train, test } = uciSplit(2000));
    vocab = buildVocabulary(train.texts, { vocabSize: 20_000, maxTokens });
    ({ model, params } = await trainTextClassifier(STUDENT, train, vocab, { epochs: 4, lr: 0.003 }));
  });

  /** Logits of the test texts from the training graph's forward pass: parameters as inputs, train mode. */
  async function trainingGraphLogits(): Promise<Float32Array> {
    const g = new Graph();
    const { logits, paramInputs } = model.build(g, "train", { kind: "inputs" }, model.inputValue(g));
    g.output(logits, "logits");
    const feeds: Record<string, Tensor> = { input: { dtype: "int64", shape: [test.texts.length, maxTokens], data: BigInt64Array.from(tokenizeAll(test.texts, vocab), BigInt) } };
    for (const name of paramInputs.keys()) feeds[name] = params.get(name);
    return (await runGraph(g, feeds))["logits"]!.data as Float32Array;
  }

  it("[embedding 32, transformer 1×(4 heads, ffn 64), meanpool, linear] on 2,000 sentences beats chance clearly on the other 1,000", async (t) => {
    const heldOut = accuracy(await trainingGraphLogits(), test.labels);
    t.diagnostic(`held-out accuracy ${heldOut}`);
    // Measured 0.747, 0.732, 0.720 on splits 0, 1, 2 (the fastText-like student: 0.76–0.80); chance is 0.5.
    assert.ok(heldOut > 0.7, `held-out accuracy ${heldOut}`);
  });

  it("its raw-string .onnx gives the training graph's logits", async (t) => {
    const reference = await trainingGraphLogits();
    const session = await Session.create(exportTextOnnx(model, params, vocab), { threads: 1 });
    const fromText = (await session.run({ input: { dtype: "string", shape: [test.texts.length], data: test.texts } }))["logits"]!.data as Float32Array;
    await session.dispose();
    assert.equal(fromText.length, reference.length);
    const worst = fromText.reduce((m, v, i) => Math.max(m, Math.abs(v - reference[i]!)), 0);
    t.diagnostic(`max |Δlogit| ${worst}`);
    assert.ok(worst < 1e-4, `max |Δlogit| ${worst}`);
  });
});
