// The report's first paragraph in numbers: distilled student vs baseline (with a seed-paired
// confidence interval), the share of the teacher–baseline gap closed, and what the student saves
// against the teacher. Pure functions over results.json, so the CLI and tests can use them too.

import type { MeanStd, MetricName, ModelResult, RunResults } from "../eval/types.js";

// Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond.
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

export function tQuantile95(df: number): number {
  if (!(df >= 1)) throw new RangeError(`degrees of freedom must be ≥ 1, got ${df}`);
  return T95[Math.floor(df) - 1] ?? 1.96;
}

export interface PairedDifference {
  /** mean of a_i − b_i over the paired seeds */
  mean: number;
  std: number;
  n: number;
  /** 95% t-interval of the mean difference; null with fewer than 2 pairs. */
  ci95: [number, number] | null;
}

/** a − b paired by position (the same seed); the t-interval treats seeds as independent draws. */
export function pairedDifference(a: number[], b: number[]): PairedDifference {
  if (a.length !== b.length || a.length === 0) throw new RangeError(`paired values need equal, non-zero lengths (got ${a.length} and ${b.length})`);
  const d = a.map((x, i) => x - b[i]!);
  const n = d.length;
  const mean = d.reduce((s, x) => s + x, 0) / n;
  const std = n > 1 ? Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1)) : 0;
  const half = n > 1 ? (tQuantile95(n - 1) * std) / Math.sqrt(n) : NaN;
  return { mean, std, n, ci95: n > 1 ? [mean - half, mean + half] : null };
}

export interface Headline {
  student: string;
  baseline?: {
    /** student − baseline, per seed paired */
    errors: PairedDifference;
    accuracyPoints: PairedDifference;
    /** (baseline − student) / (baseline − teacher) errors; null when the teacher is no better than the baseline */
    gapClosed: number | null;
    /** CI excludes 0 */
    significant: boolean | null;
  };
  /** teacher ÷ student ratios (how much smaller and faster the student is) */
  vsTeacher?: {
    params: number; onnxBytes: number; latencyP50: number; throughput: number; accuracyPoints: number;
    /** The teacher's mean p50 ÷ each student seed's: the spread behind `latencyP50`. */
    latencyP50BySeed: number[];
  };
}

function mean(m: ModelResult | undefined, metric: MetricName): number {
  const s: MeanStd | undefined = m?.summary?.[metric];
  if (s) return s.mean;
  const v = (m?.perSeed ?? []).map((x) => x[metric]).filter((x): x is number => typeof x === "number");
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

const perSeed = (m: ModelResult, metric: MetricName) => m.perSeed.map((x) => Number(x[metric]));

export function headline(results: RunResults): Headline {
  const find = (role: string) => results.models.find((m) => m.role === role);
  const teacher = find("teacher");
  const student = find("student");
  const baseline = find("baseline");
  const out: Headline = { student: "student" };
  if (student && baseline && student.perSeed.length === baseline.perSeed.length) {
    const errors = pairedDifference(perSeed(student, "errors"), perSeed(baseline, "errors"));
    const accuracyPoints = pairedDifference(perSeed(student, "accuracy").map((x) => x * 100), perSeed(baseline, "accuracy").map((x) => x * 100));
    const gap = teacher ? mean(baseline, "errors") - mean(teacher, "errors") : 0;
    out.baseline = {
      errors,
      accuracyPoints,
      gapClosed: teacher && gap > 0 ? (mean(baseline, "errors") - mean(student, "errors")) / gap : null,
      significant: errors.ci95 ? errors.ci95[0] > 0 || errors.ci95[1] < 0 : null,
    };
  }
  if (student && teacher) {
    out.vsTeacher = {
      params: mean(teacher, "params") / mean(student, "params"),
      onnxBytes: mean(teacher, "onnxBytes") / mean(student, "onnxBytes"),
      latencyP50: mean(teacher, "latencyP50Ms") / mean(student, "latencyP50Ms"),
      latencyP50BySeed: perSeed(student, "latencyP50Ms").map((p) => mean(teacher, "latencyP50Ms") / p),
      throughput: mean(student, "throughput") / mean(teacher, "throughput"),
      accuracyPoints: (mean(student, "accuracy") - mean(teacher, "accuracy")) * 100,
    };
  }
  return out;
}
