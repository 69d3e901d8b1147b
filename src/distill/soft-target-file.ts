// A teacher that lives elsewhere (a Python model, a hosted API) given as a file of its class scores:
// the student side needs only the numbers. Formats, by extension (each may be gzipped, .gz):
//
//   .npy    float32 or float64, shape [rows, classes] (numpy.save of a 2-D array, C or Fortran order)
//   .jsonl  one row per line: a bare array [s0, s1, …], or an object {"id": …, "scores": [s0, …]}
//           (the scores' field is teacher.scores, the id's teacher.id); NaN/Infinity as Python writes them
//   .csv    a header row; one column per class, named by its label (any order), and the id column
//
// Rows are matched to samples by index (row i = sample i of the training source: the labelled pool
// in file order, then data.unlabeled's samples appended in config order; the row count must equal
// that total) or, with teacher.id, by id (image folders: the path in the folder, "3/img_001.png";
// csv and jsonl data: data.id). By id the file may hold more rows (a test split, other data); every
// sample the run asks the teacher about (the transfer set and the validation split) needs one.
//
// Scores are logits, or probabilities (every row ≥ 0 summing to 1), turned into log-probabilities
// as an ONNX teacher's are (log max(p, 1e-12)), so softmax recovers the same distribution.
// `outputs: auto` (the default) decides from the whole file. Every bad row is one line naming the
// file and the row.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { gunzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";
import type { SampleSet } from "../data/sample-set.js";
import { UserError } from "../errors.js";
import { looksLikeProbabilities } from "./teacher-adapter.js";

export interface SoftTargetFileSpec {
  softTargets: string;
  outputs?: "auto" | "logits" | "probabilities" | undefined;
  id?: string | undefined;
  scores?: string | undefined;
}

export const SOFT_TARGET_EXTENSIONS = [".npy", ".jsonl", ".csv"] as const;

/** The scores as read, before matching: `width` values per row, how each row is named in errors. */
interface RawScores {
  rows: number;
  width: number;
  values: Float64Array;
  ids?: string[];
  /** "row 12" (.npy, from 0: the sample index), "line 12" (.jsonl), "row 12" (.csv: the line in the file). */
  rowName(r: number): string;
}

/** The file's name without .gz, lower case: what decides the format. */
export function softTargetFormat(path: string): string {
  return extname(path.replace(/\.gz$/i, "")).toLowerCase();
}

/** Reads and checks a file's bytes (gunzipped when the name ends in .gz). */
function readBytes(path: string, field: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, `${field}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, expected a file" : `cannot read (${code ?? String(e)})`}`);
  }
  return bytes;
}

function gunzipped(bytes: Uint8Array, path: string): Uint8Array {
  if (!/\.gz$/i.test(path)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (e) {
    throw new UserError(path, `not a readable gzip file (${(e as Error).message})`);
  }
}

/** numpy's .npy: magic, version, a header dict ({'descr': '<f4', 'fortran_order': False, 'shape': (N, K), }), the data. */
export function readNpy(bytes: Uint8Array, path: string): RawScores {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
  if (bytes.length < 10 || magic.some((b, i) => bytes[i] !== b)) throw new UserError(path, "not a .npy file (no \\x93NUMPY magic at the start)");
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) throw new UserError(path, `not a .npy header numpy writes (${header.trim()})`);
  const bytesPer = descr === "<f4" ? 4 : descr === "<f8" ? 8 : 0;
  if (!bytesPer) throw new UserError(path, `dtype ${descr}: expected little-endian float32 (<f4) or float64 (<f8)`);
  const shape = shapeText.split(",").map((d) => d.trim()).filter(Boolean).map(Number);
  if (shape.length !== 2) throw new UserError(path, `shape (${shape.join(", ")}): expected 2 dimensions [samples, classes]`);
  const [rows, width] = shape as [number, number];
  const dataStart = start + headerLength;
  if (bytes.length - dataStart !== rows * width * bytesPer)
    throw new UserError(path, `holds ${bytes.length - dataStart} bytes of data, the header's shape (${rows}, ${width}) of ${descr} needs ${rows * width * bytesPer}; is the file truncated?`);
  // A copy of its own (a Buffer's slice would share, at any offset, the pool readFileSync used): aligned for the typed array.
  const copy = new Uint8Array(bytes.subarray(dataStart));
  const stored = bytesPer === 4 ? Float64Array.from(new Float32Array(copy.buffer, 0, rows * width)) : new Float64Array(copy.buffer, 0, rows * width);
  // Fortran order (column-major: scikit-learn's predict_proba often is, and numpy.save keeps it): transposed to rows.
  const values = fortran === "True" ? transposed(stored, width, rows) : stored;
  return { rows, width, values, rowName: (r) => `row ${r}` };
}

