// Unlabelled transfer data (data.unlabeled): batches that mix labelled and unlabelled samples in the
// stated proportion, a hard-label loss that averages over the labelled rows only, sources read from
// image folders, IDX files, presets, texts and the rest of the training pool, and the domain-shift
// check wired into the run — an out-of-domain set (Fashion-MNIST, or inverted MNIST, for an MNIST
// teacher) must warn, an in-domain one must not. Bad inputs: one line, exit 2, nothing written.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { Writable } from "node:stream";
import sharp from "sharp";
import { Batches, MISSING_LABEL, MixedBatches } from "../src/data/batches.js";
import { loadDataset } from "../src/data/datasets.js";
import { loadData } from "../src/data/load.js";
import { loadUnlabeled, NO_LABEL } from "../src/data/unlabeled.js";
import { configFromObject, loadConfig } from "../src/config/load.js";
import { runDistillation } from "../src/run/pipeline.js";
import { Graph } from "../src/engine/graph.js";
import { gradients } from "../src/engine/autodiff.js";
import { encodeModel } from "../src/engine/onnx.js";
import { Session } from "../src/engine/runtime.js";
import { crossEntropy } from "../src/nn/losses.js";
import type { RunResults } from "../src/eval/types.js";
import { createProgress } from "../src/util/progress.js";
import { uciSplit } from "./helpers/uci-sentences.js";

const dir = mkdtempSync(join(tmpdir(), "distill-unlabeled-"));
const cacheDir = join(dir, "cache");
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const mnist = loadDataset("mnist");
const silent = () => createProgress({ quiet: true, stream: new Writable({ write: (_c, _e, cb) => cb() }) as never });
const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: cacheDir } });

describe("mixed batches", () => {
  const labeled = Int32Array.from({ length: 100 }, (_, i) => i);
  const unlabeled = Int32Array.from({ length: 300 }, (_, i) => 1000 + i);

  test("each batch: the stated number of labelled rows first, then unlabelled rows fed without a label", () => {
    const batches = new MixedBatches(mnist.train, labeled, unlabeled, 8, { batchSize: 32, shuffle: true, seed: 3 });
    assert.equal(batches.batchCount, Math.floor(400 / 32));
    let batches0 = 0;
    for (const b of batches.epoch(0)) {
      batches0++;
      assert.equal(b.size, 32);
      for (let i = 0; i < 32; i++) {
        const idx = b.indices[i]!;
        if (i < 8) {
          assert.ok(idx < 100, `row ${i} is labelled`);
          assert.equal(b.labels[i], BigInt(mnist.train.labels[idx]!));
        } else {
          assert.ok(idx >= 1000, `row ${i} is unlabelled`);
          assert.equal(b.labels[i], MISSING_LABEL);
        }
      }
    }
    assert.equal(batches0, 12);
  });

  test("the labelled list repeats (reshuffled) when the proportion asks for more of it; no duplicates within one pass", () => {
    // 12 batches × 16 labelled = 192 draws from 100 labelled examples: one full pass, then a second.
    const batches = new MixedBatches(mnist.train, labeled, unlabeled, 16, { batchSize: 32, shuffle: true, seed: 1 });
    // The yielded arrays are reused batch to batch: copy each as it comes.
    const drawn = Array.from(batches.epoch(0), (b) => Array.from(b.indices.subarray(0, 16))).flat();
    assert.equal(drawn.length, 192);
    assert.equal(new Set(drawn.slice(0, 100)).size, 100, "the first pass visits every labelled example once");
    assert.notDeepEqual(drawn.slice(100, 192), drawn.slice(0, 92), "the second pass is reshuffled");
  });

  test("the natural proportion visits every example once per epoch; a resumed epoch replays the same batches", () => {
    const batches = new MixedBatches(mnist.train, labeled, unlabeled, 8, { batchSize: 32, shuffle: true, seed: 5 });
    const all = Array.from(batches.epoch(2), (b) => Array.from(b.indices));
    const seen = all.flat();
    assert.equal(new Set(seen).size, seen.length, "no example twice");
    const resumed = Array.from(batches.epoch(2, 4), (b) => Array.from(b.indices));
    assert.deepEqual(resumed, all.slice(4));
    assert.notDeepEqual(Array.from(batches.epoch(3), (b) => Array.from(b.indices)), all, "another epoch, another order");
  });

  test("bad proportions are refused", () => {
    assert.throws(() => new MixedBatches(mnist.train, labeled, unlabeled, 0, { batchSize: 32, shuffle: true, seed: 0 }), /labeledPerBatch/);
    assert.throws(() => new MixedBatches(mnist.train, labeled, unlabeled, 32, { batchSize: 32, shuffle: true, seed: 0 }), /labeledPerBatch/);
    assert.ok(new Batches(mnist.train, labeled, { batchSize: 32, shuffle: false, seed: 0 }).batchCount > 0);
  });
});

