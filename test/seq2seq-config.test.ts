// A sequence-to-sequence run config: defaults, and every bad input as one line naming the file and
// the field, before anything is trained or written (the run folder is not left behind), exit code 2
// from the command line.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { stringify as toYaml } from "yaml";
import { loadConfig, loadRunConfig } from "../src/config/load.js";
import { sequenceDataSchema } from "../src/config/sequence-data.js";
import type { Seq2SeqConfig } from "../src/config/seq2seq.js";
import { loadSequenceData } from "../src/data/sequence/load.js";
import { UserError } from "../src/errors.js";
import { exportOnnx } from "../src/nn/model.js";
import { exportSeq2SeqOnnx } from "../src/nn/seq2seq-export.js";
import { Seq2SeqModel } from "../src/nn/seq2seq.js";
import { buildModel } from "../src/nn/spec.js";
import { runSeq2Seq } from "../src/run/seq2seq/pipeline.js";
import { createProgress } from "../src/util/progress.js";
import { CLI } from "./helpers/child.js";

const dir = mkdtempSync(join(tmpdir(), "distill-seq2seq-config-"));
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
const DATA = { dataset: "cmudict", stress: "strip", trainLimit: 200, validationLimit: 10, testLimit: 10, maxSourceLength: 8, maxTargetLength: 8 };
const MODEL = { type: "seq2seq", dims: 16, heads: 2, ffn: 32, encoderLayers: 1, decoderLayers: 1 };
const TRAIN = { epochs: 1, batchSize: 32, optimizer: { kind: "adam", lr: 0.003 } };
const BASE = { name: "g2p-bad", data: DATA, teacher: { model: MODEL, train: TRAIN }, student: { model: MODEL, train: TRAIN }, kd: { method: "word" } };

let made = 0;
/** BASE with `patch`'s top-level keys replaced, as a YAML file; its run folder beside it. */
function configFile(patch: Record<string, unknown>): { path: string; out: string } {
  const path = join(dir, `config-${++made}.yaml`);
  writeFileSync(path, toYaml({ ...BASE, ...patch, output: join(dir, `run-${made}`) }));
  return { path, out: join(dir, `run-${made}`) };
}

/** The one-line error a config gets, from validation or from the run's plan; the run folder must not remain. */
async function errorOf(patch: Record<string, unknown>): Promise<{ message: string; path: string }> {
  const { path, out } = configFile(patch);
  try {
    const loaded = loadRunConfig(path);
    await runSeq2Seq(loaded.config as Seq2SeqConfig, { configPath: path, quiet: true, progress: silent() });
  } catch (e) {
    assert.ok(e instanceof UserError, String(e));
    assert.ok(!existsSync(out), "nothing is left behind");
    assert.ok(!e.message.includes("\n"), "one line");
    return { message: e.message, path };
  }
  assert.fail("expected an error");
}

test("defaults: kd word at T 1, α 0.5, top-8, beam 4; test beam 4; label smoothing 0; and the resolved config loads again", () => {
  const { path } = configFile({});
  const loaded = loadRunConfig(path);
  assert.equal(loaded.task, "seq2seq");
  const c = loaded.config as Seq2SeqConfig;
  assert.deepEqual(c.kd, { method: ["word"], temperature: 1, alpha: 0.5, topK: 8, beam: 4 });
  assert.deepEqual(c.evaluate, { beam: 4, latencyRuns: 200 });
  assert.equal(c.student.train.labelSmoothing, 0);
  assert.equal(c.student.model.dropout, 0.1);
  assert.deepEqual(c.seeds, [0]);
  const again = join(dir, "resolved.yaml");
  writeFileSync(again, toYaml(c));
  assert.deepEqual(loadRunConfig(again).config, c);
});

test("config errors name the key", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ kd: { method: ["word", "beam"] } }, 'kd.method[1]: expected one of word, sequence, both, got "beam"'],
    [{ kd: { method: ["word", "word"] } }, "kd.method: expected distinct methods, got [\"word\",\"word\"]"],
    [{ teacher: { model: MODEL, train: TRAIN, onnx: "t.onnx" } }, "teacher: give one of model (trained here, with train), onnx (a sequence model exported by distill) or outputs (a file of its outputs), not model and onnx"],
    [{ teacher: { onnx: "t.onnx", train: TRAIN } }, "teacher.train: only used with model (a teacher from elsewhere is not trained)"],
    [{ student: { model: { ...MODEL, heads: 3 }, train: TRAIN } }, "student.model.heads: expected a divisor of dims (16), got 3"],
    [{ student: { model: MODEL, train: { ...TRAIN, jitter: 1 } } }, 'student.train: unknown key "jitter" (allowed: epochs, batchSize, optimizer, schedule, clipGradNorm, labelSmoothing)'],
    [{ evaluate: { beam: 0 } }, "evaluate.beam: expected a positive integer, got 0"],
    [{ buckets: [[4, 20]] }, "buckets[0]: expected lengths up to [8, 9] (the models' longest source, and target with <eos>), got [4, 20]"],
  ];
  for (const [patch, expected] of cases) {
    const { message, path } = await errorOf(patch);
    assert.equal(message, `${path}: ${expected}`);
  }
});

