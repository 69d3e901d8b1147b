// Transfer samples without labels (`data.unlabeled`): read from wherever they are, converted to the
// training data's form (images to its size and channels, texts through its vocabulary) and appended
// to the training set, so every stage keeps addressing samples by one index.

import { existsSync, readFileSync, statSync } from "node:fs";
import { extname } from "node:path";
import type { UnlabeledSource } from "../config/schema.js";
import { UserError } from "../errors.js";
import { loadDataset } from "./datasets.js";
import { readIdx } from "./idx.js";
import { describeSamples, imageShape, sampleSize, type Dataset, type SampleSet } from "./sample-set.js";
import { loadUnlabeledImages } from "./sources/image-folder.js";
import { tokenizeAll } from "./tokenizer.js";

/** The label stored for an appended unlabelled sample (never fed: batches mark such samples themselves). */
export const NO_LABEL = -1;

export interface UnlabeledPart {
  /** How the source is named in results and the report. */
  source: string;
  samples: number;
}

export interface UnlabeledData {
  /** The training set with the unlabelled samples appended (the same object when every source is restOfTrain). */
  train: SampleSet;
  /** Indices into `train` of the unlabelled samples, in source order. */
  indices: Int32Array;
  parts: UnlabeledPart[];
}

export interface UnlabeledOptions {
  cacheDir?: string;
  onProgress?: (split: string, done: number, total: number) => void;
  /** The first index beyond the labelled training pool (data.trainLimit): where restOfTrain starts. */
  poolEnd: number;
  /** data.text: the field of a .jsonl file that holds the text. */
  textField?: string;
}

export async function loadUnlabeled(sources: readonly UnlabeledSource[], dataset: Dataset, o: UnlabeledOptions): Promise<UnlabeledData> {
  const train = dataset.train;
  const appended: SampleSet[] = [];
  const rest: number[] = [];
  const parts: UnlabeledPart[] = [];
  for (const [i, spec] of sources.entries()) {
    const field = `data.unlabeled[${i}]`;
    if (spec.restOfTrain) {
      const end = Math.min(train.count, o.poolEnd + (spec.limit ?? Infinity));
      if (end <= o.poolEnd) throw new UserError(`${field}.restOfTrain`, `the training source has ${train.count} samples, none beyond data.trainLimit (${o.poolEnd})`);
      for (let idx = o.poolEnd; idx < end; idx++) rest.push(idx);
      parts.push({ source: `training samples ${o.poolEnd + 1}–${end} (labels withheld)`, samples: end - o.poolEnd });
      continue;
    }
    let set = spec.dataset ? presetImages(spec.dataset, spec.split ?? "train", train, field) : await fromPath(spec.path!, dataset, field, o);
    if (spec.limit !== undefined && spec.limit < set.count) set = firstSamples(set, spec.limit);
    if (spec.invert) {
      if (set.kind !== "image") throw new UserError(`${field}.invert`, "inverts images, but this source holds texts");
      set = { ...set, inputs: (set.inputs as Uint8Array).map((v) => 255 - v) };
    }
    appended.push(set);
    parts.push({ source: `${spec.dataset ? `${spec.dataset} ${spec.split ?? "train"} images` : spec.path!}${spec.invert ? " (inverted)" : ""}`, samples: set.count });
  }
  const extra = appended.reduce((n, s) => n + s.count, 0);
  const indices = new Int32Array(rest.length + extra);
  indices.set(rest);
  for (let j = 0; j < extra; j++) indices[rest.length + j] = train.count + j;
  return { train: extra ? concatenate(train, appended) : train, indices, parts };
}

function presetImages(name: "mnist" | "fashion-mnist", split: "train" | "test", train: SampleSet, field: string): SampleSet {
  const set = loadDataset(name)[split];
  checkSameImages(set, train, `${field}.dataset`);
  return set;
}

