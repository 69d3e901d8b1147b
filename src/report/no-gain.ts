// When the distilled student does not beat its baseline, which known cause applies — judged only
// on figures the run already has (the teacher report, the stages' last epochs, the soft targets'
// entropy), never guessed. Each cause is a small pure function returning its sentence or nothing;
// when none applies the record says so, with every figure, so the reader can look further.
//
// The causes (Hinton et al. 2015; Cho & Hariharan 2019, "On the efficacy of knowledge distillation";
// Stanton et al. 2021, "Does knowledge distillation really work?"):
//   - a teacher no better than the baseline on validation has nothing to pass on;
//   - at too high a temperature the soft targets are nearly uniform, and carry no class similarity;
//   - a student that already fits its training set gains little from targets on that same set.

import type { NoGainFigures, NoGainRecord } from "../eval/types.js";
import type { Headline } from "./headline.js";

/** Soft targets whose mean entropy is at least this share of log K count as nearly uniform. */
export const NEARLY_UNIFORM_SHARE = 0.9;
/** A baseline at or above this training accuracy already fits its training set. */
export const FITS_TRAINING_SET = 0.99;

type Cause = NoGainRecord["causes"][number];

const pct = (x: number) => `${(x * 100).toFixed(2)} %`;

function meanStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

/**
 * Did distillation pay? With an interval (2+ seeds): its upper end is below zero errors. With one
 * seed there is no interval: fewer errors on average. Undefined without a baseline to compare with.
 */
export function distillationPaid(h: Headline): boolean | undefined {
  const b = h.baseline;
  if (!b) return undefined;
  return b.errors.ci95 ? b.errors.ci95[1] < 0 : b.errors.mean < 0;
}

/**
 * The log's lead-in when distillation did not pay. Fewer errors on average with an interval that
 * still reaches zero is not "no gain" but a gain too small for this many seeds to show: say so, with
 * the interval, so that a user runs more seeds rather than giving up on the recipe.
 */
export function noGainLead(h: Headline): string {
  const d = h.baseline?.errors;
  if (!d?.ci95 || d.mean >= 0) return "no gain from distillation";
  const signed = (x: number) => `${x > 0 ? "+" : x < 0 ? "−" : ""}${Math.abs(x).toFixed(1)}`;
  return `no gain shown (${signed(d.mean)} errors on average, but the seed-paired 95 % interval [${signed(d.ci95[0])}, ${signed(d.ci95[1])}] over ${d.n} seeds includes 0: more seeds narrow it)`;
}

/** The teacher is not better than the baseline on validation: at or below its mean, or within its seeds' spread (one sample std) above it. */
export function teacherNotBetter(teacherValAccuracy: number | null, baselineValAccuracy: number[], teacherStage?: string): Cause | undefined {
  if (teacherValAccuracy === null || baselineValAccuracy.length === 0) return undefined;
  const who = teacherStage ? `the student's own teacher (${teacherStage}, the chain's last link)` : "the teacher";
  const { mean, std } = meanStd(baselineValAccuracy);
  const seeds = baselineValAccuracy.length;
  const baseline = seeds > 1 ? `${pct(mean)} ± ${pct(std)} over ${seeds} seeds` : pct(mean);
  if (teacherValAccuracy <= mean)
    return { cause: "teacher-not-better", text: `${who} is not better than the baseline on validation (${pct(teacherValAccuracy)} against the baseline's ${baseline}): train it longer or larger, or use another teacher` };
  if (teacherValAccuracy - mean <= std)
    return { cause: "teacher-not-better", text: `${who} is no better than the baseline on validation beyond the seeds' spread (${pct(teacherValAccuracy)} against the baseline's ${baseline}): train it longer or larger, or use another teacher` };
  return undefined;
}