test("a classifier command refuses a sequence config in one line", () => {
  const { path } = configFile({});
  assert.throws(() => loadConfig(path), (e: Error) => e.message === `${path}: data: a sequence-to-sequence config (dataset: cmudict or format: pairs); only \`distill run\` and \`distill resume\` take one`);
});

test("a teacher .onnx that is missing, not a distill sequence model, or numbers symbols otherwise is refused", async () => {
  const missing = join(dir, "absent.onnx");
  assert.equal((await errorOf({ teacher: { onnx: missing } })).message, `${missing}: teacher.onnx: no such file`);

  const classifier = join(dir, "classifier.onnx");
  const m = buildModel({ input: "flat", layers: [{ type: "linear", units: 2 }] }, ["a", "b"], { kind: "table", sampleShape: [3] } as never);
  writeFileSync(classifier, exportOnnx(m, m.initParameters(0)));
  assert.equal((await errorOf({ teacher: { onnx: classifier } })).message, `${classifier}: teacher.onnx: not a sequence model exported by distill (metadata distill.task is null)`);

  // A teacher trained with stress digits kept: 73 target symbols, the data (stress stripped) has 43.
  const data = loadSequenceData(sequenceDataSchema.parse({ dataset: "cmudict", stress: "keep" }));
  const spec = { dims: 8, heads: 2, ffn: 8, encoderLayers: 1, decoderLayers: 1, dropout: 0, sourceVocab: data.sourceVocabulary.symbols.length, targetVocab: data.targetVocabulary.symbols.length, sourceLength: 8, targetLength: 9 };
  const model = new Seq2SeqModel(spec);
  const stressed = join(dir, "stressed.onnx");
  writeFileSync(stressed, exportSeq2SeqOnnx(model, model.initParameters(0), { source: data.sourceVocabulary, target: data.targetVocabulary }));
  const { message } = await errorOf({ teacher: { onnx: stressed } });
  assert.equal(message, `${stressed}: teacher.onnx: its target vocabulary is not the data's (73 symbols against 43; id 4 is "AA0", the data's "AA"); a teacher must number symbols as the training data does`);
});

test("a file of the teacher's outputs: wrong kind for the method, unknown symbols, bad top-k rows", async () => {
  const sequences = join(dir, "outputs.tsv");
  writeFileSync(sequences, "source\toutput\nABBA\tAE B AH\n");
  assert.equal((await errorOf({ teacher: { outputs: sequences }, kd: { method: ["word", "sequence"] } })).message,
    `${sequences}: teacher.outputs: a file of whole output sequences serves kd.method sequence only (word-level distillation needs the teacher's distributions), but kd.method has word`);

  const unknown = join(dir, "unknown.tsv");
  writeFileSync(unknown, "source\toutput\nABBA\tAE B AH\nABC\tAE XX\n");
  assert.equal((await errorOf({ teacher: { outputs: unknown }, kd: { method: "sequence" } })).message,
    `${unknown}: row 3: field "output": symbol "XX" is not in the training targets' vocabulary (39 symbols)`);

  const topk = (rows: unknown[]) => {
    const path = join(dir, `topk-${++made}.jsonl`);
    writeFileSync(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    return path;
  };
  const positions = (n: number, k: number, lp = -0.5) => Array.from({ length: n }, () => Array.from({ length: k }, () => ["AH", lp]));
  const short = topk([{ source: "ABBA", target: "AE B AH", topk: positions(3, 4) }]);
  assert.equal((await errorOf({ teacher: { outputs: short }, kd: { method: "word", topK: 4 } })).message,
    `${short}: line 1: field "topk": expected a list of 4 positions (the target's 3 symbols, then the end), got 3`);
  const narrow = topk([{ source: "ABBA", target: "AE B AH", topk: positions(4, 2) }]);
  assert.equal((await errorOf({ teacher: { outputs: narrow }, kd: { method: "word", topK: 4 } })).message,
    `${narrow}: teacher.outputs: gives 2 symbols per position, fewer than kd.topK (4); set kd.topK: 2`);
  const positive = topk([{ source: "ABBA", target: "AE B AH", topk: positions(4, 4, 0.7) }]);
  assert.equal((await errorOf({ teacher: { outputs: positive }, kd: { method: "word", topK: 4 } })).message,
    `${positive}: line 1: field "topk[0][0]": expected a log-probability (a number ≤ 0), got 0.7`);
  const partial = topk([{ source: "ABBA", target: "AE B AH", topk: positions(4, 4) }]);
  const { message } = await errorOf({ teacher: { outputs: partial }, kd: { method: "word", topK: 4 } });
  assert.match(message, new RegExp(`^${partial.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: teacher\\.outputs: no row for the training pair "[A-Z']+" → "[A-Z ]+" \\(\\d+ of \\d+ training pairs have none\\); the file must cover every one$`));
});

test("distill run: a bad sequence config exits with code 2, one line on stderr, no run folder", () => {
  const { path, out } = configFile({ kd: { method: "word", topK: 0 } });
  const r = spawnSync(process.execPath, [CLI, "run", path, "--quiet"], { encoding: "utf8" });
  assert.equal(r.status, 2, r.stderr);
  assert.equal(r.stderr.trim(), `distill: ${path}: kd.topK: expected a positive integer, got 0`);
  assert.ok(!existsSync(out));
});
