// `node dist/bench/label.js [--samples N] [--workers W] [--threads T] [--warm]`: the teacher's labelling pass
// (src/distill/soft-targets.ts labelTransferSet) on a synthetic transfer set of N 28×28 uint8
// images (default 1,000,000), generated chunk by chunk so that the inputs are never all in memory:
// what is measured is the pass's own bound (a chunk of inputs, the cache files written), not a
// 784 MB resident array. The teacher is the bench MLP (784-800-800-10) exported by the engine.
// --workers W: W worker threads with a one-thread session each, a chunk each at a time (default:
// one per core, as distill labels); --workers 1 --threads T: the teacher's own session in this
// thread with T intra-op threads.
// Prints one JSON line: samples/s of a cold pass into an empty cache folder, of a warm pass
// that reads every chunk back (--warm), and the process's peak RSS. Run it in its own process:
// peak RSS is process-wide (bench/main.ts does, for the label.* figures).

import os from "node:os";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { exportOnnx } from "../src/nn/model.js";
import { defaultThreads } from "../src/engine/runtime.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import { labelTransferSet, labelWorkers, type TransferSource } from "../src/distill/soft-targets.js";
import type { SampleSet } from "../src/data/sample-set.js";
import { mlp800 } from "./models.js";

const args = process.argv.slice(2);
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const samples = Number(option("--samples") ?? 1_000_000);
const threads = option("--threads") === undefined ? defaultThreads() : Number(option("--threads"));
const warm = args.includes("--warm");
const workers = Number(option("--workers") ?? labelWorkers());

/** Seeded random 28×28 images; sample p is the same bytes whichever chunk asks for it. */
function syntheticSource(count: number): TransferSource {
  const size = 784;
  return {
    count,
    kind: "image",
    sampleShape: [1, 28, 28],
    rows(start, n) {
      const inputs = new Uint8Array(n * size);
      const words = new Uint32Array(inputs.buffer);
      for (let i = 0; i < n; i++) {
        // xorshift32 seeded by the sample's position: cheap, deterministic, chunk-independent.
        let x = (start + i + 1) * 2654435761 >>> 0 || 1;
        for (let w = (i * size) / 4; w < ((i + 1) * size) / 4; w++) {
          x ^= x << 13; x >>>= 0;
          x ^= x >>> 17;
          x ^= x << 5; x >>>= 0;
          words[w] = x;
        }
      }
      const set: SampleSet = { kind: "image", inputs, labels: new Uint8Array(n), count: n, sampleShape: [1, 28, 28] };
      return { set, indices: Int32Array.from({ length: n }, (_, i) => i) };
    },
    describe: (position) => `synthetic sample ${position}`,
  };
}

const model = mlp800();
const teacher = await OnnxClassifier.fromBytes(exportOnnx(model, model.initParameters(0)), "bench teacher", threads);
const cacheDir = mkdtempSync(join(os.tmpdir(), "distill-bench-label-"));
const loadBefore = os.loadavg()[0]!;
try {
  const source = syntheticSource(samples);
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const cold = await labelTransferSet({ teacher, source, cacheDir, collect: false, workers });
  const coldSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  let warmSeconds: number | undefined;
  if (warm) {
    const t1 = performance.now();
    const again = await labelTransferSet({ teacher, source, cacheDir, collect: false });
    warmSeconds = (performance.now() - t1) / 1000;
    if (again.computedSamples !== 0) throw new Error(`warm pass computed ${again.computedSamples} samples`);
  }
  if (cold.computedSamples !== samples) throw new Error(`cold pass computed ${cold.computedSamples} of ${samples} samples`);
  console.log(JSON.stringify({
    name: `label.mlp800.${samples >= 1e6 ? `${samples / 1e6}m` : samples}`,
    samples,
    coldSamplesPerSec: Math.round(samples / coldSeconds),
    coldSeconds: Number(coldSeconds.toFixed(1)),
    // CPU time of the whole process (all threads) per 1,000 samples: what a pass costs whatever the load.
    coldCpuMsPer1k: Number((((cpu.user + cpu.system) / 1000) / (samples / 1000)).toFixed(1)),
    ...(warmSeconds !== undefined ? { warmSamplesPerSec: Math.round(samples / warmSeconds), warmSeconds: Number(warmSeconds.toFixed(1)) } : {}),
    // resourceUsage().maxRSS is in KiB.
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    chunks: cold.files.length,
    threads: workers > 1 ? 1 : threads,
    workers,
    cpus: os.availableParallelism(),
    loadavg1mStart: Number(loadBefore.toFixed(2)),
    loadavg1mEnd: Number(os.loadavg()[0]!.toFixed(2)),
    node: process.version,
  }));
} finally {
  await teacher.dispose();
  rmSync(cacheDir, { recursive: true, force: true });
}
