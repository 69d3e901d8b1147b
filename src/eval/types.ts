// The shapes of what a run writes: per-epoch metrics (metrics.jsonl) and final results
// (results.json). The report and the CLI read these and nothing else.

import type { MetricSummary, ModelMetrics } from "./model-metrics.js";
import type { TeacherReport } from "./teacher-report.js";
import type { ShiftReport } from "./domain-shift.js";
import type { InputKind } from "../data/sample-set.js";

export type { MeanStd, MetricName, MetricSummary, ModelMetrics, OptionalMetric } from "./model-metrics.js";

/** The transfer check of a run with unlabelled data: the shift report, its reference split, the sources. */
export type DomainShiftRecord = Omit<ShiftReport, "reference"> & {
  reference: ShiftReport["reference"] & { split: "validation" | "training" };
  sources: { source: string; samples: number }[];
  /** Teacher forward passes the check itself ran (0 when it reused the soft targets). */
  computedSamples: number;
};

export interface ModelResult {
  role: string; // "teacher" | "baseline" | "student" | other stage names
  file: string; // .onnx path relative to the run folder (seed 0's)
  perSeed: ModelMetrics[];
  summary: MetricSummary;
  /**
   * A distilled student: images run through the teacher to teach one such model. kd.teaching cached:
   * the transfer set once, shared by every seed (and by later runs, through the cache); consistent:
   * every training image of every epoch, for each seed.
   */
  teacherPasses?: { teaching: "cached" | "consistent"; perModel: number };
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
  data?: {
    train: number; validation: number; test: number; transfer: number; transferLabeled: boolean;
    /** data.unlabeled: the unlabelled samples and how each distilled batch mixed them with labelled ones. */
    unlabeled?: { samples: number; labeledPerBatch: number | null; batchSize: number };
    /** data.jitteredCopies: shifted copies of the training images in the transfer set. */
    jitteredCopies?: { copies: number; jitter: number; samples: number };
  };
  /** Architectures and training settings, as resolved from the config. */
  setup?: Record<string, unknown>;
  /** Where latency and throughput were measured. */
  machine?: MachineFacts;
  details?: RunDetails;
  /** The teacher on the validation split, and the weak-teacher warning when it does not beat the baseline. */
  teacherReport?: TeacherReport & { computedSamples: number };
  /**
   * A teacher given as a file of soft targets has no test row; instead each student's top-1 agreement
   * with it where the file has rows the students never trained on: the validation split (per seed).
   */
  validationAgreement?: { samples: number; perRole: Record<string, number[]> };
  /** Unlabelled transfer data checked against the teacher's labelled reference (data.unlabeled). */
  domainShift?: DomainShiftRecord;
  /** data.transferOmits: the omitted classes' output-bias shifts (given, and estimated per seed). */
  biasShift?: BiasShiftRecord;
  /** A teacher trained here (teacher.model): trained in this run or reused from the teacher cache, and what its training cost. */
  teacherTraining?: TeacherTraining;
  /** Present only when the distilled student did not beat its baseline: which known causes apply, with their figures. */
  noGain?: NoGainRecord;
}

export interface TeacherTraining {
  /** trained: its epochs ran in this run; reused: read from the teacher cache, no epoch ran. */
  source: "trained" | "reused";
  epochs: number;
  /** Wall time of its training (for a reused teacher: what it cost when it was trained). */
  seconds: number;
  /** Its last epoch's accuracies (null without a validation split). */
  validationAccuracy: number | null;
  trainAccuracy: number | null;
  trainedAt: string;
  /** Where the teacher cache keeps it (null with teacher.cache: false). */
  cache: { key: string; dir: string } | null;
}

/** Why distillation did not pay: each known cause with the figures it was judged on. */
export interface NoGainRecord {
  /** The causes that apply (empty: none of the known causes does). */
  causes: { cause: "teacher-not-better" | "temperature-too-high" | "student-fits-training-set"; text: string }[];
  /** One sentence: the causes, or "none of the known causes applies: …" with every figure. */
  summary: string;
  figures: NoGainFigures;
}

/** The figures the causes are judged on, all from the run itself (null: not measured in this run). */
export interface NoGainFigures {
  classes: number;
  /**
   * The student's own teacher on the validation split: the teacher report, or with a chain
   * (assistants, born-again generations) its last link's last-epoch validation accuracy.
   */
  teacherValAccuracy: number | null;
  /** That last link's stage name (generation1, assistant2…), when a chain teaches the student. */
  teacherStage?: string;
  /** The baseline's last-epoch validation and training accuracy, per seed. */
  baselineValAccuracy: number[];
  baselineTrainAccuracy: number[];
  /** The teacher's last-epoch training accuracy (a teacher trained here, in this run or when cached). */
  teacherTrainAccuracy: number | null;
  /** The first loss term's temperature, and the mean entropy (nats) of softmax(teacher logits / T) on the transfer set. */
  temperature: number | null;
  softTargetEntropy: number | null;
  /** What a sample is (absent in records written before it was kept): the advice depends on it. */
  inputKind?: InputKind;
}

export interface BiasShiftRecord {
  classes: string[];
  given: number | null;
  /** Per seed: the estimated shift of each omitted class. */
  estimated: Record<number, number[]>;
  estimatedOn: string;
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
  /** Images: raw 0–255 pixels, [channels, height, width], base64. */
  pixels?: string;
  /** Texts: the raw text. */
  text?: string;
}

export interface RunDetails {
  classLabels: string[];
  /** Per role: confusion[true][predicted], summed over seeds. */
  confusion: Record<string, number[][]>;
  /** Per role: F1 of each class from the summed confusion matrix (null where a class is neither present nor predicted). */
  perClassF1?: Record<string, (number | null)[]>;
  /** Absent for tables and texts (their examples are shown as text). */
  image?: { height: number; width: number; channels?: number };
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
