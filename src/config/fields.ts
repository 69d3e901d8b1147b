// Zod building blocks shared by the config schema and the distillation methods' own settings
// schemas. Every object is strict, and every message reads "expected …" so that load.ts can append
// ", got <value>"; unknown keys list the allowed ones and a near miss.

import { z } from "zod";

export type Fields = Record<string, z.ZodType>;

/** A strict object whose unknown-key message lists the keys that are allowed (and a near miss). */
export function obj<S extends Fields>(shape: S) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === "unrecognized_keys") return unknownKeyMessage(iss.keys[0] ?? "", allowed);
      if (iss.code === "invalid_type") return "expected a mapping (key: value)";
      return undefined;
    },
  });
}

export function unknownKeyMessage(key: string, allowed: string[]): string {
  const near = allowed.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
  const hint = near ? `did you mean "${near}"? ` : "";
  return `unknown key ${JSON.stringify(key)} (${hint}allowed: ${allowed.join(", ")})`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** One message for every way a number can be wrong, so type and range errors read the same. */
export const num = (what: string) => ({ error: `expected ${what}` });

export const positiveInt = () => {
  const e = num("a positive integer");
  return z.number(e).int(e).positive(e);
};
export const nonNegativeInt = () => {
  const e = num("an integer ≥ 0");
  return z.number(e).int(e).min(0, e);
};
export const positiveNumber = () => {
  const e = num("a number > 0");
  return z.number(e).positive(e);
};
export const nonNegativeNumber = () => {
  const e = num("a number ≥ 0");
  return z.number(e).min(0, e);
};
/** [0, 1): momentum, betas, dropout. */
export const unitOpen = () => {
  const e = num("a number from 0 up to (not including) 1");
  return z.number(e).min(0, e).lt(1, e);
};
export const unitClosed = () => {
  const e = num("a number from 0 to 1");
  return z.number(e).min(0, e).max(1, e);
};
export const str = (what = "a string") => z.string(num(what)).min(1, num(`a non-empty ${what.replace(/^an? /, "")}`));
export const enumOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of ${values.join(", ")}` });
export const bool = () => z.boolean(num("true or false"));
