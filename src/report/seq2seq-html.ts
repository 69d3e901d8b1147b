// report.html of a sequence-to-sequence run: the classifier report's page and style, simpler —
// the distilled students against the baseline (seed-paired intervals), the comparison table, a WER
// bar chart per model (plain HTML bars, no script), the data and the teacher's targets, the setup.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import { UserError } from "../errors.js";
import { formatMs } from "../eval/latency.js";
import type { MeanStd } from "../eval/types.js";
import { writeFileAtomic } from "../util/fs.js";
import { inlineAsset } from "./assets.js";
import type { PairedDifference } from "./headline.js";
import { escapeHtml } from "./html.js";
import type { Seq2SeqMetricKey, Seq2SeqResults, Seq2SeqRoleResult } from "./seq2seq-results.js";

const DASH = "—";
const PALETTE = ["#1f5fbf", "#7a7f87", "#e0701b", "#2a9d5c", "#a23fb0", "#c7323f", "#1a9fb0", "#8c6d1f"];

const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : DASH);
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(2)} %` : DASH);
const grouped = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : DASH);
const bytes = (x: number) => (!Number.isFinite(x) ? DASH : x < 1024 * 1024 ? `${(x / 1024).toFixed(1)} KiB` : `${(x / 1024 / 1024).toFixed(2)} MiB`);
const signed = (x: number, digits: number) => (x > 0 ? "+" : x < 0 ? "−" : "±") + Math.abs(x).toFixed(digits);

interface Column {
  head: string;
  sub?: string;
  title: string;
  keys: Seq2SeqMetricKey[];
  fmt: (x: number) => string;
  /** Identical across seeds by construction (sizes): no "± 0". */
  sizeLike?: boolean;
}

function columns(beam: number): Column[] {
  const score = (d: "greedy" | "beam", k: string) => `${d}.${k}` as Seq2SeqMetricKey;
  return [
    { head: "WER", sub: "greedy", title: "Word error rate: share of test words whose output equals none of their references (greedy decoding)", keys: [score("greedy", "wordErrorRate")], fmt: pct },
    { head: "WER", sub: `beam ${beam}`, title: `Word error rate with beam search of width ${beam}`, keys: [score("beam", "wordErrorRate")], fmt: pct },
    { head: "PER", sub: `beam ${beam}`, title: "Token (phoneme) error rate: edit distance to the closest reference ÷ its length, summed over words", keys: [score("beam", "tokenErrorRate")], fmt: pct },
    { head: "BLEU", sub: `beam ${beam}`, title: "Corpus BLEU (sacreBLEU 2.x, tokenize none, exp smoothing) on space-joined symbols", keys: [score("beam", "bleu")], fmt: (x) => fixed(x, 2) },
    { head: "chrF", sub: `beam ${beam}`, title: "Corpus chrF2 (sacreBLEU 2.x default) on the symbols with spaces removed", keys: [score("beam", "chrf")], fmt: (x) => fixed(x, 2) },
    { head: "Params", title: "Trainable parameters", keys: ["params"], fmt: grouped, sizeLike: true },
    { head: "ONNX size", sub: "raw / gzip", title: "Model file size, and after gzip -9", keys: ["onnxBytes", "onnxGzipBytes"], fmt: bytes, sizeLike: true },
    { head: "Latency per word", sub: "p50 / p95", title: "One word at a time, greedy decoding with the exported .onnx in onnxruntime-node", keys: ["latencyP50Ms", "latencyP95Ms"], fmt: formatMs },
    { head: "Throughput", sub: "words/s", title: "Greedy decoding in batches of 128 words", keys: ["wordsPerSecond"], fmt: grouped },
  ];
}

function cell(m: Seq2SeqRoleResult, c: Column): string {
  const stats: MeanStd[] = c.keys.map((k) => m.summary[k]);
  let html = escapeHtml(stats.map((s) => c.fmt(s.mean)).join(" / "));
  if (m.perSeed.length > 1 && !(c.sizeLike && stats.every((s) => s.std === 0))) {
    const std = c.fmt === pct ? (s: MeanStd) => fixed(s.std * 100, 2) : (s: MeanStd) => c.fmt(s.std);
    html += ` <span class="sd">± ${escapeHtml(stats.map(std).join(" / "))}</span>`;
  }
  return `<td>${html}</td>`;
}

function comparisonTable(r: Seq2SeqResults): string {
  const cols = columns(r.evaluateBeam);
  const head = cols.map((c) => `<th scope="col" title="${escapeHtml(c.title)}">${escapeHtml(c.head)}${c.sub ? `<span class="unit">${escapeHtml(c.sub)}</span>` : ""}</th>`).join("");
  const rows = r.models.map((m, i) => `<tr><th scope="row"><span class="swatch" style="background:${PALETTE[i % PALETTE.length]}"></span>${escapeHtml(m.role)}<span class="file">${escapeHtml(m.file)}</span></th>${cols.map((c) => cell(m, c)).join("")}</tr>`).join("\n");
  return `<div class="table-wrap"><table id="comparison"><thead><tr><th scope="col">Model</th>${head}</tr></thead>\n<tbody>\n${rows}\n</tbody></table></div>`;
}

/** One bar per model and decoding, its length the mean WER; the seeds' spread in words beside it. */
function werChart(r: Seq2SeqResults): string {
  const top = Math.max(1e-9, ...r.models.flatMap((m) => [m.summary["greedy.wordErrorRate"].mean, m.summary["beam.wordErrorRate"].mean]).filter(Number.isFinite));
  const bar = (m: Seq2SeqRoleResult, i: number, decoding: "greedy" | "beam") => {
    const s = m.summary[`${decoding}.wordErrorRate`];
    const width = Number.isFinite(s.mean) ? Math.round((s.mean / top) * 360) : 0;
    const spread = s.values.length > 1 ? ` ± ${fixed(s.std * 100, 2)}` : "";
    return `<tr data-role="${escapeHtml(m.role)}" data-decoding="${decoding}"><th scope="row">${escapeHtml(m.role)} <span class="unit">${decoding === "beam" ? `beam ${r.evaluateBeam}` : "greedy"}</span></th><td style="text-align:left"><span class="bar" style="width:${width}px;background:${PALETTE[i % PALETTE.length]};opacity:${decoding === "beam" ? 1 : 0.55}"></span> ${escapeHtml(pct(s.mean))}${escapeHtml(spread)}</td></tr>`;
  };
  const rows = r.models.flatMap((m, i) => [bar(m, i, "greedy"), bar(m, i, "beam")]).join("");
  return `<div class="table-wrap"><table id="wer-chart"><caption>Test word error rate per model (lower is better); mean over seeds</caption><tbody>${rows}</tbody></table></div>`;
}

function interval(d: PairedDifference, scale: number, digits: number): string {
  return d.ci95 ? `; seed-paired 95% interval [${signed(d.ci95[0] * scale, digits)}, ${signed(d.ci95[1] * scale, digits)}] over ${d.n} seeds` : " (one seed: no interval)";
}

/** Each distilled role against the baseline: WER and BLEU at the evaluation beam, paired by seed. */
function headlineSection(r: Seq2SeqResults): string {
  const lines: string[] = [];
  for (const m of r.models.filter((x) => x.vsBaseline)) {
    const wer = m.vsBaseline!["beam.wordErrorRate"]!, bleu = m.vsBaseline!["beam.bleu"]!;
    const significant = wer.ci95 ? wer.ci95[0] > 0 || wer.ci95[1] < 0 : null;
    const verdict = significant === null ? "" : significant ? (wer.mean < 0 ? ` <span class="good">Fewer errors than the baseline: the interval excludes zero.</span>` : ` <span class="bad">More errors than the baseline: the interval excludes zero.</span>`) : " The interval includes zero.";
    lines.push(`<p class="big" data-role="${escapeHtml(m.role)}">${escapeHtml(m.role)} vs baseline: WER <strong class="${wer.mean < 0 ? "good" : wer.mean > 0 ? "bad" : ""}">${signed(wer.mean * 100, 2)} points</strong>${escapeHtml(interval(wer, 100, 2))}; BLEU ${signed(bleu.mean, 2)}${escapeHtml(interval(bleu, 1, 2))}.${verdict}</p>`);
  }
  const teacher = r.models.find((m) => m.role === "teacher"), baseline = r.models.find((m) => m.role === "baseline");
  if (teacher && baseline)
    lines.push(`<p id="headline-vs-teacher">The students have ${fixed(teacher.summary.params.mean / baseline.summary.params.mean, 1)}× fewer parameters than the teacher (${grouped(baseline.summary.params.mean)} against ${grouped(teacher.summary.params.mean)}) and ${fixed(teacher.summary.latencyP50Ms.mean / baseline.summary.latencyP50Ms.mean, 1)}× its speed per word (the baseline's p50); the teacher's test WER is ${pct(teacher.summary["beam.wordErrorRate"].mean)}.</p>`);
  return lines.length ? `<section class="headline" id="headline">${lines.join("\n")}</section>` : "";
}

function dataSection(r: Seq2SeqResults): string {
  const d = r.data, lo = d.leftOut;
  const targets = Object.entries(r.teacherTargets ?? {}).map(([store, t]) => {
    const what = store === "word" ? "top-k on the gold training pairs" : store === "sequence" ? `beam-${t.beam} outputs on the training sources${t.leftOut ? ` (${grouped(t.leftOut)} longer than the students take, left out)` : ""}` : "top-k on its own outputs";
    const cost = t.seconds > 0 ? `${fixed(t.seconds, 1)} s (${fixed((t.seconds / Math.max(1, t.items)) * 1000, 1)} s per 1,000)` : "read from the file of its outputs";
    return `<li>${escapeHtml(`${what}: ${grouped(t.items)} items, ${cost}`)}</li>`;
  }).join("");
  return `<h2>Data</h2>
<p id="data">As read: ${escapeHtml(d.describe)}.</p>
<p id="data-used">Used: ${grouped(d.entries.train)} training entries (${grouped(d.trainPairs)} pairs), ${grouped(d.entries.validation)} validation and ${grouped(d.entries.test)} test entries. The models take sources of up to ${d.lengths.source} symbols and targets of up to ${d.lengths.target - 1} (plus the end symbol): ${grouped(lo.trainPairs)} longer training pairs and ${grouped(lo.validationEntries)} validation entries were left out, and <strong>${grouped(lo.testEntries)} longer test entries are scored as errors</strong> (an empty output). Training step graphs per length bucket: ${escapeHtml(d.buckets.map((b) => `[${b.join(", ")}]`).join(" "))}.</p>
${targets ? `<p>The teacher's stored targets for the students:</p><ul id="teacher-targets">${targets}</ul>` : ""}`;
}

export function renderSeq2SeqReport(r: Seq2SeqResults): string {
  const kd = (r.setup["kd"] ?? {}) as { method?: string[]; temperature?: number; alpha?: number; topK?: number; beam?: number };
  const facts: [string, string][] = [
    ["Dataset", r.dataset],
    ["KD methods", (kd.method ?? []).join(", ") || DASH],
    ["Temperature T / α", `${kd.temperature ?? DASH} / ${kd.alpha ?? DASH}`],
    ["Teacher top-k / beam", `${kd.topK ?? DASH} / ${kd.beam ?? DASH}`],
    ["Test decoding", `greedy and beam ${r.evaluateBeam}`],
    ["Seeds", `${r.seeds.join(", ")} (${r.seeds.length})`],
    ["Wall time", `${fixed(r.wallSeconds, 1)} s`],
    ["Code version", r.codeVersion],
    ["Created", Number.isNaN(Date.parse(r.createdAt)) ? r.createdAt : `${new Date(r.createdAt).toISOString().slice(0, 16).replace("T", " ")} UTC`],
  ];
  const m = r.machine;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`distill report — ${r.name}`)}</title>
<style>${inlineAsset("report.css")}</style>
</head>
<body>
<h1>${escapeHtml(r.name)}</h1>
<p class="sub">Sequence-to-sequence distillation run report</p>
${headlineSection(r)}
<dl class="facts">${facts.map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`).join("")}</dl>

