// Your own data: image folders (PNG written from real MNIST digits) and CSV tables (real MNIST
// digits pooled to 7×7 = 49 features) — loaded pixel-exact, run end to end through `distill run`,
// the exported model taking raw values; and every bad input one line naming file and field, exit 2,
// nothing written.

import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import sharp from "sharp";
import { loadDataset } from "../src/data/datasets.js";
import { pooledDigitRows, toCsv } from "../examples/write-digits-csv.js";
import { uciSplit } from "./helpers/uci-sentences.js";
import { writeImageFolders } from "../examples/write-image-folders.js";
import { holdOut, loadData, subset } from "../src/data/load.js";
import { configFromObject } from "../src/config/load.js";
import "../src/distill/methods/index.js"; // registers the methods the kd: block accepts
import { decodeModel } from "../src/engine/onnx.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import type { RunResults } from "../src/eval/types.js";

const dir = mkdtempSync(join(tmpdir(), "distill-userdata-"));
const CLI = join(dirname(fileURLToPath(import.meta.url)), "../src/cli/main.js");
const mnist = loadDataset("mnist");
const cacheDir = join(dir, "cache");
const digit = (i: number, set = mnist.train) => set.inputs.subarray(i * 784, (i + 1) * 784) as Uint8Array;

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, DISTILL_CACHE: join(dir, "cache") } });
}

/** The first `n` digits of `set` as `<root>/<digit>/<i>.png`; `rgb` writes three equal channels. */
async function writeFolder(root: string, n: number, set = mnist.train, rgb = false): Promise<void> {
  const first = subset(set, Int32Array.from({ length: n }, (_, i) => i));
  // RGB: the grey plane three times, as [C, H, W] planes.
  const inputs = rgb ? Uint8Array.from({ length: n * 3 * 784 }, (_, k) => first.inputs[Math.floor(k / (3 * 784)) * 784 + (k % 784)]!) : first.inputs;
  await writeImageFolders({ ...first, inputs, sampleShape: rgb ? [3, 28, 28] : [1, 28, 28] }, mnist.classLabels, root);
}

/** The digits CSV of examples/write-digits-csv.ts (49 real pooled features per row), rows edited on request. */
function pooledCsv(path: string, from: number, n: number, set = mnist.train, edit?: (rows: string[][]) => void): void {
  const [header, ...rows] = pooledDigitRows(set, from, n);
  edit?.(rows);
  writeFileSync(path, toCsv([header!, ...rows]));
}

const tinyModels = (student: string, teacher: string, epochs = 2) => `
teacher:
  model: { layers: ${teacher} }
  train: { epochs: ${epochs}, batchSize: 32, optimizer: {kind: adam, lr: 0.003} }
student:
  model: { layers: ${student} }
  train: { epochs: ${epochs}, batchSize: 32, optimizer: {kind: adam, lr: 0.01} }
kd: { temperature: 2, alpha: 0.5 }
`;