/** A row-major [rows, cols] matrix of `data`, given as column-major (cols stored one after another). */
function transposed(data: Float64Array, cols: number, rows: number): Float64Array {
  const out = new Float64Array(data.length);
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out[r * cols + c] = data[c * rows + r]!;
  return out;
}

/** The bytes of a float32 .npy file of `rows` × `width` values (what `distill label --export` writes). */
export function npyBytes(values: Float32Array, rows: number, width: number): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${width}), }`;
  // Magic (6) + version (2) + length (2) + header + "\n" is padded to a multiple of 64.
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const out = new Uint8Array(10 + header.length + values.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 10 + header.length);
  return out;
}

function readJsonl(text: string, path: string, spec: SoftTargetFileSpec): RawScores {
  const scoresField = spec.scores ?? "scores";
  const rows: number[][] = [], ids: string[] = [], lines: number[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    const at = `${path}: line ${i + 1}`;
    let item: unknown;
    try {
      item = JSON.parse(line);
    } catch (e) {
      // Python's json writes NaN and Infinity, which JSON has no words for: NaN as null, Infinity as 1e999 (which parses to it).
      try {
        item = JSON.parse(line.replace(/\bNaN\b/g, "null").replace(/\bInfinity\b/g, "1e999"));
      } catch {
        throw new UserError(at, `not JSON (${(e as Error).message})`);
      }
    }
    let scores: unknown = item;
    if (item && typeof item === "object" && !Array.isArray(item)) {
      const o = item as Record<string, unknown>;
      if (!(scoresField in o)) throw new UserError(at, `no field "${scoresField}" (teacher.scores: the field holding the class scores; the row has ${Object.keys(o).join(", ")})`);
      scores = o[scoresField];
      if (spec.id !== undefined) {
        const id = o[spec.id];
        if (id === undefined || id === null || id === "") throw new UserError(at, `no field "${spec.id}" (teacher.id: the field holding the sample's id)`);
        ids.push(String(id));
      }
    } else if (spec.id !== undefined) throw new UserError(at, `expected an object with the id field "${spec.id}" (teacher.id) and "${scoresField}", got ${Array.isArray(item) ? "a bare array" : JSON.stringify(item)}`);
    if (!Array.isArray(scores)) throw new UserError(at, `expected a list of class scores, got ${JSON.stringify(scores)}`);
    if (rows.length && scores.length !== rows[0]!.length) throw new UserError(at, `has ${scores.length} scores, line ${lines[0]} has ${rows[0]!.length}`);
    const bad = scores.findIndex((v) => v !== null && typeof v !== "number");
    if (bad >= 0) throw new UserError(at, `score ${bad} is ${JSON.stringify(scores[bad])}, not a number`);
    rows.push(scores.map((v) => (v === null ? NaN : (v as number))));
    lines.push(i + 1);
  });
  if (rows.length === 0) throw new UserError(path, "no rows (expected one JSON list of class scores per line)");
  const width = rows[0]!.length;
  const values = new Float64Array(rows.length * width);
  rows.forEach((r, i) => values.set(r, i * width));
  return { rows: rows.length, width, values, ...(spec.id !== undefined ? { ids } : {}), rowName: (r) => `line ${lines[r]}` };
}

