// A config's `data:` block → a Dataset, whatever the format: the IDX presets, image folders, CSV
// tables or texts. Everything after this point sees SampleSets only.

import { resolve } from "node:path";
import { UserError } from "../errors.js";
import type { DataSpec } from "../config/schema.js";
import { dataName } from "../config/schema.js";
import { Rng } from "../util/random.js";
import { DATASET_NAMES, loadDataset, type DatasetName } from "./datasets.js";
import { sampleSize, type Dataset, type SampleSet } from "./sample-set.js";
import { loadImageFolders } from "./sources/image-folder.js";
import { loadRecords } from "./sources/records.js";
import { buildVocabulary, tokenizeAll } from "./tokenizer.js";

/** The fields of `data:` a loader reads (so callers holding a partial spec, e.g. model metadata, can load too). */
export type DataSource = Pick<DataSpec, "dataset" | "train" | "test" | "testFraction" | "image" | "label" | "features" | "text"> & Partial<Pick<DataSpec, "format" | "dir" | "maxTokens" | "vocabSize" | "id">>;

export interface LoadOptions {
  /** Where decoded images are cached (default: $DISTILL_CACHE or .cache/distill). */
  cacheDir?: string;
  /** Decoding progress of an image folder's splits. */
  onProgress?: (split: string, done: number, total: number) => void;
}

export async function loadData(data: DataSource, o: LoadOptions = {}): Promise<Dataset> {
  const name = dataName(data);
  const format = data.format ?? "idx";
  if (format === "idx") return loadDataset(data.dataset!, data.dir ?? undefined);
  if (format === "image-folder") {
    const train = data.train as string;
    if (data.test !== undefined) return { name, ...(await loadImageFolders(train, data.test as string, data.image ?? {}, o)) };
    // No test folder: the whole training folder is read (test = a held-out share of it).
    const all = await loadImageFolders(train, train, data.image ?? {}, o);
    return { name, classLabels: all.classLabels, ...holdOut(all.train, data.testFraction!) };
  }
  const records = loadRecords({ format, train: data.train!, test: data.test, label: data.label!, features: data.features, text: data.text, id: data.id });
  if (records.kind === "table") {
    const splits = records.test ? { train: records.train, test: records.test } : holdOut(records.train, data.testFraction!);
    return { name, classLabels: records.classLabels, featureNames: records.featureNames, ...splits };
  }
  // Texts: the held-out share is chosen first, so the vocabulary is built from training texts only.
  const all = records.train;
  let trainTexts = all, testTexts = records.test;
  if (!testTexts) {
    const { train, test } = holdOutIndices(all.texts.length, data.testFraction!);
    const pick = (rows: Int32Array) => ({
      texts: Array.from(rows, (i) => all.texts[i]!), labels: Int32Array.from(rows, (i) => all.labels[i]!),
      ...(all.ids ? { ids: Array.from(rows, (i) => all.ids![i]!) } : {}),
    });
    trainTexts = pick(train);
    testTexts = pick(test);
  }
  const vocabulary = buildVocabulary(trainTexts.texts, { vocabSize: data.vocabSize ?? 20000, maxTokens: data.maxTokens ?? 64 });
  const tokens = (t: { texts: string[]; labels: Int32Array; ids?: string[] }): SampleSet => ({
    kind: "tokens", inputs: tokenizeAll(t.texts, vocabulary), labels: t.labels, count: t.texts.length, sampleShape: [vocabulary.maxTokens], texts: t.texts,
    ...(t.ids ? { ids: t.ids } : {}),
  });
  return { name, classLabels: records.classLabels, train: tokens(trainTexts), test: tokens(testTexts!), vocabulary, vocabularySize: vocabulary.tokens.length };
}

/**
 * Model metadata naming the data, for every model distill writes: where it came from (a preset's
 * name; absolute paths, so `distill eval <model>` can reload the test set from anywhere) and, for
 * tables, the feature names in input order.
 */
