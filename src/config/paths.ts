// Every file or folder a validated config names, by key: what a queue job's config may point at.
// A queue worker confines each one under its --root and a coordinator rewrites each relative to it,
// so a path field added to the schema must be added here too (test/config-paths.test.ts lists them).

import type { DistillConfig } from "./schema.js";

/**
 * The config with each path `p` at key `k` replaced by `map(k, p)` (keys as messages print them:
 * "teacher.onnx", "data.train[1]", "kd.teachers[0].softTargets"); the input is not changed.
 */
export function mapConfigPaths(config: DistillConfig, map: (key: string, path: string) => string): DistillConfig {
  const c = structuredClone(config);
  const one = (key: string, p: string | undefined | null) => (typeof p === "string" ? map(key, p) : p);
  const many = (key: string, p: string | string[] | undefined) => (Array.isArray(p) ? p.map((x, i) => map(`${key}[${i}]`, x)) : one(key, p));
  c.output = map("output", c.output);
  if (c.teacher) {
    if (c.teacher.onnx !== undefined) c.teacher.onnx = map("teacher.onnx", c.teacher.onnx);
    if (c.teacher.softTargets !== undefined) c.teacher.softTargets = map("teacher.softTargets", c.teacher.softTargets);
  }
  c.data.dir = one("data.dir", c.data.dir) ?? null;
  if (c.data.train !== undefined) c.data.train = many("data.train", c.data.train)!;
  if (c.data.test !== undefined) c.data.test = many("data.test", c.data.test)!;
  c.data.unlabeled?.forEach((u, i) => {
    if (u.path !== undefined) u.path = map(`data.unlabeled[${i}].path`, u.path);
  });
  c.kd.teachers?.forEach((t, i) => {
    if (t.onnx !== undefined) t.onnx = map(`kd.teachers[${i}].onnx`, t.onnx);
    if (t.softTargets !== undefined) t.softTargets = map(`kd.teachers[${i}].softTargets`, t.softTargets);
  });
  return c;
}

/** The paths a config names, as [key, path] pairs. */
export function configPaths(config: DistillConfig): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  mapConfigPaths(config, (key, path) => (found.push([key, path]), path));
  return found;
}
