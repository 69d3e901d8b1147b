// `distill quantize --wasm`: both the source and the quantized model are also run under
// onnxruntime-web's wasm backend, and their figures come back in the JSON and as two more columns
// of the table; without --wasm neither appears.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportOnnx } from "../src/nn/model.js";
import { buildModel } from "../src/nn/spec.js";
import { CLI } from "./helpers/child.js";

const dir = mkdtempSync(join(tmpdir(), "distill-quantize-wasm-"));
const model = join(dir, "mlp.onnx");
const m = buildModel({ input: "flat", layers: [{ type: "linear", units: 32 }, { type: "relu" }, { type: "linear", units: 10 }] }, [..."0123456789"], { kind: "image", sampleShape: [1, 28, 28], scale: 1 / 255, mean: [0.13], std: [0.31] });
writeFileSync(model, exportOnnx(m, m.initParameters(0)));

const quantize = (output: string, ...extra: string[]) =>
  spawnSync(process.execPath, [CLI, "quantize", model, "--mode", "dynamic", "-o", join(dir, output), "--data", "mnist", "--limit", "100", ...extra], { encoding: "utf8" });

interface Figures { latencyP50Ms: number; latencyP95Ms: number; throughput: number }
interface Check { source: { metrics: Figures; wasm?: Figures }; quantized: { metrics: Figures; wasm?: Figures }; testSamples: number }

test("--wasm: the wasm figures of both models in the JSON and in the table; none without it", () => {
  const withWasm = quantize("q-wasm.onnx", "--wasm", "--json");
  assert.equal(withWasm.status, 0, withWasm.stderr);
  const check = (JSON.parse(withWasm.stdout) as { check: Check }).check;
  assert.equal(check.testSamples, 100);
  for (const side of [check.source, check.quantized]) {
    assert.deepEqual(Object.keys(side.wasm ?? {}).sort(), ["latencyP50Ms", "latencyP95Ms", "throughput"]);
    assert.ok(Object.values(side.wasm!).every(Number.isFinite), JSON.stringify(side.wasm));
  }

  const table = quantize("q-table.onnx", "--wasm");
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /model +accuracy +agree +bytes +p50 ms +p95 ms +b128 \/s +wasm p50 +wasm \/s\n/);
  // Each model's row: name, accuracy, agreement, bytes, then node's three figures and wasm's two.
  for (const name of ["source", "dynamic"]) assert.match(table.stdout, new RegExp(`\\n  ${name} +[\\d.]+ % +(—|[\\d.]+%) +\\d+( +[\\d.]+){3} +[\\d.]+ +\\d+\\n`), table.stdout);

  const without = quantize("q-node.onnx", "--json");
  assert.equal(without.status, 0, without.stderr);
  const plain = (JSON.parse(without.stdout) as { check: Check }).check;
  assert.equal(plain.source.wasm, undefined);
  assert.equal(plain.quantized.wasm, undefined);
});
