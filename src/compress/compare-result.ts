// The shape of compare.json: what `distill compare` measured, which compare.html renders. Apart
// from compare.ts so the page needs nothing else from the command.

export interface CompareRow {
  name: string;
  /** How the model was made, one line. */
  how: string;
  file: string;
  /** Over seeds (results.json) when the whole run test set is used; else this file's. */
  accuracy: { mean: number; std: number; seeds: number };
  /** This file's accuracy on the compared test images (seed 0 for trained models). */
  fileAccuracy: number;
  macroF1: number;
  params: number;
  onnxBytes: number;
  onnxGzipBytes: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  /** Lowest and highest per-round p50 latency: how much the figure moved between rounds. */
  latencyP50RangeMs: [number, number];
  throughput: number;
  agreement: number | null;
  /** On the Pareto front of accuracy vs batch-1 latency / vs size. */
  paretoLatency: boolean;
  paretoSize: boolean;
}

export interface CompareResult {
  run: string;
  dataset: string;
  testSamples: number;
  measuredAt: string;
  loadAverage: number[];
  rounds: number;
  rows: CompareRow[];
  /** The int8 student against its fp32 self and against the teacher; NaN where a model is missing. */
  int8Student: {
    /** fp32 student bytes ÷ int8 student bytes. */
    sizeRatio: number;
    /** int8 − fp32 student accuracy on the compared test images, in points (positive: int8 is more accurate). */
    accuracyChangePoints: number;
    /** The teacher's batch-1 p50 latency ÷ the int8 student's. */
    speedupVsTeacher: number;
  };
}
