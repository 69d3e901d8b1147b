// Metrics against values worked out by hand on small cases.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  binaryMetrics,
  perClassF1,
  rocAuc,
  accuracy,
  errorCount,
  expectedCalibrationError,
  macroF1,
  meanNll,
  meanStd,
  predictions,
  softmaxRows,
  summarize,
  topOneAgreement,
} from "../src/eval/metrics.js";
import type { ModelMetrics } from "../src/eval/types.js";
import { Rng } from "../src/util/random.js";
import { refuseTeacherAtChance, teacherReport, withBaseline } from "../src/eval/teacher-report.js";

const close = (actual: number, expected: number, tol = 1e-6) =>
  assert.ok(Math.abs(actual - expected) <= tol, `expected ${expected}, got ${actual}`);

/** Logits whose arg-max is `pred[i]`: 1 at the predicted class, 0 elsewhere. */
function oneHotLogits(pred: number[], k: number): Float32Array {
  const out = new Float32Array(pred.length * k);
  pred.forEach((p, i) => (out[i * k + p] = 1));
  return out;
}

describe("classification counts", () => {
  // Confusion worked on paper (rows = label, columns = prediction):
  //            pred 0  pred 1  pred 2
  //   label 0    2       1       0
  //   label 1    0       1       1
  //   label 2    1       0       3
  // class 0: TP 2 FP 1 FN 1 → F1 = 4/6;  class 1: TP 1 FP 1 FN 1 → 2/4;  class 2: TP 3 FP 1 FN 1 → 6/8
  // macro-F1 = (2/3 + 1/2 + 3/4) / 3 = 23/36; accuracy = 6/9.
  const labels = [0, 0, 0, 1, 1, 2, 2, 2, 2];
  const pred = [0, 0, 1, 1, 2, 2, 2, 2, 0];

  it("accuracy and error count", () => {
    const logits = oneHotLogits(pred, 3);
    assert.deepEqual([...predictions(logits, 3)], pred);
    assert.equal(errorCount(logits, labels, 3), 3);
    close(accuracy(logits, labels, 3), 2 / 3, 1e-12);
    close(accuracy(logits, Uint8Array.from(labels), 3), 2 / 3, 1e-12);
  });

  it("macro-F1 on the worked confusion", () => {
    close(macroF1(oneHotLogits(pred, 3), labels, 3), 23 / 36, 1e-12);
  });

  it("macro-F1 skips a class that is neither predicted nor present", () => {
    // Same data with a 4th class that never occurs: still 23/36, not (23/12 + x) / 4.
    close(macroF1(oneHotLogits(pred, 4), labels, 4), 23 / 36, 1e-12);
  });

  it("arg-max ties go to the lowest index", () => {
    assert.deepEqual([...predictions(Float32Array.from([1, 1, 0, 0, 2, 2]), 3)], [0, 1]);
  });

  it("rejects mismatched or out-of-range labels", () => {
    assert.throws(() => accuracy(new Float32Array(6), [0, 1, 2], 3), RangeError);
    assert.throws(() => accuracy(new Float32Array(6), [0, 3], 3), /outside/);
    assert.throws(() => accuracy(new Float32Array(5), [0, 1], 3), /multiple/);
  });
});

describe("negative log-likelihood", () => {
  it("equals −log softmax on a worked row", () => {
    // logits (1, 2, 3): log Σ e^z = 3 + log(1 + e^-1 + e^-2) = 3.4076059644…
    const lse = 3 + Math.log(1 + Math.exp(-1) + Math.exp(-2));
    close(lse, 3.4076059644, 1e-9);
    const logits = Float32Array.from([1, 2, 3, 1, 2, 3]);
    close(meanNll(logits, [0, 0], 3), lse - 1, 1e-9); // 2.4076…
    close(meanNll(logits, [2, 2], 3), lse - 3, 1e-9); // 0.4076…
    close(meanNll(logits, [0, 2], 3), (lse - 1 + lse - 3) / 2, 1e-9);
    const p = softmaxRows(logits, 3);
    close(p[0]!, Math.exp(1 - lse), 1e-12);
    close(p[0]! + p[1]! + p[2]!, 1, 1e-12);
  });

  it("stays finite for ±1e4 logits", () => {
    const logits = Float32Array.from([1e4, -1e4, 0, -1e4, 1e4, 1e4]);
    const nll = meanNll(logits, [1, 0], 3);
    assert.ok(Number.isFinite(nll));
    // Row 1: −log p = 2e4; row 2: two tied maxima → −log p = 2e4 + log 2.
    close(nll, (2e4 + 2e4 + Math.log(2)) / 2, 1e-6);
    close(meanNll(logits, [0, 1], 3), Math.log(2) / 2, 1e-9);
    for (const p of softmaxRows(logits, 3)) assert.ok(Number.isFinite(p));
    assert.ok(Number.isFinite(expectedCalibrationError(logits, [1, 0], 3)));
  });
});

