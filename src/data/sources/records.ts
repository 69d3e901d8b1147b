// `format: csv` and `format: jsonl`: rows of named fields, read into either a numeric table (every
// feature column a number) or texts with labels (tokenised later, with a vocabulary built from the
// training split). Every bad cell is a one-line error naming the file, the row and the column.
// The row reader is shared with the sequence pairs source (data/sequence/pairs.ts), which also reads
// TSV; any of these files may be gzipped.

import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { parse } from "csv-parse/sync";
import { UserError } from "../../errors.js";
import type { SampleSet } from "../sample-set.js";

/** One row of a source: where it came from (for messages) and its fields. */
export interface Row {
  file: string;
  /** "row 12" (csv, tsv: the line in the file) or "line 12" (jsonl). */
  at: string;
  fields: Record<string, unknown>;
}

export type RowFormat = "csv" | "tsv" | "jsonl";

export interface Source {
  rows: Row[];
  /** csv: the header's columns in order; jsonl: the first row's fields. */
  columns: string[];
}

/** The file's text; gzip (told by its magic bytes, whatever the name) is inflated first. */
function readText(file: string, field: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(file, `${field}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, expected a file" : `cannot read (${code ?? String(e)})`}`);
  }
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new UserError(file, `${field}: starts like gzip but does not inflate (${(e as Error).message})`);
    }
  }
  return bytes.toString("utf8");
}

/** CSV, or TSV: tab-separated with no quoting (a quote is an ordinary character, as in CMUdict's "A'S"). */
function readCsv(file: string, field: string, tabs = false): Source {
  // Read outside the try: a missing file is its own message, not "not valid CSV (…no such file)".
  const text = readText(file, field);
  let records: { record: string[]; info: { lines: number } }[];
  try {
    const dialect = tabs ? { delimiter: "\t", quote: false as const } : {};
    records = parse(text, { bom: true, relax_column_count: true, skip_empty_lines: true, info: true, ...dialect }) as never;
  } catch (e) {
    throw new UserError(file, `not valid ${tabs ? "TSV" : "CSV"} (${(e as Error).message.split("\n")[0]})`);
  }
  if (records.length === 0) throw new UserError(file, `${field}: empty file (expected a header row, then one row per sample)`);
  const columns = records[0]!.record.map((c) => c.trim());
  const dup = columns.find((c, i) => columns.indexOf(c) !== i);
  if (dup !== undefined) throw new UserError(file, `header: column "${dup}" appears twice`);
  const rows = records.slice(1).map(({ record, info }) => {
    const at = `row ${info.lines}`;
    if (record.length !== columns.length) throw new UserError(`${file}: ${at}`, `has ${record.length} cells, the header has ${columns.length} columns`);
    return { file, at, fields: Object.fromEntries(columns.map((c, i) => [c, record[i]])) };
  });
  return { rows, columns };
}

function readJsonl(file: string, field: string): Source {
  const text = readText(file, field);
  const rows: Row[] = [];
  // A JSON array of objects is accepted as well (many exports, e.g. the UCI sentences, are one array).
  if (text.trimStart().startsWith("[")) {
    let items: unknown;
    try {
      items = JSON.parse(text);
    } catch (e) {
      throw new UserError(file, `starts with "[" but is not a JSON array (${(e as Error).message})`);
    }
    (items as unknown[]).forEach((item, i) => rows.push(objectRow(file, `item ${i + 1}`, item)));
  } else {
    text.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      let item: unknown;
      try {
        item = JSON.parse(line);
      } catch (e) {
        throw new UserError(`${file}: line ${i + 1}`, `not JSON (${(e as Error).message})`);
      }
      rows.push(objectRow(file, `line ${i + 1}`, item));
    });
  }
  if (rows.length === 0) throw new UserError(file, `${field}: no rows (expected one JSON object per line)`);
  return { rows, columns: Object.keys(rows[0]!.fields) };
}

function objectRow(file: string, at: string, item: unknown): Row {
  if (!item || typeof item !== "object" || Array.isArray(item)) throw new UserError(`${file}: ${at}`, "expected a JSON object like {\"text\": \"…\", \"label\": \"…\"}");
  return { file, at, fields: item as Record<string, unknown> };
}

/**
 * Every row of every file. A row whose every field is empty or null is an export's blank (the UCI
 * files end in {"text": "", "class": null}; a CSV may end in ",,,") and is dropped like a blank
 * line; anything partly filled is still checked, cell by cell.
 */
export function readSources(paths: string | string[], format: RowFormat, field: string): Source {
  const list = Array.isArray(paths) ? paths : [paths];
  const sources = list.map((p) => (format === "jsonl" ? readJsonl(p, field) : readCsv(p, field, format === "tsv")));
  const blank = (r: Row) => Object.values(r.fields).every((v) => v === null || v === undefined || v === "");
  const rows = sources.map((s) => s.rows.filter((r) => !blank(r)));
  rows.forEach((r, i) => {
    if (r.length === 0) throw new UserError(list[i]!, `${field}: no rows with data (every row is empty)`);
  });
  return { rows: rows.flat(), columns: sources[0]!.columns };
}

