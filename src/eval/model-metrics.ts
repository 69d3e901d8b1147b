// The metrics of one model — test-set quality and cost, per seed and as mean ± std over seeds —
// as results.json holds them (types.ts re-exports them with the rest of a run's results). Apart
// from types.ts because the code that computes them (metrics.ts, evaluate.ts) is itself used by
// the checks whose reports types.ts includes (teacher-report.ts, domain-shift.ts).

/** Test-set quality and cost of one model (one seed). */
export interface ModelMetrics {
  accuracy: number; // fraction correct, 0..1
  errors: number; // misclassified test samples
  total: number; // test samples
  macroF1: number;
  nll: number; // mean negative log-likelihood (nats)
  ece: number; // expected calibration error, 15 equal-width bins
  agreement: number | null; // top-1 agreement with the teacher (null for the teacher itself)
  // Two classes only (null otherwise); the positive class is the second (class index 1):
  precision: number | null; // of the positive class
  recall: number | null;
  f1: number | null;
  rocAuc: number | null; // area under the ROC curve of the positive class's score
  params: number;
  onnxBytes: number;
  onnxGzipBytes: number;
  latencyP50Ms: number; // batch 1, onnxruntime-node
  latencyP95Ms: number;
  throughput: number; // samples/s at batch 128
}

export type MetricName = keyof ModelMetrics;

/** Metrics that may be null: agreement (the teacher has none with itself), the binary ones (more than two classes). */
export type OptionalMetric = "agreement" | "precision" | "recall" | "f1" | "rocAuc";

/** Mean ± std per metric over seeds; a metric that is null in every seed is absent. */
export type MetricSummary = Record<Exclude<MetricName, OptionalMetric>, MeanStd> & Partial<Record<OptionalMetric, MeanStd>>;

export interface MeanStd {
  mean: number;
  std: number; // sample standard deviation over seeds (0 for one seed)
  values: number[];
}
