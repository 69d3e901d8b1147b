// Every path a config names, found by mapConfigPaths (src/config/paths.ts): what a queue worker
// confines under its --root. If the schema grows a path field that mapConfigPaths does not know,
// a job could name a file outside the root through it: the count below catches the new field.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import "../src/distill/methods/index.js";
import { validateConfig } from "../src/config/load.js";
import { configPaths, mapConfigPaths } from "../src/config/paths.js";

const student = { model: { layers: [{ type: "linear", units: 8 }, { type: "linear", units: 2 }] }, train: { epochs: 1, optimizer: { kind: "sgd", lr: 0.1 } } };

test("configPaths finds every path of a config, by key, and mapConfigPaths rewrites each without touching the input", () => {
  const own = validateConfig({
    name: "own", output: "runs/own", student,
    data: { format: "csv", train: ["a.csv", "b.csv"], test: "t.csv", label: "y", unlabeled: [{ path: "extra/" }, { dataset: "mnist" }] },
    teacher: { softTargets: "soft.npy" },
    kd: { temperature: 4, alpha: 0.9, teachers: [{ onnx: "b.onnx" }, { softTargets: "c.jsonl", id: "id", scores: "p" }] },
  }, "own.yaml");
  assert.deepEqual(configPaths(own), [
    ["output", "runs/own"], ["teacher.softTargets", "soft.npy"], ["data.train[0]", "a.csv"], ["data.train[1]", "b.csv"], ["data.test", "t.csv"],
    ["data.unlabeled[0].path", "extra/"], ["kd.teachers[0].onnx", "b.onnx"], ["kd.teachers[1].softTargets", "c.jsonl"],
  ]);
  const preset = validateConfig({ name: "preset", data: { dataset: "mnist", dir: "idx/" }, teacher: { onnx: "t.onnx" }, student, kd: { temperature: 4, alpha: 0.9 } }, "preset.yaml");
  assert.deepEqual(configPaths(preset), [["output", "runs/preset"], ["teacher.onnx", "t.onnx"], ["data.dir", "idx/"]]);

  const moved = mapConfigPaths(own, (_key, p) => `/root/${p}`);
  assert.ok(configPaths(moved).every(([, p]) => p.startsWith("/root/")));
  assert.deepEqual(configPaths(own)[0], ["output", "runs/own"], "the input is unchanged");
  assert.deepEqual(moved.data.unlabeled![1], own.data.unlabeled![1], "a source without a path is left as it is");
});

test("the config schema has as many path fields as mapConfigPaths knows (9)", () => {
  const src = join(dirname(fileURLToPath(import.meta.url)), "../../src");
  const files = [...readdirSync(join(src, "config")).map((f) => join(src, "config", f)), ...readdirSync(join(src, "distill/methods")).map((f) => join(src, "distill/methods", f))].filter((f) => f.endsWith(".ts"))
    // A sequence-to-sequence config (sequence-data.ts's data block, seq2seq.ts's run config) is taken
    // by `distill run` and `resume` only, never by a queue job (tune, shrink, label refuse it), so
    // mapConfigPaths has no part of it; when a queue job carries one, it must learn these paths.
    .filter((f) => !f.endsWith("sequence-data.ts") && !f.endsWith("seq2seq.ts"));
  const text = files.map((f) => readFileSync(f, "utf8")).join("\n");
  // str("a path to …"), str("a file or folder path"), str("a folder path"), and the list-or-one paths() fields.
  const fields = (text.match(/str\("a (path to|file or folder path|folder path)/g) ?? []).length + (text.match(/:\s*paths\(\)/g) ?? []).length;
  assert.equal(fields, 9, "a path field was added to (or removed from) the schema: teach src/config/paths.ts about it, and update this count");
});