function readCsv(text: string, path: string, spec: SoftTargetFileSpec, classLabels: string[]): RawScores {
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true, info: true }) as never;
  } catch (e) {
    throw new UserError(path, `not valid CSV (${(e as Error).message.split("\n")[0]})`);
  }
  if (records.length < 2) throw new UserError(path, "expected a header row (one column per class, named by its label), then one row per sample");
  const header = records[0]!.record.map((c) => c.trim());
  const dup = header.find((c, i) => header.indexOf(c) !== i);
  if (dup !== undefined) throw new UserError(path, `header: column "${dup}" appears twice`);
  const idColumn = spec.id === undefined ? -1 : header.indexOf(spec.id);
  if (spec.id !== undefined && idColumn < 0) throw new UserError(path, `teacher.id: no column "${spec.id}" (the header has ${header.join(", ")})`);
  // Class columns by label, so their order in the file does not matter.
  const unknown = header.find((c, i) => i !== idColumn && !classLabels.includes(c));
  if (unknown !== undefined)
    throw new UserError(path, `header: column "${unknown}" is not a class of the data (expected one column per class: ${classLabels.join(", ")}${spec.id === undefined ? "; name the id column with teacher.id" : ""})`);
  const missing = classLabels.find((c) => !header.includes(c));
  if (missing !== undefined) throw new UserError(path, `header: no column for class "${missing}" (the teacher's classes must be the data's: ${classLabels.join(", ")})`);
  const columnOf = classLabels.map((c) => header.indexOf(c));
  const k = classLabels.length;
  const body = records.slice(1);
  const values = new Float64Array(body.length * k);
  const ids: string[] = [];
  body.forEach(({ record, info }, r) => {
    const at = `${path}: row ${info.lines}`;
    if (record.length !== header.length) throw new UserError(at, `has ${record.length} cells, the header has ${header.length} columns`);
    columnOf.forEach((col, c) => {
      const cell = record[col]!.trim();
      // nan and inf as numpy writes them are numbers, caught with the other non-finite rows below.
      const v = /^[+-]?inf(inity)?$/i.test(cell) ? (cell.startsWith("-") ? -Infinity : Infinity) : /^[+-]?nan$/i.test(cell) ? NaN : Number(cell);
      if (cell === "" || (Number.isNaN(v) && !/nan$/i.test(cell))) throw new UserError(at, `column "${header[col]}": ${JSON.stringify(cell)} is not a number`);
      values[r * k + c] = v;
    });
    if (idColumn >= 0) ids.push(record[idColumn]!.trim());
  });
  const lines = body.map((b) => b.info.lines);
  return { rows: body.length, width: k, values, ...(idColumn >= 0 ? { ids } : {}), rowName: (r) => `row ${lines[r]}` };
}

/** The file as scores per row (format by extension); `classLabels` names the csv columns. */
export function readScores(spec: SoftTargetFileSpec, classLabels: string[], field: string): { raw: RawScores; digest: string } {
  const path = spec.softTargets;
  const format = softTargetFormat(path);
  if (!(SOFT_TARGET_EXTENSIONS as readonly string[]).includes(format))
    throw new UserError(path, `${field}.softTargets: expected a .npy, .jsonl or .csv file (optionally .gz), got ${format || "no extension"}`);
  const stored = readBytes(path, `${field}.softTargets`);
  const bytes = gunzipped(stored, path);
  const digest = createHash("sha256").update(bytes).update(JSON.stringify({ outputs: spec.outputs ?? "auto", id: spec.id ?? null, scores: spec.scores ?? null, classLabels })).digest("hex");
  if (format === ".npy") {
    if (spec.id !== undefined) throw new UserError(path, `${field}.id: a .npy file holds numbers only, no ids; match rows by index (leave out id) or use .jsonl or .csv`);
    if (spec.scores !== undefined) throw new UserError(path, `${field}.scores: only used with .jsonl files`);
    return { raw: readNpy(bytes, path), digest };
  }
  const text = new TextDecoder().decode(bytes);
  if (format === ".csv") {
    if (spec.scores !== undefined) throw new UserError(path, `${field}.scores: only used with .jsonl files (a .csv file names its class columns by label)`);
    return { raw: readCsv(text, path, spec, classLabels), digest };
  }
  return { raw: readJsonl(text, path, spec), digest };
}

/** A file teacher's logits for every sample of the training source it covers. */
export class FileTeacher {
  constructor(
    /** The file, for messages. */
    readonly where: string,
    readonly classes: number,
    /** [samples of the training source, classes]; rows the file does not cover are NaN. */
    private readonly table: Float32Array,
    /** Whether the file held probabilities (turned into log-probabilities). */
    readonly probabilities: boolean,
    /** sha256 of the file's contents and how it is read. */
    readonly digest: string,
    private readonly set: Pick<SampleSet, "ids">,
  ) {}

  /** Logits [indices.length, classes] in order. */
  logits(indices: Int32Array): Float32Array {
    const k = this.classes;
    const out = new Float32Array(indices.length * k);
    for (let i = 0; i < indices.length; i++) {
      const idx = indices[i]!;
      if (Number.isNaN(this.table[idx * k]!)) throw new UserError(this.where, `teacher.id: no row for sample "${this.set.ids?.[idx]}" (training example ${idx})`);
      out.set(this.table.subarray(idx * k, (idx + 1) * k), i * k);
    }
    return out;
  }

