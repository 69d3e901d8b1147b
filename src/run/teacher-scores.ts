// The run's teacher as one interface, whatever it is: a model (its passes cached like soft
// targets) or a file of its outputs (rows read, no passes).

import { readFileSync } from "node:fs";
import { OnnxClassifier } from "../eval/evaluate.js";
import type { RunFolder } from "../distill/run-folder.js";
import { defaultCacheDir, teacherSoftTargets } from "../distill/soft-targets.js";
import type { FileTeacher } from "../distill/soft-target-file.js";
import { checkTeacher } from "../distill/user-teacher.js";
import type { Plan } from "./plan.js";

/** What a teacher gives the run: its logits on training-source samples, from a model (cached passes) or a file. */
export interface TeacherScores {
  classes: number;
  /** The model, when the teacher is one (taps need it). */
  classifier?: OnnxClassifier;
  /** The file, when the teacher is a file of soft targets. */
  file?: FileTeacher;
  /** Logits on dataset.train at `indices`; `folder`: the cache's sub-folder for a model's passes. */
  logits(indices: Int32Array, folder: string, onProgress?: (done: number) => void): Promise<{ logits: Float32Array; computedSamples: number; key: string }>;
  dispose(): Promise<void>;
}

export function modelScores(plan: Plan, classifier: OnnxClassifier): TeacherScores {
  const cacheDir = plan.opts.cacheDir ?? defaultCacheDir();
  return {
    classes: classifier.numClasses, classifier,
    logits: async (indices, folder, onProgress) => {
      const soft = await teacherSoftTargets({
        teacher: classifier, set: plan.dataset.train, indices, cacheDir, folder,
        ...(onProgress ? { onProgress } : {}), onWarning: (m) => plan.progress.log(`warning: ${m}`),
      });
      return { logits: soft.logits, computedSamples: soft.computedSamples, key: soft.key };
    },
    dispose: () => classifier.dispose(),
  };
}

export function fileScores(file: FileTeacher): TeacherScores {
  return {
    classes: file.classes, file,
    logits: async (indices, _folder, onProgress) => {
      const logits = file.logits(indices);
      onProgress?.(indices.length);
      return { logits, computedSamples: 0, key: file.key(indices) };
    },
    dispose: async () => undefined,
  };
}

/** The run's teacher as scores: the file of soft targets, or the model (the user's, checked on the first start; else the run folder's). */
export async function mainTeacherScores(plan: Plan, run: RunFolder): Promise<TeacherScores> {
  const spec = plan.config.teacher!;
  if (spec.softTargets !== undefined) return fileScores(plan.fileTeacher!);
  const where = spec.onnx ?? run.teacherFile;
  const user = plan.userTeacher;
  // Used once: later stages open the run folder's copy.
  delete plan.userTeacher;
  const teacher = user ?? (await OnnxClassifier.fromBytes(readFileSync(run.teacherFile), where));
  if (!user) {
    try {
      checkTeacher(plan, teacher, where);
    } catch (e) {
      await teacher.dispose();
      throw e;
    }
  }
  return modelScores(plan, teacher);
}
