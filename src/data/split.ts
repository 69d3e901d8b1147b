// Index subsets of a dataset: seeded permutations, the train/validation split, limits.
// Everything is a function of its arguments (no hidden state), so a rerun gets the same split.

import { UserError } from "../errors.js";
import { Rng } from "../util/random.js";

function checkCount(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what} must be a non-negative integer, got ${n}`);
}

/** 0, 1, …, count − 1. */
export function allIndices(count: number): Int32Array {
  checkCount("count", count);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = i;
  return out;
}

/** A permutation of 0..n−1 determined by `seed` alone. */
export function seededPermutation(n: number, seed: number): Int32Array {
  const out = allIndices(n);
  new Rng(seed, "permutation").shuffle(out);
  return out;
}

/**
 * Splits 0..count−1 into disjoint train and validation index sets (together: all of them).
 * Both keep the seeded permutation's order, so firstN(train, n) is a seeded random subset and
 * nested: a smaller limit takes a prefix of a larger one.
 */
export function splitTrainValidation(count: number, validationSize: number, seed: number): { train: Int32Array; validation: Int32Array } {
  checkCount("count", count);
  if (!Number.isInteger(validationSize) || validationSize < 0 || validationSize > count)
    throw new UserError("validation size", `${validationSize} must be an integer from 0 to the ${count} training examples`);
  const perm = seededPermutation(count, seed);
  return { validation: perm.slice(0, validationSize), train: perm.slice(validationSize) };
}

/** The first `n` indices (all of them when n is undefined or larger). A view, not a copy. */
export function firstN(indices: Int32Array, n?: number): Int32Array {
  if (n === undefined) return indices;
  checkCount("limit", n);
  return indices.subarray(0, Math.min(n, indices.length));
}
