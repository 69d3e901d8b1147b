// The `kd:` block: which distillation terms the student is trained with. Three spellings, one
// resolved form `{terms: [{method, weight, …settings}]}` (what config.yaml in a run folder holds):
//   kd: {temperature: 4, alpha: 0.9}                        logit KD (the original form)
//   kd: {method: dkd, beta: 8}                              one method; a method without its own
//                                                           hard-label term gets cross-entropy added
//   kd: {terms: [{method: logit-kd}, {method: fitnet, weight: 0.5, teacher: fc1, student: fc1}]}
// Each term's settings are validated by its method's own schema (src/distill/methods/, registered
// with ./methods.ts so that this layer does not import them).
// Next to the terms, a chain of intermediate teachers (each distilled from the one before with the
// same terms, then teaching the next): `assistants: [model, …]` or `assistants: {count: n}` (sizes
// chosen between teacher and student, ./assistants.ts; teacher assistants, Mirzadeh et al. 2020) and `generations: n` (born-again networks, Furlanello et al. 2018: the student's own
// architecture, n − 1 times, before the final student).
// Several teachers: `teachers: [{onnx: b.onnx, weight: 1}, …]` join the main teacher (weight 1); the
// soft targets are their weighted mean at the terms' temperature, weights as given or, with
// `teacherWeights: accuracy`, each teacher's validation accuracy.
// Where the teacher's outputs come from: `teaching: cached` (the default) computes them once per
// clean transfer sample and caches them; `teaching: consistent` runs the teacher on every training
// batch as the student sees it, augmentations included (function matching, Beyer et al. 2022).

import { z } from "zod";
import { registeredMethods } from "./methods.js";
import { enumOf, nonNegativeNumber, obj, positiveInt, str } from "./fields.js";

export interface KdTerm {
  method: string;
  weight: number;
  [setting: string]: unknown;
}

export interface KdSpec<M = unknown> {
  terms: KdTerm[];
  /** Teacher-assistant models, largest first; absent when none. */
  assistants?: M[];
  /** Born-again generations including the final student; absent when 1. */
  generations?: number;
  /** Further teachers (.onnx, or files of soft targets) whose soft targets are averaged with the main teacher's. */
  teachers?: ExtraTeacher[];
  /** Weigh the teachers by validation accuracy instead of their given weights (absent: given). */
  teacherWeights?: "accuracy";
  /** The teacher runs on each training batch as the student sees it (absent: cached, once per clean sample). */
  teaching?: "consistent";
}

/** Exactly one of onnx and softTargets (id, scores, outputs: as the main teacher's, for a file). */
export interface ExtraTeacher {
  onnx?: string;
  softTargets?: string;
  outputs?: "auto" | "logits" | "probabilities";
  id?: string;
  scores?: string;
  weight: number;
}

const extraTeacherSchema = obj({
  onnx: str("a path to an .onnx file").optional(),
  softTargets: str("a path to a .npy, .jsonl or .csv file").optional(),
  outputs: enumOf(["auto", "logits", "probabilities"]).optional(),
  id: str("a column or field name").optional(),
  scores: str("a field name").optional(),
  weight: nonNegativeNumber().default(1),
}).superRefine((t, ctx) => {
  if ((t.onnx === undefined) === (t.softTargets === undefined))
    ctx.addIssue({ code: "custom", path: [], message: "expected one of onnx (a classifier) or softTargets (a file of its outputs)" });
  else if (t.onnx !== undefined)
    for (const key of ["outputs", "id", "scores"] as const)
      if (t[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: "only used with softTargets" });
});
const teacherWeightsSchema = enumOf(["given", "accuracy"]);
const teachingSchema = enumOf(["cached", "consistent"]);
const autoAssistantsSchema = obj({ count: positiveInt() });

/** `assistants: {count: n}` before the sizes are chosen. */
export interface AutoAssistants {
  count: number;
}

type IssueSink = { addIssue(issue: { code: "custom"; message: string; path: PropertyKey[] }): void };

const weightSchema = nonNegativeNumber().default(1);

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validates one term against its method's schema; issues are reported under `path`. */
function parseTerm(raw: unknown, path: PropertyKey[], ctx: IssueSink): KdTerm | undefined {
  if (!isMapping(raw)) {
    ctx.addIssue({ code: "custom", path, message: "expected a mapping like {method: logit-kd, weight: 1}" });
    return undefined;
  }
  const { method: name, weight: rawWeight, ...rest } = raw;
  const methods = registeredMethods();
  const method = typeof name === "string" ? methods.get(name) : undefined;
  if (!method) {
    ctx.addIssue({ code: "custom", path: [...path, "method"], message: `expected one of ${[...methods.keys()].join(", ")}` });
    return undefined;
  }
  const weight = rawWeight === undefined ? { success: true as const, data: method.defaultWeight ?? 1 } : weightSchema.safeParse(rawWeight);
  if (!weight.success) {
    ctx.addIssue({ code: "custom", path: [...path, "weight"], message: weight.error.issues[0]!.message });
    return undefined;
  }
  const settings = method.settings.safeParse(rest);
  if (!settings.success) {
    const issue = settings.error.issues[0]!;
    ctx.addIssue({ code: "custom", path: [...path, ...issue.path], message: issue.message });
    return undefined;
  }
  return { method: method.name, weight: weight.data, ...(settings.data as Record<string, unknown>) };
}

