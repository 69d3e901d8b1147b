import { test } from "node:test";
import assert from "node:assert/strict";
import { comparePaired } from "../src/tune/compare.js";

// Reference p-values: the two-sided tail of Student's t, integrated numerically (Simpson, 2·10⁶
// panels) in Python from the density alone, independent of the library used here.
test("paired t-test of the finals: t and p against reference values", () => {
  const fiveSeeds = comparePaired([1, 2, 3, 4, 5], [0, 0, 0, 0, 0]);
  assert.ok(Math.abs(fiveSeeds.t! - 4.242640687119285) < 1e-12);
  assert.ok(Math.abs(fiveSeeds.pValue! - 0.013235599563667) < 1e-9);
  assert.equal(fiveSeeds.verdict, "config better");

  // Fashion-MNIST-sized numbers: a winner 25 errors worse on average, but one seed carries it.
  const worse = comparePaired([846, 864, 850], [835, 810, 840]);
  assert.deepEqual(worse.differences, [11, 54, 10]);
  assert.ok(Math.abs(worse.std - 25.11971337416094) < 1e-9);
  assert.ok(Math.abs(worse.pValue! - 0.22688628681410083) < 1e-9);
  assert.equal(worse.verdict, "no significant difference");

  const better = comparePaired([800, 812, 790], [810, 815, 805]);
  assert.ok(Math.abs(better.t! - -2.6819135986192237) < 1e-9);
  assert.ok(Math.abs(better.pValue! - 0.11544636695079102) < 1e-9);
  assert.equal(comparePaired([800, 812, 790, 801, 795, 803], [810, 815, 805, 812, 804, 811]).verdict, "winner better");
});

test("paired t-test edge cases: one seed, no spread", () => {
  const one = comparePaired([800], [810]);
  assert.equal(one.t, null);
  assert.equal(one.verdict, "one seed: not tested");
  assert.equal(comparePaired([800, 805], [810, 815]).verdict, "winner better", "the same gap on every seed");
  assert.equal(comparePaired([800, 805], [800, 805]).verdict, "no significant difference");
  assert.throws(() => comparePaired([1, 2], [1]), /equal, non-empty/);
});
