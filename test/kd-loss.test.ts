// The public kdLoss against the formula of Hinton et al. (2015) computed in float64 here.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { kdLoss } from "../src/index.js";

/** log softmax(row / t), stable: z − max − log Σ exp(z − max), finite for any finite logits. */
function logSoftmax(row: number[], t: number): number[] {
  const z = row.map((x) => x / t);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((a, x) => a + Math.exp(x - m), 0));
  return z.map((x) => x - lse);
}

function reference(s: number[][], t: number[][], labels: number[], T: number, alpha: number) {
  const n = s.length;
  let ce = 0, kl = 0;
  const grad = s.map(() => [] as number[]);
  s.forEach((row, i) => {
    const lp1 = logSoftmax(row, 1), lps = logSoftmax(row, T), lpt = logSoftmax(t[i]!, T);
    ce += -lp1[labels[i]!]!;
    // p·(log p − log q) with log-probabilities only: p = 0 contributes 0, never 0·∞.
    lpt.forEach((lp, k) => (kl += Math.exp(lp) * (lp - lps[k]!)));
    grad[i] = row.map((_, k) => ((1 - alpha) * (Math.exp(lp1[k]!) - (k === labels[i] ? 1 : 0)) + alpha * T * (Math.exp(lps[k]!) - Math.exp(lpt[k]!))) / n);
  });
  return { loss: (1 - alpha) * (ce / n) + alpha * T * T * (kl / n), grad };
}

const student = [
  [1.0, 2.0, 0.5, -1.0],
  [0.2, -0.3, 3.0, 0.0],
  [-2.0, 0.0, 1.0, 4.0],
];
const teacher = [
  [3.0, 1.0, 0.0, -2.0],
  [0.0, 0.0, 5.0, 1.0],
  [-1.0, -1.0, 2.0, 2.5],
];
const labels = [0, 2, 3];

function close(a: number, b: number, tol: number, what: string) {
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
}

describe("kdLoss", () => {
  for (const [T, alpha] of [
    [4, 0.9],
    [1, 0.5],
    [2, 0],
    [20, 1],
  ] as const) {
    it(`matches the formula at T=${T}, α=${alpha}`, async () => {
      const got = await kdLoss({ student, teacher, labels, temperature: T, alpha });
      const want = reference(student, teacher, labels, T, alpha);
      close(got.loss, want.loss, 1e-5, "loss");
      got.gradStudent.forEach((row, i) => row.forEach((g, k) => close(g, want.grad[i]![k]!, 1e-5, `grad[${i}][${k}]`)));
    });
  }
  it("α=0 is plain cross-entropy and ignores the teacher", async () => {
    const a = await kdLoss({ student, teacher, labels, temperature: 3, alpha: 0 });
    const b = await kdLoss({ student, teacher: teacher.map((r) => r.map((x) => -x)), labels, temperature: 3, alpha: 0 });
    assert.equal(a.loss, b.loss);
  });
  it("is zero in the KD term when student equals teacher (α=1)", async () => {
    const r = await kdLoss({ student: teacher, teacher, labels, temperature: 5, alpha: 1 });
    assert.ok(Math.abs(r.loss) < 1e-5, `loss ${r.loss}`);
    r.gradStudent.flat().forEach((g) => assert.ok(Math.abs(g) < 1e-6));
  });
  it("stays finite for very confident logits", async () => {
    const s = [
      [1e4, -1e4, 0, 0],
      [-5e3, 5e3, 0, 0],
    ];
    const t = [
      [-1e4, 1e4, 0, 0],
      [3e4, 0, -3e4, 0],
    ];
    for (const [T, alpha] of [
      [1, 0.5],
      [20, 0.9],
    ] as const) {
      const r = await kdLoss({ student: s, teacher: t, labels: [1, 0], temperature: T, alpha });
      assert.ok(Number.isFinite(r.loss), `loss ${r.loss}`);
      r.gradStudent.flat().forEach((g) => assert.ok(Number.isFinite(g)));
      const want = reference(s, t, [1, 0], T, alpha);
      // The reference must itself be finite, or |x − ∞| ≤ tol·∞ would pass for any x.
      assert.ok(Number.isFinite(want.loss) && want.loss > 1e3, `reference loss ${want.loss}`);
      close(r.loss, want.loss, 1e-4, "confident loss");
      r.gradStudent.forEach((row, i) => row.forEach((g, k) => close(g, want.grad[i]![k]!, 1e-4, `confident grad[${i}][${k}]`)));
    }
  });
  it("rejects bad input with a message naming the field", async () => {
    await assert.rejects(kdLoss({ student, teacher, labels: [0, 9, 1], temperature: 2, alpha: 0.5 }), /labels\[1\]/);
    await assert.rejects(kdLoss({ student, teacher: teacher.slice(1), labels, temperature: 2, alpha: 0.5 }), /teacher/);
    await assert.rejects(kdLoss({ student, teacher, labels, temperature: 0, alpha: 0.5 }), /temperature/);
  });
});
