// Is the teacher worth learning from, and is the transfer set its kind of data? Each check uses
// figures the run computes anyway, prints one line, and keeps its report for results.json.

import { gatherLabels } from "../data/sample-set.js";
import { refuseTeacherAtChance, teacherReport, withBaseline, type TeacherReport } from "../eval/teacher-report.js";
import { domainShift, inputStatistic, type ShiftReport } from "../eval/domain-shift.js";
import type { EpochMetric } from "../eval/types.js";
import type { RunFolder } from "../distill/run-folder.js";
import type { Plan } from "./plan.js";
import type { TeacherScores } from "./teacher-scores.js";

/**
 * Teacher quality first: the teacher scored on the validation split (logits cached like soft
 * targets, so a later run spends no passes on it). Judged against the baseline once that has trained.
 * With several teachers (kd.teachers) the main one is still checked for being mis-wired, but the
 * report kept and judged is the ensemble's (`ensemble`), since that is what the student learns from.
 */
export async function reportOnTeacher(plan: Plan, run: RunFolder, teacher: TeacherScores, ensemble?: TeacherReport): Promise<void> {
  const { dataset, validationIndices, progress } = plan;
  if (run.state.teacherReport || validationIndices.length === 0) return;
  const scored = await teacher.logits(validationIndices, "teacher-validation");
  const main = teacherReport(scored.logits, gatherLabels(dataset.train, validationIndices), teacher.classes);
  const spec = plan.config.teacher!;
  if (spec.model === undefined) refuseTeacherAtChance(main, spec);
  const report = ensemble ?? main;
  run.state.teacherReport = { ...report, computedSamples: scored.computedSamples };
  const who = ensemble ? `teacher ensemble (${ensemble.members} teachers; the main one alone ${(main.accuracy * 100).toFixed(2)} %)` : "teacher";
  progress.log(`${who} on ${report.samples} validation samples: accuracy ${(report.accuracy * 100).toFixed(2)} %, macro-F1 ${report.macroF1.toFixed(4)}, ECE ${report.ece.toFixed(4)}, mean confidence ${report.meanConfidence.toFixed(3)}`);
}

/**
 * Before distilling on unlabelled data: does it look like data the teacher knows? The teacher's
 * confidence and entropy on the unlabelled samples against a labelled reference it never trained on
 * (the validation split; the labelled training examples when there is none), and an input statistic
 * (src/eval/domain-shift.ts). Printed, kept for results.json and the report; a warning above the rule's
 * thresholds. `transferLogits`: the soft targets already computed on transferIndices, when there are.
 */
export async function checkDomainShift(plan: Plan, run: RunFolder, teacher: TeacherScores, transferLogits: Float32Array | undefined): Promise<void> {
  const { dataset, unlabeledIndices, validationIndices, trainIndices, progress } = plan;
  if (unlabeledIndices.length === 0 || run.state.domainShift) return;
  const k = teacher.classes;
  let computed = 0;
  const logitsOf = async (indices: Int32Array, folder: string) => {
    const soft = await teacher.logits(indices, folder);
    computed += soft.computedSamples;
    return soft.logits;
  };
  const referenceIndices = validationIndices.length ? validationIndices : trainIndices;
  const referenceLogits = validationIndices.length
    ? await logitsOf(validationIndices, "teacher-validation")
    : transferLogits?.subarray(0, trainIndices.length * k) ?? (await logitsOf(trainIndices, "soft-targets"));
  const unlabeledLogits = transferLogits?.subarray((plan.transferIndices.length - unlabeledIndices.length) * k) ?? (await logitsOf(unlabeledIndices, "soft-targets"));
  const refInputs = inputStatistic(dataset.train, referenceIndices), trInputs = inputStatistic(dataset.train, unlabeledIndices);
  const report = domainShift({
    classes: k, referenceLogits, transferLogits: unlabeledLogits,
    referenceInputMeans: refInputs?.values ?? new Float64Array(1), transferInputMeans: trInputs?.values ?? new Float64Array(1),
    ...(refInputs ? { inputStatistic: refInputs.name } : {}),
  });
  run.state.domainShift = { ...report, reference: { ...report.reference, split: validationIndices.length ? "validation" : "training" }, sources: plan.unlabeledParts, computedSamples: computed };
  const side = (s: ShiftReport["reference"]) => `confidence ${s.confidence.mean.toFixed(3)}, ${(s.lowConfidenceShare * 100).toFixed(1)}% below ${report.lowConfidenceThreshold}`;
  progress.log(`transfer check: ${grouped(unlabeledIndices.length)} unlabelled samples ${side(report.transfer)}; ${validationIndices.length ? "validation" : "training"} ${side(report.reference)}; KS confidence ${report.confidenceTest.statistic.toFixed(3)}`);
  if (report.warning) progress.log(`warning: ${report.warning}`);
}

const grouped = (n: number) => n.toLocaleString("en-US");

/** Once the first seed's baseline has trained: is the teacher any better than labels alone? */
export function judgeTeacher(plan: Plan, run: RunFolder, baseline: EpochMetric[]): void {
  const report = run.state.teacherReport;
  const last = baseline[baseline.length - 1];
  if (!report || report.baselineAccuracy !== undefined || !last || !Number.isFinite(last.valAccuracy)) return;
  run.state.teacherReport = { ...withBaseline(report, last.valAccuracy), computedSamples: report.computedSamples };
  if (run.state.teacherReport.warning) plan.progress.log(`warning: ${run.state.teacherReport.warning}`);
  run.saveState();
}