describe("image folders", () => {
  const grey = join(dir, "grey");
  const rgb = join(dir, "rgb");
  test("PNG folders load pixel-exact, grey or RGB, and resize on request", async () => {
    await writeFolder(join(grey, "train"), 300);
    await writeFolder(join(grey, "test"), 100, mnist.test);
    await writeFolder(join(rgb, "train"), 300, mnist.train, true);
    await writeFolder(join(rgb, "test"), 100, mnist.test, true);
    const ds = await loadData({ format: "image-folder", train: join(grey, "train"), test: join(grey, "test") }, { cacheDir });
    assert.deepEqual(ds.classLabels, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert.equal(ds.train.count, 300);
    assert.deepEqual(ds.train.sampleShape, [1, 28, 28]);
    // Sorted by class then file: find each written digit and compare its pixels with the IDX bytes.
    const written = new Map<string, number>();
    for (let i = 0; i < 300; i++) written.set(Buffer.from(digit(i)).toString("base64"), mnist.train.labels[i]!);
    for (let j = 0; j < ds.train.count; j++) {
      const px = Buffer.from(ds.train.inputs.subarray(j * 784, (j + 1) * 784)).toString("base64");
      assert.equal(written.get(px), ds.train.labels[j], `image ${j} is one of the written digits, with its label`);
    }
    const colour = await loadData({ format: "image-folder", train: join(rgb, "train"), test: join(rgb, "test") }, { cacheDir });
    assert.deepEqual(colour.train.sampleShape, [3, 28, 28]);
    // Planes [R, G, B]: three copies of the grey image.
    assert.deepEqual([...colour.train.inputs.subarray(2 * 784, 3 * 784)], [...ds.train.inputs.subarray(0, 784)]);
    const asGrey = await loadData({ format: "image-folder", train: join(rgb, "train"), test: join(rgb, "test"), image: { channels: 1 } }, { cacheDir });
    assert.deepEqual([...asGrey.train.inputs.subarray(0, 784 * 5)], [...ds.train.inputs.subarray(0, 784 * 5)]);
    const small = await loadData({ format: "image-folder", train: join(grey, "train"), test: join(grey, "test"), image: { width: 14, height: 14 } }, { cacheDir });
    assert.deepEqual(small.test.sampleShape, [1, 14, 14]);
    assert.equal(small.test.inputs.length, 100 * 196);
  });

  test("decoded images are cached; replacing an image decodes afresh", async () => {
    const cached = readdirSync(join(cacheDir, "decoded-images"));
    assert.ok(cached.length >= 2, `train and test splits cached: ${cached}`);
    const before = await loadData({ format: "image-folder", train: join(grey, "train"), test: join(grey, "test") }, { cacheDir });
    // Test image 0 (a 7) becomes test image 1's pixels (a 2), in the same file.
    const sevenFolder = join(grey, "test", "7");
    const file = join(sevenFolder, readdirSync(sevenFolder).sort()[0]!);
    await sharp(digit(1, mnist.test), { raw: { width: 28, height: 28, channels: 1 } }).toColourspace("b-w").png().toFile(file + ".new.png");
    renameSync(file + ".new.png", file);
    const after = await loadData({ format: "image-folder", train: join(grey, "train"), test: join(grey, "test") }, { cacheDir });
    const row = (ds: typeof after, i: number) => [...ds.test.inputs.subarray(i * 784, (i + 1) * 784)];
    const at = after.test.labels.indexOf(7);
    assert.deepEqual(row(after, at), [...digit(1, mnist.test)]);
    assert.notDeepEqual(row(before, at), row(after, at));
    assert.deepEqual([...after.train.inputs], [...before.train.inputs]);
  });

  test("an RGB folder distils end to end with conv layers; the export takes raw 0–255 [N, 3, 28, 28]", async () => {
    const cfg = join(dir, "rgb.yaml");
    writeFileSync(cfg, `name: rgb-folder\noutput: ${join(dir, "runs", "rgb")}\ndata: { format: image-folder, train: ${join(rgb, "train")}, test: ${join(rgb, "test")}, validation: 50 }\n` +
      tinyModels("[ {type: conv, filters: 4, kernel: 5}, {type: relu}, {type: maxpool, size: 4}, {type: flatten}, {type: linear, units: 10} ]",
        "[ {type: conv, filters: 8, kernel: 5}, {type: relu}, {type: maxpool, size: 2}, {type: flatten}, {type: linear, units: 10} ]"));
    const r = cli(["run", cfg, "--quiet"]);
    assert.equal(r.status, 0, r.stderr);
    const results = JSON.parse(readFileSync(join(dir, "runs", "rgb", "results.json"), "utf8")) as RunResults;
    assert.equal(results.dataset, "rgb");
    assert.equal(results.data?.test, 100);
    const student = readFileSync(join(dir, "runs", "rgb", "student.onnx"));
    const m = decodeModel(student);
    assert.deepEqual(m.inputs[0]!.shape, ["batch", 3, 28, 28]);
    assert.equal(JSON.parse(m.metadata["distill.data"]!).format, "image-folder");
    // `distill eval` finds the test folder through the model's metadata.
    const ev = cli(["eval", join(dir, "runs", "rgb", "student.onnx"), "--json"]);
    assert.equal(ev.status, 0, ev.stderr);
    assert.equal(JSON.parse(ev.stdout).errors, results.models.find((x) => x.role === "student")!.perSeed[0]!.errors);
  });

  test("bad folders: one line naming the folder or file, exit 2, nothing written", async () => {
    const bad = join(dir, "bad");
    const cases: [string, () => Promise<void> | void, RegExp][] = [
      ["empty", () => void mkdirSync(join(bad, "empty", "train"), { recursive: true }), /empty\/train: data\.train: no class sub-folders/],
      ["noimages", async () => {
        await writeFolder(join(bad, "noimages", "train"), 30);
        mkdirSync(join(bad, "noimages", "train", "extra"));
      }, /noimages\/train\/extra: data\.train: class folder has no \.png, \.jpg or \.jpeg images/],
      ["unreadable", async () => {
        await writeFolder(join(bad, "unreadable", "train"), 30);
        writeFileSync(join(bad, "unreadable", "train", "3", "broken.png"), "not a png at all");
      }, /unreadable\/train\/3\/broken\.png: cannot read the image/],
      ["mixed", async () => {
        await writeFolder(join(bad, "mixed", "train"), 30);
        await sharp(new Uint8Array(600), { raw: { width: 20, height: 30, channels: 1 } }).toColourspace("b-w").png().toFile(join(bad, "mixed", "train", "5", "zz-odd.png"));
      }, /mixed\/train\/5\/zz-odd\.png: is 20×30 pixels but the first training image is 28×28; set data\.image\.width/],
      ["newclass", async () => {
        await writeFolder(join(bad, "newclass", "train"), 30);
        await writeFolder(join(bad, "newclass", "test"), 5, mnist.test);
        // A class folder training does not have (one image inside, so only the name is wrong).
        await writeFolder(join(bad, "newclass", "test", "cat"), 1);
      }, /newclass\/test\/cat: data\.test: class "cat" is not among the training classes/],
    ];
    for (const [name, make, message] of cases) {
      await make();
      if (!existsSync(join(bad, name, "test"))) await writeFolder(join(bad, name, "test"), 10, mnist.test);
      const cfg = join(bad, `${name}.yaml`);
      const out = join(bad, "runs", name);
      writeFileSync(cfg, `name: ${name}\noutput: ${out}\ndata: { format: image-folder, train: ${join(bad, name, "train")}, test: ${join(bad, name, "test")} }\n` +
        tinyModels("[ {type: linear, units: 10} ]", "[ {type: linear, units: 10} ]"));
      const r = cli(["run", cfg]);
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${name}: one line: ${r.stderr}`);
      assert.ok(!existsSync(out), `${name}: no run folder left behind`);
    }
  });
});

describe("CSV tables", () => {
  const csvDir = join(dir, "csv");
  mkdirSync(csvDir, { recursive: true });
  const train = join(csvDir, "train.csv"), testFile = join(csvDir, "test.csv");

  test("a numeric CSV distils end to end; standardisation is inside the exported graph", async () => {
    pooledCsv(train, 0, 1500);
    pooledCsv(testFile, 0, 400, mnist.test);
    const ds = await loadData({ format: "csv", train, test: testFile, label: "digit" });
    assert.equal(ds.featureNames!.length, 49);
    assert.deepEqual(ds.train.sampleShape, [49]);
    assert.equal(ds.train.kind, "table");
    const cfg = join(csvDir, "run.yaml");
    writeFileSync(cfg, `name: pooled\noutput: ${join(dir, "runs", "csv")}\nseeds: 2\ndata: { format: csv, train: ${train}, test: ${testFile}, label: digit, validation: 150 }\n` +
      tinyModels("[ {type: linear, units: 10} ]", "[ {type: linear, units: 64}, {type: relu}, {type: linear, units: 10} ]", 4));
    const r = cli(["run", cfg, "--quiet"]);
    assert.equal(r.status, 0, r.stderr);
    const results = JSON.parse(readFileSync(join(dir, "runs", "csv", "results.json"), "utf8")) as RunResults;
    const student = results.models.find((x) => x.role === "student")!;
    assert.ok(student.summary.accuracy.mean > 0.75, `a linear model on pooled digits learns: ${student.summary.accuracy.mean}`);
    // Raw feature values in (no preprocessing of ours), the same errors as the run measured.
    const bytes = readFileSync(join(dir, "runs", "csv", "student.onnx"));
    const meta = decodeModel(bytes).metadata;
    assert.equal(JSON.parse(meta["distill.feature_names"]!)[48], "p48");
    const c = await OnnxClassifier.fromBytes(bytes, "student");
    const logits = await c.logits(ds.test, Int32Array.from({ length: 400 }, (_, i) => i));
    await c.dispose();
    let errors = 0;
    for (let i = 0; i < 400; i++) {
      const row = Array.from(logits.subarray(i * 10, i * 10 + 10));
      if (row.indexOf(Math.max(...row)) !== ds.test.labels[i]) errors++;
    }
    assert.equal(errors, student.perSeed[0]!.errors);
    const ev = cli(["eval", join(dir, "runs", "csv", "student.onnx"), "--json"]);
    assert.equal(ev.status, 0, ev.stderr);
    assert.equal(JSON.parse(ev.stdout).errors, errors);
  });

  test("testFraction holds out a seeded share of the training file", async () => {
    const ds = await loadData({ format: "csv", train, testFraction: 0.2, label: "digit" });
    assert.equal(ds.test.count, 300);
    assert.equal(ds.train.count, 1200);
    const again = await loadData({ format: "csv", train, testFraction: 0.2, label: "digit" });
    assert.deepEqual([...again.test.labels], [...ds.test.labels]);
    assert.throws(() => holdOut(ds.train, 0.0001), /leaves no test samples/);
  });

  test("bad CSVs: one line naming file, row and column, exit 2, nothing written", () => {
    const cases: [string, (rows: string[][]) => void, string, RegExp][] = [
      ["ragged", (rows) => rows[6]!.pop(), "", /ragged\.csv: row 8: has 49 cells, the header has 50 columns/],
      ["textcell", (rows) => (rows[2]![10] = "n/a"), "", /textcell\.csv: row 4: column "p10": "n\/a" is not a number/],
      ["missingcell", (rows) => (rows[3]![0] = ""), "", /missingcell\.csv: row 5: column "p0" is missing or empty/],
      ["nolabel", () => {}, "label: kind", /nolabel\.csv: data\.label: no column or field "kind"/],
    ];
    for (const [name, edit, extra, message] of cases) {
      const file = join(csvDir, `${name}.csv`);
      pooledCsv(file, 0, 60, mnist.train, edit);
      const cfg = join(csvDir, `${name}.yaml`);
      const out = join(csvDir, "runs", name);
      writeFileSync(cfg, `name: ${name}\noutput: ${out}\ndata: { format: csv, train: ${file}, test: ${testFile}, ${extra || "label: digit"} }\n` + tinyModels("[ {type: linear, units: 10} ]", "[ {type: linear, units: 10} ]"));
      const r = cli(["run", cfg]);
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${name}: ${r.stderr}`);
      assert.ok(!existsSync(out), name);
    }
    // A test label the training data never had.
    const few = join(csvDir, "few.csv");
    pooledCsv(few, 0, 200, mnist.train, (rows) => rows.splice(0, rows.length, ...rows.filter((r) => r[49] !== "9")));
    const r = cli(["run", (() => {
      const cfg = join(csvDir, "few.yaml");
      writeFileSync(cfg, `name: few\noutput: ${join(csvDir, "runs", "few")}\ndata: { format: csv, train: ${few}, test: ${testFile}, label: digit }\n` + tinyModels("[ {type: linear, units: 10} ]", "[ {type: linear, units: 10} ]"));
      return cfg;
    })()]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /test\.csv: row \d+: label "9" \(column digit\) does not occur in the training data/);
    assert.ok(!existsSync(join(csvDir, "runs", "few")));
  });

  test("the data block's own mistakes are config errors naming the key", () => {
    const base = { name: "x", teacher: { model: { layers: [{ type: "linear", units: 2 }] }, train: { epochs: 1, optimizer: { kind: "sgd", lr: 0.1 } } }, student: { model: { layers: [{ type: "linear", units: 2 }] }, train: { epochs: 1, optimizer: { kind: "sgd", lr: 0.1 } } } };
    const bad = (data: object, message: RegExp) => assert.throws(() => configFromObject({ ...base, data }, "c.yaml"), message);
    bad({ format: "csv", train: "a.csv", test: "b.csv" }, /data\.label: required with format: csv/);
    bad({ format: "csv", train: "a.csv", label: "y" }, /data\.test: required with format: csv \(or testFraction/);
    bad({ dataset: "mnist", train: "a.csv" }, /data\.train: only used with format/);
    bad({ format: "image-folder", train: "t", test: "u", image: { width: 10 } }, /data\.image: give both width and height/);
    bad({}, /data: needs dataset \(mnist, fashion-mnist\) or format/);
  });
});

describe("texts (JSON lines)", () => {
  const textDir = join(dir, "text");
  mkdirSync(textDir, { recursive: true });
  const { train, test: held } = uciSplit(900, 1);
  const jsonl = (path: string, s: { texts: string[]; labels: number[] }, edit?: (lines: string[]) => void) => {
    const lines = s.texts.map((text, i) => JSON.stringify({ text, sentiment: s.labels[i] ? "positive" : "negative" }));
    edit?.(lines);
    writeFileSync(path, lines.join("\n") + "\n");
  };
  const trainFile = join(textDir, "train.jsonl"), testFile = join(textDir, "test.jsonl");
  jsonl(trainFile, train);
  jsonl(testFile, { texts: held.texts.slice(0, 300), labels: held.labels.slice(0, 300) });
  const models = tinyModels("[ {type: embedding, dims: 8}, {type: meanpool}, {type: linear, units: 2} ]", "[ {type: embedding, dims: 16}, {type: meanpool}, {type: linear, units: 2} ]", 12);

  test("UCI sentences distil end to end; the exported student takes raw strings; two-class metrics", async () => {
    const cfg = join(textDir, "run.yaml");
    writeFileSync(cfg, `name: uci\noutput: ${join(dir, "runs", "text")}\ndata: { format: jsonl, train: ${trainFile}, test: ${testFile}, text: text, label: sentiment, maxTokens: 32, validation: 100 }\n` + models);
    const r = cli(["run", cfg, "--quiet"]);
    assert.equal(r.status, 0, r.stderr);
    const results = JSON.parse(readFileSync(join(dir, "runs", "text", "results.json"), "utf8")) as RunResults;
    assert.equal(results.dataset, "text", "named after the folder of train.jsonl");
    const student = results.models.find((m) => m.role === "student")!.perSeed[0]!;
    assert.ok(student.accuracy > 0.6, `learns sentiment: ${student.accuracy}`);
    for (const key of ["precision", "recall", "f1", "rocAuc"] as const) assert.ok(typeof student[key] === "number" && student[key]! > 0.5, `${key} ${student[key]}`);
    assert.deepEqual(results.details!.disagreements.every((d) => typeof d.text === "string" && d.pixels === undefined), true);
    // The .onnx takes strings: classes in sorted order (negative, positive), the test set's errors reproduced from raw text.
    const bytes = readFileSync(join(dir, "runs", "text", "student.onnx"));
    const c = await OnnxClassifier.fromBytes(bytes, "student");
    assert.equal(c.inputDType, "string");
    const ds = await loadData({ format: "jsonl", train: trainFile, test: testFile, text: "text", label: "sentiment", maxTokens: 32 }, { cacheDir });
    assert.deepEqual(ds.classLabels, ["negative", "positive"]);
    const logits = await c.logits(ds.test, Int32Array.from({ length: 300 }, (_, i) => i));
    await c.dispose();
    let errors = 0;
    for (let i = 0; i < 300; i++) if ((logits[2 * i + 1]! > logits[2 * i]! ? 1 : 0) !== ds.test.labels[i]) errors++;
    assert.equal(errors, student.errors);
    const ev = cli(["eval", join(dir, "runs", "text", "student.onnx"), "--json"]);
    assert.equal(ev.status, 0, ev.stderr);
    assert.equal(JSON.parse(ev.stdout).errors, errors);
  });

  test("bad JSON lines: one line naming file and line, exit 2, nothing written", () => {
    const cases: [string, (lines: string[]) => void, string, RegExp][] = [
      ["notjson", (l) => (l[4] = "{text: unquoted}"), "", /notjson\.jsonl: line 5: not JSON/],
      ["notobject", (l) => (l[2] = "[1, 2]"), "", /notobject\.jsonl: line 3: expected a JSON object/],
      ["nolabel", () => {}, "label: stars", /nolabel\.jsonl: data\.label: no column or field "stars"/],
      ["nottext", (l) => (l[7] = JSON.stringify({ text: 42, sentiment: "positive" })), "", /nottext\.jsonl: line 8: field "text" is not a string \(42\)/],
    ];
    for (const [name, edit, extra, message] of cases) {
      const file = join(textDir, `${name}.jsonl`);
      jsonl(file, { texts: train.texts.slice(0, 60), labels: train.labels.slice(0, 60) }, edit);
      const cfg = join(textDir, `${name}.yaml`);
      const out = join(textDir, "runs", name);
      writeFileSync(cfg, `name: ${name}\noutput: ${out}\ndata: { format: jsonl, train: ${file}, test: ${testFile}, text: text, ${extra || "label: sentiment"} }\n` + models);
      const r = cli(["run", cfg]);
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, message, name);
      assert.equal(r.stderr.trim().split("\n").length, 1, `${name}: ${r.stderr}`);
      assert.ok(!existsSync(out), name);
    }
  });
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