<h2>Comparison</h2>
${comparisonTable(r)}
<p class="note">Test-set figures, each word scored against all of its references${r.seeds.length > 1 ? `; mean <span class="sd">± sample std</span> over seeds` : ""}. Latency: onnxruntime-node on ${m.cpus} cores (${escapeHtml(m.cpuModel)}), every model timed in interleaved rounds; load average ${m.loadAverage.join(", ")} when timing began. Hover a column head for its definition.</p>

<h2>Word error rate</h2>
${werChart(r)}

${dataSection(r)}

<details class="setup" id="setup"><summary>Data, architectures and training settings</summary><pre>${escapeHtml(toYaml(r.setup))}</pre></details>

<footer>Generated by distill ${escapeHtml(r.codeVersion)}. Self-contained: no network access needed.</footer>
</body>
</html>
`;
}

/** Reads results.json from a sequence run folder and writes its report.html; returns its path. */
export function writeSeq2SeqReport(runDir: string): string {
  const path = join(runDir, "results.json");
  let r: Seq2SeqResults;
  try {
    r = JSON.parse(readFileSync(path, "utf8")) as Seq2SeqResults;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(path, code === "ENOENT" ? "not found (has the run finished?)" : code ? `cannot be read (${code})` : `is not valid JSON (${(e as Error).message})`);
  }
  if (r?.task !== "seq2seq" || !Array.isArray(r.models)) throw new UserError(path, "not the results of a sequence-to-sequence run (task: seq2seq, models)");
  const out = join(runDir, "report.html");
  writeFileAtomic(out, renderSeq2SeqReport(r));
  return out;
}

/** results.json's task: "seq2seq" for a sequence run, else a classifier's (which has none). */
export function isSeq2SeqResults(runDir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(runDir, "results.json"), "utf8")) as { task?: unknown }).task === "seq2seq";
  } catch {
    return false;
  }
}
