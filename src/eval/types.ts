// The shapes of what a run writes: per-epoch metrics (metrics.jsonl) and final results
// (results.json). The report and the CLI read these and nothing else.

/** Test-set quality and cost of one model (one seed). */
export interface ModelMetrics {
  accuracy: number; // fraction correct, 0..1
  errors: number; // misclassified test samples
  total: number; // test samples
  macroF1: number;
  nll: number; // mean negative log-likelihood (nats)
  ece: number; // expected calibration error, 15 equal-width bins
  agreement: number | null; // top-1 agreement with the teacher (null for the teacher itself)
  params: number;
  onnxBytes: number;
  onnxGzipBytes: number;
  latencyP50Ms: number; // batch 1, onnxruntime-node
  latencyP95Ms: number;
  throughput: number; // samples/s at batch 128
}

export type MetricName = keyof ModelMetrics;

/** Mean ± std per metric over seeds; `agreement` is absent for the teacher (no agreement with itself). */
export type MetricSummary = Record<Exclude<MetricName, "agreement">, MeanStd> & { agreement?: MeanStd };

export interface MeanStd {
  mean: number;
  std: number; // sample standard deviation over seeds (0 for one seed)
  values: number[];
}

export interface ModelResult {
  role: string; // "teacher" | "baseline" | "student" | other stage names
  file: string; // .onnx path relative to the run folder (seed 0's)
  perSeed: ModelMetrics[];
  summary: MetricSummary;
}

export interface RunResults {
  name: string;
  createdAt: string;
  codeVersion: string;
  seeds: number[];
  dataset: string;
  /** Temperature and α of the first loss term that has them (null when none has). */
  temperature: number | null;
  alpha: number | null;
  /** The student's loss terms as resolved from the config's kd block. */
  kd?: { terms: { method: string; weight: number; [setting: string]: unknown }[] };
  epochs: number;
  wallSeconds: number;
  models: ModelResult[];
  /** Sizes of the splits the run used (absent in results written before they were recorded). */
  data?: { train: number; validation: number; test: number; transfer: number; transferLabeled: boolean };
  /** Architectures and training settings, as resolved from the config. */
  setup?: Record<string, unknown>;
  /** Where latency and throughput were measured. */
  machine?: MachineFacts;
  details?: RunDetails;
}

export interface MachineFacts {
  cpus: number;
  cpuModel: string;
  onnxThreads: number;
  /** 1, 5 and 15-minute load averages when the models were timed. */
  loadAverage: number[];
}

/** A test example on which the student's and the teacher's top-1 predictions differ. */
export interface Disagreement {
  index: number; // in the test set
  label: number;
  teacher: number;
  student: number;
  /** Raw 0–255 pixels, [height, width], base64. */
  pixels: string;
}

export interface RunDetails {
  classLabels: string[];
  /** Per role: confusion[true][predicted], summed over seeds. */
  confusion: Record<string, number[][]>;
  image: { height: number; width: number };
  disagreements: Disagreement[];
  /** All disagreements of the student's first seed with the teacher (the list keeps the first few). */
  disagreementCount: number;
}

/** One line of metrics.jsonl. */
export interface EpochMetric {
  stage: string; // "teacher" | "baseline" | "student" | …
  seed: number;
  epoch: number; // 1-based
  lr: number;
  trainLoss: number;
  terms: Record<string, number>; // e.g. loss_ce, loss_kd (epoch means)
  trainAccuracy: number;
  valAccuracy: number;
  valLoss: number;
  seconds: number;
}