/** The parsed block, before the labelled/unlabelled decision (made with data.transfer). */
export interface ParsedKd<M = unknown> {
  terms: KdTerm[];
  /** Single-method form with a method that has no hard-label term of its own. */
  addCrossEntropy: boolean;
  assistants?: M[] | AutoAssistants;
  generations?: number;
  teachers?: ExtraTeacher[];
  teacherWeights?: "accuracy";
  teaching?: "consistent";
}

type Chain<M> = Pick<ParsedKd<M>, "assistants" | "generations" | "teachers" | "teacherWeights" | "teaching">;

/** `teachers` and `teacherWeights`, validated into `chain`; false after reporting an issue. */
function parseTeachers(doc: Record<string, unknown>, chain: Chain<unknown>, sink: IssueSink): boolean {
  if (doc["teachers"] !== undefined) {
    if (!Array.isArray(doc["teachers"])) {
      sink.addIssue({ code: "custom", path: ["teachers"], message: "expected a list like [{onnx: other-teacher.onnx, weight: 1}]" });
      return false;
    }
    const teachers: ExtraTeacher[] = [];
    for (const [i, t] of doc["teachers"].entries()) {
      const r = extraTeacherSchema.safeParse(t);
      if (!r.success) {
        sink.addIssue({ code: "custom", path: ["teachers", i, ...r.error.issues[0]!.path], message: r.error.issues[0]!.message });
        return false;
      }
      teachers.push(r.data);
    }
    if (teachers.length) chain.teachers = teachers;
  }
  if (doc["teacherWeights"] !== undefined) {
    const r = teacherWeightsSchema.safeParse(doc["teacherWeights"]);
    if (!r.success) {
      sink.addIssue({ code: "custom", path: ["teacherWeights"], message: r.error.issues[0]!.message });
      return false;
    }
    if (r.data === "accuracy") chain.teacherWeights = "accuracy";
  }
  return true;
}

/** `assistants`, `generations`, `teachers` and `teacherWeights`, validated and taken out of the block (the rest is terms). */
function parseChain<M>(doc: Record<string, unknown>, modelSchema: z.ZodType<M>, sink: IssueSink): { chain: Chain<M>; rest: Record<string, unknown> } | undefined {
  const { assistants, generations, teachers, teacherWeights, teaching, ...rest } = doc;
  const chain: Chain<M> = {};
  if (!parseTeachers({ teachers, teacherWeights }, chain, sink)) return undefined;
  if (teaching !== undefined) {
    const r = teachingSchema.safeParse(teaching);
    if (!r.success) {
      sink.addIssue({ code: "custom", path: ["teaching"], message: r.error.issues[0]!.message });
      return undefined;
    }
    if (r.data === "consistent") chain.teaching = "consistent";
  }
  if (assistants !== undefined) {
    if (isMapping(assistants)) {
      // {count: n}: chosen between the teacher and the student once both are known (./assistants.ts).
      const r = autoAssistantsSchema.safeParse(assistants);
      if (!r.success) {
        sink.addIssue({ code: "custom", path: ["assistants", ...r.error.issues[0]!.path], message: r.error.issues[0]!.message });
        return undefined;
      }
      chain.assistants = r.data;
      return parseGenerations(generations, chain, sink) ? { chain, rest } : undefined;
    }
    if (!Array.isArray(assistants)) {
      sink.addIssue({ code: "custom", path: ["assistants"], message: "expected a list of models like [{layers: [...]}], largest first, or {count: n} to choose them between teacher and student" });
      return undefined;
    }
    const models: M[] = [];
    for (const [i, a] of assistants.entries()) {
      const m = modelSchema.safeParse(a);
      if (!m.success) {
        const issue = m.error.issues[0]!;
        sink.addIssue({ code: "custom", path: ["assistants", i, ...issue.path], message: issue.message });
        return undefined;
      }
      models.push(m.data);
    }
    if (models.length) chain.assistants = models;
  }
  return parseGenerations(generations, chain, sink) ? { chain, rest } : undefined;
}

