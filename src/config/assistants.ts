// `kd.assistants: {count: n}`: teacher assistants chosen between the teacher and the student
// (Mirzadeh et al. 2020 place them at sizes in between). When the two models have the same layers
// and differ only in width — an MLP's hidden units, a CNN's channel counts — assistant i of n takes
// each width geometrically between them, w = round(w_teacher^(1−f) · w_student^f) with f = i/(n+1),
// largest first; every other setting (and the dropout rates and layer names) is the student's.
// Anything else is the user's to choose: the message says to give the assistants as model specs.

import type { LayerSpec, ModelSpec } from "./model-spec.js";

/** The setting that is a layer's width, for the layers that have one. */
const WIDTH: Partial<Record<LayerSpec["type"], string>> = { linear: "units", conv: "filters", conv1d: "filters", embedding: "dims" };

/** What must match between teacher and student for a layer to be interpolated (all but width, name and dropout rate). */
function shape(l: LayerSpec): string {
  const { name: _name, ...rest } = l as LayerSpec & { name?: string };
  const width = WIDTH[l.type];
  const fixed: Record<string, unknown> = { ...rest };
  if (width) delete fixed[width];
  if (l.type === "dropout") delete fixed["p"];
  return JSON.stringify(fixed, Object.keys(fixed).sort());
}

/** The assistants' specs, largest first, or a one-line reason why they cannot be chosen. */
export function chooseAssistants(teacher: ModelSpec | undefined, student: ModelSpec, count: number): ModelSpec[] | string {
  const giveSpecs = "give the assistants as model specs, e.g. assistants: [{layers: [...]}]";
  if (!teacher) return `{count: ${count}} chooses sizes between teacher.model and student.model, but the teacher is not trained here (an .onnx or soft-target file); ${giveSpecs}`;
  const t = teacher.layers, s = student.layers;
  const differs = t.length !== s.length ? 0 : t.findIndex((l, i) => shape(l) !== shape(s[i]!));
  if (teacher.input !== student.input || differs !== -1) {
    const where = t.length !== s.length ? `the teacher has ${t.length} layers and the student ${s.length}` : teacher.input !== student.input ? "their inputs differ" : `layer ${differs + 1} differs (${t[differs]!.type} vs ${s[differs]!.type})`;
    return `{count: ${count}} interpolates widths between a teacher and a student with the same layers, but ${where}; ${giveSpecs}`;
  }
  const widths = s.map((l, i) => {
    const key = WIDTH[l.type];
    const widthOf = (x: LayerSpec) => (x as unknown as Record<string, number>)[key!]!;
    return key ? { key, teacher: widthOf(t[i]!), student: widthOf(l) } : undefined;
  });
  if (widths.every((w) => !w || w.teacher === w.student)) return `{count: ${count}}: the teacher and the student have the same widths, so there is nothing in between; ${giveSpecs}`;
  return Array.from({ length: count }, (_, k) => {
    const f = (k + 1) / (count + 1);
    const layers = s.map((l, i) => {
      const w = widths[i];
      if (!w || w.teacher === w.student) return l;
      let width = Math.max(1, Math.round(Math.pow(w.teacher, 1 - f) * Math.pow(w.student, f)));
      const groups = l.type === "conv" ? l.groups : 1;
      if (groups > 1) width = Math.max(groups, Math.round(width / groups) * groups);
      return { ...l, [w.key]: width } as LayerSpec;
    });
    return { input: student.input, layers };
  });
}
