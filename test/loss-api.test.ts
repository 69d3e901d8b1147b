// The public dkdLoss, rkdLoss, attentionLoss and similarityLoss: against small cases worked by hand
// and the float64 formulas of test/helpers/kd-reference.ts, their properties (zero when the student
// equals the teacher, RKD's scale invariance), their gradients against finite differences of the
// float64 formulas, and the engine's own finite-difference check through each graph.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { attentionLoss, dkdLoss, kdLoss, rkdLoss, similarityLoss, type NestedArray } from "../src/index.js";
import { attentionTransfer } from "../src/distill/methods/attention.js";
import { dkdTerms } from "../src/distill/methods/dkd.js";
import { rkdTerms } from "../src/distill/methods/rkd.js";
import { similarityPreserving } from "../src/distill/methods/similarity.js";
import * as F from "../src/engine/functional.js";
import { Rng } from "../src/util/random.js";
import { gradCheck } from "./helpers/gradcheck.js";
import { attentionReference, dkdReference, rkdReference, similarityReference, type Matrix } from "./helpers/kd-reference.js";

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

function random(shape: number[], seed: number): NestedArray {
  const rng = new Rng(seed, shape.join("x"));
  const make = (d: number): NestedArray => (d === shape.length - 1 ? Array.from({ length: shape[d]! }, () => rng.uniform(-2, 2)) : (Array.from({ length: shape[d]! }, () => make(d + 1)) as NestedArray));
  return make(0);
}

/** Central differences of a float64 loss at every coordinate of `x` (a deep copy is perturbed). */
function numericGradient(x: NestedArray, loss: (x: NestedArray) => number, h = 1e-5): number[] {
  const copy = JSON.parse(JSON.stringify(x)) as NestedArray;
  const flat: { arr: number[]; i: number }[] = [];
  const walk = (v: NestedArray) => (typeof v[0] === "number" ? (v as number[]).forEach((_, i) => flat.push({ arr: v as number[], i })) : (v as NestedArray[]).forEach(walk));
  walk(copy);
  return flat.map(({ arr, i }) => {
    const orig = arr[i]!;
    arr[i] = orig + h;
    const plus = loss(copy);
    arr[i] = orig - h;
    const minus = loss(copy);
    arr[i] = orig;
    return (plus - minus) / (2 * h);
  });
}

function assertGradient(got: NestedArray, want: number[], what: string): void {
  const flat = (got as unknown[]).flat(Infinity) as number[];
  assert.equal(flat.length, want.length);
  flat.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= 1e-3 + 2e-3 * Math.abs(want[i]!), `${what}[${i}]: ${g} vs ${want[i]}`));
}

describe("dkdLoss", () => {
  const s = random([4, 5], 1) as Matrix, t = random([4, 5], 2) as Matrix, labels = [0, 3, 2, 4];
  it("matches the float64 formula and its gradient", async () => {
    const got = await dkdLoss({ student: s, teacher: t, labels, alpha: 1, beta: 8, temperature: 4 });
    close(got.loss, dkdReference(s, t, labels, 1, 8, 4).loss, 1e-4, "loss"); // float32 and the −1000 mask
    assertGradient(got.gradStudent, numericGradient(s, (x) => dkdReference(x as Matrix, t, labels, 1, 8, 4).loss), "grad");
  });
  it("with two classes is logit KD's soft term (the non-target part is empty)", async () => {
    const s2 = [[1, -1], [0.5, 2]], t2 = [[3, 0], [-1, 1]];
    const dkd = await dkdLoss({ student: s2, teacher: t2, labels: [0, 1], alpha: 1, beta: 5, temperature: 2 });
    const kd = await kdLoss({ student: s2, teacher: t2, labels: [0, 1], temperature: 2, alpha: 1 });
    close(dkd.loss, kd.loss, 1e-5, "2-class DKD = KD");
  });
  it("is zero when the student equals the teacher", async () => {
    const r = await dkdLoss({ student: t, teacher: t, labels, alpha: 1, beta: 8, temperature: 4 });
    assert.ok(Math.abs(r.loss) < 1e-5 && r.gradStudent.flat().every((g) => Math.abs(g) < 1e-5), `loss ${r.loss}`);
  });
  it("engine gradient check", () =>
    gradCheck("dkd", (g) => {
      const sv = g.input("s", [4, 5]), tv = g.input("t", [4, 5]), lv = g.input("l", [4], "int64");
      const { tckd, nckd } = dkdTerms(sv, tv, lv, 3);
      return { inputs: [{ value: sv, data: Float32Array.from(s.flat()) }, { value: tv, data: Float32Array.from(t.flat()), wrt: false }, { value: lv, data: BigInt64Array.from(labels.map(BigInt)) }], output: F.add(tckd, F.scale(nckd, 2)) };
    }));
  it("rejects bad input naming the field", async () => {
    await assert.rejects(dkdLoss({ student: s, teacher: t, labels: [0, 9, 1, 1], alpha: 1, beta: 8, temperature: 4 }), /labels\[1\]/);
    await assert.rejects(dkdLoss({ student: s, teacher: t, labels, alpha: -1, beta: 8, temperature: 4 }), /alpha/);
  });
});

