// Scoring a sequence model on a test split: greedy and beam outputs against every reference of
// each source (WER, PER, BLEU, chrF), size, and latency per word through the file's own driver.
// `distill run` scores its models with decodeTestSplit; `distill eval` on a sequence .onnx with
// seq2seqEvalCommand, so both give the same figures for the same file.

import { readFileSync } from "node:fs";
import { loadRunConfig } from "../config/load.js";
import { sequenceDataSchema, type SequenceDataSpec } from "../config/sequence-data.js";
import { loadSequenceSplits } from "../data/sequence/load.js";
import type { SequenceEntry } from "../data/sequence/entries.js";
import { symbolIds } from "../data/sequence/symbols.js";
import { UserError } from "../errors.js";
import { importSeq2SeqOnnx } from "../nn/seq2seq-export.js";
import { measurePerWordInterleaved, sizeOf } from "./latency.js";
import { OnnxSeq2Seq } from "./onnx-seq2seq.js";
import { Seq2SeqDecoder } from "./seq2seq-decode.js";
import { sequenceScores, type SequenceScores } from "./sequence-metrics.js";

/** Metadata key of the data block a run's sequence models were trained on (JSON), so `distill eval` finds their test split. */
export const SEQ2SEQ_DATA_KEY = "distill.data";

const BATCH = 256;

/** Greedy and beam outputs (symbols) of every entry; an entry without a source (longer than the model takes) gets an empty output, an error. */
export async function decodeTestSplit(
  decoder: Seq2SeqDecoder,
  targetSymbols: readonly string[],
  entries: readonly SequenceEntry[],
  sources: readonly (number[] | null)[],
  beam: number,
  onProgress: (done: number) => void = () => {},
): Promise<{ greedy: string[][]; beam: string[][] }> {
  const decoded = { greedy: entries.map((): string[] => []), beam: entries.map((): string[] => []) };
  const fitting = sources.flatMap((s, i) => (s ? [i] : []));
  for (let s = 0; s < fitting.length; s += BATCH) {
    const rows = fitting.slice(s, s + BATCH);
    for (const [kind, width] of [["greedy", 1], ["beam", beam]] as const) {
      const out = await decoder.beamSearch(rows.map((i) => sources[i]!), width);
      out.forEach((h, j) => (decoded[kind][rows[j]!] = h.ids.map((id) => targetSymbols[id]!)));
    }
    onProgress(Math.min(fitting.length, s + BATCH));
  }
  return decoded;
}

export interface Seq2SeqEvalOptions {
  /** A sequence run config whose data: block names the test split; default: the data block in the model's metadata. */
  data?: string;
  limit?: number;
  beam: number;
  json: boolean;
  write: (text: string) => void;
  /** One-word calls timed per model. */
  latencyRuns?: number;
}

export interface Seq2SeqEvalMetrics {
  /** Test entries (words) scored, each against all of its references. */
  total: number;
  /** Of them, sources longer than the model takes: not decoded, scored as errors (an empty output). */
  tooLong: number;
  greedy: SequenceScores;
  /** Beam search at the run's or the command's beam width. */
  beam: SequenceScores;
  params: number;
  onnxBytes: number;
  onnxGzipBytes: number;
  /** One word at a time, greedy decoding of the .onnx by its shipped driver in onnxruntime-node. */
  latencyP50Ms: number;
  latencyP95Ms: number;
  /** Greedy decoding in batches of 128 words. */
  wordsPerSecond: number;
}

/** True when the file's metadata says it is a sequence model (distill.task: seq2seq). */
export function isSeq2SeqFile(metadata: Record<string, string>): boolean {
  return metadata["distill.task"] === "seq2seq";
}

