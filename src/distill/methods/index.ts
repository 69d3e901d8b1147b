// The distillation methods by name. One file per method; register it here.

import { crossEntropyMethod } from "./cross-entropy.js";
import { logitKdMethod } from "./logit-kd.js";
import type { DistillMethod } from "./types.js";

export const METHODS: Record<string, DistillMethod> = {
  [crossEntropyMethod.name]: crossEntropyMethod,
  [logitKdMethod.name]: logitKdMethod,
};

export function methodNamed(name: string): DistillMethod {
  const m = METHODS[name];
  if (!m) throw new Error(`unknown distillation method ${JSON.stringify(name)} (known: ${Object.keys(METHODS).join(", ")})`);
  return m;
}

export type { DistillMethod, MethodInputs, MethodSettings } from "./types.js";
