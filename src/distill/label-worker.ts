// A worker thread of the labelling pass (soft-targets.ts, `workers` > 1): its own one-thread
// onnxruntime session of the teacher, fed whole chunks, so that chunks run side by side on
// several cores without the per-operator synchronisation of one session's intra-op threads.

import { parentPort, workerData } from "node:worker_threads";
import { Session, type Tensor } from "../engine/runtime.js";

/** A chunk of transfer inputs to label, posted by soft-targets.ts (not a queue job: see label-queue.ts). */
export interface LabelChunk {
  input: Tensor;
  batch: number;
}

const { bytes, inputName, outputName } = workerData as { bytes: Uint8Array; inputName: string; outputName: string };
const session = await Session.create(bytes, { threads: 1 });

parentPort!.on("message", async (job: LabelChunk) => {
  try {
    const [n, ...sample] = job.input.shape as [number, ...number[]];
    const size = sample.reduce((a, b) => a * b, 1);
    let out: Float32Array | undefined;
    for (let start = 0; start < n; start += job.batch) {
      const m = Math.min(job.batch, n - start);
      const data = Array.isArray(job.input.data) ? job.input.data.slice(start, start + m) : job.input.data.subarray(start * size, (start + m) * size);
      const res = await session.run({ [inputName]: { dtype: job.input.dtype, shape: [m, ...sample], data } as Tensor }, undefined, [outputName]);
      const logits = res[outputName]!.data as Float32Array;
      out ??= new Float32Array((n * logits.length) / m);
      out.set(logits, (start * out.length) / n);
    }
    out ??= new Float32Array(0);
    parentPort!.postMessage({ logits: out }, [out.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ error: (e as Error).message });
  }
});
parentPort!.postMessage({ ready: true });
