// Batch-1 latency and throughput of every model of a run, timed together once all are trained:
// each model warmed up, then rounds that time every model in turn. Timed one after another, the
// first small model paid for the process's warm-up (31.5 against 23.5 µs for the same architecture)
// and the teacher-to-student speed-up swung from 4.5× to 2.2× between identical runs.

import type { SampleSet } from "../data/sample-set.js";
import { OnnxClassifier } from "./evaluate.js";
import { measureInterleaved, type LatencyInput, type MeasureOptions, type TimedModel } from "./latency.js";
import { summarize } from "./metrics.js";
import type { ModelResult } from "./types.js";

/** Model files per role, one per seed, in the order of the role's perSeed metrics. */
export interface RoleFiles {
  role: string;
  perSeed: string[];
}

/** `models` with their latency and throughput measured again, all together and interleaved. */
export async function timeRunModels(models: ModelResult[], files: RoleFiles[], set: SampleSet, indices: Int32Array, opts: MeasureOptions = {}): Promise<ModelResult[]> {
  const classifiers: OnnxClassifier[] = [];
  try {
    const timed: TimedModel[] = [];
    for (const m of models) {
      const paths = files.find((f) => f.role === m.role)?.perSeed ?? [];
      if (paths.length !== m.perSeed.length) throw new Error(`${m.role}: ${paths.length} model files for ${m.perSeed.length} seeds`);
      for (const path of paths) {
        const c = await OnnxClassifier.fromFile(path);
        classifiers.push(c);
        timed.push({
          bytes: c.bytes,
          makeInput: (batch) => {
            const rows = Int32Array.from({ length: batch }, (_, i) => indices[i % indices.length]!);
            return { name: c.inputName, ...c.inputTensor(set, rows) } as LatencyInput;
          },
        });
      }
    }
    const latencies = await measureInterleaved(timed, opts);
    let next = 0;
    return models.map((m) => {
      const perSeed = m.perSeed.map((metrics) => {
        const t = latencies[next++]!;
        return { ...metrics, latencyP50Ms: t.latencyP50Ms, latencyP95Ms: t.latencyP95Ms, throughput: t.throughput };
      });
      return { ...m, perSeed, summary: summarize(perSeed) };
    });
  } finally {
    for (const c of classifiers) await c.dispose();
  }
}