describe("rkdLoss", () => {
  const s = random([5, 3], 3) as Matrix, t = random([5, 4], 4) as Matrix;
  it("matches the float64 formula and its gradient", async () => {
    const got = await rkdLoss({ student: s, teacher: t, distanceWeight: 25, angleWeight: 50 });
    const ref = (x: Matrix) => {
      const r = rkdReference(x, t);
      return 25 * r.distance + 50 * r.angle;
    };
    close(got.loss, ref(s), 1e-4, "loss");
    assertGradient(got.gradStudent, numericGradient(s, (x) => ref(x as Matrix)), "grad");
  });
  it("is zero for the same embeddings, and invariant to scaling either side", async () => {
    const same = await rkdLoss({ student: t, teacher: t, distanceWeight: 25, angleWeight: 50 });
    assert.ok(Math.abs(same.loss) < 1e-5, `loss ${same.loss}`);
    const base = await rkdLoss({ student: s, teacher: t, distanceWeight: 1, angleWeight: 1 });
    const scaled = await rkdLoss({ student: s.map((r) => r.map((v) => 7 * v)), teacher: t.map((r) => r.map((v) => 0.1 * v)), distanceWeight: 1, angleWeight: 1 });
    close(scaled.loss, base.loss, 1e-4, "scaled");
  });
  it("engine gradient check", () =>
    gradCheck("rkd", (g) => {
      const sv = g.input("s", [5, 3]), tv = g.input("t", [5, 4]);
      const { distance, angle } = rkdTerms(sv, tv);
      return { inputs: [{ value: sv, data: Float32Array.from(s.flat()) }, { value: tv, data: Float32Array.from(t.flat()), wrt: false }], output: F.add(distance, angle) };
    }));
});

describe("attentionLoss", () => {
  it("a case worked by hand: maps [1, 0] and [0, 1] differ by 1 per position", async () => {
    const r = await attentionLoss({ student: [[[[1, 0]]]], teacher: [[[[0, 1]]]], p: 2 });
    close(r.loss, 1, 1e-6, "loss");
  });
  const s = random([2, 3, 3, 4], 5) as number[][][][], t = random([2, 5, 3, 4], 6) as number[][][][];
  it("matches the float64 formula and its gradient; zero for equal features", async () => {
    const got = await attentionLoss({ student: s, teacher: t, p: 2 });
    close(got.loss, attentionReference(s, t, 2), 1e-5, "loss");
    assertGradient(got.gradStudent, numericGradient(s, (x) => attentionReference(x as number[][][][], t, 2)), "grad");
    assert.ok((await attentionLoss({ student: t, teacher: t, p: 2 })).loss < 1e-7);
  });
  it("engine gradient check", () =>
    gradCheck("attention", (g) => {
      const sv = g.input("s", [2, 3, 3, 4]), tv = g.input("t", [2, 5, 3, 4]);
      return { inputs: [{ value: sv, data: Float32Array.from((s as unknown as number[][]).flat(3)) }, { value: tv, data: Float32Array.from((t as unknown as number[][]).flat(3)), wrt: false }], output: attentionTransfer(sv, tv, 2) };
    }));
});

describe("similarityLoss", () => {
  it("a case worked by hand: orthogonal vs parallel pairs give 1 − √2/2", async () => {
    const r = await similarityLoss({ student: [[1, 0], [0, 1]], teacher: [[1, 0], [1, 0]] });
    close(r.loss, 1 - Math.SQRT2 / 2, 1e-6, "loss");
  });
  const s = random([4, 2, 3], 7), t = random([4, 6], 8) as Matrix;
  it("flattens per sample, matches the float64 formula and its gradient; zero for equal features", async () => {
    const got = await similarityLoss({ student: s, teacher: t });
    const ref = (x: NestedArray) => similarityReference((x as number[][][]).map((r) => r.flat()), t);
    close(got.loss, ref(s), 1e-5, "loss");
    assertGradient(got.gradStudent, numericGradient(s, ref), "grad");
    assert.ok((await similarityLoss({ student: t, teacher: t })).loss < 1e-7);
  });
  it("engine gradient check", () =>
    gradCheck("similarity", (g) => {
      const sv = g.input("s", [4, 2, 3]), tv = g.input("t", [4, 6]);
      return { inputs: [{ value: sv, data: Float32Array.from((s as number[][][]).flat(2)) }, { value: tv, data: Float32Array.from(t.flat()), wrt: false }], output: similarityPreserving(sv, tv) };
    }));
  it("rejects ragged input naming the element", async () => {
    await assert.rejects(similarityLoss({ student: [[1, 2], [3]], teacher: [[1], [2]] }), /student\[1\]/);
  });
});
