// Which samples each stage of a run sees. One function, so that `distill run` and anything that
// must reproduce its sets exactly (the labelling pass whose cache a run reuses) agree by construction.
//
//   dataset.train = the labelled training source, followed by any unlabelled transfer samples
//                   and any jittered copies of its images (data.jitteredCopies)
//   trainIndices      labelled examples the models train on (the baseline's whole world)
//   validationIndices labelled examples held out for per-epoch validation and the teacher report
//   transferIndices   what the teacher labels: trainIndices, their jittered copies, then the unlabelled samples

import { validationSize, type DistillConfig } from "../config/schema.js";
import { loadData, type LoadOptions } from "../data/load.js";
import type { Dataset } from "../data/sample-set.js";
import { appendJitteredCopies } from "../data/augment.js";
import { allIndices, firstN, splitTrainValidation } from "../data/split.js";
import { loadUnlabeled, type UnlabeledPart } from "../data/unlabeled.js";
import { UserError } from "../errors.js";
import { dataGeometry, type DataGeometry } from "../nn/spec.js";

export interface DataPlan {
  dataset: Dataset;
  /** The students' labelled training examples (without data.transferOmits' classes). */
  trainIndices: Int32Array;
  /** The teacher's, when trained here: every labelled training example. */
  teacherTrainIndices: Int32Array;
  /** data.transferOmits as class indices (empty: none omitted). */
  omittedClasses: number[];
  validationIndices: Int32Array;
  testIndices: Int32Array;
  /** The unlabelled transfer samples (indices into dataset.train, after the labelled ones); empty when none. */
  unlabeledIndices: Int32Array;
  /** data.jitteredCopies: shifted copies of the trainIndices images (labelled like them); empty when none. */
  copyIndices: Int32Array;
  /** The teacher's labelling pass: trainIndices, copyIndices, then unlabeledIndices. */
  transferIndices: Int32Array;
  /** Whether the training examples' labels are used (false: data.transfer is unlabeled). */
  labeled: boolean;
  /** Where the unlabelled samples came from (data.unlabeled), in order. */
  unlabeledParts: UnlabeledPart[];
  /**
   * With labels and unlabelled samples: the share of each distilled student's batch that carries labels
   * (data.labeledShare, else the labelled share of the transfer set). 1 when there is nothing to mix.
   */
  labeledShare: number;
  /**
   * The input statistics the models' graphs normalise with, from the training source alone: adding
   * unlabelled data changes neither the teacher nor the baseline.
   */
  geometry: DataGeometry;
}

export async function planData(config: DistillConfig, configPath: string, load: LoadOptions = {}): Promise<DataPlan> {
  let dataset = await loadData(config.data, load);
  const geometry = dataGeometry(dataset.train, dataset.vocabularySize);
  const trainPool = firstN(allIndices(dataset.train.count), config.data.trainLimit ?? undefined);
  const validation = validationSize(config.data, trainPool.length);
  if (validation >= trainPool.length)
    throw new UserError(configPath, `data.validation: ${validation} validation examples leave none of the ${trainPool.length} training examples for training; set data.validation below ${trainPool.length} (or leave it out: a twelfth of the pool)`);
  // The split is a property of the data, not of the seed: every seed and stage sees the same one.
  const split = splitTrainValidation(trainPool.length, validation, 0);
  const teacherTrainIndices = pick(trainPool, split.train);
  const omittedClasses = (config.data.transferOmits ?? []).map((c) => classIndex(c, dataset.classLabels, configPath));
  const trainIndices = omittedClasses.length ? teacherTrainIndices.filter((idx) => !omittedClasses.includes(dataset.train.labels[idx]!)) : teacherTrainIndices;
  if (trainIndices.length === 0) throw new UserError(configPath, `data.transferOmits: leaves no training examples`);
  if (omittedClasses.length && validation === 0) throw new UserError(configPath, "data.transferOmits: the omitted classes' bias shift is estimated on the validation split's inputs; set data.validation above 0");
  let unlabeledIndices: Int32Array = new Int32Array(0), unlabeledParts: UnlabeledPart[] = [];
  if (config.data.unlabeled) {
    const extra = await loadUnlabeled(config.data.unlabeled, dataset, { ...load, poolEnd: trainPool.length, ...(config.data.text ? { textField: config.data.text } : {}) });
    dataset = { ...dataset, train: extra.train };
    unlabeledIndices = extra.indices;
    unlabeledParts = extra.parts;
  }
  let copyIndices: Int32Array = new Int32Array(0);
  const jittered = config.data.jitteredCopies;
  if (jittered) {
    if (dataset.train.kind !== "image") throw new UserError(configPath, `data.jitteredCopies: shifts images, but this data holds ${dataset.train.kind === "table" ? "table rows" : "texts"}; leave it out`);
    const grown = appendJitteredCopies(dataset.train, trainIndices, jittered.copies, jittered.jitter);
    dataset = { ...dataset, train: grown.set };
    copyIndices = grown.indices;
  }
  checkAugmentations(config, dataset.train.kind, configPath);
  const labeled = config.data.transfer === "labeled";
  const mixing = labeled && unlabeledIndices.length > 0;
  return {
    dataset,
    trainIndices,
    teacherTrainIndices,
    omittedClasses,
    validationIndices: pick(trainPool, split.validation),
    testIndices: firstN(allIndices(dataset.test.count), config.data.testLimit ?? undefined),
    unlabeledIndices,
    copyIndices,
    transferIndices: concat(concat(trainIndices, copyIndices), unlabeledIndices),
    labeled,
    unlabeledParts,
    geometry,
    labeledShare: mixing ? config.data.labeledShare ?? (trainIndices.length + copyIndices.length) / (trainIndices.length + copyIndices.length + unlabeledIndices.length) : 1,
  };
}

const AUGMENTS = { jitter: "shifts", flip: "mirrors", mixup: "mixes" } as const;

/** Jitter, flips and mixup change images: any of them on tables or texts is refused, naming the field. */
function checkAugmentations(config: DistillConfig, kind: Dataset["train"]["kind"], configPath: string): void {
  if (kind === "image") return;
  const stages = [["teacher.train", config.teacher?.train], ["student.train", config.student.train]] as const;
  for (const [key, train] of stages) {
    if (!train) continue;
    const used = (Object.keys(AUGMENTS) as (keyof typeof AUGMENTS)[]).find((k) => (k === "jitter" ? train.jitter > 0 : train[k] !== undefined && train[k] !== false));
    if (used) throw new UserError(configPath, `${key}.${used}: ${AUGMENTS[used]} images, but this data holds ${kind === "table" ? "table rows" : "texts"}; leave it out`);
  }
}

/** A class named by its label (or, when no label matches, its index). */
function classIndex(c: string | number, labels: string[], configPath: string): number {
  const byLabel = labels.indexOf(String(c));
  if (byLabel >= 0) return byLabel;
  if (typeof c === "number" && c < labels.length) return c;
  throw new UserError(configPath, `data.transferOmits: ${JSON.stringify(c)} is not a class of this data (${labels.join(", ")})`);
}

function pick(pool: Int32Array, positions: Int32Array): Int32Array {
  const out = new Int32Array(positions.length);
  for (let i = 0; i < positions.length; i++) out[i] = pool[positions[i]!]!;
  return out;
}

function concat(a: Int32Array, b: Int32Array): Int32Array {
  if (b.length === 0) return a;
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