describe("the hard-label loss on a mixed batch", () => {
  // Reference: −mean over labelled rows of log softmax(z)[y], computed here in float64.
  const logits = [[1.5, -0.3, 0.2], [0.1, 0.4, -2.0], [-1.0, 2.0, 0.5], [0.3, 0.3, 0.9]];
  const labels = [2n, MISSING_LABEL, 1n, MISSING_LABEL];
  const share = 2 / 4;

  function reference(smoothing: number): { loss: number; grad: number[][] } {
    const k = 3;
    let loss = 0;
    const grad = logits.map((row) => row.map(() => 0));
    logits.forEach((z, i) => {
      if (labels[i] === MISSING_LABEL) return;
      const m = Math.max(...z), lse = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
      const target = z.map((_, c) => (c === Number(labels[i]) ? 1 - smoothing : 0) + smoothing / k);
      loss -= target.reduce((s, t, c) => s + t * (z[c]! - lse), 0) / 2;
      z.forEach((v, c) => (grad[i]![c] = (Math.exp(v - lse) - target[c]!) / 2));
    });
    return { loss, grad };
  }

  for (const smoothing of [0, 0.1]) {
    test(`averages over the labelled rows only (label smoothing ${smoothing}), with its gradient`, async () => {
      const g = new Graph();
      const z = g.input("z", [4, 3]);
      const y = g.input("y", [4], "int64");
      const loss = crossEntropy(z, y, { labeledShare: share, labelSmoothing: smoothing });
      const [dz] = gradients(g, loss, [z]);
      g.output(loss, "loss");
      g.output(dz!, "dz");
      const s = await Session.create(encodeModel(g), { threads: 1 });
      try {
        const out = await s.run({ z: { dtype: "float32", shape: [4, 3], data: Float32Array.from(logits.flat()) }, y: { dtype: "int64", shape: [4], data: BigInt64Array.from(labels) } });
        const want = reference(smoothing);
        assert.ok(Math.abs((out["loss"]!.data as Float32Array)[0]! - want.loss) < 1e-6, `loss ${(out["loss"]!.data as Float32Array)[0]} vs ${want.loss}`);
        const got = Array.from(out["dz"]!.data as Float32Array);
        want.grad.flat().forEach((v, i) => assert.ok(Math.abs(got[i]! - v) < 1e-6, `dz[${i}] ${got[i]} vs ${v}`));
        assert.deepEqual(got.slice(3, 6), [0, 0, 0], "an unlabelled row gets no hard-label gradient");
      } finally {
        await s.dispose();
      }
    });
  }
});

