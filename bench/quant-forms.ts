// Which dynamic-int8 form runs fastest, in onnxruntime-node and in onnxruntime-web (wasm, 1 thread)?
// For each model given: fp32, dynamic int8 as integer ops / QDQ / weight-only / auto, static QDQ and
// fp16, timed in interleaved rounds (A B C … A B C …), median of the rounds. Prints JSON.
//   node dist/bench/quant-forms.js runs/x/student.onnx runs/x/teacher.onnx [--rounds 3]

import { readFileSync } from "node:fs";
import { calibrate } from "../src/compress/calibrate.js";
import { sampleBatch } from "../src/compress/check.js";
import { calibrationTensors, convertFp16, quantizeDynamic, quantizeStatic } from "../src/compress/quantize.js";
import { measureWasm } from "../src/compress/wasm-runtime.js";
import { loadDataset, type DatasetName } from "../src/data/datasets.js";
import { allIndices, firstN } from "../src/data/split.js";
import { decodeModel } from "../src/engine/onnx.js";
import { measureOnnx, percentile } from "../src/eval/latency.js";

const args = process.argv.slice(2);
const rounds = args.includes("--rounds") ? Number(args[args.indexOf("--rounds") + 1]) : 3;
const files = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--rounds");
const med = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 0.5);
const out: Record<string, Record<string, Record<string, number>>> = {};
for (const file of files) {
  const src = readFileSync(file);
  const d = decodeModel(src);
  const input = d.inputs[0]!, shape = input.shape.slice(1).map(Number);
  const data = loadDataset((d.metadata["distill.dataset"] ?? "mnist") as DatasetName);
  const idx = firstN(allIndices(data.test.count), 256);
  const calib = sampleBatch(data.train, firstN(allIndices(data.train.count), 256), 256, shape);
  const ranges = await calibrate(src, file, calibrationTensors(src, file), { inputName: input.name, sampleShape: shape, samples: calib.data as Float32Array, count: 256 }, "percentile");
  const forms: [string, Uint8Array][] = [
    ["fp32", src],
    ...(["integer", "qdq", "weights", "auto"] as const).map((f): [string, Uint8Array] => [`dynamic-${f}`, quantizeDynamic(src, file, f).bytes]),
    ["static-qdq", quantizeStatic(src, file, ranges, "percentile").bytes],
    ["fp16", convertFp16(src, file).bytes],
  ];
  const t: Record<string, { p50: number[]; thr: number[]; wp50: number[]; wthr: number[] }> = {};
  for (let r = 0; r < rounds; r++)
    for (const [name, bytes] of forms) {
      const x = (t[name] ??= { p50: [], thr: [], wp50: [], wthr: [] });
      const n = await measureOnnx(bytes, (b) => ({ name: input.name, dtype: "float32", ...sampleBatch(data.test, idx, b, shape) }), { runs: 100 });
      const w = await measureWasm(bytes, input.name, d.metadata["distill.output_name"] ?? "logits", (b) => sampleBatch(data.test, idx, b, shape), { runs: 50 });
      x.p50.push(n.latencyP50Ms); x.thr.push(n.throughput); x.wp50.push(w.latencyP50Ms); x.wthr.push(w.throughput);
    }
  out[file] = Object.fromEntries(forms.map(([name, bytes]) => [name, { bytes: bytes.byteLength, nodeP50Ms: med(t[name]!.p50), nodeB128PerS: med(t[name]!.thr), wasmP50Ms: med(t[name]!.wp50), wasmB128PerS: med(t[name]!.wthr) }]));
}
process.stdout.write(JSON.stringify({ rounds, loadAverage: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number), results: out }, null, 2) + "\n");
