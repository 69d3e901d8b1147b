// Before any training: every tap a loss term names exists, and its shapes are ones the term can
// work with. A config error here is one line naming the key and listing the available taps.

import type { KdSpec, KdTerm } from "../config/schema.js";
import { Graph, type Shape } from "../engine/graph.js";
import { UserError } from "../errors.js";
import type { Model } from "../nn/model.js";
import { describeTaps } from "./methods/feature-math.js";
import { methodNamed, type TapShapes } from "./methods/index.js";

/** Layer name → output shape ([N, …]) of a model's training graph. */
export function modelTapShapes(model: Model): Map<string, Shape> {
  const g = new Graph();
  model.build(g, "train", { kind: "inputs" }, model.inputValue(g));
  return new Map([...g.taps].map(([name, v]) => [name, v.shape]));
}

/** A config written as one method (`kd: {method: fitnet, …}`), perhaps with the cross-entropy term it implies. */
function isOneMethod(kd: KdSpec): boolean {
  return kd.terms.filter((t) => t.method !== "cross-entropy").length === 1;
}

/** The config key holding `value` in term i ("kd.terms[1].teacher", or "kd.teacher" for one method). */
function keyOf(kd: KdSpec, i: number, value: string, side: "teacher" | "student"): string {
  const term = kd.terms[i]!;
  const setting = Object.keys(term).find((k) => term[k] === value && k.toLowerCase().includes(side)) ?? Object.keys(term).find((k) => term[k] === value) ?? side;
  return isOneMethod(kd) ? `kd.${setting}` : `kd.terms[${i}].${setting}`;
}

export function checkTermTaps(kd: KdSpec, shapes: TapShapes, where: string, teacherWhat: string): void {
  kd.terms.forEach((term: KdTerm, i) => {
    const method = methodNamed(term.method);
    const needs = method.needs(term);
    for (const tap of needs.studentTaps ?? [])
      if (!shapes.student.has(tap)) throw new UserError(where, `${keyOf(kd, i, tap, "student")}: the student has no layer "${tap}" (available: ${describeTaps(shapes.student)})`);
    for (const tap of needs.teacherTaps ?? [])
      if (!shapes.teacher.has(tap)) throw new UserError(where, `${keyOf(kd, i, tap, "teacher")}: ${teacherWhat} has no tap "${tap}" (available: ${describeTaps(shapes.teacher)})`);
    const why = method.checkShapes?.(term, shapes);
    if (why) throw new UserError(where, `${isOneMethod(kd) ? "kd" : `kd.terms[${i}]`} (${term.method}): ${why}`);
  });
}

