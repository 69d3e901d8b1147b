// The UCI "Sentiment Labelled Sentences" (Kotzias et al. 2015: Amazon, IMDb and Yelp, 1,000
// labelled sentences each, class 1 = positive), as npm `sentiment` ships them for its tests.

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { seededPermutation } from "../../src/data/split.js";

export interface Sentences {
  texts: string[];
  labels: number[];
}

/** All 3,000 sentences (each file ends in an empty row without a class, which is left out). */
export function uciSentences(): Sentences {
  const dir = join(dirname(createRequire(import.meta.url).resolve("sentiment/package.json")), "test", "fixtures");
  const rows = ["amazon", "imdb", "yelp"]
    .flatMap((f) => JSON.parse(readFileSync(join(dir, `${f}.json`), "utf8")) as { text: string; class: number | null }[])
    .filter((r): r is { text: string; class: number } => r.class === 0 || r.class === 1);
  return { texts: rows.map((r) => r.text), labels: rows.map((r) => r.class) };
}

/** A seeded shuffle of all sentences split into the first `trainCount` and the rest. */
export function uciSplit(trainCount: number, seed = 0): { train: Sentences; test: Sentences } {
  const all = uciSentences();
  const order = Array.from(seededPermutation(all.texts.length, seed));
  const pick = (idx: number[]): Sentences => ({ texts: idx.map((i) => all.texts[i]!), labels: idx.map((i) => all.labels[i]!) });
  return { train: pick(order.slice(0, trainCount)), test: pick(order.slice(trainCount)) };
}
