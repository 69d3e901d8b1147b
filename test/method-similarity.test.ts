// Similarity-preserving KD, added as one method file + one registry line + this test: the config's
// `kd: {method: similarity, …}` reaches the method through the registry, and the trained loss equals
// Tung & Mori's formula computed here in float64.

import { test } from "node:test";
import assert from "node:assert/strict";
import { resolveKd } from "../src/config/kd.js";
import { kdSchema } from "../src/config/schema.js";
import { similarityReference } from "./helpers/kd-reference.js";
import { evaluateTerms, tensor } from "./helpers/term-eval.js";

test("kd: {method: similarity} trains on cross-entropy + ‖G_t − G_s‖²_F / N² between the named taps", async () => {
  const kd = resolveKd(kdSchema.parse({ method: "similarity", teacher: "fc1", student: "hidden", weight: 3000 }), true);
  assert.deepEqual(kd.terms.map((t) => t.method), ["cross-entropy", "similarity"]);
  const student = [[0.5, -1, 2], [1, 1, 0], [-0.3, 0.2, 0.9]];
  const teacher = [[1, 0, 2, 0.5], [0.2, 1.5, -1, 0], [0, 0.3, 1, 2]];
  const got = await evaluateTerms(kd.terms, {
    logits: tensor([[1, 0], [0, 1], [0.5, 0.5]]),
    labels: [0, 1, 1],
    studentTaps: { hidden: tensor(student) },
    teacherTaps: { fc1: tensor(teacher) },
  });
  const want = similarityReference(student, teacher);
  assert.ok(Math.abs(got["similarity.loss_sp"]! - want) < 1e-6, `${got["similarity.loss_sp"]} vs ${want}`);
  assert.ok(Math.abs(got["loss"]! - (got["cross-entropy.loss_ce"]! + 3000 * want)) < 1e-3);
  assert.throws(() => kdSchema.parse({ method: "similarity", teacher: "fc1" }), /student|expected/);
});
