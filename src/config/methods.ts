// The distillation methods as the config sees them: a name, a settings schema and what the `kd:`
// block needs to know (whether a term has its own hard-label cross-entropy, whether it needs labels).
// The methods register here (src/distill/methods/index.ts does it when loaded), so the config layer
// validates their settings without depending on the distill layer; a method stays one file there.

import type { z } from "zod";

export interface MethodDeclaration {
  name: string;
  settings: z.ZodType;
  includesCrossEntropy: boolean;
  /** The term's weight when the config gives none (default 1). */
  defaultWeight?: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each method types its own settings
  needs(settings: any): { labels?: "optional" | "required"; teacherLogits?: boolean; teacherTaps?: string[] };
}

const registered = new Map<string, MethodDeclaration>();

/** Adds methods to what `kd:` accepts (a name registered twice is a programming error). */
export function registerMethods(methods: MethodDeclaration[]): void {
  for (const m of methods) {
    if (registered.has(m.name) && registered.get(m.name) !== m) throw new Error(`distillation method ${m.name} is registered twice`);
    registered.set(m.name, m);
  }
}

/** The registered methods by name. */
export function registeredMethods(): ReadonlyMap<string, MethodDeclaration> {
  if (registered.size === 0) throw new Error("no distillation methods are registered: import src/distill/methods/index.js (the package entry and the CLI do) before parsing a config");
  return registered;
}
