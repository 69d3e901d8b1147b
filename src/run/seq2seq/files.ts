// Names a sequence-to-sequence run folder adds to the classifier layout (distill/run-folder.ts):
//
//   source-vocabulary.json  target-vocabulary.json      the data's vocabularies (the exports hold them too)
//   teacher-topk.bin             the teacher's top-k per position on the gold training pairs (word-level)
//   teacher-outputs.jsonl        its beam outputs on the training sources (sequence-level targets)
//   teacher-topk-sequence.bin    its top-k on those outputs (both)
//   student-<method>.onnx        the first seed's distilled student of each method

import type { Seq2SeqKdMethod } from "../../config/seq2seq.js";

/** Stored teacher targets and the method (or store) that needs each. */
export const TEACHER_STORES = [
  { method: "word", file: "teacher-topk.bin" },
  { method: "sequence", file: "teacher-outputs.jsonl" },
  { method: "sequence-topk", file: "teacher-topk-sequence.bin" },
] as const;

export type TeacherStore = (typeof TEACHER_STORES)[number]["method"];

export const storeFile = (store: TeacherStore): string => TEACHER_STORES.find((s) => s.method === store)!.file;

/** The stage (and table row) of a distilled student. */
export const studentStage = (method: Seq2SeqKdMethod): string => `student-${method}`;
