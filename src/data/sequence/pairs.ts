// `format: pairs`: sequence-to-sequence examples, one per row of a JSON-lines, CSV or TSV file (each
// optionally gzipped), a source field and a target field per row. Rows are read by the records
// reader (one-line errors naming the file, the line and the field), split into symbols, and rows
// with the same source become one entry with several targets (alternative pronunciations).

import { UserError } from "../../errors.js";
import { cell, readSources, requireColumn, type RowFormat } from "../sources/records.js";
import { groupBySource, type SequenceEntry } from "./entries.js";
import { splitSymbols, type SymbolSplit } from "./symbols.js";

export interface PairsFields {
  /** The field (jsonl) or header column (csv, tsv) holding the source, and the target's. */
  source: string;
  target: string;
  sourceSymbols: SymbolSplit;
  targetSymbols: SymbolSplit;
}

/** The file kind from its name: .jsonl/.json, .csv or .tsv, each optionally followed by .gz. */
export function pairsFileKind(path: string, key: string): RowFormat {
  const name = path.toLowerCase().replace(/\.gz$/, "");
  if (name.endsWith(".jsonl") || name.endsWith(".json")) return "jsonl";
  if (name.endsWith(".csv")) return "csv";
  if (name.endsWith(".tsv")) return "tsv";
  throw new UserError(path, `${key}: cannot tell the file kind from its name (expected .jsonl, .csv or .tsv, optionally .gz)`);
}

/** The entries of one or more files (read in order; a source repeated across files is still one entry). */
export function readPairs(paths: string | string[], fields: PairsFields, key: string): { entries: SequenceEntry[]; rows: number; repeatedTargets: number } {
  const list = Array.isArray(paths) ? paths : [paths];
  const rows = list.flatMap((path) => {
    const source = readSources(path, pairsFileKind(path, key), key);
    requireColumn(source, fields.source, "data.source", path);
    requireColumn(source, fields.target, "data.target", path);
    return source.rows.map((row) => {
      const symbolsOf = (name: string, split: SymbolSplit) => {
        const value = cell(row, name);
        if (typeof value !== "string") throw new UserError(`${row.file}: ${row.at}`, `field "${name}" is not a string (${JSON.stringify(value)})`);
        const symbols = splitSymbols(value, split);
        if (symbols.length === 0) throw new UserError(`${row.file}: ${row.at}`, `field "${name}" has no symbols (${JSON.stringify(value)})`);
        return { value, symbols };
      };
      const source = symbolsOf(fields.source, fields.sourceSymbols);
      return { text: source.value, source: source.symbols, target: symbolsOf(fields.target, fields.targetSymbols).symbols };
    });
  });
  return { ...groupBySource(rows), rows: rows.length };
}
