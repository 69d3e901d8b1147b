// report.html of a tune or shrink folder: one self-contained page (Chart.js inlined, data as JSON),
// like a run's report. The T × α heat map is an HTML table coloured by validation accuracy, so it
// reads without JavaScript; the progress and size charts are Chart.js scatter plots drawn by
// src/report/assets/tune-report.js from the page's JSON.

import { join } from "node:path";
import { chartJs, inlineAsset, scriptJson } from "../report/assets.js";
import { escapeHtml as esc } from "../report/html.js";
import { writeFileAtomic } from "../util/fs.js";
import { rungLabel } from "./ladder.js";
import type { PairedComparison } from "./compare.js";
import type { SeedStats, ShrinkResults, TuneResults } from "./results.js";
import type { Setting } from "./space.js";

const settingText = (s: Setting) => Object.entries(s).map(([k, v]) => `${k} = ${v}`).join(", ") || "(the config's own)";
const seedText = (s: SeedStats) => `${s.mean.toFixed(1)}${s.testErrors.length > 1 ? ` ± ${s.std.toFixed(1)}` : ""}`;

/** The page around `body`; tune-report.js draws the charts that `charts` describes. */
function page(title: string, body: string, charts: TuneCharts): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>
${inlineAsset("tune-report.css")}</style></head><body>
${body}
<script type="application/json" id="tune-data">${scriptJson(charts)}</script>
<script>${chartJs()}</script>
<script>${inlineAsset("tune-report.js")}</script>
</body></html>
`;
}

/** What tune-report.js draws: scatter charts by canvas id, each a list of Chart.js datasets. */
interface TuneCharts {
  charts: { id: string; xTitle: string; yTitle: string; logX: boolean; datasets: Record<string, unknown>[] }[];
}

/**
 * Heat map cells: per (T, α) the best validation accuracy among that cell's longest trials (so a
 * setting promoted by successive halving shows its longer run, the others their short one).
 */
export function heatMap(r: TuneResults): { ts: number[]; alphas: number[]; cells: Map<string, number> } | undefined {
  if (!r.keys.includes("kd.temperature") || !r.keys.includes("kd.alpha")) return undefined;
  const cells = new Map<string, { epochs: number; acc: number }>();
  for (const t of r.trials) {
    const key = `${t.setting["kd.temperature"]}|${t.setting["kd.alpha"]}`;
    const had = cells.get(key);
    if (!had || t.epochs > had.epochs || (t.epochs === had.epochs && t.valAccuracy > had.acc)) cells.set(key, { epochs: t.epochs, acc: t.valAccuracy });
  }
  const uniq = (k: string) => [...new Set(r.trials.map((t) => Number(t.setting[k])))].sort((a, b) => a - b);
  return { ts: uniq("kd.temperature"), alphas: uniq("kd.alpha"), cells: new Map([...cells].map(([k, v]) => [k, v.acc])) };
}

function heatTable(r: TuneResults): string {
  const h = heatMap(r);
  if (!h) return "<p>No heat map: the search does not vary both kd.temperature and kd.alpha.</p>";
  const values = [...h.cells.values()];
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const colour = (v: number) => `hsl(${hi > lo ? Math.round(((v - lo) / (hi - lo)) * 120) : 120},65%,80%)`;
  const rows = h.ts.map((t) => {
    const cells = h.alphas.map((a) => {
      const v = h.cells.get(`${t}|${a}`);
      return v === undefined ? "<td>—</td>" : `<td style="background:${colour(v)}" data-t="${t}" data-alpha="${a}">${v.toFixed(4)}</td>`;
    });
    return `<tr><th>T = ${t}</th>${cells.join("")}</tr>`;
  });
  return `<table id="heatmap"><tr><th></th>${h.alphas.map((a) => `<th>α = ${a}</th>`).join("")}</tr>${rows.join("")}</table>`;
}

/** The paired test of winner against config, in words: whether the gain is more than seed noise. */
function comparisonText(c: PairedComparison | undefined): string {
  if (!c) return "<p>The search chose the config's own setting.</p>";
  const diffs = c.differences.map((d) => (d > 0 ? "+" : "") + d).join(", ");
  if (c.pValue === null) return `<p id="paired">Winner minus config: ${diffs} test errors (one seed: no test of significance; use <code>tune.seeds</code> ≥ 3).</p>`;
  return `<p id="paired">Winner minus config, paired by seed: ${diffs} test errors, mean ${c.meanDifference.toFixed(1)} ± ${c.std.toFixed(1)};
