// Quantization on real models: an MLP and a CNN trained on MNIST here, rewritten to dynamic int8
// (every form), static int8 QDQ (min-max and percentile calibration) and fp16, then checked on the
// test set against the float model, in onnxruntime-node and onnxruntime-web (wasm).

import { describe, it, before } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCli } from "../src/cli/args.js";
import { calibrate, percentileRange } from "../src/compress/calibrate.js";
import { checkModel, parameterCountOf, sampleBatch } from "../src/compress/check.js";
import { fromHalf, readModelProto, toHalf, metadataOf } from "../src/compress/onnx-model.js";
import { calibrationTensors, convertFp16, quantizeDynamic, quantizePerChannel, quantizeStatic, uint8Params } from "../src/compress/quantize.js";
import { createWasmSession } from "../src/compress/wasm-runtime.js";
import { allIndices, firstN } from "../src/data/split.js";
import { decodeModel } from "../src/engine/onnx.js";
import { cnnModel, mlpModel, mnist, trainAndExport } from "./helpers/mnist-models.js";

describe("quantization arithmetic (reference values)", () => {
  it("per-channel symmetric int8: scale = max|w|/127 per output channel, error ≤ scale/2", () => {
    // [2 channels, 3]: channel 0 max 1.27 → scale 0.01; channel 1 max 0.254 → scale 0.002.
    const w = Float32Array.of(1.27, -0.5, 0.004, 0.254, -0.1, 0.0);
    const { q, scales } = quantizePerChannel(w, [2, 3], 0);
    assert.deepEqual([...scales].map((s) => +s.toFixed(6)), [0.01, 0.002]);
    assert.deepEqual([...q], [127, -50, 0, 127, -50, 0]);
    // Along axis 1 of the same data ([2, 3] → 3 channels).
    const byCol = quantizePerChannel(w, [2, 3], 1);
    assert.deepEqual([...byCol.scales].map((s) => +s.toFixed(6)), [0.01, +(0.5 / 127).toFixed(6), +(0.004 / 127).toFixed(6)]);
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(byCol.q[i]! * byCol.scales[i % 3]! - w[i]!) <= byCol.scales[i % 3]! / 2 + 1e-9);
  });
  it("uint8 affine parameters always represent 0 exactly", () => {
    const z = uint8Params(0, 2.55);
    assert.ok(Math.abs(z.scale - 0.01) < 1e-12 && z.zero === 0);
    const p = uint8Params(-1, 1);
    assert.ok(Math.abs(p.scale - 2 / 255) < 1e-12);
    assert.equal(p.zero, 128);
    const w = uint8Params(0.5, 2.55); // range widened to include 0
    assert.ok(Math.abs(w.scale - 0.01) < 1e-12 && w.zero === 0);
  });
  it("float16 conversion: exact values, rounding, overflow, subnormals", () => {
    const h = toHalf(Float32Array.of(1, -2, 65504, 1e6, 0.1, 2 ** -24, 1e-9, 1 + 2 ** -11));
    assert.deepEqual([...h], [0x3c00, 0xc000, 0x7bff, 0x7c00, 0x2e66, 0x0001, 0x0000, 0x3c00]);
    const back = fromHalf(h);
    assert.equal(back[0], 1);
    assert.ok(Math.abs(back[4]! - 0.1) < 1e-4);
    assert.equal(back[5], 2 ** -24);
  });
  it("percentile range trims both tails", () => {
    const v = new Float32Array(10001).map((_, i) => i);
    v[10000] = 1e9; // one outlier
    const r = percentileRange([v], 99.9);
    assert.ok(r.hi < 10000 && r.hi > 9980, `hi ${r.hi}`);
    assert.ok(r.lo >= 0 && r.lo < 20, `lo ${r.lo}`);
  });
});

