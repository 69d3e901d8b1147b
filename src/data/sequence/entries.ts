// A sequence dataset's unit is the entry: one source and every target it has (a word and all its
// pronunciations). Splits are drawn over entries, never over pairs, so no word's alternative
// pronunciation sits in training while another is tested; training then takes each pair.

import { UserError } from "../../errors.js";
import { seededPermutation } from "../split.js";

export interface SequenceEntry {
  /** The source as written, the key targets are grouped by (a CMUdict word, a pairs row's source field). */
  text: string;
  source: string[];
  /** Every target of this source in the order read, without repeats; at least one. */
  targets: string[][];
}

export interface SequenceSplits<T = SequenceEntry> {
  train: T[];
  validation: T[];
  test: T[];
}

/** Rows with equal `text` become one entry; a target equal to one the entry already has is dropped. */
export function groupBySource(rows: Iterable<{ text: string; source: string[]; target: string[] }>): { entries: SequenceEntry[]; repeatedTargets: number } {
  const byText = new Map<string, SequenceEntry>();
  let repeatedTargets = 0;
  for (const { text, source, target } of rows) {
    let entry = byText.get(text);
    if (!entry) byText.set(text, (entry = { text, source, targets: [] }));
    // A linear scan: an entry has a handful of targets at most (CMUdict: 4).
    if (entry.targets.some((t) => t.length === target.length && t.every((s, i) => s === target[i]))) repeatedTargets++;
    else entry.targets.push(target);
  }
  return { entries: [...byText.values()], repeatedTargets };
}

export interface SplitFractions {
  validation: number;
  test: number;
}

/**
 * A seeded split of `entries`: the first round(n·test) of a seeded permutation are the test set,
 * the next round(n·validation) validation, the rest training; each part keeps the input order.
 * The same entries, fractions and seed give the same split on every machine. `where` names the
 * setting blamed when a part would be empty.
 */
export function splitEntries<T>(entries: readonly T[], fractions: SplitFractions, seed: number, where: string): SequenceSplits<T> {
  const n = entries.length;
  const testCount = Math.round(n * fractions.test);
  const validationCount = Math.round(n * fractions.validation);
  if (fractions.test > 0 && testCount < 1) throw new UserError(where, `testFraction ${fractions.test} of ${n} entries leaves no test entries`);
  if (fractions.validation > 0 && validationCount < 1) throw new UserError(where, `validationFraction ${fractions.validation} of ${n} entries leaves no validation entries`);
  if (testCount + validationCount >= n) throw new UserError(where, `testFraction ${fractions.test} and validationFraction ${fractions.validation} of ${n} entries leave no training entries`);
  const order = seededPermutation(n, seed);
  const part = (from: number, to: number) => Array.from(order.subarray(from, to).slice().sort(), (i) => entries[i]!);
  return { test: part(0, testCount), validation: part(testCount, testCount + validationCount), train: part(testCount + validationCount, n) };
}

/** Every (source, target) pair of the entries: what a model trains on, one pair per pronunciation. */
export function trainingPairs(entries: readonly SequenceEntry[]): { source: string[]; target: string[] }[] {
  return entries.flatMap((e) => e.targets.map((target) => ({ source: e.source, target })));
}