paired t = ${c.t!.toFixed(2)}, two-sided p = ${c.pValue.toFixed(3)}: <b>${c.verdict}</b>${c.verdict === "no significant difference" ? " (the gap is within the seed spread; validation selection may have fitted the validation split)" : ""}.</p>`;
}

export function writeTuneReport(dir: string, r: TuneResults): string {
  const trialRows = [...r.trials]
    .sort((a, b) => b.valAccuracy - a.valAccuracy)
    .map((t) => `<tr${t.id === r.winner.id ? ' class="win"' : ""}><td class="l">${esc(t.id)}</td><td class="l">${esc(settingText(t.setting))}</td><td>${t.epochs}</td><td>${t.valAccuracy.toFixed(4)}</td><td>${t.baselineValAccuracy?.toFixed(4) ?? "—"}</td><td>${t.seconds.toFixed(1)}</td></tr>`)
    .join("");
  const f = r.final;
  const body = `<h1>Tune: ${esc(r.name)}</h1>
<p class="answer">Chosen on validation accuracy: <b>${esc(settingText(r.winner.setting))}</b> (trial ${esc(r.winner.id)}, val acc ${r.winner.valAccuracy.toFixed(4)}).
Retrained with ${f.winner.testErrors.length} seed(s), ${f.epochs} epochs: <b>${seedText(f.winner)}</b> test errors of ${f.testTotal},
against <b>${seedText(f.config)}</b> for the config's own ${esc(settingText(r.configSetting))}.</p>
<table id="final"><tr><th class="l">setting</th><th>test errors (mean ± std)</th><th>per seed</th><th>baseline per seed</th></tr>
<tr class="win"><td class="l">winner: ${esc(settingText(r.winner.setting))}</td><td>${seedText(f.winner)}</td><td>${f.winner.testErrors.join(", ")}</td><td>${f.winner.baselineTestErrors?.join(", ") ?? "—"}</td></tr>
<tr><td class="l">config: ${esc(settingText(r.configSetting))}</td><td>${seedText(f.config)}</td><td>${f.config.testErrors.join(", ")}</td><td>${f.config.baselineTestErrors?.join(", ") ?? "—"}</td></tr></table>
${comparisonText(f.comparison)}
<h2>Validation accuracy over T × α</h2>${heatTable(r)}
<h2>Progress of the search</h2><div class="box"><canvas id="progress"></canvas></div>
<h2>Trials (${r.trials.length}${r.skipped.length ? `; ${r.skipped.length} not started: budget spent` : ""})</h2>
<table id="trials"><tr><th class="l">trial</th><th class="l">setting</th><th>epochs</th><th>val acc</th><th>baseline val acc</th><th>seconds</th></tr>${trialRows}</table>
<p>Strategy ${esc(r.strategy)}${r.budget ? `, budget ${esc(JSON.stringify(r.budget))}` : ""}; ${esc(r.executor)}, ${r.threads} onnxruntime thread(s) per trial; search wall time ${r.wallSeconds.toFixed(1)} s.
Selection reads validation accuracy only; the test set is read once, for the final runs.</p>`;
  const data = r.trials.map((t) => ({ x: t.elapsedSeconds, y: t.valAccuracy, id: t.id }));
  let bestSoFar = -Infinity;
  const best = [...data].sort((a, b) => a.x - b.x).map((p) => ({ x: p.x, y: (bestSoFar = Math.max(bestSoFar, p.y)) }));
  const charts: TuneCharts = { charts: [{ id: "progress", xTitle: "seconds into the search", yTitle: "validation accuracy", logX: false, datasets: [{ label: "trial", data }, { label: "best so far", data: best, showLine: true, stepped: true, pointRadius: 0 }] }] };
  const path = join(dir, "report.html");
  writeFileAtomic(path, page(`Tune ${r.name}`, body, charts));
  return path;
}

export function writeShrinkReport(dir: string, r: ShrinkResults): string {
  const a = r.assistant && !("skipped" in r.assistant) ? r.assistant : undefined;
  const pct = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(2)} pt`;
  const rows = r.ladder
    .map((l) => {
      const g = r.rungs.find((x) => x.id === l.id);
      const first = `<td class="l">${esc(rungLabel(l))}</td><td>${l.params.toLocaleString("en-US")}</td>`;
      if (!g) return `<tr class="skip">${first}<td colspan="8" class="l">not trained (bisection)</td></tr>`;
      const withAssistant = a && a.rung === g.id ? `${a.valAccuracy.toFixed(4)} (${pct(a.gain)}; ${a.passes ? "keeps" : "does not keep"})` : "";
      return `<tr${g.id === r.chosen?.id ? ' class="win"' : ""} data-rung="${esc(g.id)}">${first}<td>${g.latencyP50Ms.toFixed(4)}</td><td>${g.valAccuracy.toFixed(4)}</td><td>${(g.valAccuracy / r.teacherValAccuracy).toFixed(4)}</td><td>${g.testErrors}</td><td>${g.pareto ? "yes" : ""}</td><td>${g.latencyPareto ? "yes" : ""}</td><td>${g.passes ? "yes" : "no"}</td><td class="assistant">${withAssistant}</td></tr>`;
    })
    .join("");
  const c = r.chosen;
  const assistantText = !r.assistant ? "" : "skipped" in r.assistant ? `<p id="assistant">Teacher assistant: ${esc(r.assistant.skipped)}.</p>`
    : `<p id="assistant" class="answer">Teacher assistant (${esc(r.assistant.why)}): ${esc(r.assistant.rung)} trained again through an assistant of ${r.assistant.assistantParams.toLocaleString("en-US")} parameters (${esc(r.assistant.assistantFrom)}):
val acc ${r.assistant.valAccuracy.toFixed(4)}, ${pct(r.assistant.gain)} over the same student distilled directly; it <b>${r.assistant.passes ? "now keeps" : "still does not keep"}</b> ${r.keep} × the teacher's. ${r.assistant.gain > 0 ? "The assistant helped." : "The assistant did not help."}</p>`;
  const body = `<h1>Shrink: ${esc(r.name)}</h1>
<p class="answer">${c ? `Smallest student keeping ≥ ${r.keep} × the teacher's validation accuracy (${r.teacherValAccuracy.toFixed(4)}): <b>${esc(rungLabel(c))}</b>, ${c.params.toLocaleString("en-US")} parameters (${(c.params / r.teacherParams * 100).toFixed(2)} % of the teacher's), p50 latency ${c.latencyP50Ms.toFixed(4)} ms (teacher ${r.teacherLatencyP50Ms.toFixed(4)} ms), val acc ${c.valAccuracy.toFixed(4)}.` : `No rung of the ladder keeps ${r.keep} × the teacher's validation accuracy (${r.teacherValAccuracy.toFixed(4)}).`}</p>
${assistantText}
<table id="rungs"><tr><th class="l">rung</th><th>parameters</th><th>p50 ms</th><th>val acc</th><th>÷ teacher</th><th>test errors / ${r.testTotal}</th><th>Pareto (params)</th><th>Pareto (latency)</th><th>keeps</th><th>with assistant</th></tr>${rows}</table>
<h2>Validation accuracy vs parameters</h2><div class="box"><canvas id="size"></canvas></div>
<h2>Validation accuracy vs latency</h2><div class="box"><canvas id="latency"></canvas></div>
<p>${r.ladder.length} rungs ordered by parameter count; ${r.rungs.length} trained (${r.everyRung ? "every rung" : "bisection, which takes validation accuracy to grow along the ladder"}). Teacher: ${r.teacherParams.toLocaleString("en-US")} parameters. The Pareto front: rungs no other trained rung beats on both size (or latency) and validation accuracy. Selection on validation accuracy; test errors shown for reference.</p>`;
  const chart = (id: string, xOf: (g: ShrinkResults["rungs"][number]) => number, xTitle: string, front: (g: ShrinkResults["rungs"][number]) => boolean) => {
    const pts = r.rungs.map((g) => ({ x: xOf(g), y: g.valAccuracy, label: rungLabel(g) }));
    const frontPts = r.rungs.filter(front).map((g) => ({ x: xOf(g), y: g.valAccuracy })).sort((p, q) => p.x - q.x);
    const xs = pts.map((p) => p.x);
    const keepLine = [{ x: Math.min(...xs), y: r.keep * r.teacherValAccuracy }, { x: Math.max(...xs), y: r.keep * r.teacherValAccuracy }];
    const chosen = c ? [{ x: xOf(c), y: c.valAccuracy }] : [];
    const assisted = a ? r.rungs.filter((g) => g.id === a.rung).map((g) => ({ x: xOf(g), y: a.valAccuracy })) : [];
    // The chosen rung: a large filled marker drawn above the others (order −1) and never clipped at the axes' edge.
    const datasets = [
      { label: "rung", data: pts, backgroundColor: "#1f5fbf", borderColor: "#1f5fbf", pointRadius: 4 },
      { label: "Pareto front", data: frontPts, showLine: true, pointRadius: 0, borderColor: "#9aa4b1", backgroundColor: "#9aa4b1" },
      { label: "keep × teacher", data: keepLine, showLine: true, pointRadius: 0, borderDash: [4, 4], borderColor: "#2a9d5c", backgroundColor: "#2a9d5c" },
      { label: "chosen", data: chosen, pointRadius: 10, pointHoverRadius: 12, pointStyle: "rectRot", backgroundColor: "#e0701b", borderColor: "#1d232b", borderWidth: 2, order: -1, clip: false },
      ...(assisted.length ? [{ label: "with assistant", data: assisted, pointRadius: 7, pointStyle: "triangle", backgroundColor: "#a23fb0", borderColor: "#a23fb0", clip: false }] : []),
    ];
    return { id, xTitle, yTitle: "validation accuracy", logX: true, datasets };
  };
  const charts: TuneCharts = { charts: [chart("size", (g) => g.params, "parameters", (g) => g.pareto), chart("latency", (g) => g.latencyP50Ms, "p50 latency (ms)", (g) => g.latencyPareto)] };
  const path = join(dir, "report.html");
  writeFileAtomic(path, page(`Shrink ${r.name}`, body, charts));
  return path;
}
