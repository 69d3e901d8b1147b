// "Teacher quality first": before a student learns from the teacher, how good is the teacher on
// labelled data it did not train on (the validation split), how well calibrated, how confident —
// and, once the label-only baseline has trained, is the teacher better than the baseline at all?
// A teacher that is not cannot pass on anything the labels do not already say.

import { UserError } from "../errors.js";
import { accuracy, expectedCalibrationError, macroF1, softmaxRows, type Labels } from "./metrics.js";

export interface TeacherReport {
  /** Validation samples the teacher was scored on. */
  samples: number;
  accuracy: number;
  macroF1: number;
  ece: number;
  meanConfidence: number;
  /** Counts of max-softmax confidence in 10 equal bins over [0, 1] (bin 9 holds (0.9, 1]). */
  confidenceHistogram: number[];
  /** Chance: the accuracy of always answering the samples' most common class (at least 1/K). */
  chanceAccuracy: number;
  /** Set when these figures are an ensemble's (kd.teachers): how many teachers' outputs were averaged. */
  members?: number;
  /** The label-only baseline's final validation accuracy, first seed (absent before it trained, or without labels). */
  baselineAccuracy?: number;
  /** Set when the teacher is no better than the baseline on validation (printed, in results.json and the report). */
  warning?: string;
}

export function teacherReport(logits: Float32Array, labels: Labels, classes: number): TeacherReport {
  const probs = softmaxRows(logits, classes);
  const histogram = new Array<number>(10).fill(0);
  const perClass = new Array<number>(classes).fill(0);
  for (let i = 0; i < labels.length; i++) perClass[Number(labels[i])]!++;
  let confidence = 0;
  for (let i = 0; i < labels.length; i++) {
    let top = 0;
    for (let c = 0; c < classes; c++) top = Math.max(top, probs[i * classes + c]!);
    confidence += top;
    histogram[Math.min(9, Math.max(0, Math.ceil(top * 10) - 1))]!++;
  }
  return {
    samples: labels.length,
    accuracy: accuracy(logits, labels, classes),
    macroF1: macroF1(logits, labels, classes),
    ece: expectedCalibrationError(logits, labels, classes),
    meanConfidence: confidence / labels.length,
    confidenceHistogram: histogram,
    chanceAccuracy: Math.max(...perClass) / labels.length,
  };
}

/** What the run knows of an imported teacher, to say what is likely wrong with it. */
export type ImportedTeacher = { onnx: string; allowChanceAccuracy?: boolean | undefined } | { softTargets: string; allowChanceAccuracy?: boolean | undefined };

/**
 * An imported teacher (an .onnx or a file of its outputs) no more accurate on validation than
 * always answering the most common class is almost surely mis-wired — its input scaled or laid out
 * wrongly, its outputs read as what they are not, its rows out of step with the samples — and a
 * student would copy it. Stops the run before any student trains, unless allowChanceAccuracy. The
 * rule is plain (≤ chance, no margin), as withBaseline's is; weak-but-better teachers go on to it.
 */
export function refuseTeacherAtChance(report: TeacherReport, teacher: ImportedTeacher): void {
  if (report.accuracy > report.chanceAccuracy || teacher.allowChanceAccuracy) return;
  const pct = (v: number) => `${(v * 100).toFixed(2)} %`;
  const score = `accuracy ${pct(report.accuracy)} on ${report.samples} validation samples is at or below chance (${pct(report.chanceAccuracy)}, always answering the most common class)`;
  const likely = "onnx" in teacher
    ? "the model is most likely mis-wired: check teacher.preprocessing (scale, mean, std), its layout (flat, nchw, nhwc), and teacher.output and teacher.outputs (logits or probabilities)"
    : "the file is most likely mis-read: check that row i is training sample i (or match rows with teacher.id), and teacher.outputs (logits or probabilities)";
  throw new UserError("onnx" in teacher ? teacher.onnx : teacher.softTargets, `teacher: ${score}; ${likely}; set teacher.allowChanceAccuracy: true to distill from it anyway`);
}

/**
 * The report with the baseline's validation accuracy and, when the teacher does not beat it, the
 * warning. The rule is deliberately plain — teacher accuracy ≤ baseline accuracy — because any
 * margin would be a guess; the numbers sit next to it for the reader to judge.
 */
export function withBaseline(report: TeacherReport, baselineAccuracy: number): TeacherReport {
  const out: TeacherReport = { ...report, baselineAccuracy };
  delete out.warning;
  if (report.accuracy <= baselineAccuracy)
    out.warning = `weak teacher${report.members ? ` (the ensemble of ${report.members})` : ""}: validation accuracy ${(report.accuracy * 100).toFixed(2)} % is not above the label-only baseline's ${(baselineAccuracy * 100).toFixed(2)} %; its soft targets are unlikely to help the student (teacher quality first: train it longer or larger, check an imported teacher's preprocessing and outputs, or use another teacher)`;
  return out;
}
