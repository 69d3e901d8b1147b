// The soft-target cache on real MNIST images: a hit hands back exactly what the teacher computes,
// a changed teacher (bytes) or changed pixels of the transfer set is a miss, a wrong-size file is
// recomputed, and a teacher that produces non-finite logits is a one-line UserError. Larger
// transfer sets are cached in chunks: shards labelled into separate folders and merged by copying
// give a run nothing to compute, an interrupted pass keeps its finished chunks, a damaged chunk
// alone is recomputed.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../src/errors.js";
import { loadDataset, type SampleSet } from "../src/data/datasets.js";
import { allIndices, firstN } from "../src/data/split.js";
import { CHUNK_SAMPLES, labelTransferSet, residentSource, teacherSoftTargets } from "../src/distill/soft-targets.js";
import { OnnxClassifier } from "../src/eval/evaluate.js";
import { exportOnnx } from "../src/nn/model.js";
import { buildModel, dataGeometry } from "../src/nn/spec.js";

const mnist = loadDataset("mnist");
const geometry = dataGeometry({ ...mnist.train, inputs: mnist.train.inputs.subarray(0, 1000 * 784), count: 1000 });
const indices = firstN(allIndices(mnist.train.count), 300).map((i) => 2 * i + 7); // not a prefix: the key must follow the indices

/** A small random-weight teacher; `poison` sets one weight to NaN. */
function teacherBytes(seed: number, poison = false): Uint8Array {
  const model = buildModel({ input: "flat", layers: [{ type: "linear", units: 10 }] }, mnist.classLabels, geometry);
  const params = model.initParameters(seed);
  if (poison) params.get("linear1.weight").data[123] = NaN;
  return exportOnnx(model, params);
}

/** Logits straight from a fresh session, bypassing the cache. */
async function direct(bytes: Uint8Array, set: SampleSet): Promise<Float32Array> {
  const c = await OnnxClassifier.fromBytes(bytes, "direct");
  try {
    return await c.logits(set, indices);
  } finally {
    await c.dispose();
  }
}

async function softTargets(bytes: Uint8Array, set: SampleSet, cacheDir: string) {
  const teacher = await OnnxClassifier.fromBytes(bytes, "teacher.onnx");
  try {
    const r = await teacherSoftTargets({ teacher, set, indices, cacheDir });
    return { ...r, forwardPasses: teacher.samplesRun };
  } finally {
    await teacher.dispose();
  }
}

describe("soft-target cache", () => {
  it("a hit runs no teacher pass and returns the teacher's logits bit for bit", async () => {
    const cache = mkdtempSync(join(tmpdir(), "distill-st-"));
    const bytes = teacherBytes(0);
    const miss = await softTargets(bytes, mnist.train, cache);
    assert.deepEqual([miss.computedSamples, miss.forwardPasses], [300, 300]);
    const hit = await softTargets(bytes, mnist.train, cache);
    assert.deepEqual([hit.computedSamples, hit.forwardPasses], [0, 0]);
    assert.equal(hit.key, miss.key);
    assert.deepEqual(hit.logits, await direct(bytes, mnist.train), "the cached rows are the teacher's logits, in index order");
    assert.equal(statSync(hit.files[0]!).size, 40 + 300 * 10 * 4); // magic + SHA-256 + logits
  });

  it("another teacher (different bytes) is a miss with its own logits", async () => {
    const cache = mkdtempSync(join(tmpdir(), "distill-st-"));
    const a = await softTargets(teacherBytes(0), mnist.train, cache);
    const b = await softTargets(teacherBytes(1), mnist.train, cache);
    assert.notEqual(b.key, a.key);
    assert.deepEqual([b.computedSamples, b.forwardPasses], [300, 300]);
    assert.deepEqual(b.logits, await direct(teacherBytes(1), mnist.train));
    assert.notDeepEqual(b.logits, a.logits);
    assert.equal(readdirSync(join(cache, "soft-targets")).filter((f) => f.endsWith(".bin")).length, 2);
  });

  it("changed pixels of a transfer image are a miss; pixels outside the transfer set are not", async () => {
    const cache = mkdtempSync(join(tmpdir(), "distill-st-"));
    const bytes = teacherBytes(0);
    const a = await softTargets(bytes, mnist.train, cache);
    const images = mnist.train.inputs.slice(0, 1000 * 784);
    const copy: SampleSet = { ...mnist.train, inputs: images, count: 1000 };
    images[8 * 784 + 400] = 255 - images[8 * 784 + 400]!; // index 8 is not in the set (odd indices only)
    const outside = await softTargets(bytes, copy, cache);
    assert.deepEqual([outside.key, outside.computedSamples], [a.key, 0]);
    images[indices[150]! * 784 + 400] = 255 - images[indices[150]! * 784 + 400]!;
    const changed = await softTargets(bytes, copy, cache);
    assert.notEqual(changed.key, a.key);
    assert.deepEqual([changed.computedSamples, changed.forwardPasses], [300, 300]);
    assert.deepEqual(changed.logits, await direct(bytes, copy));
  });

  it("a cache file of the wrong size is recomputed and rewritten", async () => {
    const cache = mkdtempSync(join(tmpdir(), "distill-st-"));
    const bytes = teacherBytes(0);
    const a = await softTargets(bytes, mnist.train, cache);
    const whole = readFileSync(a.files[0]!);
    // (A same-size corruption is caught by the file's checksum: test/reliability.test.ts.)
    for (const damaged of [whole.subarray(0, whole.length - 40), Buffer.concat([whole, Buffer.alloc(4)]), Buffer.alloc(0)]) {
      writeFileSync(a.files[0]!, damaged);
      const again = await softTargets(bytes, mnist.train, cache);
      assert.deepEqual([again.computedSamples, again.forwardPasses], [300, 300], `recomputed after a ${damaged.length}-byte file`);
      assert.deepEqual(again.logits, a.logits);
      assert.deepEqual(readFileSync(a.files[0]!), whole, "the file is whole again");
    }
  });

  it("non-finite teacher logits: a UserError naming the teacher and the example, nothing cached", async () => {
    const cache = mkdtempSync(join(tmpdir(), "distill-st-"));
    await assert.rejects(softTargets(teacherBytes(0, true), mnist.train, cache), (e: unknown) => {
      assert.ok(e instanceof UserError, `expected a UserError, got ${String(e)}`);
      assert.match(e.message, new RegExp(`^teacher\\.onnx: the teacher's output logits is NaN \\(not a finite logit\\) for training example ${indices[0]}; fix or replace the teacher$`));
      return true;
    });
    const written = existsSync(join(cache, "soft-targets")) ? readdirSync(join(cache, "soft-targets")) : [];
    assert.deepEqual(written, [], "nothing cached, no lock left");
  });
});