  /** A key naming these logits on `indices` (run.json's softTargets.key). */
  key(indices: Int32Array): string {
    return createHash("sha256").update(this.digest).update(new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength)).digest("hex").slice(0, 32);
  }
}

/**
 * Reads a soft-target file against the training source: checks its rows (count, finiteness,
 * probabilities), its classes against the labels, and that every sample in `needed` has a row.
 * `field` names the config key in messages (teacher, kd.teachers[0]).
 */
export function loadFileTeacher(spec: SoftTargetFileSpec, set: Pick<SampleSet, "count" | "ids">, classLabels: string[], needed: Int32Array, field: string): FileTeacher {
  const path = spec.softTargets;
  const { raw, digest } = readScores(spec, classLabels, field);
  const k = classLabels.length;
  if (raw.width !== k) throw new UserError(path, `has ${raw.width} scores per row, but the data have ${k} classes (${classLabels.join(", ")}); the teacher's classes must be the labels'`);
  for (let r = 0; r < raw.rows; r++)
    for (let c = 0; c < k; c++) {
      const v = raw.values[r * k + c]!;
      if (!Number.isFinite(v)) throw new UserError(`${path}: ${raw.rowName(r)}`, `score ${c} (class ${classLabels[c]}) is ${v}, not a finite number`);
    }
  const mode = spec.outputs ?? "auto";
  const asFloat32 = Float32Array.from(raw.values);
  const rowsAreProbabilities = looksLikeProbabilities(asFloat32, k);
  const probabilities = mode === "probabilities" || (mode === "auto" && rowsAreProbabilities);
  // Held to the rule auto applies: log-probabilities read as logits would be a wrong, sharper target.
  if (mode === "logits" && rowsAreProbabilities)
    throw new UserError(path, `${field}.outputs is logits, but every row is ≥ 0 and sums to 1: probabilities; set outputs: probabilities, or leave it out (auto)`);
  if (mode === "probabilities")
    for (let r = 0; r < raw.rows; r++) {
      let sum = 0, negative = false;
      for (let c = 0; c < k; c++) {
        sum += raw.values[r * k + c]!;
        negative ||= raw.values[r * k + c]! < 0;
      }
      if (negative || Math.abs(sum - 1) > 1e-3) throw new UserError(`${path}: ${raw.rowName(r)}`, `${field}.outputs is probabilities, but the row ${negative ? "has a negative value" : `sums to ${sum.toPrecision(6)}`}`);
    }
  // As the ONNX adapter does (Max(p, 1e-12), then Log), in float32.
  const logits = probabilities ? asFloat32.map((p) => Math.log(Math.max(p, Math.fround(1e-12)))) : asFloat32;
  const table = new Float32Array(set.count * k);
  if (raw.ids === undefined) {
    if (raw.rows !== set.count)
      throw new UserError(path, `has ${raw.rows} rows, but the training source has ${set.count} samples (row i is training sample i, data.unlabeled's samples after the labelled ones); give one row per sample, or match rows by id with ${field}.id`);
    table.set(logits);
  } else {
    if (!set.ids) throw new UserError(path, `${field}.id: the training data have no sample ids to match (ids are image folders' file paths and csv/jsonl data's data.id column; every data.unlabeled source needs them too); leave out id to match rows by index`);
    const rowOf = new Map<string, number>();
    raw.ids.forEach((id, r) => {
      if (rowOf.has(id)) throw new UserError(`${path}: ${raw.rowName(r)}`, `id "${id}" appears twice (first at ${raw.rowName(rowOf.get(id)!)})`);
      rowOf.set(id, r);
    });
    table.fill(NaN);
    let missing = 0, first = -1;
    for (const idx of needed) {
      const r = rowOf.get(set.ids[idx]!);
      if (r === undefined) {
        if (first < 0) first = idx;
        missing++;
        continue;
      }
      table.set(logits.subarray(r * k, (r + 1) * k), idx * k);
    }
    if (missing) throw new UserError(path, `${field}.id: no row for sample "${set.ids[first]}" (training example ${first})${missing > 1 ? ` and ${missing - 1} more of the ${needed.length} samples the run needs` : ""}`);
  }
  return new FileTeacher(path, k, table, probabilities, digest, set);
}
