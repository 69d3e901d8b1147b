// What a bisecting `distill shrink` must have done, whatever its trials measured: the largest rung
// tried first; when it fails nothing else is trained and nothing is chosen; otherwise the chosen
// rung is the smallest trained one that passes, the rung just below it was trained and failed,
// and no more than log2(rungs) + 1 rungs were trained.

import assert from "node:assert/strict";
import type { ShrinkResults } from "../../src/tune/shrink.js";

export function assertBisection(s: ShrinkResults): void {
  const n = s.ladder.length;
  const trained = s.ladder.map((l, i) => ({ i, id: l.id, rung: s.rungs.find((g) => g.id === l.id) })).filter((t) => t.rung);
  assert.deepEqual(trained.map((t) => t.id), s.ladder.filter((l) => l.trained).map((l) => l.id), "ladder.trained names the trained rungs");
  const largest = trained.find((t) => t.i === n - 1);
  assert.ok(largest, "the largest rung is tried first");
  assert.ok(trained.length <= Math.ceil(Math.log2(n)) + 1, `${trained.length} rungs trained of ${n}`);
  if (!largest.rung!.passes) {
    assert.deepEqual(trained.map((t) => t.id), [largest.id], "the largest fails: nothing smaller is tried");
    assert.equal(s.chosen, undefined);
    return;
  }
  const smallestPassing = trained.find((t) => t.rung!.passes)!;
  assert.equal(s.chosen?.id, smallestPassing.id, "the chosen rung is the smallest trained rung that passes");
  if (smallestPassing.i > 0) {
    const below = trained.find((t) => t.i === smallestPassing.i - 1);
    assert.equal(below?.rung!.passes, false, `the rung below ${smallestPassing.id} was trained and failed`);
  }
}
