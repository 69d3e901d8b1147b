// The `kd:` block: which distillation terms the student is trained with. Three spellings, one
// resolved form `{terms: [{method, weight, …settings}]}` (what config.yaml in a run folder holds):
//   kd: {temperature: 4, alpha: 0.9}                        logit KD (the original form)
//   kd: {method: dkd, beta: 8}                              one method; a method without its own
//                                                           hard-label term gets cross-entropy added
//   kd: {terms: [{method: logit-kd}, {method: fitnet, weight: 0.5, teacher: fc1, student: fc1}]}
// Each term's settings are validated by its method's own schema (src/distill/methods/).

import { z } from "zod";
import { METHODS } from "../distill/methods/index.js";
import { nonNegativeNumber } from "./fields.js";

export interface KdTerm {
  method: string;
  weight: number;
  [setting: string]: unknown;
}

export interface KdSpec {
  terms: KdTerm[];
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
  const method = typeof name === "string" ? METHODS[name] : undefined;
  if (!method) {
    ctx.addIssue({ code: "custom", path: [...path, "method"], message: `expected one of ${Object.keys(METHODS).join(", ")}` });
    return undefined;
  }
  const weight = weightSchema.safeParse(rawWeight);
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
export interface ParsedKd {
  terms: KdTerm[];
  /** Single-method form with a method that has no hard-label term of its own. */
  addCrossEntropy: boolean;
}

export const kdSchema = z.unknown().optional().transform((raw, ctx): ParsedKd => {
  const doc = raw ?? {};
  const sink: IssueSink = { addIssue: (i) => ctx.addIssue(i) };
  if (!isMapping(doc)) {
    ctx.addIssue({ code: "custom", path: [], message: "expected a mapping like {method: logit-kd, temperature: 4, alpha: 0.9}" });
    return z.NEVER;
  }
  if ("terms" in doc) {
    const extra = Object.keys(doc).find((k) => k !== "terms");
    if (extra) ctx.addIssue({ code: "custom", path: [extra], message: `unknown key ${JSON.stringify(extra)} next to terms (each term carries its own method, weight and settings)` });
    if (!Array.isArray(doc["terms"]) || doc["terms"].length === 0) {
      ctx.addIssue({ code: "custom", path: ["terms"], message: "expected a non-empty list of terms like [{method: logit-kd}, {method: fitnet, teacher: …, student: …}]" });
      return z.NEVER;
    }
    const terms = doc["terms"].map((t, i) => parseTerm(t, ["terms", i], sink));
    return terms.every((t): t is KdTerm => t !== undefined) ? { terms, addCrossEntropy: false } : z.NEVER;
  }
  // Without `method`, the original two-key form: logit KD.
  const term = parseTerm({ method: "logit-kd", ...doc }, [], sink);
  if (!term) return z.NEVER;
  return { terms: [term], addCrossEntropy: "method" in doc && !METHODS[term.method]!.includesCrossEntropy };
});

/** The resolved terms: cross-entropy added where the one-method form asks for it, α = 1 without labels. */
export function resolveKd(parsed: ParsedKd, labeled: boolean): KdSpec {
  const terms = parsed.terms.map((t) => (!labeled && t.method === "logit-kd" ? { ...t, alpha: 1 } : t));
  return { terms: parsed.addCrossEntropy && labeled ? [{ method: "cross-entropy", weight: 1 }, ...terms] : terms };
}

/** Terms that need labels, for the check against an unlabeled transfer set. */
export function termsNeedingLabels(kd: KdSpec): number[] {
  return kd.terms.flatMap((t, i) => (METHODS[t.method]!.needs(t).labels === "required" ? [i] : []));
}
