// The text side of the transfer check: the input statistic of a text is the share of its words the
// training vocabulary does not know (id 1; padding, id 0, is not a word). By hand on token ids,
// then in a whole run whose unlabelled texts are in another language: the check compares the
// shares of those texts with the validation texts' and says so in results.json.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { validateConfig } from "../src/config/load.js";
import { runDistillation } from "../src/run/pipeline.js";
import { unknownWordShares } from "../src/eval/domain-shift.js";
import { createProgress } from "../src/util/progress.js";
import { lacks, sentimentMissing } from "./helpers/optional.js";
import { uciSplit } from "./helpers/uci-sentences.js";

test("unknown-word share: unknown ids (1) over the non-padding ids (≠ 0) of each text, in the order of the indices", () => {
  const ids = Int32Array.from([
    5, 1, 1, 0, 0, // 2 of 3 words unknown
    0, 0, 0, 0, 0, // no words at all: counted as all unknown
    1, 1, 0, 0, 0, // all unknown
    7, 8, 9, 1, 0, // 1 of 4
    4, 0, 6, 0, 0, // padding between words is still padding: none unknown
  ]);
  assert.deepEqual([...unknownWordShares(ids, 5, Int32Array.from([0, 1, 2, 3, 4]))], [2 / 3, 1, 1, 1 / 4, 0]);
  assert.deepEqual([...unknownWordShares(ids, 5, Int32Array.from([3, 0]))], [1 / 4, 2 / 3]);
});

test("a text run with unlabelled texts in another language: the transfer check compares unknown-word shares and finds them shifted", async (t) => {
  if (lacks(t, "the UCI sentences of the npm package sentiment", sentimentMissing())) return;
  const dir = mkdtempSync(join(tmpdir(), "distill-text-shift-"));
  const { train, test: held } = uciSplit(1200);
  const jsonl = (name: string, texts: string[], labels: number[]) => {
    writeFileSync(join(dir, name), texts.map((text, i) => JSON.stringify({ text, label: labels[i] })).join("\n") + "\n");
    return join(dir, name);
  };
  // Sentences the English vocabulary has almost no word of.
  const foreign = Array.from({ length: 300 }, (_, i) => `das essen war ${i % 2 ? "wirklich gut" : "leider kalt"} und der kellner kam ${i % 3 ? "sofort" : "nie"} zu unserem tisch`);
  writeFileSync(join(dir, "foreign.txt"), foreign.join("\n") + "\n");
  const model = (dims: number) => ({ layers: [{ type: "embedding", dims }, { type: "meanpool" }, { type: "linear", units: 2 }] });
  const trainSpec = { epochs: 1, batchSize: 32, optimizer: { kind: "adam", lr: 0.01 } };
  const config = validateConfig({
    name: "text-shift", output: join(dir, "run"),
    data: {
      format: "jsonl", train: jsonl("train.jsonl", train.texts, train.labels), test: jsonl("test.jsonl", held.texts.slice(0, 200), held.labels.slice(0, 200)),
      text: "text", label: "label", maxTokens: 32, vocabSize: 5000, validation: 200, unlabeled: [{ path: join(dir, "foreign.txt") }],
    },
    teacher: { model: model(16), train: trainSpec }, student: { model: model(8), train: trainSpec }, kd: { temperature: 2, alpha: 0.5 },
  }, "text-shift.yaml");
  const silent = createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
  const { results } = await runDistillation(config, { configPath: "text-shift.yaml", quiet: true, cacheDir: join(dir, "cache"), progress: silent, skipBaseline: true });
  const shift = results.domainShift!;
  assert.equal(shift.inputStatistic, "unknown-word share");
  assert.equal(shift.reference.split, "validation");
  assert.deepEqual([shift.reference.samples, shift.transfer.samples], [200, 300]);
  // Nearly every foreign word is unknown and nearly every validation word known: the two empirical
  // distributions barely overlap.
  assert.ok(shift.inputTest.statistic > 0.9 && shift.inputTest.pValue < 1e-6, JSON.stringify(shift.inputTest));
});
