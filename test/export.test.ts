// The exported .onnx does its own preprocessing: fed raw 0–255 pixels in the layout its metadata
// states, it must compute (x/255 − mean[c]) / std[c] exactly as written here, independently of
// Model.preprocess. The network is an identity Linear, so the logits are the normalised pixels in
// NCHW order. Every metadata key is read back and checked.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";
import { Model, exportOnnx, type InputSpec } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { Rng } from "../src/util/random.js";

const C = 3, H = 2, W = 4, PIXELS = C * H * W;
const MEAN = [0.1, 0.5, 0.9], STD = [0.2, 0.3, 0.4];
const labels = Array.from({ length: PIXELS }, (_, i) => `class${i}`);

/** Identity network: flatten, then a Linear whose weight is I and bias 0. */
function identityExport(input: InputSpec, metadata: Record<string, string> = {}): Uint8Array {
  const model = new Model(new L.Sequential([new L.Flatten(), new L.Linear({ outFeatures: PIXELS })]), input, labels);
  const params = model.initParameters(0);
  const w = params.get("linear1.weight").data;
  w.fill(0);
  for (let i = 0; i < PIXELS; i++) w[i * PIXELS + i] = 1;
  params.get("linear1.bias").data.fill(0);
  return exportOnnx(model, params, { probabilitiesName: "probabilities", metadata });
}

/** Raw pixels 0–255, with both extremes present. */
function rawPixels(batch: number): Float32Array {
  const rng = new Rng(3, "pixels");
  const x = Float32Array.from({ length: batch * PIXELS }, () => rng.int(256));
  x[0] = 0;
  x[1] = 255;
  return x;
}

async function run(bytes: Uint8Array, shape: number[], x: Float32Array) {
  const s = await Session.create(bytes, { threads: 1 });
  try {
    const out = await s.run({ input: { dtype: "float32", shape, data: x } });
    return { logits: out["logits"]!.data as Float32Array, probabilities: out["probabilities"]!.data as Float32Array };
  } finally {
    await s.dispose();
  }
}

function assertClose(got: Float32Array, want: number[], what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  want.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 1e-5, `${what}[${i}]: ${got[i]} vs ${v}`));
}

function softmaxRows(v: number[], k: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < v.length / k; r++) {
    const row = v.slice(r * k, r * k + k), m = Math.max(...row);
    const e = row.map((x) => Math.exp(x - m)), s = e.reduce((a, b) => a + b, 0);
    out.push(...e.map((x) => x / s));
  }
  return out;
}

describe("exported preprocessing, computed independently", () => {
  const batch = 3;
  it("NCHW: logits[n, c·H·W + h·W + w] = (x[n, c, h, w]/255 − mean[c]) / std[c]", async () => {
    const bytes = identityExport({ shape: [C, H, W], layout: "NCHW", scale: 1 / 255, mean: MEAN, std: STD });
    const x = rawPixels(batch);
    const want: number[] = [];
    for (let n = 0; n < batch; n++)
      for (let c = 0; c < C; c++)
        for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) want.push((x[n * PIXELS + c * H * W + h * W + w]! / 255 - MEAN[c]!) / STD[c]!);
    const out = await run(bytes, [batch, C, H, W], x);
    assertClose(out.logits, want, "NCHW logits");
    assertClose(out.probabilities, softmaxRows(want, PIXELS), "NCHW probabilities");
  });

  it("NHWC: the same pixels fed channels-last give logits in NCHW order", async () => {
    const bytes = identityExport({ shape: [H, W, C], layout: "NHWC", scale: 1 / 255, mean: MEAN, std: STD });
    const x = rawPixels(batch);
    const want: number[] = [];
    for (let n = 0; n < batch; n++)
      for (let c = 0; c < C; c++)
        for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) want.push((x[n * PIXELS + h * W * C + w * C + c]! / 255 - MEAN[c]!) / STD[c]!);
    const out = await run(bytes, [batch, H, W, C], x);
    assertClose(out.logits, want, "NHWC logits");
  });

  it("flat input with one scalar mean and std", async () => {
    const bytes = identityExport({ shape: [PIXELS], scale: 1 / 255, mean: [0.1307], std: [0.3081] });
    const x = rawPixels(batch);
    const out = await run(bytes, [batch, PIXELS], x);
    assertClose(out.logits, [...x].map((v) => (v / 255 - 0.1307) / 0.3081), "flat logits");
  });
});

describe("exported metadata", () => {
  it("every key is written and holds the right value", () => {
    const extra = { "distill.stage": "student", "distill.seed": "2", "distill.run": "my-run", "distill.dataset": "mnist" };
    const nhwc = decodeModel(identityExport({ shape: [H, W, C], layout: "NHWC", scale: 1 / 255, mean: MEAN, std: STD }, extra));
    const { "distill.taps": taps, ...meta } = nhwc.metadata;
    // Layer outputs by name: the last layer's is the logits output itself.
    const tapTable = JSON.parse(taps!) as Record<string, { tensor: string; shape: (number | string)[] }>;
    assert.deepEqual(Object.keys(tapTable).sort(), ["flatten1", "linear1"]);
    assert.deepEqual(tapTable["linear1"], { tensor: "logits", shape: ["N", PIXELS] });
    assert.deepEqual(tapTable["flatten1"]!.shape, ["N", PIXELS]);
    assert.deepEqual(meta, {
      "distill.input_name": "input",
      "distill.output_name": "logits",
      "distill.probabilities_name": "probabilities",
      "distill.input_shape": JSON.stringify(["batch", H, W, C]),
      "distill.input_layout": "NHWC",
      "distill.input_dtype": "float32",
      "distill.input_preprocessing": JSON.stringify({ scale: 1 / 255, mean: MEAN, std: STD }),
      "distill.class_labels": JSON.stringify(labels),
      "distill.parameters": String(PIXELS * PIXELS + PIXELS),
      ...extra,
    });
    // The names in the metadata are the graph's real input and outputs.
    assert.deepEqual(nhwc.inputs, [{ name: "input", shape: ["batch", H, W, C], elemType: 1 }]);
    assert.deepEqual(nhwc.outputs.map((o) => o.name), ["logits", "probabilities"]);
    // Layout defaults: a 3-D sample without a stated layout is NCHW, a 1-D one is flat.
    assert.equal(decodeModel(identityExport({ shape: [C, H, W] })).metadata["distill.input_layout"], "NCHW");
    const flat = decodeModel(identityExport({ shape: [PIXELS] })).metadata;
    assert.equal(flat["distill.input_layout"], "flat");
    assert.equal(flat["distill.input_preprocessing"], JSON.stringify({ scale: 1, mean: [], std: [] }));
  });
});