describe("quantized MNIST models keep their contract and accuracy", () => {
  const models: Record<string, Uint8Array> = {};
  const { train, test } = mnist();
  const indices = firstN(allIndices(test.count), 1000);
  before(async () => {
    models["mlp"] = await trainAndExport(mlpModel(128), 6000, 2);
    models["cnn"] = await trainAndExport(cnnModel(), 6000, 2);
  });

  for (const kind of ["mlp", "cnn"] as const) {
    it(`${kind}: dynamic (4 forms), static (2 calibrations), fp16 — at most 1–1.5 points below fp32, same I/O and metadata, ≥ 97 % agreement`, async (t) => {
      const src = models[kind]!;
      const sampleShape = kind === "mlp" ? [784] : [1, 28, 28];
      const ref = await checkModel(src, kind, { set: test, indices, latencyRuns: 5 });
      const calib = sampleBatch(train, firstN(allIndices(train.count), 256), 256, sampleShape);
      // [name, bytes, least size ratio, most accuracy loss]: static int8 quantizes every activation, so it may lose a little more.
      const variants: [string, Uint8Array, number, number][] = [];
      for (const format of ["auto", "integer", "qdq", "weights"] as const) variants.push([`dynamic-${format}`, quantizeDynamic(src, kind, format).bytes, 3.3, 0.01]);
      for (const method of ["minmax", "percentile"] as const) {
        const ranges = await calibrate(src, kind, calibrationTensors(src, kind), { inputName: "input", sampleShape, samples: calib.data as Float32Array, count: 256 }, method);
        variants.push([`static-${method}`, quantizeStatic(src, kind, ranges, method).bytes, 3, 0.015]);
      }
      variants.push(["fp16", convertFp16(src, kind).bytes, 1.9, 0.002]);
      const source = decodeModel(src);
      for (const [name, bytes, minRatio, maxLoss] of variants) {
        const q = await checkModel(bytes, name, { set: test, indices, latencyRuns: 5, referenceLogits: ref.logits, params: parameterCountOf(src, kind) });
        const decoded = decodeModel(bytes);
        assert.deepEqual(decoded.inputs, source.inputs, `${name}: inputs`);
        assert.deepEqual(decoded.outputs, source.outputs, `${name}: outputs`);
        for (const key of ["distill.input_name", "distill.class_labels", "distill.input_preprocessing", "distill.dataset"])
          assert.equal(decoded.metadata[key], source.metadata[key], `${name}: metadata ${key}`);
        assert.ok(JSON.parse(decoded.metadata["distill.quantization"]!).mode, `${name}: records how it was quantized`);
        const ratio = src.byteLength / bytes.byteLength;
        assert.ok(ratio >= minRatio, `${name}: only ${ratio.toFixed(2)}× smaller`);
        assert.ok(ref.metrics.accuracy - q.metrics.accuracy <= maxLoss, `${name}: accuracy ${q.metrics.accuracy} vs fp32 ${ref.metrics.accuracy}`);
        assert.ok(q.metrics.agreement! >= 0.97, `${name}: agreement ${q.metrics.agreement}`);
        t.diagnostic(`${name}: ${ratio.toFixed(2)}× smaller, accuracy ${(q.metrics.accuracy * 100).toFixed(1)} (fp32 ${(ref.metrics.accuracy * 100).toFixed(1)}), agreement ${(q.metrics.agreement! * 100).toFixed(1)} %`);
        if (name.startsWith("fp16")) assert.ok(q.metrics.agreement! >= 0.999, "fp16 weights barely move predictions");
      }
      assert.ok(ref.metrics.accuracy > 0.85, `the fp32 ${kind} learned (${ref.metrics.accuracy})`);
    });
  }

  it("dynamic int8 runs in onnxruntime-web (wasm) with the same predictions as onnxruntime-node", async () => {
    for (const kind of ["mlp", "cnn"] as const) {
      const bytes = quantizeDynamic(models[kind]!, kind, "auto").bytes;
      const node = await checkModel(bytes, kind, { set: test, indices: indices.subarray(0, 200), latencyRuns: 5 });
      const batch = sampleBatch(test, indices.subarray(0, 200), 200, kind === "mlp" ? [784] : [1, 28, 28]);
      const web = await createWasmSession(bytes, "input", "logits");
      const logits = await web.run(batch.data, batch.shape);
      await web.dispose();
      let same = 0;
      for (let i = 0; i < 200; i++) {
        const a = [...logits.subarray(i * 10, i * 10 + 10)], b = [...node.logits.subarray(i * 10, i * 10 + 10)];
        if (a.indexOf(Math.max(...a)) === b.indexOf(Math.max(...b))) same++;
      }
      assert.ok(same >= 198, `${kind}: wasm and node agree on ${same}/200`);
    }
  });

  it("distill quantize: writes the model and a JSON check; bad inputs exit 2 and write nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "distill-quantize-"));
    const src = join(dir, "mlp.onnx");
    writeFileSync(src, models["mlp"]!);
    const io = () => {
      const out: string[] = [], err: string[] = [];
      return { out, err, io: { writeOut: (s: string) => void out.push(s), writeErr: (s: string) => void err.push(s) } };
    };
    let c = io();
    assert.equal(await runCli(["node", "distill", "quantize", src, "--mode", "static", "--calibration", "minmax", "--calibration-samples", "64", "--limit", "300", "-o", join(dir, "q.onnx")], c.io), 0, c.err.join(""));
    assert.match(c.out.join(""), /rewrote 2 Gemm/);
    const check = JSON.parse(readFileSync(join(dir, "q.onnx.json"), "utf8"));
    assert.equal(check.check.testSamples, 300);
    assert.equal(metadataOf(readModelProto(readFileSync(join(dir, "q.onnx")), "q"))["distill.class_labels"], JSON.stringify([..."0123456789"]));

    c = io();
    assert.equal(await runCli(["node", "distill", "quantize", join(dir, "missing.onnx"), "--mode", "dynamic", "-o", join(dir, "a.onnx")], c.io), 2);
    assert.equal(c.err.join(""), `distill: ${join(dir, "missing.onnx")}: no such file\n`);
    writeFileSync(join(dir, "junk.onnx"), "not a model");
    c = io();
    assert.equal(await runCli(["node", "distill", "quantize", join(dir, "junk.onnx"), "--mode", "fp16", "-o", join(dir, "b.onnx")], c.io), 2);
    assert.match(c.err.join(""), /junk\.onnx: not a readable ONNX model/);
    c = io();
    assert.equal(await runCli(["node", "distill", "quantize", src, "--mode", "int4", "-o", join(dir, "c.onnx")], c.io), 2);
    assert.match(c.err.join(""), /Allowed choices are dynamic, static, fp16/);
    c = io();
    assert.equal(await runCli(["node", "distill", "quantize", src, "--mode", "dynamic", "-o", src], c.io), 2);
    assert.match(c.err.join(""), /would overwrite the source/);
    // A model without distill.dataset needs --data for static calibration.
    const bare = readModelProto(models["mlp"]!, "bare");
    bare.metadataProps = bare.metadataProps.filter((p) => p.key !== "distill.dataset");
    const { writeModelProto } = await import("../src/compress/onnx-model.js");
    writeFileSync(join(dir, "bare.onnx"), writeModelProto(bare));
    c = io();
    assert.equal(await runCli(["node", "distill", "quantize", join(dir, "bare.onnx"), "--mode", "static", "-o", join(dir, "d.onnx")], c.io), 2);
    assert.match(c.err.join(""), /bare\.onnx: its metadata names no data distill can load; pass --data/);
    for (const f of ["a.onnx", "b.onnx", "c.onnx", "d.onnx"]) assert.ok(!existsSync(join(dir, f)), `${f} not written`);
  });
});
