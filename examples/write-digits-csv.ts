// Writes MNIST as a numeric table — each digit averaged over 4×4 pixel blocks into 49 features
// p0…p48, plus its label in column "digit" — the layout `data.format: csv` reads. Used by
// examples/digits-csv.yaml; real numbers in a real CSV, without shipping a file.
//
//   node dist/examples/write-digits-csv.js data/digits-csv [--limit 20000]

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadDataset } from "../src/data/datasets.js";
import type { SampleSet } from "../src/data/sample-set.js";

/** Header and rows of the pooled table for samples [from, from + count) of a 28×28 image set. */
export function pooledDigitRows(set: SampleSet, from: number, count: number): string[][] {
  const header = [...Array.from({ length: 49 }, (_, f) => `p${f}`), "digit"];
  const rows: string[][] = [header];
  for (let i = from; i < from + count; i++) {
    const px = set.inputs.subarray(i * 784, (i + 1) * 784);
    const features = Array.from({ length: 49 }, (_, f) => {
      const by = Math.floor(f / 7) * 4, bx = (f % 7) * 4;
      let s = 0;
      for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) s += px[(by + y) * 28 + bx + x]!;
      return String(s / 16);
    });
    rows.push([...features, String(set.labels[i])]);
  }
  return rows;
}

export function toCsv(rows: string[][]): string {
  return rows.map((r) => r.join(",")).join("\n") + "\n";
}

function main(): void {
  const [out, flag, value] = process.argv.slice(2);
  if (!out || (flag !== undefined && (flag !== "--limit" || !(Number(value) > 0)))) {
    process.stderr.write("usage: write-digits-csv <out-folder> [--limit N]\n");
    process.exit(2);
  }
  const mnist = loadDataset("mnist");
  mkdirSync(out, { recursive: true });
  for (const split of ["train", "test"] as const) {
    const set = mnist[split];
    const n = Math.min(flag ? Number(value) : set.count, set.count);
    writeFileSync(join(out, `${split}.csv`), toCsv(pooledDigitRows(set, 0, n)));
    process.stdout.write(`${join(out, `${split}.csv`)}: ${n} rows, 49 features\n`);
  }
}

if (process.argv[1]?.endsWith("write-digits-csv.js")) main();