/** `distill eval` of sequence models: each one's test scores and latency (timed together, interleaved), as a table or JSON lines. */
export async function seq2seqEvalCommand(modelPaths: string[], opts: Seq2SeqEvalOptions): Promise<Seq2SeqEvalMetrics[]> {
  const models = modelPaths.map((path) => {
    const bytes = readFileSync(path);
    try {
      return { path, bytes, ...importSeq2SeqOnnx(bytes, path) };
    } catch (e) {
      throw new UserError(path, (e as Error).message.replace(`${path}: `, ""));
    }
  });
  const spec = dataSpecOf(opts.data, models[0]!.metadata, modelPaths[0]!);
  const data = loadSequenceSplits(spec);
  const entries = opts.limit ? data.test.slice(0, opts.limit) : data.test;
  if (entries.length === 0) throw new UserError(opts.data ?? modelPaths[0]!, "the data's test split is empty");
  const results: Seq2SeqEvalMetrics[] = [];
  for (const m of models) {
    const fits = (e: SequenceEntry) => e.source.length <= m.model.spec.sourceLength;
    const sources = entries.map((e) => (fits(e) ? symbolIds(e.source, m.vocab.source) : null));
    const decoder = new Seq2SeqDecoder(m.model, m.params);
    let decoded: { greedy: string[][]; beam: string[][] };
    try {
      decoded = await decodeTestSplit(decoder, m.vocab.target.symbols, entries, sources, opts.beam);
    } finally {
      await decoder.dispose();
    }
    const references = entries.map((e) => e.targets);
    results.push({
      total: entries.length, tooLong: sources.filter((s) => !s).length,
      greedy: sequenceScores(decoded.greedy, references), beam: sequenceScores(decoded.beam, references),
      params: m.params.count(), ...sizeOf(m.bytes), latencyP50Ms: NaN, latencyP95Ms: NaN, wordsPerSecond: NaN,
    });
  }
  // Latency through the driver that ships with the file, every model timed in the same minutes.
  const runners: OnnxSeq2Seq[] = [];
  try {
    for (const m of models) runners.push(await OnnxSeq2Seq.load(m.bytes, { where: m.path }));
    const words = entries.filter((e) => models.every((m) => e.source.length <= m.model.spec.sourceLength)).map((e) => e.text);
    if (words.length > 0) {
      const timed = await measurePerWordInterleaved(runners.map((r) => (w: readonly string[]) => r.convert(w, 1)), words, { runs: opts.latencyRuns ?? 200 });
      timed.forEach((t, i) => Object.assign(results[i]!, { latencyP50Ms: t.latencyP50Ms, latencyP95Ms: t.latencyP95Ms, wordsPerSecond: t.throughput }));
    }
  } finally {
    for (const r of runners) await r.dispose();
  }
  const dataName = data.name;
  results.forEach((r, i) => opts.write(opts.json ? JSON.stringify({ model: modelPaths[i], data: dataName, beamWidth: opts.beam, ...r }) + "\n" : table(modelPaths[i]!, dataName, opts.beam, r)));
  return results;
}

function dataSpecOf(given: string | undefined, metadata: Record<string, string>, modelPath: string): SequenceDataSpec {
  if (given !== undefined) {
    if (!/\.ya?ml$/i.test(given)) throw new UserError("--data", `a sequence model is scored on a sequence config's data: block; expected a .yaml file, got ${JSON.stringify(given)}`);
    const loaded = loadRunConfig(given);
    if (loaded.task !== "seq2seq") throw new UserError(given, "data: not a sequence data block (dataset: cmudict or format: pairs), but the model is a sequence model");
    return loaded.config.data;
  }
  const stored = metadata[SEQ2SEQ_DATA_KEY];
  if (stored === undefined) throw new UserError(modelPath, `metadata ${SEQ2SEQ_DATA_KEY} is missing (not exported by a distill run): give --data with a sequence config`);
  const parsed = sequenceDataSchema.safeParse(JSON.parse(stored));
  if (!parsed.success) throw new UserError(modelPath, `metadata ${SEQ2SEQ_DATA_KEY}: not a sequence data block (${parsed.error.issues[0]?.message ?? "invalid"}); give --data with a sequence config`);
  return parsed.data;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

function table(path: string, data: string, beam: number, r: Seq2SeqEvalMetrics): string {
  const scores = (s: SequenceScores) => `WER ${pct(s.wordErrorRate)}, PER ${pct(s.tokenErrorRate)}, BLEU ${s.bleu.toFixed(2)}, chrF ${s.chrf.toFixed(2)}`;
  const rows: [string, string][] = [
    ["words", `${r.total}${r.tooLong ? ` (${r.tooLong} longer than the model takes, scored as errors)` : ""}`],
    ["greedy", scores(r.greedy)],
    [`beam ${beam}`, scores(r.beam)],
    ["parameters", String(r.params)],
    ["size", `${r.onnxBytes} bytes (${r.onnxGzipBytes} gzipped)`],
    ["latency / word", Number.isFinite(r.latencyP50Ms) ? `p50 ${r.latencyP50Ms.toFixed(2)} ms, p95 ${r.latencyP95Ms.toFixed(2)} ms (greedy, the shipped driver)` : "—"],
  ];
  return `${path} on ${data} test\n` + rows.map(([a, b]) => `  ${a.padEnd(16)} ${b}`).join("\n") + "\n";
}