describe("expected calibration error", () => {
  // k = 4: logits (ln 12, 0, 0, 0) give confidence 12/15 = 0.8; (ln 2, 0, 0, 0) give 2/5 = 0.4.
  const hi = Math.log(12), lo = Math.log(2);
  const logits = Float32Array.from([
    hi, 0, 0, 0, // conf 0.8, pred 0, label 0: right
    hi, 0, 0, 0, // conf 0.8, pred 0, label 1: wrong
    0, hi, 0, 0, // conf 0.8, pred 1, label 1: right
    lo, 0, 0, 0, // conf 0.4, pred 0, label 0: right
    0, 0, lo, 0, // conf 0.4, pred 2, label 3: wrong
  ]);
  const labels = [0, 1, 1, 0, 3];

  it("two bins by hand", () => {
    // bin (0.5, 1]: 3 rows, acc 2/3, conf 0.8 → 3/5 · 0.1333… = 0.08
    // bin (0, 0.5]: 2 rows, acc 1/2, conf 0.4 → 2/5 · 0.1     = 0.04
    close(expectedCalibrationError(logits, labels, 4, 2), 0.12, 1e-6);
  });

  it("15 bins separate the same two groups", () => {
    close(expectedCalibrationError(logits, labels, 4), 0.12, 1e-6);
  });

  it("one bin is |accuracy − mean confidence|", () => {
    close(expectedCalibrationError(logits, labels, 4, 1), Math.abs(3 / 5 - (0.8 * 3 + 0.4 * 2) / 5), 1e-6);
  });
});

describe("agreement", () => {
  it("counts matching arg-max rows", () => {
    const a = oneHotLogits([0, 1, 2, 1], 3);
    const b = oneHotLogits([0, 2, 2, 1], 3);
    assert.equal(topOneAgreement(a, b, 3), 0.75);
    assert.equal(topOneAgreement(a, a, 3), 1);
    assert.throws(() => topOneAgreement(a, oneHotLogits([0], 3), 3), RangeError);
  });
});

describe("mean and std over seeds", () => {
  it("sample standard deviation", () => {
    const s = meanStd([2, 4, 4, 4, 5, 5, 7, 9]);
    assert.equal(s.mean, 5);
    close(s.std, Math.sqrt(32 / 7), 1e-12);
    assert.deepEqual(s.values, [2, 4, 4, 4, 5, 5, 7, 9]);
  });

  it("one value has std 0", () => {
    assert.deepEqual(meanStd([0.25]), { mean: 0.25, std: 0, values: [0.25] });
  });

  it("summarize leaves null agreements out", () => {
    const m = (accuracy: number, agreement: number | null): ModelMetrics => ({
      accuracy, errors: 10, total: 100, macroF1: 0.9, nll: 0.3, ece: 0.02, agreement, precision: null, recall: null, f1: null, rocAuc: null,
      params: 1000, onnxBytes: 5000, onnxGzipBytes: 4000, latencyP50Ms: 0.1, latencyP95Ms: 0.2, throughput: 1e5,
    });
    const teacher = summarize([m(0.9, null), m(0.92, null)]);
    assert.equal(teacher.agreement, undefined);
    assert.ok(!("agreement" in teacher));
    close(teacher.accuracy.mean, 0.91, 1e-12);
    close(teacher.accuracy.std, Math.sqrt(2 * 0.01 ** 2), 1e-12);
    assert.equal(teacher.params.std, 0);
    const student = summarize([m(0.9, 0.95), m(0.9, null), m(0.9, 0.97)]);
    close(student.agreement!.mean, 0.96, 1e-12);
    assert.deepEqual(student.agreement!.values, [0.95, 0.97]);
    assert.equal(Object.keys(student).length, 13);
  });
});

