// What every stage trains and evaluates on: a split of a dataset as one flat array of inputs, one
// row per sample, whatever the data's shape — images (pixels 0–255), table rows (raw feature
// values) or texts (token ids). Models are fed exactly these values; normalisation and
// tokenisation rules live in the models' graphs and metadata, not in the feeding code.

import type { DType } from "../engine/graph.js";
import type { Vocabulary } from "./tokenizer.js";

export type InputKind = "image" | "table" | "tokens";

export interface SampleSet {
  kind: InputKind;
  /**
   * count × sampleSize values, row-major. image: Uint8Array pixels 0–255, [C, H, W] per sample;
   * table: Float32Array raw feature values; tokens: Int32Array ids (0 padding, 1 unknown word).
   */
  inputs: Uint8Array | Float32Array | Int32Array;
  /** Class index per sample. */
  labels: Uint8Array | Int32Array;
  count: number;
  /** Per-sample shape: [C, H, W] (image), [features] (table), [maxTokens] (tokens). */
  sampleShape: number[];
  /** tokens: the raw texts, for models that take strings and for showing examples in the report. */
  texts?: string[];
  /**
   * Each sample's name, where the source has one: an image folder's path relative to the folder
   * ("3/img_001.png"), the data.id column of csv and jsonl rows. Matches a soft-target file's rows by id.
   */
  ids?: string[];
}

export interface Dataset {
  /** A preset's name (mnist, fashion-mnist) or the training source's file/folder name. */
  name: string;
  train: SampleSet;
  test: SampleSet;
  classLabels: string[];
  /** table: the feature columns in input order. */
  featureNames?: string[];
  /** tokens: the vocabulary and tokenizer rules the token ids were made with (JSON-serialisable). */
  vocabulary?: Vocabulary;
  /** tokens: every id is below this (padding, unknown and the vocabulary). */
  vocabularySize?: number;
}

export function sampleSize(set: Pick<SampleSet, "sampleShape">): number {
  return set.sampleShape.reduce((a, b) => a * b, 1);
}

/** An image set's [channels, height, width]; throws for other kinds (a programming error). */
export function imageShape(set: Pick<SampleSet, "kind" | "sampleShape">): { channels: number; height: number; width: number } {
  if (set.kind !== "image" || set.sampleShape.length !== 3) throw new Error(`not an image set (kind ${set.kind}, sample shape [${set.sampleShape.join(", ")}])`);
  const [channels, height, width] = set.sampleShape as [number, number, number];
  return { channels, height, width };
}

/** How a set's values are fed to a model: float32 for pixels and features, int64 for token ids. */
export function feedDType(set: Pick<SampleSet, "kind">): Extract<DType, "float32" | "int64"> {
  return set.kind === "tokens" ? "int64" : "float32";
}

/** A feed buffer for `samples` rows of `set`, typed as the model input wants it. */
export function inputBuffer(set: Pick<SampleSet, "kind" | "sampleShape">, samples: number): Float32Array | BigInt64Array {
  const n = samples * sampleSize(set);
  return set.kind === "tokens" ? new BigInt64Array(n) : new Float32Array(n);
}

/** Copies sample `index` of `set` into row `row` of a feed buffer (uint8/float → float32, int32 → int64). */
export function copySample(set: SampleSet, index: number, out: Float32Array | BigInt64Array, row: number): void {
  const size = sampleSize(set);
  const from = set.inputs.subarray(index * size, (index + 1) * size);
  if (out instanceof BigInt64Array) for (let i = 0; i < size; i++) out[row * size + i] = BigInt(from[i]!);
  // TypedArray.set converts element-wise in native code.
  else out.set(from, row * size);
}

/** The rows `indices` of `set` in one new feed buffer. */
export function gatherSamples(set: SampleSet, indices: ArrayLike<number>): Float32Array | BigInt64Array {
  const out = inputBuffer(set, indices.length);
  for (let i = 0; i < indices.length; i++) copySample(set, indices[i]!, out, i);
  return out;
}

/** The labels of `indices`, in order. */
export function gatherLabels(set: SampleSet, indices: ArrayLike<number>): Int32Array {
  const out = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = set.labels[indices[i]!]!;
  return out;
}

/** A one-line description of a set's samples for messages: "28×28 pixels, 1 channel", "12 features", "64 tokens". */
export function describeSamples(set: Pick<SampleSet, "kind" | "sampleShape">): string {
  if (set.kind === "image") {
    const { channels, height, width } = imageShape(set);
    return `${height}×${width} pixels, ${channels} channel${channels === 1 ? "" : "s"}`;
  }
  return set.kind === "table" ? `${set.sampleShape[0]} features` : `${set.sampleShape[0]} token ids`;
}
