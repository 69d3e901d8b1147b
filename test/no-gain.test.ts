// Why distillation did not pay (src/report/no-gain.ts): each known cause on constructed figures,
// silence when distillation paid, and a real `distill run` on MNIST whose teacher is deliberately
// weak (one epoch, two hidden units), where the first cause is named in the log, results.json
// and the report's headline.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { meanSoftmaxEntropy, summarize } from "../src/eval/metrics.js";
import type { ModelMetrics, ModelResult, NoGainFigures, RunResults } from "../src/eval/types.js";
import { headline, pairedDifference, type Headline } from "../src/report/headline.js";
import { renderReport } from "../src/report/html.js";
import { distillationPaid, noGainLead, studentFitsTrainingSet, teacherNotBetter, temperatureTooHigh, whyNoGain } from "../src/report/no-gain.js";

const dir = mkdtempSync(join(tmpdir(), "distill-no-gain-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");

/** A headline whose student − baseline errors per seed are `differences`. */
function headlineOf(differences: number[]): Headline {
  const errors = pairedDifference(differences.map((d) => 100 + d), differences.map(() => 100));
  const significant = errors.ci95 ? errors.ci95[0] > 0 || errors.ci95[1] < 0 : null;
  return { student: "student", baseline: { errors, accuracyPoints: errors, gapClosed: null, significant } };
}

const figures = (f: Partial<NoGainFigures> = {}): NoGainFigures => ({
  classes: 10, teacherValAccuracy: 0.95, baselineValAccuracy: [0.9, 0.91], baselineTrainAccuracy: [0.92, 0.93],
  teacherTrainAccuracy: 0.97, temperature: 4, softTargetEntropy: 1.0, ...f,
});

test("did distillation pay: the paired interval below zero errors (one seed: fewer errors); no baseline: not judged", () => {
  assert.equal(distillationPaid(headlineOf([-10, -12, -9])), true);
  assert.equal(distillationPaid(headlineOf([-10, 5, -9])), false, "the interval includes zero");
  assert.equal(distillationPaid(headlineOf([3, 5, 4])), false);
  assert.equal(distillationPaid(headlineOf([-1])), true, "one seed: no interval, the sign");
  assert.equal(distillationPaid(headlineOf([0])), false);
  assert.equal(distillationPaid({ student: "student" }), undefined);
});

test("the log's lead-in: fewer errors with an interval reaching zero is a gain not shown, not no gain", () => {
  assert.equal(noGainLead(headlineOf([3, 5, 4])), "no gain from distillation", "more errors on every seed");
  assert.equal(noGainLead(headlineOf([1])), "no gain from distillation", "one seed, more errors: no interval to quote");
  // −62 and −116 errors (two seeds of docs/results.md's 30-epoch Fashion-MNIST run): mean −89, std 38.18,
  // t(0.975, 1) = 12.706, so the interval is −89 ± 343.1.
  assert.equal(noGainLead(headlineOf([-62, -116])), "no gain shown (−89.0 errors on average, but the seed-paired 95 % interval [−432.1, +254.1] over 2 seeds includes 0: more seeds narrow it)");
});

test("cause 1: the teacher not better than the baseline on validation, at or below its mean or within its seeds' spread", () => {
  assert.match(teacherNotBetter(0.9, [0.91])!.text, /^the teacher is not better than the baseline on validation \(90\.00 % against the baseline's 91\.00 %\)/);
  assert.equal(teacherNotBetter(0.91, [0.91])!.cause, "teacher-not-better", "equal is not better");
  // Baseline 0.90, 0.91, 0.93: mean 0.9133, std 0.0153; a teacher 0.67 points above is inside it.
  assert.match(teacherNotBetter(0.92, [0.9, 0.91, 0.93])!.text, /beyond the seeds' spread \(92\.00 % against the baseline's 91\.33 % ± 1\.53 % over 3 seeds\)/);
  assert.equal(teacherNotBetter(0.93, [0.9, 0.91, 0.93]), undefined, "1.67 points above: outside the spread");
  assert.equal(teacherNotBetter(0.95, [0.91]), undefined);
  assert.equal(teacherNotBetter(null, [0.91]), undefined, "no validation split: not judged");
  // A chain: the student's own teacher is its last link, and the cause names it.
  assert.match(teacherNotBetter(0.9218, [0.9202, 0.9262], "generation1")!.text, /^the student's own teacher \(generation1, the chain's last link\) is not better than the baseline on validation \(92\.18 % against/);
  const chain = whyNoGain(headlineOf([-9, 4, -12, -5, -1]), figures({ teacherValAccuracy: 0.9218, teacherStage: "generation1", baselineValAccuracy: [0.9202, 0.9262, 0.9218, 0.9206, 0.92] }))!;
  assert.deepEqual(chain.causes.map((c) => c.cause), ["teacher-not-better"]);
});

test("cause 2: soft targets nearly uniform at the temperature: mean entropy of softmax(z/T) ≥ 0.9 log K", () => {
  // Two classes, logits [0, ln 3]: p = [1/4, 3/4], H = 0.5623 nats; uniform rows give log K exactly.
  const h = -(0.25 * Math.log(0.25) + 0.75 * Math.log(0.75));
  assert.ok(Math.abs(meanSoftmaxEntropy(Float32Array.from([0, Math.log(3)]), 2, 1) - h) < 1e-6);
  assert.ok(Math.abs(meanSoftmaxEntropy(Float32Array.from([0, 2 * Math.log(3), 5, 5]), 2, 2) - (h + Math.log(2)) / 2) < 1e-6, "z / T, averaged over rows");
  assert.ok(Math.abs(meanSoftmaxEntropy(new Float32Array(10).fill(7), 10, 4) - Math.log(10)) < 1e-9);
  // Large logits do not overflow.
  assert.ok(Math.abs(meanSoftmaxEntropy(Float32Array.from([1000, 0]), 2, 1)) < 1e-12);

  const uniform = Math.log(10);
  const c = temperatureTooHigh(0.95 * uniform, 10, 20)!;
  assert.equal(c.cause, "temperature-too-high");
  assert.match(c.text, /at T = 20 its soft targets on the transfer set have a mean entropy of 2\.187 nats, 95\.0 % of log 10 = 2\.303 \(uniform\)/);
  assert.ok(temperatureTooHigh(0.9 * uniform, 10, 20), "0.9 log K is the threshold");
  assert.equal(temperatureTooHigh(0.89 * uniform, 10, 20), undefined);
  assert.equal(temperatureTooHigh(null, 10, null), undefined, "no term with a temperature: not judged");
});

test("cause 3: the student already fits its training set: the baseline's training accuracy ≥ 99 % or ≥ the teacher's", () => {
  assert.match(studentFitsTrainingSet([0.995, 0.993], 0.999)!.text, /^the student already fits its training set \(the baseline's training accuracy is 99\.40 %, at or above 99\.00 %\)/);
  assert.match(studentFitsTrainingSet([0.95, 0.96], 0.94)!.text, /^the student fits its training set at least as well as the teacher does \(the baseline's training accuracy is 95\.50 %, the teacher's 94\.00 %\)/);
  assert.equal(studentFitsTrainingSet([0.95, 0.96], 0.97), undefined);
  // A chain: the figure is its last link's, and the sentence names it.
  assert.match(studentFitsTrainingSet([0.95, 0.96], 0.94, true, "generation1")!.text, /^the student fits its training set at least as well as generation1 does \(the baseline's training accuracy is 95\.50 %, generation1's 94\.00 %\)/);
  assert.equal(studentFitsTrainingSet([0.95], null), undefined, "an imported teacher: only the 99 % rule");
  assert.equal(studentFitsTrainingSet([], 0.9), undefined);
  // Shifted copies are for images; rows and texts are pointed at unlabelled data alone.
  assert.match(studentFitsTrainingSet([0.995], null)!.text, /\(data\.unlabeled, data\.jitteredCopies\)$/);
  assert.match(studentFitsTrainingSet([0.995], null, false)!.text, /\(data\.unlabeled\)$/);
});

test("the record: every cause that applies; none, said with every figure; nothing when distillation paid", () => {
  const notPaid = headlineOf([4, 6, 5]);
  const all = whyNoGain(notPaid, figures({ teacherValAccuracy: 0.89, softTargetEntropy: 2.2, baselineTrainAccuracy: [0.995, 0.996] }))!;
  assert.deepEqual(all.causes.map((c) => c.cause), ["teacher-not-better", "temperature-too-high", "student-fits-training-set"]);
  assert.equal(all.summary, `${all.causes.map((c) => c.text).join("; ")}.`);

  const none = whyNoGain(notPaid, figures())!;
  assert.deepEqual(none.causes, []);
  assert.equal(none.summary, "none of the known causes applies (teacher validation accuracy 95.00 % against the baseline's 90.50 %; soft-target entropy 1.000 of log 10 = 2.303 nats at T = 4; baseline training accuracy 92.50 % against the teacher's 97.00 %).");
  assert.match(whyNoGain(notPaid, figures({ teacherValAccuracy: null, temperature: null, softTargetEntropy: null, teacherTrainAccuracy: null }))!.summary,
    /teacher validation accuracy not measured .*soft-target entropy not measured \(no term with a temperature\).*against the teacher's not measured/);

  // Distillation paid (or there is no baseline): no record, whatever the figures say.
  assert.equal(whyNoGain(headlineOf([-10, -12, -9]), figures({ teacherValAccuracy: 0.5 })), undefined);
  assert.equal(whyNoGain({ student: "student" }, figures({ teacherValAccuracy: 0.5 })), undefined);
});

/** Results of a run with a teacher, a baseline and a student, with the errors given per seed. */
function resultsWith(baselineErrors: number[], studentErrors: number[]): RunResults {
  const m = (role: string, errors: number[]): ModelResult => {
    const perSeed = errors.map((e): ModelMetrics => ({
      accuracy: 1 - e / 1000, errors: e, total: 1000, macroF1: 0.9, nll: 0.3, ece: 0.02, agreement: null,
      precision: null, recall: null, f1: null, rocAuc: null, params: 1000, onnxBytes: 5000, onnxGzipBytes: 4000, latencyP50Ms: 0.05, latencyP95Ms: 0.08, throughput: 1e5,
    }));
    return { role, file: `${role}.onnx`, perSeed, summary: summarize(perSeed) };
  };
  return {
    name: "no-gain", createdAt: "2025-01-01T00:00:00.000Z", codeVersion: "0.1.0", seeds: [0, 1, 2], dataset: "mnist", temperature: 4, alpha: 0.9, epochs: 2, wallSeconds: 10,
    models: [m("teacher", [50]), m("baseline", baselineErrors), m("student", studentErrors)],
  };
}

test("the report's headline says why only when distillation did not pay", () => {
  const notPaid = resultsWith([100, 102, 98], [104, 101, 103]);
  const record = whyNoGain(headline(notPaid), figures({ teacherValAccuracy: 0.9 }))!;
  const html = renderReport({ ...notPaid, noGain: record }, []);
  assert.match(html, /<p id="headline-no-gain"><strong>Why no gain:<\/strong> the teacher is not better than the baseline on validation \(90\.00 %/);

  const paid = resultsWith([100, 102, 98], [90, 91, 89]);
  assert.equal(whyNoGain(headline(paid), figures({ teacherValAccuracy: 0.9 })), undefined);
  assert.doesNotMatch(renderReport(paid, []), /headline-no-gain|Why no gain/);
});

test("a run whose teacher is deliberately weak (1 epoch, 2 hidden units): the first cause, in the log, results.json and the report", () => {
  const path = join(dir, "weak.yaml");
  writeFileSync(path, `
name: weak
seeds: 2
data: { dataset: mnist, trainLimit: 1500, validation: 300, testLimit: 500 }
teacher:
  model: { layers: [ {type: linear, units: 2}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 1, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
student:
  model: { layers: [ {type: linear, units: 32}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 2, batchSize: 64, optimizer: {kind: sgd, lr: 0.05, momentum: 0.9} }
kd: { temperature: 2, alpha: 0.9 }
`);
  const out = join(dir, "weak");
  const r = spawnSync(process.execPath, [CLI, "run", path, "--quiet", "--output", out], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
  assert.equal(r.status, 0, r.stderr);
  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as RunResults;
  const h = headline(results);
  assert.equal(distillationPaid(h), false, `student − baseline errors ${JSON.stringify(h.baseline?.errors)}`);
  const noGain = results.noGain!;
  assert.equal(noGain.causes[0]?.cause, "teacher-not-better");
  // The figures are the run's own: the teacher report and each seed's last baseline epoch.
  assert.equal(noGain.figures.teacherValAccuracy, results.teacherReport!.accuracy);
  assert.equal(noGain.figures.baselineValAccuracy.length, 2);
  assert.equal(noGain.figures.temperature, 2);
  assert.ok(noGain.figures.softTargetEntropy! > 0 && noGain.figures.softTargetEntropy! < Math.log(10));
  assert.equal(noGain.figures.teacherTrainAccuracy, results.teacherTraining!.trainAccuracy);
  assert.match(r.stderr + r.stdout, /^no gain (from distillation|shown \([^)]*\)): the teacher is not better than the baseline on validation \(\d+\.\d\d % against the baseline's \d+\.\d\d % ± \d+\.\d\d % over 2 seeds\)/m);
  assert.match(readFileSync(join(out, "report.html"), "utf8"), /id="headline-no-gain"><strong>Why no gain:<\/strong> the teacher is not better/);
});

test("a born-again chain from that weak teacher: the student's own teacher is generation1, and the cause names it with its recorded accuracy", () => {
  const path = join(dir, "weak-chain.yaml");
  writeFileSync(path, readFileSync(join(dir, "weak.yaml"), "utf8").replace("name: weak", "name: weak-chain").replace("kd: { temperature: 2, alpha: 0.9 }", "kd: { temperature: 2, alpha: 0.9, generations: 2 }"));
  const out = join(dir, "weak-chain");
  const r = spawnSync(process.execPath, [CLI, "run", path, "--quiet", "--output", out], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
  assert.equal(r.status, 0, r.stderr);
  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as RunResults;
  const noGain = results.noGain!;
  assert.ok(noGain, `student − baseline errors ${JSON.stringify(headline(results).baseline?.errors)}`);
  const generation1 = JSON.parse(readFileSync(join(out, "stages", "generation1-s0.json"), "utf8")) as { history: { valAccuracy: number; trainAccuracy: number }[] };
  assert.equal(noGain.figures.teacherStage, "generation1");
  assert.equal(noGain.figures.teacherValAccuracy, generation1.history.at(-1)!.valAccuracy);
  // Every figure is generation1's, not the first teacher's: its training accuracy, and the entropy of its own soft targets.
  assert.equal(noGain.figures.teacherTrainAccuracy, generation1.history.at(-1)!.trainAccuracy);
  assert.notEqual(noGain.figures.teacherTrainAccuracy, results.teacherTraining!.trainAccuracy);
  const state = JSON.parse(readFileSync(join(out, "run.json"), "utf8")) as { softTargetEntropy: { meanNats: number }; chain: Record<string, { softTargetEntropy: number }> };
  assert.equal(noGain.figures.softTargetEntropy, state.chain["generation1"]!.softTargetEntropy);
  assert.ok(noGain.figures.softTargetEntropy! > 0 && noGain.figures.softTargetEntropy! < Math.log(10));
  assert.notEqual(noGain.figures.softTargetEntropy, state.softTargetEntropy.meanNats);
  assert.equal(noGain.causes[0]?.cause, "teacher-not-better");
  assert.match(r.stderr + r.stdout, /: the student's own teacher \(generation1, the chain's last link\) is not better than the baseline on validation/);
});
