// Loss functions as graph builders. Every loss is a batch mean, returns a scalar Value, and is
// differentiated by the engine's autodiff like any other part of the graph.

import type { Value } from "../engine/graph.js";
import * as F from "../engine/functional.js";

function batchMean(perSample: Value): Value {
  return F.reduceMean(perSample, [0]);
}

/**
 * Cross-entropy with integer labels (int64 [N]) on logits [N, K], optionally with label smoothing
 * ε (Szegedy et al. 2016, §7): the target is (1−ε)·onehot + ε/K, as torch's label_smoothing.
 *
 * A label outside 0..K−1 (a sample without one, in a batch mixing unlabelled data) has an all-zero
 * one-hot row and adds nothing; `labeledShare`, the share of rows that do carry a label, turns the
 * batch mean into the mean over those rows.
 */
export function crossEntropy(logits: Value, labels: Value, opts: { labelSmoothing?: number; labeledShare?: number } = {}): Value {
  const g = logits.graph;
  const k = logits.shape[1];
  if (typeof k !== "number") throw g.shapeError("cross-entropy needs a static class count");
  const eps = opts.labelSmoothing ?? 0;
  let target = F.oneHot(labels, k);
  // ε/K only on rows that have a label (their one-hot sums to 1, an unlabelled row's to 0).
  if (eps > 0) target = F.add(F.scale(target, 1 - eps), F.mul(F.reduceSum(target, [1], true), g.constFloat([eps / k])));
  const ce = softTargetCrossEntropy(logits, target);
  const share = opts.labeledShare ?? 1;
  return share === 1 ? ce : F.scale(ce, 1 / share);
}

/** −Σ target·log softmax(logits), batch mean; `target` is a probability distribution per row. */
export function softTargetCrossEntropy(logits: Value, target: Value): Value {
  return F.neg(batchMean(F.reduceSum(F.mul(target, F.logSoftmax(logits, -1)), [1])));
}

/**
 * KL(p ‖ q) with p = softmax(targetLogits/T), q = softmax(logits/T), summed over classes and
 * averaged over the batch (torch's reduction="batchmean"). Written with log-probabilities only,
 * so very confident logits give 0·(−large) = 0, never NaN.
 */
export function klDivergence(logits: Value, targetLogits: Value, temperature = 1): Value {
  const logQ = F.logSoftmax(F.scale(logits, 1 / temperature), -1);
  const logP = F.logSoftmax(F.scale(targetLogits, 1 / temperature), -1);
  return batchMean(F.reduceSum(F.mul(F.exp(logP), F.sub(logP, logQ)), [1]));
}

export interface KdTerms {
  /** (1−α)·CE(labels, student) + α·T²·KL(softmax(t/T) ‖ softmax(s/T)). */
  loss: Value;
  ce: Value;
  kd: Value;
}

/**
 * The distillation loss of Hinton, Vinyals & Dean (2015), "Distilling the Knowledge in a Neural
 * Network", §2: a weighted sum of the hard-label cross-entropy and the temperature-softened KL to
 * the teacher; the T² factor keeps the soft term's gradient scale independent of T (§2.1).
 */
export function kdLossGraph(studentLogits: Value, teacherLogits: Value, labels: Value | undefined, temperature: number, alpha: number, labeledShare = 1): KdTerms {
  const g = studentLogits.graph;
  const kd = F.scale(klDivergence(studentLogits, teacherLogits, temperature), temperature * temperature);
  if (!labels || alpha === 1) {
    const zero = g.constFloat([0]);
    return { loss: alpha === 1 ? kd : F.scale(kd, alpha), ce: zero, kd };
  }
  const ce = crossEntropy(studentLogits, labels, { labeledShare });
  if (alpha === 0) return { loss: ce, ce, kd };
  return { loss: F.add(F.scale(ce, 1 - alpha), F.scale(kd, alpha)), ce, kd };
}

/** Mean squared error, averaged over every element (torch's MSELoss default). */
export function mse(a: Value, b: Value): Value {
  const d = F.sub(a, b);
  return F.reduceMean(F.mul(d, d), a.shape.map((_, i) => i));
}

/** 1 − cosine similarity of matching rows of [N, D] tensors, batch mean. */
export function cosineDistance(a: Value, b: Value, eps = 1e-8): Value {
  const g = a.graph;
  const dot = F.reduceSum(F.mul(a, b), [1]);
  const na = F.sqrt(F.add(F.reduceSum(F.mul(a, a), [1]), g.constFloat([eps])));
  const nb = F.sqrt(F.add(F.reduceSum(F.mul(b, b), [1]), g.constFloat([eps])));
  return batchMean(F.sub(g.constFloat([1]), F.div(dot, F.mul(na, nb))));
}
