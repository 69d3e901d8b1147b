// The distillation methods by name. One file per method; register it here with one line (the list
// below is also what the config's `kd:` block accepts, see src/config/methods.ts).

import { attentionMethod } from "./attention.js";
import { crossEntropyMethod } from "./cross-entropy.js";
import { dkdMethod } from "./dkd.js";
import { emaTeacherMethod } from "./ema-teacher.js";
import { fitnetMethod } from "./fitnet.js";
import { logitKdMethod } from "./logit-kd.js";
import { similarityMethod } from "./similarity.js";
import { rkdMethod } from "./rkd.js";
import type { DistillMethod } from "./types.js";
import { registerMethods } from "../../config/methods.js";

// The registry erases each method's settings type; the config schema validates settings with the
// method's own schema before they reach it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyMethod = DistillMethod<any>;

export const METHODS: Record<string, AnyMethod> = Object.fromEntries(
  ([
    crossEntropyMethod,
    logitKdMethod,
    dkdMethod,
    fitnetMethod,
    attentionMethod,
    rkdMethod,
    similarityMethod,
    emaTeacherMethod,
  ] as AnyMethod[]).map((m) => [m.name, m]),
);

// The config's `kd:` block validates settings against what is registered here.
registerMethods(Object.values(METHODS));

export function methodNamed(name: string): AnyMethod {
  const m = METHODS[name];
  if (!m) throw new Error(`unknown distillation method ${JSON.stringify(name)} (known: ${Object.keys(METHODS).join(", ")})`);
  return m;
}

export type { DistillMethod, MethodNeeds, TapShapes, TermInputs, TermResult } from "./types.js";