function parseGenerations(generations: unknown, chain: Chain<unknown>, sink: IssueSink): boolean {
  if (generations === undefined) return true;
  const g = positiveInt().safeParse(generations);
  if (!g.success) {
    sink.addIssue({ code: "custom", path: ["generations"], message: g.error.issues[0]!.message });
    return false;
  }
  if (g.data > 1) chain.generations = g.data;
  return true;
}

export function makeKdSchema<M>(modelSchema: z.ZodType<M>) {
  return z.unknown().optional().transform((raw, ctx): ParsedKd<M> => {
    const sink: IssueSink = { addIssue: (i) => ctx.addIssue(i) };
    if (!isMapping(raw ?? {})) {
      ctx.addIssue({ code: "custom", path: [], message: "expected a mapping like {method: logit-kd, temperature: 4, alpha: 0.9}" });
      return z.NEVER;
    }
    const parsed = parseChain((raw ?? {}) as Record<string, unknown>, modelSchema, sink);
    if (!parsed) return z.NEVER;
    const terms = parseTerms(parsed.rest, sink);
    if (!terms) return z.NEVER;
    // A chain link teaches the next; terms that learn from no teacher (ema-teacher) would ignore it.
    const link = parsed.chain.assistants ? "assistants" : parsed.chain.generations ? "generations" : undefined;
    const usesTeacher = (t: KdTerm) => {
      const needs = registeredMethods().get(t.method)!.needs(t);
      return needs.teacherLogits === true || (needs.teacherTaps?.length ?? 0) > 0;
    };
    if (link && !terms.terms.some(usesTeacher)) {
      ctx.addIssue({ code: "custom", path: [link], message: `a chain of teachers teaches each link, but no term learns from a teacher (${terms.terms.map((t) => t.method).join(", ")})` });
      return z.NEVER;
    }
    return { ...terms, ...parsed.chain };
  });
}

function parseTerms(doc: Record<string, unknown>, sink: IssueSink): Pick<ParsedKd, "terms" | "addCrossEntropy"> | undefined {
  const ctx = sink;
  if ("terms" in doc) {
    const extra = Object.keys(doc).find((k) => k !== "terms");
    if (extra) {
      ctx.addIssue({ code: "custom", path: [extra], message: `unknown key ${JSON.stringify(extra)} next to terms (each term carries its own method, weight and settings)` });
      return undefined;
    }
    if (!Array.isArray(doc["terms"]) || doc["terms"].length === 0) {
      ctx.addIssue({ code: "custom", path: ["terms"], message: "expected a non-empty list of terms like [{method: logit-kd}, {method: fitnet, teacher: …, student: …}]" });
      return undefined;
    }
    const terms = doc["terms"].map((t, i) => parseTerm(t, ["terms", i], sink));
    return terms.every((t): t is KdTerm => t !== undefined) ? { terms, addCrossEntropy: false } : undefined;
  }
  // Without `method`, the original two-key form: logit KD.
  const term = parseTerm({ method: "logit-kd", ...doc }, [], sink);
  if (!term) return undefined;
  return { terms: [term], addCrossEntropy: "method" in doc && !registeredMethods().get(term.method)!.includesCrossEntropy };
}

/**
 * The resolved block: cross-entropy added where the one-method form asks for it, α = 1 without
 * labels, and `assistants: {count}` replaced by the specs `chosen` for it (./assistants.ts).
 */
export function resolveKd<M>(parsed: ParsedKd<M>, labeled: boolean, chosen?: M[]): KdSpec<M> {
  const terms = parsed.terms.map((t) => (!labeled && t.method === "logit-kd" ? { ...t, alpha: 1 } : t));
  const assistants = Array.isArray(parsed.assistants) ? parsed.assistants : chosen;
  return {
    terms: parsed.addCrossEntropy && labeled ? [{ method: "cross-entropy", weight: 1 }, ...terms] : terms,
    ...(assistants?.length ? { assistants } : {}),
    ...(parsed.generations ? { generations: parsed.generations } : {}),
    ...(parsed.teachers ? { teachers: parsed.teachers } : {}),
    ...(parsed.teacherWeights ? { teacherWeights: parsed.teacherWeights } : {}),
    ...(parsed.teaching ? { teaching: parsed.teaching } : {}),
  };
}

/** Terms that need labels, for the check against an unlabeled transfer set. */
/** Whether a term learns from a separate teacher (its logits or taps). */
export function termNeedsTeacher(term: { method: string; [setting: string]: unknown }): boolean {
  const needs = registeredMethods().get(term.method)!.needs(term);
  return needs.teacherLogits === true || (needs.teacherTaps?.length ?? 0) > 0;
}

export function termsNeedingLabels(kd: KdSpec<unknown>): number[] {
  return kd.terms.flatMap((t, i) => (registeredMethods().get(t.method)!.needs(t).labels === "required" ? [i] : []));
}
