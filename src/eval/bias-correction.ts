// A student that never saw a class during distillation (Hinton, Vinyals & Dean 2015 §3: MNIST with
// every 3 left out of the transfer set) still learns much about it from the teacher's soft targets
// on other digits; what it lacks is the right prior. Raising that class's output bias fixes most of
// it — the paper raised it by 3.5, chosen by hand. Here the shift is also estimated without labels:
// the bias at which the student predicts the class as often as the teacher does on the same
// unlabelled inputs. The corrected model is the student's graph with one Add at its output.

import { node, readModelProto, setMetadata, tensor, writeModelProto, DT } from "../compress/onnx-model.js";
import { predictions } from "./metrics.js";

/** The share of rows whose top-1 class is `c`. */
function predictedShare(logits: Float32Array, k: number, c: number, shift = 0): number {
  const n = logits.length / k;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    let best = 0, bestValue = -Infinity;
    for (let j = 0; j < k; j++) {
      const v = logits[i * k + j]! + (j === c ? shift : 0);
      if (v > bestValue) (best = j), (bestValue = v);
    }
    if (best === c) hits++;
  }
  return hits / n;
}

/**
 * Per omitted class c, the logit shift b_c at which the student's predicted share of c on these
 * inputs equals the teacher's (bisection: the share grows with b_c). Other classes get 0. Classes
 * are fitted one after another, each with the shifts found so far applied.
 */
export function estimateBiasShift(studentLogits: Float32Array, teacherLogits: Float32Array, k: number, classes: readonly number[]): Float32Array {
  if (studentLogits.length !== teacherLogits.length) throw new RangeError("student and teacher logits differ in size");
  const shift = new Float32Array(k);
  const teacherTop = predictions(teacherLogits, k);
  const shifted = studentLogits.slice();
  for (const c of classes) {
    const target = teacherTop.reduce((n, p) => n + (p === c ? 1 : 0), 0) / teacherTop.length;
    let lo = -50, hi = 50;
    for (let step = 0; step < 60; step++) {
      const mid = (lo + hi) / 2;
      if (predictedShare(shifted, k, c, mid) < target) lo = mid;
      else hi = mid;
    }
    // The smallest shift that reaches the teacher's share (hi), rounded for a readable record.
    shift[c] = Math.round(hi * 1000) / 1000;
    for (let i = c; i < shifted.length; i += k) shifted[i]! += shift[c]!;
  }
  return shift;
}

/** `bytes` with `shift` added to its first output (the logits), the shift recorded in the metadata. */
export function withLogitShift(bytes: Uint8Array, shift: Float32Array, where: string): Uint8Array {
  const m = readModelProto(bytes, where);
  const g = m.graph!;
  const out = g.output![0]!.name!;
  const raw = `${out}__before_bias_shift`;
  for (const n of g.node ?? []) {
    n.output = (n.output ?? []).map((o) => (o === out ? raw : o));
    n.input = (n.input ?? []).map((i) => (i === out ? raw : i));
  }
  const biasName = `${out}__bias_shift`;
  g.initializer = [...(g.initializer ?? []), tensor(biasName, DT.FLOAT, [shift.length], shift)];
  g.node = [...(g.node ?? []), node("Add", [raw, biasName], [out])];
  setMetadata(m, { "distill.logit_shift": JSON.stringify(Array.from(shift)) });
  return writeModelProto(m);
}