describe("two-class metrics", () => {
  it("precision, recall and F1 of the positive class by hand", () => {
    // Rows as [z0, z1]; predicted positive when z1 > z0. labels: 1 1 1 0 0 0
    const logits = Float32Array.from([0, 2, 0, 1, 3, 0, 0, 4, 1, 0, 2, 0]);
    const m = binaryMetrics(logits, [1, 1, 1, 0, 0, 0]);
    // predictions 1 1 0 1 0 0 → TP 2, FN 1, FP 1
    assert.equal(m.precision, 2 / 3);
    assert.equal(m.recall, 2 / 3);
    assert.equal(m.f1, 2 / 3);
    // Scores z1 − z0: positives 2, 1, −3; negatives 4, −1, −2 → pairs won: 2>−1,2>−2,1>−1,1>−2 = 4 of 9.
    assert.equal(m.rocAuc, 4 / 9);
  });

  it("ROC-AUC equals the pairwise count, ties counted half, on 400 random scores", () => {
    const rng = new Rng(3, "auc");
    const scores = Array.from({ length: 400 }, () => Math.round(rng.next() * 20) / 4); // many ties
    const positive = scores.map((s) => rng.next() < 0.3 + s / 10);
    let wins = 0, pairs = 0;
    for (let i = 0; i < 400; i++) for (let j = 0; j < 400; j++) {
      if (!positive[i] || positive[j]) continue;
      pairs++;
      wins += scores[i]! > scores[j]! ? 1 : scores[i] === scores[j] ? 0.5 : 0;
    }
    assert.ok(Math.abs(rocAuc(scores, positive)! - wins / pairs) < 1e-12);
    assert.equal(rocAuc([1, 2], [true, true]), null, "no negatives: undefined");
  });

  it("per-class F1 from a confusion matrix averages to macro-F1", () => {
    const logits = Float32Array.from([3, 0, 0, 0, 3, 0, 0, 0, 3, 3, 0, 0, 0, 0, 3, 0, 3, 0]);
    const labels = [0, 1, 2, 1, 2, 2];
    const pred = predictions(logits, 3);
    const confusion = [[0, 0, 0], [0, 0, 0], [0, 0, 0]];
    pred.forEach((p, i) => confusion[labels[i]!]![p]!++);
    const f1 = perClassF1(confusion);
    assert.deepEqual(f1, [2 / 3, 0.5, 0.8]);
    assert.ok(Math.abs(f1.reduce((a, b) => a! + b!, 0)! / 3 - macroF1(logits, labels, 3)) < 1e-12);
    assert.deepEqual(perClassF1([[1, 0], [0, 0]]), [1, null]);
  });
});

describe("teacher report", () => {
  it("scores, bins confidence and warns only when the teacher does not beat the baseline", () => {
    // Rows [z0, z1]: confidences softmax(2,0)=0.881, softmax(0,4)=0.982, softmax(0,0)=0.5; labels 0 1 1.
    const r = teacherReport(Float32Array.from([2, 0, 0, 4, 0, 0]), [0, 1, 1], 2);
    assert.equal(r.samples, 3);
    assert.ok(Math.abs(r.accuracy - 2 / 3) < 1e-12, "the tie predicts class 0");
    assert.deepEqual(r.confidenceHistogram, [0, 0, 0, 0, 1, 0, 0, 0, 1, 1]);
    assert.ok(Math.abs(r.chanceAccuracy - 2 / 3) < 1e-12, "always answering class 1, the most common");
    assert.equal(withBaseline(r, 0.6).warning, undefined);
    assert.match(withBaseline(r, r.accuracy).warning!, /^weak teacher: validation accuracy 66\.67 % is not above the label-only baseline's 66\.67 %/);
    assert.equal(withBaseline(withBaseline(r, 0.9), 0.1).warning, undefined, "a re-judged report drops the old warning");
  });

  it("stops an imported teacher at or below chance (the most common class's share), naming what is likely mis-wired", () => {
    // Labels 1 1 1 0: chance is 3/4; a teacher answering 0 everywhere scores 1/4.
    const r = teacherReport(Float32Array.from([1, 0, 1, 0, 1, 0, 1, 0]), [1, 1, 1, 0], 2);
    assert.equal(r.chanceAccuracy, 0.75);
    assert.throws(() => refuseTeacherAtChance(r, { softTargets: "t.npy" }),
      { message: "t.npy: teacher: accuracy 25.00 % on 4 validation samples is at or below chance (75.00 %, always answering the most common class); the file is most likely mis-read: check that row i is training sample i (or match rows with teacher.id), and teacher.outputs (logits or probabilities); set teacher.allowChanceAccuracy: true to distill from it anyway" });
    assert.throws(() => refuseTeacherAtChance({ ...r, accuracy: 0.75 }, { onnx: "t.onnx" }), /t\.onnx: teacher: accuracy 75\.00 % .* at or below chance .*teacher\.preprocessing/);
    refuseTeacherAtChance({ ...r, accuracy: 0.76 }, { onnx: "t.onnx" });
    refuseTeacherAtChance(r, { softTargets: "t.npy", allowChanceAccuracy: true });
  });
});
