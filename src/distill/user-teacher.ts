// A teacher the user brings: an .onnx model adapted to distill's contract (raw inputs in, logits
// out, the run's data recorded), or a file of its outputs read against the run's data. Shared by
// `distill run` and `distill label`.

import { readModelFile, OnnxClassifier } from "../eval/evaluate.js";
import { dataName, type DistillConfig } from "../config/schema.js";
import { dataMetadata } from "../data/load.js";
import { imageShape, sampleSize, type Dataset } from "../data/sample-set.js";
import { UserError } from "../errors.js";
import { prepareTeacher, withDataRecord, type TeacherInterface } from "./teacher-adapter.js";
import { loadFileTeacher, type FileTeacher, type SoftTargetFileSpec } from "./soft-target-file.js";

/** What reading a user's teacher needs of a run: its config and data, and which samples train. */
export interface TeacherData {
  config: DistillConfig;
  dataset: Dataset;
  trainIndices: Int32Array;
  transferIndices: Int32Array;
  validationIndices: Int32Array;
}

/**
 * A file of soft targets read against the run's data (`copy`: the run folder's, on a resume). Every
 * sample the teacher is asked about needs a row: the transfer set and the validation split.
 */
export function openFileTeacher(plan: Pick<TeacherData, "dataset" | "transferIndices" | "validationIndices">, spec: SoftTargetFileSpec, field: string, copy?: string): FileTeacher {
  const needed = Int32Array.from(new Set([...plan.transferIndices, ...plan.validationIndices])).sort();
  return loadFileTeacher(copy ? { ...spec, softTargets: copy } : spec, plan.dataset.train, plan.dataset.classLabels, needed, field);
}

/**
 * A user's teacher, adapted to raw pixels in, logits out (src/distill/teacher-adapter.ts) and checked
 * before anything is written, so a wrong teacher leaves no run folder behind.
 */
export async function loadUserTeacher(plan: Pick<TeacherData, "config" | "dataset" | "trainIndices">, spec: TeacherInterface & { onnx: string }): Promise<OnnxClassifier> {
  const teacher = await OnnxClassifier.fromBytes(await adaptedTeacher(plan, spec), spec.onnx);
  try {
    checkTeacher(plan, teacher, spec.onnx);
  } catch (err) {
    await teacher.dispose();
    throw err;
  }
  return teacher;
}

/** The user's .onnx teacher in distill's contract, naming the run's data; "auto" outputs are judged on 64 training images. */
export async function adaptedTeacher(plan: Pick<TeacherData, "config" | "dataset" | "trainIndices">, spec: TeacherInterface & { onnx: string }): Promise<Uint8Array> {
  const path = spec.onnx;
  const bytes = readModelFile(path);
  const { dataset, trainIndices } = plan;
  // Non-image samples look to the adapter like one channel of 1 × features values.
  const image = dataset.train.kind === "image" ? imageShape(dataset.train) : { channels: 1, height: 1, width: sampleSize(dataset.train) };
  const adapted = await prepareTeacher(bytes, spec, image, path, async (adapted) => {
    const probe = await OnnxClassifier.fromBytes(adapted, path);
    try {
      return { scores: await probe.logits(dataset.train, trainIndices.subarray(0, 64)), classes: probe.numClasses };
    } finally {
      await probe.dispose();
    }
  });
  return withDataRecord(adapted, { "distill.dataset": dataName(plan.config.data), ...dataMetadata(plan.config.data, dataset) });
}

export function checkTeacher(plan: Pick<TeacherData, "dataset">, teacher: OnnxClassifier, where: string): void {
  const { dataset } = plan;
  teacher.checkFits(dataset.train, `${dataset.name} training samples`);
  if (teacher.numClasses !== dataset.classLabels.length)
    throw new UserError(where, `the teacher outputs ${teacher.numClasses} classes, but the student and ${dataset.name} have ${dataset.classLabels.length}`);
}