describe("sources", () => {
  test("an image folder (any depth, any size) becomes images of the training size; an IDX file and a preset as they are", async () => {
    const folder = join(dir, "extra-images");
    mkdirSync(join(folder, "nested"), { recursive: true });
    // Three real test digits, one of them stored at 56×56 RGB: resized and greyed to 28×28.
    const digit = (i: number) => mnist.test.inputs.subarray(i * 784, (i + 1) * 784) as Uint8Array;
    await sharp(Buffer.from(digit(0)), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(folder, "a.png"));
    await sharp(Buffer.from(digit(1)), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(folder, "nested", "b.png"));
    await sharp(Buffer.from(digit(2)), { raw: { width: 28, height: 28, channels: 1 } }).resize(56, 56, { kernel: "nearest" }).toColourspace("srgb").png().toFile(join(folder, "c.png"));
    writeFileSync(join(folder, "notes.txt"), "not an image");
    const idx = join(dir, "extra-idx3-ubyte.gz");
    const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28]);
    writeFileSync(idx, gzipSync(Buffer.concat([header, Buffer.from(mnist.test.inputs.subarray(0, 5 * 784))])));
    const base = await loadData({ dataset: "mnist" });
    const out = await loadUnlabeled([{ path: folder }, { path: idx }, { dataset: "fashion-mnist", split: "test", limit: 7 }], base, { poolEnd: 60000, cacheDir });
    assert.deepEqual(out.parts.map((p) => p.samples), [3, 5, 7]);
    assert.equal(out.train.count, 60000 + 15);
    assert.deepEqual(Array.from(out.indices), Array.from({ length: 15 }, (_, i) => 60000 + i));
    const row = (i: number) => out.train.inputs.subarray(i * 784, (i + 1) * 784);
    assert.deepEqual(row(60000), digit(0), "a PNG of a digit decodes to its pixels");
    // Sorted by path (c.png before nested/b.png); c.png, stored 2× larger in colour, comes back close to the digit.
    const diff = Array.from(row(60001)).reduce((sum, v, p) => sum + Math.abs(v - digit(2)[p]!), 0) / 784;
    assert.ok(diff < 4, `resized back to 28×28 grey: mean |Δ| ${diff.toFixed(2)}`);
    assert.deepEqual(row(60002), digit(1));
    assert.deepEqual(row(60003), digit(0), "the IDX file's first image");
    assert.equal(out.train.labels[60005], NO_LABEL);
    assert.deepEqual(row(0), mnist.train.inputs.subarray(0, 784), "the labelled samples are untouched");
  });

  test("texts (.txt lines, .jsonl fields) through the training vocabulary; the rest of the training pool by index", async () => {
    const { train, test: held } = uciSplit(2000);
    const jsonl = (path: string, s: { texts: string[]; labels: number[] }) => writeFileSync(path, s.texts.map((t, i) => JSON.stringify({ text: t, label: s.labels[i] })).join("\n") + "\n");
    jsonl(join(dir, "sent-train.jsonl"), train);
    jsonl(join(dir, "sent-test.jsonl"), { texts: held.texts.slice(0, 200), labels: held.labels.slice(0, 200) });
    writeFileSync(join(dir, "extra.txt"), held.texts.slice(200, 210).join("\n") + "\n\n");
    writeFileSync(join(dir, "extra.jsonl"), held.texts.slice(210, 214).map((t) => JSON.stringify({ text: t })).join("\n"));
    const text = await loadData({ format: "jsonl", train: join(dir, "sent-train.jsonl"), test: join(dir, "sent-test.jsonl"), label: "label", text: "text", maxTokens: 32, vocabSize: 5000 });
    const out = await loadUnlabeled([{ path: join(dir, "extra.txt") }, { path: join(dir, "extra.jsonl") }, { restOfTrain: true, limit: 100 }], text, { poolEnd: 1500, textField: "text" });
    assert.deepEqual(out.parts.map((p) => p.samples), [10, 4, 100]);
    assert.equal(out.train.texts![2000], held.texts[200]);
    assert.equal(out.train.texts![2013], held.texts[213]);
    // restOfTrain comes first: it needs no copy.
    assert.deepEqual(Array.from(out.indices.subarray(0, 3)), [1500, 1501, 1502]);
    assert.equal(out.indices[100], 2000);
  });
});

const models = `
teacher:
  model: { layers: [ {type: linear, units: 256}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 3, batchSize: 64, optimizer: {kind: adam, lr: 0.002} }
student:
  model: { layers: [ {type: linear, units: 32}, {type: relu}, {type: linear, units: 10} ] }
  train: { epochs: 2, batchSize: 64, optimizer: {kind: adam, lr: 0.003} }
`;

async function run(name: string, unlabeled: string, extra = "", kd = "kd: { temperature: 4, alpha: 0.5 }"): Promise<RunResults> {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, `name: ${name}\nseeds: 1\ndata:\n  dataset: mnist\n  trainLimit: 2000\n  validation: 500\n  testLimit: 1000\n  unlabeled: ${unlabeled}\n${extra}${models}${kd}\n`);
  const { runDir } = await runDistillation(loadConfig(path, { output: join(dir, "runs", name) }), { configPath: path, quiet: true, cacheDir, progress: silent() });
  return JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as RunResults;
}