async function fromPath(path: string, dataset: Dataset, field: string, o: UnlabeledOptions): Promise<SampleSet> {
  if (!existsSync(path)) throw new UserError(path, `${field}.path: no such file or folder`);
  const train = dataset.train;
  if (statSync(path).isDirectory()) {
    if (train.kind !== "image") throw new UserError(path, `${field}.path: a folder is read as images, but the training data are ${train.kind === "tokens" ? "texts" : "table rows"}`);
    const { channels, height, width } = imageShape(train);
    return loadUnlabeledImages(path, { channels: channels as 1 | 3, height, width }, `${field}.path`, { ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}), ...(o.onProgress ? { onProgress: (d, t) => o.onProgress!("unlabeled", d, t) } : {}) });
  }
  const ext = extname(path.replace(/\.gz$/i, "")).toLowerCase();
  if (ext === ".jsonl" || ext === ".txt") return texts(path, ext, dataset, field, o.textField);
  if (train.kind !== "image") throw new UserError(path, `${field}.path: expected a .jsonl or .txt file of texts for text data`);
  const idx = readIdx(path);
  if (idx.dims.length !== 3) throw new UserError(path, `${field}.path: expected IDX images [count, rows, cols], got dimensions ${idx.dims.join("×")}`);
  const [count, height, width] = idx.dims as [number, number, number];
  const set: SampleSet = { kind: "image", inputs: idx.data, labels: new Int32Array(count).fill(NO_LABEL), count, sampleShape: [1, height, width] };
  checkSameImages(set, train, `${field}.path`, path);
  return set;
}

/** One text per line (.txt), or the `data.text` field of each JSON line (.jsonl); tokenised with the training vocabulary. */
function texts(path: string, ext: string, dataset: Dataset, field: string, textField: string | undefined): SampleSet {
  const vocabulary = dataset.vocabulary;
  if (!vocabulary) throw new UserError(path, `${field}.path: a file of texts, but the training data are ${dataset.train.kind === "image" ? "images" : "table rows"}`);
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  const out: string[] = [];
  lines.forEach((line, n) => {
    if (!line.trim()) return;
    if (ext === ".txt") return void out.push(line);
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new UserError(`${path}:${n + 1}`, `${field}.path: not valid JSON (${(e as Error).message})`);
    }
    const text = textField && row && typeof row === "object" ? (row as Record<string, unknown>)[textField] : undefined;
    if (typeof text !== "string") throw new UserError(`${path}:${n + 1}`, `${field}.path: no text field "${textField}" (data.text)`);
    out.push(text);
  });
  if (out.length === 0) throw new UserError(path, `${field}.path: no texts in the file`);
  return { kind: "tokens", inputs: tokenizeAll(out, vocabulary), labels: new Int32Array(out.length).fill(NO_LABEL), count: out.length, sampleShape: [vocabulary.maxTokens], texts: out };
}

function checkSameImages(set: SampleSet, train: SampleSet, field: string, where = field): void {
  if (train.kind !== "image") throw new UserError(where, `${field}: holds images, but the training data are ${train.kind === "tokens" ? "texts" : "table rows"}`);
  if (set.sampleShape.join() !== train.sampleShape.join())
    throw new UserError(where, `${field}: images are ${describeSamples(set)}, but the training images are ${describeSamples(train)}`);
}

function firstSamples(set: SampleSet, n: number): SampleSet {
  const size = sampleSize(set);
  return { ...set, inputs: set.inputs.subarray(0, n * size), labels: set.labels.subarray(0, n), count: n, ...(set.texts ? { texts: set.texts.slice(0, n) } : {}), ...(set.ids ? { ids: set.ids.slice(0, n) } : {}) };
}

/** `train` followed by `more` (same kind and sample shape), labels of the appended ones NO_LABEL. */
function concatenate(train: SampleSet, more: SampleSet[]): SampleSet {
  const size = sampleSize(train);
  const count = train.count + more.reduce((n, s) => n + s.count, 0);
  const inputs = new (train.inputs.constructor as new (n: number) => SampleSet["inputs"])(count * size);
  inputs.set(train.inputs.subarray(0, train.count * size));
  const labels = new Int32Array(count).fill(NO_LABEL);
  labels.set(train.labels.subarray(0, train.count));
  let at = train.count;
  for (const s of more) {
    inputs.set(s.inputs.subarray(0, s.count * size), at * size);
    at += s.count;
  }
  const texts = train.texts ? [...train.texts, ...more.flatMap((s) => s.texts ?? [])] : undefined;
  // Ids only when every part has them (an IDX file of images names none).
  const ids = train.ids && more.every((s) => s.ids) ? [...train.ids, ...more.flatMap((s) => s.ids!)] : undefined;
  return { kind: train.kind, inputs, labels, count, sampleShape: train.sampleShape, ...(texts ? { texts } : {}), ...(ids ? { ids } : {}) };
}