export function dataMetadata(data: DataSource, dataset: Dataset): Record<string, string> {
  if ((data.format ?? "idx") === "idx") return { "distill.data": JSON.stringify({ format: "idx", dataset: data.dataset, ...(data.dir ? { dir: resolve(data.dir) } : {}) }) };
  const abs = (p: string | string[] | undefined) => (p === undefined ? undefined : Array.isArray(p) ? p.map((x) => resolve(x)) : resolve(p));
  const source = Object.fromEntries(Object.entries({ ...data, train: abs(data.train), test: abs(data.test) }).filter(([k, v]) => v !== undefined && v !== null && k in SOURCE_KEYS));
  return {
    "distill.data": JSON.stringify(source),
    ...(dataset.featureNames ? { "distill.feature_names": JSON.stringify(dataset.featureNames) } : {}),
  };
}

const SOURCE_KEYS = { format: 1, dataset: 1, dir: 1, train: 1, test: 1, testFraction: 1, image: 1, label: 1, features: 1, text: 1, id: 1, maxTokens: 1, vocabSize: 1 };

/**
 * The dataset to test a model on: the preset `given` (the command's `option`), else the one its
 * metadata records (distill.data, else the preset distill.dataset); a UserError naming the model when neither.
 */
export async function dataOfModel(metadata: Readonly<Record<string, string>>, given: DatasetName | undefined, where: string, why: string, option = "--data"): Promise<Dataset> {
  if (given) return loadDataset(given);
  const recorded = metadata["distill.data"];
  if (recorded) return loadData(JSON.parse(recorded) as DataSource);
  const preset = metadata["distill.dataset"];
  if ((DATASET_NAMES as readonly string[]).includes(preset ?? "")) return loadDataset(preset as DatasetName);
  throw new UserError(where, `its metadata names no data distill can load${preset ? ` (it says ${JSON.stringify(preset)})` : ""}; pass ${option} ${DATASET_NAMES.join("|")} (${why})`);
}

/**
 * Splits one set in two: a seeded share (the same every run, every seed) becomes the test set.
 * Samples keep their relative order within each part.
 */
export function holdOut(set: SampleSet, fraction: number): { train: SampleSet; test: SampleSet } {
  const { train, test } = holdOutIndices(set.count, fraction);
  return { train: subset(set, train), test: subset(set, test) };
}

/** The seeded split behind holdOut: which of `count` samples are test, which training (each in order). */
export function holdOutIndices(count: number, fraction: number): { train: Int32Array; test: Int32Array } {
  const testCount = Math.round(count * fraction);
  if (testCount < 1 || testCount >= count)
    throw new UserError("data.testFraction", `${fraction} of ${count} samples leaves ${testCount < 1 ? "no test samples" : "no training samples"}`);
  const order = Int32Array.from({ length: count }, (_, i) => i);
  new Rng(0, "test-holdout").shuffle(order);
  return { test: order.subarray(0, testCount).slice().sort(), train: order.subarray(testCount).slice().sort() };
}

/** The samples `indices` of `set` as a set of their own. */
export function subset(set: SampleSet, indices: Int32Array): SampleSet {
  const size = sampleSize(set);
  const inputs = new (set.inputs.constructor as new (n: number) => SampleSet["inputs"])(indices.length * size);
  const labels = new Int32Array(indices.length);
  indices.forEach((idx, i) => {
    inputs.set(set.inputs.subarray(idx * size, (idx + 1) * size), i * size);
    labels[i] = set.labels[idx]!;
  });
  return {
    kind: set.kind, inputs, labels, count: indices.length, sampleShape: set.sampleShape,
    ...(set.texts ? { texts: Array.from(indices, (i) => set.texts![i]!) } : {}),
    ...(set.ids ? { ids: Array.from(indices, (i) => set.ids![i]!) } : {}),
  };
}