export function requireColumn(source: Source, name: string, key: string, paths: string | string[]): void {
  const first = Array.isArray(paths) ? paths[0]! : paths;
  if (source.rows.length && !source.columns.includes(name) && !(name in source.rows[0]!.fields))
    throw new UserError(first, `${key}: no column or field "${name}" (it has: ${source.columns.join(", ")})`);
}

export function cell(row: Row, name: string): unknown {
  if (!(name in row.fields) || row.fields[name] === null || row.fields[name] === "") throw new UserError(`${row.file}: ${row.at}`, `column "${name}" is missing or empty`);
  return row.fields[name];
}

/** Class names from the training labels: numeric order when every label is a number, else sorted text. */
function classesOf(rows: Row[], label: string): string[] {
  const names = [...new Set(rows.map((r) => String(cell(r, label))))];
  const numeric = names.every((n) => n.trim() !== "" && Number.isFinite(Number(n)));
  return numeric ? names.sort((a, b) => Number(a) - Number(b)) : names.sort();
}

function labelsOf(rows: Row[], label: string, classes: string[], split: string): Int32Array {
  const index = new Map(classes.map((c, i) => [c, i]));
  return Int32Array.from(rows, (r) => {
    const y = index.get(String(cell(r, label)));
    if (y === undefined) throw new UserError(`${r.file}: ${r.at}`, `label "${String(r.fields[label])}" (column ${label}) does not occur in the training data (${split} labels must be training classes: ${classes.join(", ")})`);
    return y;
  });
}

export interface RecordOptions {
  format: "csv" | "jsonl";
  train: string | string[];
  /** Absent: the caller holds out part of train. */
  test?: string | string[] | undefined;
  label: string;
  features?: string[] | undefined;
  text?: string | undefined;
  /** The column or field naming each row (data.id): kept as the samples' ids. */
  id?: string | undefined;
}

/** Both splits of a numeric table: raw feature values, float32 (standardisation goes in the model's graph). */
export interface TableData {
  kind: "table";
  train: SampleSet;
  test?: SampleSet;
  classLabels: string[];
  featureNames: string[];
}

/** Both splits of a text dataset, not yet tokenised (the vocabulary comes from the training split). */
export interface TextData {
  kind: "text";
  train: { texts: string[]; labels: Int32Array; ids?: string[] };
  test?: { texts: string[]; labels: Int32Array; ids?: string[] };
  classLabels: string[];
}

export function loadRecords(o: RecordOptions): TableData | TextData {
  const train = readSources(o.train, o.format, "data.train");
  const test = o.test === undefined ? undefined : readSources(o.test, o.format, "data.test");
  requireColumn(train, o.label, "data.label", o.train);
  if (test) requireColumn(test, o.label, "data.label", o.test!);
  if (o.id !== undefined) {
    requireColumn(train, o.id, "data.id", o.train);
    if (test) requireColumn(test, o.id, "data.id", o.test!);
  }
  const idsOf = (s: Source) => (o.id === undefined ? {} : { ids: s.rows.map((r) => String(cell(r, o.id!))) });
  const classLabels = classesOf(train.rows, o.label);
  if (classLabels.length < 2) throw new UserError(Array.isArray(o.train) ? o.train[0]! : o.train, `data.label: column "${o.label}" holds one class only (${classLabels[0]}); a classifier needs at least two`);
  if (o.text !== undefined) {
    requireColumn(train, o.text, "data.text", o.train);
    if (test) requireColumn(test, o.text, "data.text", o.test!);
    const texts = (s: Source) => s.rows.map((r) => {
      const v = cell(r, o.text!);
      if (typeof v !== "string") throw new UserError(`${r.file}: ${r.at}`, `field "${o.text}" is not a string (${JSON.stringify(v)})`);
      return v;
    });
    return {
      kind: "text", classLabels,
      train: { texts: texts(train), labels: labelsOf(train.rows, o.label, classLabels, "training"), ...idsOf(train) },
      ...(test ? { test: { texts: texts(test), labels: labelsOf(test.rows, o.label, classLabels, "test"), ...idsOf(test) } } : {}),
    };
  }
  const featureNames = o.features ?? train.columns.filter((c) => c !== o.label && c !== o.id);
  if (featureNames.length === 0) throw new UserError(Array.isArray(o.train) ? o.train[0]! : o.train, `data.features: no feature columns besides the label "${o.label}"`);
  for (const f of featureNames) {
    requireColumn(train, f, "data.features", o.train);
    if (test) requireColumn(test, f, "data.features", o.test!);
  }
  const table = (s: Source, split: string): SampleSet => {
    const inputs = new Float32Array(s.rows.length * featureNames.length);
    s.rows.forEach((r, i) => featureNames.forEach((f, j) => {
      const raw = cell(r, f);
      const v = typeof raw === "number" ? raw : Number(String(raw).trim());
      if (!Number.isFinite(v)) throw new UserError(`${r.file}: ${r.at}`, `column "${f}": ${JSON.stringify(raw)} is not a number (every feature must be numeric; list the numeric ones in data.features)`);
      inputs[i * featureNames.length + j] = v;
    }));
    return { kind: "table", inputs, labels: labelsOf(s.rows, o.label, classLabels, split), count: s.rows.length, sampleShape: [featureNames.length], ...idsOf(s) };
  };
  return { kind: "table", classLabels, featureNames, train: table(train, "training"), ...(test ? { test: table(test, "test") } : {}) };
}
