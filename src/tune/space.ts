// The search space of `distill tune`: config key paths → lists (grid) or ranges (sampled). A setting
// is a list of `key=value` assignments, the same form as `distill run --set`, so any config key the
// schema knows can be searched (the methods' weights included) and a bad value fails like a bad --set.

import { configFromObject } from "../config/load.js";
import type { TuneSpec } from "../config/schema.js";
import { UserError } from "../errors.js";
import { Rng } from "../util/random.js";

/** Short names for the keys a KD search almost always has. */
const ALIASES: Record<string, string> = {
  temperature: "kd.temperature",
  alpha: "kd.alpha",
  lr: "student.train.optimizer.lr",
};

export type Value = number | string | boolean;
/** One point of the space: full key path → value, in the space's key order. */
export type Setting = Record<string, Value>;

export interface SpaceAxis {
  key: string;
  values?: Value[];
  range?: { min: number; max: number; log: boolean };
}

export function resolveKey(key: string): string {
  return ALIASES[key] ?? key;
}

export function axesOf(space: TuneSpec["space"]): SpaceAxis[] {
  return Object.entries(space).map(([key, v]) => (Array.isArray(v) ? { key: resolveKey(key), values: v } : { key: resolveKey(key), range: v }));
}

/** `key=value` assignments for loadConfig's `set` (values as YAML scalars). */
export function assignments(setting: Setting): string[] {
  return Object.entries(setting).map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`);
}

/** Every combination, first key slowest (so a T × α grid reads row by row). */
export function gridSettings(axes: SpaceAxis[]): Setting[] {
  let out: Setting[] = [{}];
  for (const axis of axes) {
    if (!axis.values) throw new UserError("tune.space", `${axis.key}: a range needs strategy random or halving (a grid needs a list of values)`);
    out = out.flatMap((s) => axis.values!.map((v) => ({ ...s, [axis.key]: v })));
  }
  return out;
}

/** `count` settings drawn with a seeded generator: lists uniformly, ranges uniformly (or log-uniformly). */
export function randomSettings(axes: SpaceAxis[], count: number, seed: number): Setting[] {
  const rng = new Rng(seed, "tune");
  return Array.from({ length: count }, () => {
    const s: Setting = {};
    for (const axis of axes) {
      if (axis.values) s[axis.key] = axis.values[Math.floor(rng.next() * axis.values.length)]!;
      else {
        const { min, max, log } = axis.range!;
        const u = rng.next();
        s[axis.key] = roundSig(log ? Math.exp(Math.log(min) + u * (Math.log(max) - Math.log(min))) : min + u * (max - min));
      }
    }
    return s;
  });
}

/** 4 significant digits: sampled settings stay readable in tables and file names. */
function roundSig(x: number): number {
  return Number(x.toPrecision(4));
}

/**
 * Every value of every axis (a range: both ends) applied to the base config and validated, so a bad
 * value (α = 1.5, a key the schema does not know) fails before anything runs, naming the tune key.
 */
export function checkSpace(base: unknown, axes: SpaceAxis[], where: string, sets: string[] = []): void {
  for (const axis of axes) {
    const values = axis.values ?? [axis.range!.min, axis.range!.max];
    for (const v of values) {
      try {
        configFromObject(base, where, { set: [...sets, ...assignments({ [axis.key]: v })] });
      } catch (e) {
        if (e instanceof UserError) throw new UserError(where, `tune.space.${axis.key}: value ${JSON.stringify(v)}: ${e.what}`);
        throw e;
      }
    }
  }
}

/** A short label for tables: "T=4 α=0.5 lr=0.01". */
export function label(setting: Setting): string {
  const short: Record<string, string> = { "kd.temperature": "T", "kd.alpha": "α", "student.train.optimizer.lr": "lr" };
  return Object.entries(setting).map(([k, v]) => `${short[k] ?? k}=${v}`).join(" ");
}