describe("chunked soft-target cache: shards, merging, resuming", () => {
  // 20,000 MNIST training images in a shuffled order: chunks 0 and 1 full, chunk 2 of 3,616.
  const many = Int32Array.from({ length: 20_000 }, (_, i) => (i * 7_919) % 60_000);
  const files = (cache: string) => (existsSync(join(cache, "soft-targets")) ? readdirSync(join(cache, "soft-targets")).sort() : []);
  const withTeacher = async <T>(bytes: Uint8Array, f: (t: OnnxClassifier) => Promise<T>): Promise<T & { forwardPasses: number }> => {
    const teacher = await OnnxClassifier.fromBytes(bytes, "teacher.onnx");
    try {
      return { ...(await f(teacher)), forwardPasses: teacher.samplesRun };
    } finally {
      await teacher.dispose();
    }
  };
  const bytes = teacherBytes(2);

  it("shards 0/2 and 1/2 in separate folders, copied into one: nothing to compute, logits equal an unsharded pass bit for bit", async () => {
    assert.equal(Math.ceil(many.length / CHUNK_SAMPLES), 3);
    const whole = mkdtempSync(join(tmpdir(), "distill-st-")), a = mkdtempSync(join(tmpdir(), "distill-st-")), b = mkdtempSync(join(tmpdir(), "distill-st-"));
    const unsharded = await withTeacher(bytes, (teacher) => teacherSoftTargets({ teacher, set: mnist.train, indices: many, cacheDir: whole }));
    assert.equal(unsharded.computedSamples, 20_000);
    const source = residentSource(mnist.train, many);
    const s0 = await withTeacher(bytes, (teacher) => labelTransferSet({ teacher, source, cacheDir: a, shard: { index: 0, count: 2 }, collect: false }));
    const s1 = await withTeacher(bytes, (teacher) => labelTransferSet({ teacher, source, cacheDir: b, shard: { index: 1, count: 2 }, collect: false }));
    // Shard 0 holds chunks 0 and 2, shard 1 chunk 1.
    assert.deepEqual([s0.samples, s0.computedSamples, s0.forwardPasses, files(a).length], [CHUNK_SAMPLES + 3_616, CHUNK_SAMPLES + 3_616, CHUNK_SAMPLES + 3_616, 2]);
    assert.deepEqual([s1.samples, s1.computedSamples, s1.forwardPasses, files(b).length], [CHUNK_SAMPLES, CHUNK_SAMPLES, CHUNK_SAMPLES, 1]);
    assert.equal(s0.logits, undefined, "a labelling pass need not keep the logits");
    const merged = mkdtempSync(join(tmpdir(), "distill-st-"));
    for (const from of [a, b]) for (const f of files(from)) copyFileSync(join(from, "soft-targets", f), join(mkdirp(join(merged, "soft-targets")), f));
    assert.deepEqual(files(merged), files(whole), "the shards' files are the unsharded pass's files");
    const run = await withTeacher(bytes, (teacher) => teacherSoftTargets({ teacher, set: mnist.train, indices: many, cacheDir: merged }));
    assert.deepEqual([run.computedSamples, run.forwardPasses], [0, 0]);
    assert.equal(run.key, unsharded.key);
    assert.deepEqual(Buffer.from(run.logits.buffer), Buffer.from(unsharded.logits.buffer), "bit for bit");
    // And they are the teacher's logits, row by row in index order.
    const direct = await withTeacher(bytes, async (t) => ({ logits: await t.logits(mnist.train, many) }));
    assert.deepEqual(run.logits, direct.logits);
  });

  it("two worker threads (a one-thread session each) write the same chunks, bit for bit, and count their passes", async () => {
    const inThread = await withTeacher(bytes, (teacher) => teacherSoftTargets({ teacher, set: mnist.train, indices: many, cacheDir: mkdtempSync(join(tmpdir(), "distill-st-")) }));
    const cache = mkdtempSync(join(tmpdir(), "distill-st-"));
    const pooled = await withTeacher(bytes, (teacher) => labelTransferSet({ teacher, source: residentSource(mnist.train, many), cacheDir: cache, workers: 2 }));
    assert.deepEqual([pooled.computedSamples, pooled.forwardPasses], [20_000, 20_000]);
    assert.deepEqual(Buffer.from(pooled.logits!.buffer), Buffer.from(inThread.logits.buffer));
    assert.deepEqual(pooled.files, inThread.files.map((f) => join(cache, "soft-targets", f.replace(/^.*\//, ""))));
    // A non-finite logit from a worker is the same one-line error, and leaves no lock behind.
    const poisoned = mkdtempSync(join(tmpdir(), "distill-st-"));
    await assert.rejects(withTeacher(teacherBytes(0, true), (teacher) => labelTransferSet({ teacher, source: residentSource(mnist.train, many), cacheDir: poisoned, workers: 2 })), (e: unknown) => {
      assert.ok(e instanceof UserError);
      assert.match(e.message, /^teacher\.onnx: the teacher's output logits is NaN \(not a finite logit\) for training example \d+; fix or replace the teacher$/);
      return true;
    });
    assert.deepEqual(files(poisoned), []);
  });

  it("an interrupted pass keeps its finished chunks: the next computes only the rest", async () => {
    const cache = mkdtempSync(join(tmpdir(), "distill-st-"));
    const source = residentSource(mnist.train, many);
    // Interrupted in the middle of the third chunk (the progress callback throws after its first batch).
    await assert.rejects(
      withTeacher(bytes, (teacher) => labelTransferSet({ teacher, source, cacheDir: cache, onProgress: (done) => { if (done > 2 * CHUNK_SAMPLES) throw new Error("interrupted"); } })),
      /interrupted/,
    );
    assert.equal(files(cache).length, 2, `two chunk files, no lock left: ${files(cache)}`);
    const resumed = await withTeacher(bytes, (teacher) => teacherSoftTargets({ teacher, set: mnist.train, indices: many, cacheDir: cache }));
    assert.deepEqual([resumed.computedSamples, resumed.forwardPasses], [3_616, 3_616]);
    assert.equal(files(cache).length, 3);
  });

  it("a damaged chunk is reported and recomputed alone", async () => {
    const cache = mkdtempSync(join(tmpdir(), "distill-st-"));
    const first = await withTeacher(bytes, (teacher) => teacherSoftTargets({ teacher, set: mnist.train, indices: many, cacheDir: cache }));
    const damaged = readFileSync(first.files[1]!);
    damaged[damaged.length - 3]! ^= 0x40;
    writeFileSync(first.files[1]!, damaged);
    const warnings: string[] = [];
    const again = await withTeacher(bytes, (teacher) => teacherSoftTargets({ teacher, set: mnist.train, indices: many, cacheDir: cache, onWarning: (w) => warnings.push(w) }));
    assert.deepEqual([again.computedSamples, again.forwardPasses], [CHUNK_SAMPLES, CHUNK_SAMPLES]);
    assert.deepEqual(warnings.map((w) => w.replace(/^.*\//, "")), [`${first.files[1]!.replace(/^.*\//, "")}: damaged cache file (checksum mismatch); recomputing it`]);
    assert.deepEqual(again.logits, first.logits);
  });
});

function mkdirp(path: string): string {
  mkdirSync(path, { recursive: true });
  return path;
}