describe("distill run with unlabelled data", () => {
  test("in-domain (the rest of MNIST's training pool): labelled by the teacher, mixed into batches, no shift warning", async () => {
    const r = await run("in-domain", "[ { restOfTrain: true, limit: 3000 } ]");
    assert.deepEqual(r.data!.unlabeled, { samples: 3000, labeledPerBatch: Math.round(64 * 1500 / 4500), batchSize: 64 });
    assert.equal(r.data!.transfer, 4500);
    const shift = r.domainShift!;
    assert.equal(shift.transfer.samples, 3000);
    assert.equal(shift.reference.samples, 500);
    assert.equal(shift.reference.split, "validation");
    assert.equal(shift.warning, null, `no warning in domain: ${shift.warning}`);
    assert.equal(shift.computedSamples, 0, "the check reuses the soft targets and the teacher report's validation logits");
    assert.ok(shift.confidenceTest.statistic < 0.15);
    const html = readFileSync(join(dir, "runs", "in-domain", "report.html"), "utf8");
    assert.match(html, /id="transfer-check"/);
    assert.doesNotMatch(html, /id="shift-warning"/);
  });

  test("out of domain (Fashion-MNIST, or MNIST inverted) for an MNIST teacher: warned about in results.json and the report", async () => {
    for (const [name, source] of [["fashion", "{ dataset: fashion-mnist, limit: 3000 }"], ["inverted", "{ dataset: mnist, split: test, limit: 3000, invert: true }"]] as const) {
      const r = await run(name, `[ ${source} ]`, "  labeledShare: 0.5\n");
      assert.equal(r.data!.unlabeled!.labeledPerBatch, 32);
      assert.match(r.domainShift!.warning ?? "", /out of domain/, name);
      assert.ok(r.domainShift!.transfer.confidence.mean < r.domainShift!.reference.confidence.mean, name);
      assert.match(readFileSync(join(dir, "runs", name, "report.html"), "utf8"), /id="shift-warning"/, name);
    }
  });

  test("the teacher and the baseline do not change when unlabelled data is added; the student trains on both", async () => {
    const a = JSON.parse(readFileSync(join(dir, "runs", "in-domain", "results.json"), "utf8")) as RunResults;
    const b = JSON.parse(readFileSync(join(dir, "runs", "fashion", "results.json"), "utf8")) as RunResults;
    const errors = (r: RunResults, role: string) => r.models.find((m) => m.role === role)!.perSeed[0]!.errors;
    assert.equal(errors(a, "teacher"), errors(b, "teacher"));
    assert.equal(errors(a, "baseline"), errors(b, "baseline"));
    // 4,500 transfer samples at 64 a batch: 70 steps per epoch for the student, 23 for the baseline.
    const metrics = readFileSync(join(dir, "runs", "in-domain", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { stage: string; trainAccuracy: number });
    const student = metrics.filter((m) => m.stage === "student");
    assert.equal(student.length, 2);
    assert.ok(student.every((m) => m.trainAccuracy > 0.5 && m.trainAccuracy <= 1), "training accuracy counts labelled rows only");
  });

  test("bad inputs: one line naming the file and field, exit 2, nothing written", () => {
    const base = (name: string, data: string, kd = "kd: { temperature: 4, alpha: 0.5 }") => {
      const path = join(dir, `bad-${name}.yaml`);
      writeFileSync(path, `name: bad-${name}\noutput: ${join(dir, "runs", `bad-${name}`)}\ndata:\n  dataset: mnist\n  trainLimit: 1000\n  validation: 200\n${data}\n${models}${kd}\n`);
      return path;
    };
    writeFileSync(join(dir, "small-idx"), Buffer.concat([Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 10, 0, 0, 0, 10]), Buffer.alloc(200)]));
    const cases: [string, string, RegExp, string?][] = [
      ["missing", "  unlabeled: [ { path: /nonexistent/extra } ]", /\/nonexistent\/extra: data\.unlabeled\[0\]\.path: no such file or folder/],
      ["two-kinds", "  unlabeled: [ { path: x, dataset: mnist } ]", /data\.unlabeled\[0\]: expected exactly one of path, dataset, restOfTrain \(got path and dataset\)/],
      ["size", `  unlabeled: [ { path: ${join(dir, "small-idx")} } ]`, /small-idx: data\.unlabeled\[0\]\.path: images are 10×10 pixels, 1 channel, but the training images are 28×28/],
      ["share", "  unlabeled: [ { restOfTrain: true, limit: 500 } ]\n  labeledShare: 0.001", /data\.labeledShare: 0\.0010 of a batch of 64 is 0 labelled samples/],
      ["share-alone", "  labeledShare: 0.5", /data\.labeledShare: only used with unlabeled/],
      ["dkd", "  unlabeled: [ { restOfTrain: true, limit: 500 } ]", /data\.unlabeled: dkd needs a label on every sample/, "kd: { method: dkd }"],
    ];
    for (const [name, data, message, kd] of cases) {
      const r = cli(["run", base(name, data, kd)]);
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${name}: one line: ${r.stderr}`);
      assert.ok(!existsSync(join(dir, "runs", `bad-${name}`)), `${name}: nothing written`);
    }
    // restOfTrain needs a trainLimit to have a rest.
    assert.throws(() => configFromObject({ name: "x", data: { dataset: "mnist", unlabeled: [{ restOfTrain: true }] }, teacher: { onnx: "t.onnx" }, student: { model: { layers: [{ type: "linear", units: 10 }] } } }, "x.yaml"), /restOfTrain: needs data\.trainLimit/);
  });
});
