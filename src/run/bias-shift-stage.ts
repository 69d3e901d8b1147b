// Hinton et al. (2015) §3's transfer set without some classes: students with those classes' bias raised.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { estimateBiasShift, withLogitShift } from "../eval/bias-correction.js";
import { OnnxClassifier } from "../eval/evaluate.js";
import type { RunFolder } from "../distill/run-folder.js";
import { writeFileAtomic } from "../util/fs.js";
import type { Plan } from "./plan.js";
import { mainTeacherScores } from "./teacher-scores.js";

/**
 * Hinton et al. (2015) §3: students distilled without some classes, with those classes' output bias
 * raised — by data.omittedClassShift when given ("student-bias-given"), and by the shift estimated
 * on the validation split's inputs, labels unused ("student-bias-estimated", src/eval/bias-correction.ts).
 */
export async function biasShiftedStudents(plan: Plan, run: RunFolder): Promise<{ role: string; files: string[] }[]> {
  const { config, dataset, omittedClasses, validationIndices } = plan;
  if (omittedClasses.length === 0) return [];
  const k = dataset.classLabels.length;
  const folder = join(run.dir, "bias-shifted");
  const state = run.state.biasShift ?? { classes: omittedClasses.map((c) => dataset.classLabels[c]!), given: config.data.omittedClassShift ?? null, estimated: {}, estimatedOn: `${validationIndices.length} validation inputs (labels unused)` };
  const variants: { role: string; files: string[] }[] = [];
  const shiftOf = (shift: number) => Float32Array.from({ length: k }, (_, c) => (omittedClasses.includes(c) ? shift : 0));
  const given = config.data.omittedClassShift;
  const make = async (role: string, seed: number, shift: () => Promise<Float32Array>) => {
    const file = join(folder, `${role}-s${seed}.onnx`);
    if (!existsSync(file)) writeFileAtomic(file, withLogitShift(readFileSync(run.modelPath("student", seed)), await shift(), run.modelPath("student", seed)));
    return file;
  };
  if (given !== undefined) variants.push({ role: "student-bias-given", files: await Promise.all(config.seeds.map((seed) => make("student-bias-given", seed, async () => shiftOf(given)))) });
  const teacher = await mainTeacherScores(plan, run);
  try {
    const teacherLogits = (await teacher.logits(validationIndices, "teacher-validation")).logits;
    const files: string[] = [];
    for (const seed of config.seeds) {
      files.push(await make("student-bias-estimated", seed, async () => {
        const student = await OnnxClassifier.fromFile(run.modelPath("student", seed));
        try {
          const shift = estimateBiasShift(await student.logits(dataset.train, validationIndices), teacherLogits, k, omittedClasses);
          state.estimated[seed] = omittedClasses.map((c) => Math.round(shift[c]! * 1000) / 1000);
          return shift;
        } finally {
          await student.dispose();
        }
      }));
    }
    variants.push({ role: "student-bias-estimated", files });
  } finally {
    await teacher.dispose();
  }
  run.state.biasShift = state;
  run.saveState();
  return variants;
}