/** The soft targets are nearly uniform at this temperature: mean entropy ≥ NEARLY_UNIFORM_SHARE · log K. */
export function temperatureTooHigh(softTargetEntropy: number | null, classes: number, temperature: number | null): Cause | undefined {
  if (softTargetEntropy === null || temperature === null || classes < 2) return undefined;
  const uniform = Math.log(classes);
  const share = softTargetEntropy / uniform;
  if (share < NEARLY_UNIFORM_SHARE) return undefined;
  return {
    cause: "temperature-too-high",
    text: `the temperature is too high for this teacher: at T = ${temperature} its soft targets on the transfer set have a mean entropy of ${softTargetEntropy.toFixed(3)} nats, ${(share * 100).toFixed(1)} % of log ${classes} = ${uniform.toFixed(3)} (uniform), so they say little about which classes are alike: lower T`,
  };
}

/** The student already fits its training set: the baseline's training accuracy ≥ FITS_TRAINING_SET, or ≥ the teacher's. */
export function studentFitsTrainingSet(baselineTrainAccuracy: number[], teacherTrainAccuracy: number | null, images = true, teacherStage?: string): Cause | undefined {
  if (baselineTrainAccuracy.length === 0) return undefined;
  const { mean } = meanStd(baselineTrainAccuracy);
  // jitteredCopies shifts images: for table rows and texts, more data is the only way.
  const advice = `so soft targets on that set carry little the labels do not: distil on more or other data (${images ? "data.unlabeled, data.jitteredCopies" : "data.unlabeled"})`;
  if (mean >= FITS_TRAINING_SET)
    return { cause: "student-fits-training-set", text: `the student already fits its training set (the baseline's training accuracy is ${pct(mean)}, at or above ${pct(FITS_TRAINING_SET)}), ${advice}` };
  if (teacherTrainAccuracy !== null && mean >= teacherTrainAccuracy)
    return { cause: "student-fits-training-set", text: `the student fits its training set at least as well as ${teacherStage ?? "the teacher"} does (the baseline's training accuracy is ${pct(mean)}, ${teacherStage ?? "the teacher"}'s ${pct(teacherTrainAccuracy)}), ${advice}` };
  return undefined;
}

/** Every figure the causes were judged on, in words (for "none of the known causes applies"). */
export function figuresInWords(f: NoGainFigures): string {
  const unmeasured = "not measured";
  const baselineVal = f.baselineValAccuracy.length ? pct(meanStd(f.baselineValAccuracy).mean) : unmeasured;
  const baselineTrain = f.baselineTrainAccuracy.length ? pct(meanStd(f.baselineTrainAccuracy).mean) : unmeasured;
  const entropy = f.softTargetEntropy !== null && f.temperature !== null
    ? `soft-target entropy ${f.softTargetEntropy.toFixed(3)} of log ${f.classes} = ${Math.log(f.classes).toFixed(3)} nats at T = ${f.temperature}`
    : `soft-target entropy ${unmeasured} (no term with a temperature)`;
  return [
    `${f.teacherStage ? `${f.teacherStage} (the student's teacher)` : "teacher"} validation accuracy ${f.teacherValAccuracy === null ? unmeasured : pct(f.teacherValAccuracy)} against the baseline's ${baselineVal}`,
    entropy,
    `baseline training accuracy ${baselineTrain} against ${f.teacherStage ?? "the teacher"}'s ${f.teacherTrainAccuracy === null ? unmeasured : pct(f.teacherTrainAccuracy)}`,
  ].join("; ");
}

/** Why distillation did not pay, or undefined when it did (or there is no baseline to judge against). */
export function whyNoGain(h: Headline, f: NoGainFigures): NoGainRecord | undefined {
  if (distillationPaid(h) !== false) return undefined;
  const causes = [
    teacherNotBetter(f.teacherValAccuracy, f.baselineValAccuracy, f.teacherStage),
    temperatureTooHigh(f.softTargetEntropy, f.classes, f.temperature),
    studentFitsTrainingSet(f.baselineTrainAccuracy, f.teacherTrainAccuracy, f.inputKind === undefined || f.inputKind === "image", f.teacherStage),
  ].filter((c): c is Cause => c !== undefined);
  const summary = causes.length
    ? `${causes.map((c) => c.text).join("; ")}.`
    : `none of the known causes applies (${figuresInWords(f)}).`;
  return { causes, summary, figures: f };
}
