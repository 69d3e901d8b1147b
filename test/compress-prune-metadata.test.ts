// What a model says about itself after distill rewrote it, and the one parameter count every report
// uses: an exported model's trained parameters (not its preprocessing constants or BatchNorm's
// running statistics), the same in its metadata, `distill eval` and `distill compare`; a pruned
// model's count and tap shapes recorded anew; pruning refused where it would do nothing.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli } from "../src/cli/args.js";
import { pruneStructured, structuredFloor } from "../src/compress/prune.js";
import { convertFp16, quantizeDynamic } from "../src/compress/quantize.js";
import { adaptTeacher } from "../src/distill/teacher-adapter.js";
import { probeTapShapes } from "../src/distill/teacher-outputs.js";
import { decodeModel } from "../src/engine/onnx.js";
import { Model, exportOnnx } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import { cnnModel, mlpModel } from "./helpers/mnist-models.js";

const dir = mkdtempSync(join(tmpdir(), "distill-prune-meta-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");

/** An untrained model exported as distill exports (what is counted does not depend on training). */
function exported(model: Model): { bytes: Uint8Array; trained: number } {
  const params = model.initParameters(0);
  return { bytes: exportOnnx(model, params, { metadata: { "distill.dataset": "mnist" } }), trained: params.count() };
}

const floatElements = (bytes: Uint8Array) => [...decodeModel(bytes).initializers.values()].reduce((n, t) => n + t.data.length, 0);

/** `distill …` in this process: exit code and what it wrote. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "", err = "";
  const code = await runCli(["node", "distill", ...args], { writeOut: (s) => void (out += s), writeErr: (s) => void (err += s) });
  return { code, out, err: err.trim() };
}

test("one parameter count: the trained parameters, not preprocessing constants or running statistics, in the metadata, for adapted and quantized models too", () => {
  // Colour images: per-channel mean and std [3, 1, 1] tensors, not scalars; GELU's constants too.
  const cnn = new Model(new L.Sequential([
    new L.Conv2d({ outChannels: 8, kernelSize: 3, padding: 1 }), new L.BatchNorm(), new L.ReLU(), new L.MaxPool2d({ kernelSize: 2 }),
    new L.Flatten(), new L.Linear({ outFeatures: 16 }), new L.GELU(), new L.Linear({ outFeatures: 10 }),
  ]), { shape: [3, 32, 32], layout: "NCHW", scale: 1 / 255, mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] }, [..."0123456789"]);
  for (const [name, model] of [["mlp", mlpModel(32)], ["cnn with BatchNorm", cnnModel({ batchNorm: true })], ["colour cnn", cnn]] as const) {
    const { bytes, trained } = exported(model);
    const d = decodeModel(bytes);
    assert.equal(d.parameters, trained, name);
    assert.equal(d.metadata["distill.parameters"], String(trained), name);
    assert.ok(floatElements(bytes) > trained, `${name}: the file also holds constants (${floatElements(bytes)} float values)`);
  }
  // The teacher adapter's scale, mean and std are preprocessing too.
  const { bytes, trained } = exported(mlpModel(32));
  const adapted = adaptTeacher(bytes, { preprocessing: { layout: "flat", scale: 1, mean: [0.5], std: [2] } }, false, { height: 28, width: 28, channels: 1 }, "t.onnx");
  assert.equal(decodeModel(adapted).parameters, trained);
  // An int8 file's weights are not float: its count is the one recorded from its float source. An
  // fp16 file's are counted as they are (its renamed running statistics left out).
  assert.equal(decodeModel(quantizeDynamic(bytes, "t.onnx", "auto").bytes).parameters, trained);
  const bn = exported(cnnModel({ batchNorm: true }));
  assert.equal(decodeModel(convertFp16(bn.bytes, "bn.onnx").bytes).parameters, bn.trained);
});

test("structured pruning records the pruned model's own parameter count and tap shapes; distill eval reports that count", async () => {
  const { bytes, trained } = exported(cnnModel({ batchNorm: true }));
  const { bytes: pruned, report } = pruneStructured(bytes, "cnn.onnx", 0.5);
  const d = decodeModel(pruned);
  assert.equal(report.paramsBefore, trained);
  assert.ok(report.paramsAfter < trained / 2, `${report.paramsAfter} of ${trained}`);
  assert.equal(d.parameters, report.paramsAfter);
  assert.equal(d.metadata["distill.parameters"], String(report.paramsAfter));
  // Every recorded tap shape is the shape the pruned graph computes.
  const taps = Object.entries(JSON.parse(d.metadata["distill.taps"]!) as Record<string, { tensor: string; shape: (number | string)[] }>);
  const computed = await probeTapShapes(pruned, d.inputs[0]!.name, [1, 28, 28], taps.map(([, t]) => t.tensor));
  for (const [layer, tap] of taps) assert.deepEqual(tap.shape.slice(1), computed.get(tap.tensor), layer);
  assert.deepEqual(taps.find(([layer]) => layer === "bn1")![1].shape, ["N", 4, 28, 28], "bn1 lost half its 8 channels");
  const file = join(dir, "pruned.onnx");
  writeFileSync(file, pruned);
  const ev = spawnSync(process.execPath, [CLI, "eval", file, "--limit", "50", "--json"], { encoding: "utf8" });
  assert.equal(ev.status, 0, ev.stderr);
  assert.equal((JSON.parse(ev.stdout) as { params: number }).params, report.paramsAfter);
});

test("distill prune refuses an int8 model, names the floor of --params, and takes --ramp 1", async () => {
  const { bytes } = exported(cnnModel());
  const source = join(dir, "cnn.onnx"), int8 = join(dir, "cnn-int8.onnx"), out = join(dir, "out.onnx");
  writeFileSync(source, bytes);
  writeFileSync(int8, quantizeDynamic(bytes, source, "auto").bytes);
  for (const how of [["--sparsity", "0.5"], ["--keep", "0.5"]]) {
    const r = await cli(["prune", int8, ...how, "-o", out, "--no-check"]);
    assert.equal(r.code, 2, r.err);
    assert.equal(r.err, `distill: ${int8}: is quantized (int8): pruning rewrites float32 weights; prune the float model, then quantize the pruned one`);
    assert.ok(!existsSync(out), "nothing written");
  }
  const floor = structuredFloor(bytes, source);
  const low = await cli(["prune", source, "--params", "10", "-o", out, "--no-check"]);
  assert.equal(low.code, 2, low.err);
  assert.equal(low.err, `distill: ${source}: --params 10: structured pruning leaves at least ${floor} parameters (one channel or unit in every layer it narrows); ask for ${floor} or more`);
  assert.ok(!existsSync(out));
  const atFloor = await cli(["prune", source, "--params", String(floor), "-o", out, "--no-check", "--json"]);
  assert.equal(atFloor.code, 0, atFloor.err);
  assert.equal((JSON.parse(atFloor.out) as { report: { paramsAfter: number } }).report.paramsAfter, floor);
  // --ramp 1 (sparsity rising over the whole fine-tune) gets past the option parser to the library's own check.
  const ramp = await cli(["prune", source, "--sparsity", "0.5", "--ramp", "1", "-o", join(dir, "ramp.onnx"), "--no-check"]);
  assert.equal(ramp.code, 2);
  assert.equal(ramp.err, "distill: distill prune: --ramp and --interval shape gradual pruning, which needs --sparsity and --finetune <run-dir>");
});
