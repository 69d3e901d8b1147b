// compare.html: one self-contained page (no script, no network) with the comparison table and two
// charts drawn as inline SVG — accuracy vs batch-1 latency and accuracy vs file size, log-scaled
// cost axes, labelled points, ±std error bars, and the Pareto front as a step line. Its stylesheet
// is src/report/assets/compare.css, like every page's.

import { inlineAsset } from "../report/assets.js";
import { binaryByteTicks, byteTickLabel, placeLabels } from "../report/chart-geometry.js";
import { escapeHtml as esc } from "../report/html.js";
import type { CompareResult, CompareRow } from "./compare-result.js";

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

interface Axis {
  label: string;
  cost: (r: CompareRow) => number;
  /** Tick values between the axis bounds. */
  ticks: (lo: number, hi: number) => number[];
  format: (v: number) => string;
  front: (r: CompareRow) => boolean;
}

/** 1, 2 and 5 × 10ⁿ: round values for a decimal quantity (time) on a log axis. */
function decimalLogTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) ticks.push(v);
    }
  return ticks;
}

/** Label font size and the width estimate the placement uses (system-ui at 11 px averages under 6.2 px a character). */
const LABEL_FONT = 11;
const LABEL_HEIGHT = 13;
export const labelWidth = (text: string) => Math.ceil(text.length * 6.2) + 2;

function chart(rows: CompareRow[], axis: Axis): string {
  const W = 560, H = 360, L = 60, R = 20, T = 20, B = 50;
  const costs = rows.map(axis.cost).filter((c) => c > 0);
  const lo = Math.min(...costs) / 1.5, hi = Math.max(...costs) * 1.5;
  const accs = rows.flatMap((r) => [r.accuracy.mean - r.accuracy.std, r.accuracy.mean + r.accuracy.std]);
  const aLo = Math.min(...accs), aHi = Math.max(...accs);
  const pad = Math.max((aHi - aLo) * 0.1, 0.002);
  const yLo = aLo - pad, yHi = aHi + pad;
  const x = (v: number) => L + ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - L - R);
  const y = (a: number) => T + (1 - (a - yLo) / (yHi - yLo)) * (H - T - B);
  const parts: string[] = [`<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="accuracy vs ${esc(axis.label)}">`];
  for (const t of axis.ticks(lo, hi))
    parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${T}" y2="${H - B}" stroke="#eee"/><text class="tick" x="${x(t)}" y="${H - B + 16}" text-anchor="middle" font-size="11" data-value="${t}">${esc(axis.format(t))}</text>`);
  for (let i = 0; i <= 5; i++) {
    const a = yLo + ((yHi - yLo) * i) / 5;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(a)}" y2="${y(a)}" stroke="#eee"/><text x="${L - 6}" y="${y(a) + 4}" text-anchor="end" font-size="11">${(a * 100).toFixed(1)}</text>`);
  }
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle" font-size="12">${esc(axis.label)} (log scale)</text>`);
  parts.push(`<text x="14" y="${(T + H - B) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${(T + H - B) / 2})">test accuracy %</text>`);
  // Pareto front: steps through the front's points in order of cost.
  const front = rows.filter(axis.front).sort((a, b) => axis.cost(a) - axis.cost(b));
  if (front.length > 1) {
    let d = `M ${x(axis.cost(front[0]!))} ${y(front[0]!.accuracy.mean)}`;
    for (const p of front.slice(1)) d += ` H ${x(axis.cost(p))} V ${y(p.accuracy.mean)}`;
    parts.push(`<path d="${d}" fill="none" stroke="#999" stroke-dasharray="4 3"/>`);
  }
  const centres = rows.map((r) => ({ x: x(axis.cost(r)), y: y(r.accuracy.mean) }));
  // Names placed so that none overlaps another or a point; one pushed away gets a leader line.
  const labels = placeLabels(rows.map((r, i) => ({ ...centres[i]!, width: labelWidth(r.name), height: LABEL_HEIGHT })), { left: L, top: 0, right: W, bottom: H - B }, 6);
  rows.forEach((r, i) => {
    const { x: cx, y: cy } = centres[i]!, color = COLORS[i % COLORS.length]!;
    if (r.accuracy.std > 0) parts.push(`<line x1="${cx}" x2="${cx}" y1="${y(r.accuracy.mean - r.accuracy.std)}" y2="${y(r.accuracy.mean + r.accuracy.std)}" stroke="${color}"/>`);
    parts.push(`<circle cx="${cx}" cy="${cy}" r="${axis.front(r) ? 6 : 4}" fill="${axis.front(r) ? color : "white"}" stroke="${color}" stroke-width="2"><title>${esc(r.name)}: ${(r.accuracy.mean * 100).toFixed(2)} %, ${esc(axis.format(axis.cost(r)))}</title></circle>`);
  });
  rows.forEach((r, i) => {
    const b = labels[i]!, color = COLORS[i % COLORS.length]!;
    if (b.leader) {
      const ex = Math.min(Math.max(centres[i]!.x, b.left), b.left + b.width), ey = Math.min(Math.max(centres[i]!.y, b.top), b.top + b.height);
      parts.push(`<line x1="${centres[i]!.x}" y1="${centres[i]!.y}" x2="${ex}" y2="${ey}" stroke="${color}" stroke-width="0.8"/>`);
    }
    parts.push(`<text class="point-label" x="${b.left}" y="${b.top + LABEL_HEIGHT - 3}" font-size="${LABEL_FONT}" fill="${color}" data-box="${[b.left, b.top, b.width, b.height].map((v) => v.toFixed(1)).join(" ")}">${esc(r.name)}</text>`);
  });
  parts.push("</svg>");
  return parts.join("");
}

/** Table cells: KiB/MiB with one decimal (exact values are in compare.json). */
const kib = (b: number) => (b >= 1 << 20 ? `${(b / (1 << 20)).toFixed(1)} MiB` : `${(b / 1024).toFixed(b < 10240 ? 1 : 0)} KiB`);

/** The int8 student in one sentence for people: how much smaller, how its accuracy moved, how fast against the teacher. */
export function int8Summary(i: CompareResult["int8Student"]): string | undefined {
  if (!Number.isFinite(i.sizeRatio)) return undefined;
  const c = i.accuracyChangePoints;
  const accuracy = Math.abs(c) < 0.005 ? "exactly as accurate" : c > 0 ? `${c.toFixed(2)} accuracy points more accurate` : `${(-c).toFixed(2)} accuracy points less accurate`;
  const s = i.speedupVsTeacher;
  const speed = !Number.isFinite(s) ? "" : s >= 1 ? `; at batch 1 it runs ${s.toFixed(1)}× faster than the teacher` : `; at batch 1 it runs ${(1 / s).toFixed(1)}× slower than the teacher`;
  return `The int8 student is ${i.sizeRatio.toFixed(2)}× smaller than the fp32 student and ${accuracy} on these test images${speed}.`;
}

export function comparePage(r: CompareResult): string {
  const pct = (v: number) => (v * 100).toFixed(2);
  const range = (x: CompareRow) => `${x.latencyP50RangeMs[0].toFixed(3)}–${x.latencyP50RangeMs[1].toFixed(3)}`;
  const rows = r.rows
    .map((x) => `<tr><td>${esc(x.name)}</td><td>${esc(x.how)}</td><td>${pct(x.accuracy.mean)}${x.accuracy.seeds > 1 ? ` ± ${pct(x.accuracy.std)} (${x.accuracy.seeds} seeds)` : ""}</td><td>${x.macroF1.toFixed(4)}</td><td>${Math.round(x.params).toLocaleString("en")}</td><td>${kib(x.onnxBytes)}</td><td>${kib(x.onnxGzipBytes)}</td><td>${x.latencyP50Ms.toFixed(3)}<span class="range">${r.rounds > 1 ? range(x) : ""}</span></td><td>${x.latencyP95Ms.toFixed(3)}</td><td>${Math.round(x.throughput).toLocaleString("en")}</td><td>${x.agreement === null ? "—" : pct(x.agreement)}</td><td>${[x.paretoLatency ? "latency" : "", x.paretoSize ? "size" : ""].filter(Boolean).join(", ")}</td></tr>`)
    .join("\n");
  const int8 = int8Summary(r.int8Student);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(r.run)}: compression compared</title>
<style>${inlineAsset("compare.css")}</style></head>
<body>
<h1>${esc(r.run)}: every way to shrink, measured</h1>
<p>${r.testSamples.toLocaleString("en")} ${esc(r.dataset)} test images. Latency at batch 1 and throughput at batch 128 under onnxruntime-node on this machine: every model warmed up, then ${r.rounds} round${r.rounds > 1 ? "s" : ""} each timing every model in turn${r.rounds > 1 ? "; under the p50, the lowest and highest p50 of a single round" : ""}; load average ${r.loadAverage.join(" ")} at ${esc(r.measuredAt)}. Agreement: top-1 with the teacher. Filled points are on the Pareto front (no other model is both more accurate and cheaper).</p>
<table id="compare"><thead><tr><th>model</th><th>how</th><th>test accuracy %</th><th>macro-F1</th><th>parameters</th><th>.onnx</th><th>gzip</th><th>p50 ms</th><th>p95 ms</th><th>samples/s at 128</th><th>agreement %</th><th>Pareto</th></tr></thead>
<tbody>
${rows}
</tbody></table>
${int8 ? `<p id="int8-summary">${esc(int8)}</p>` : ""}
<div class="charts">
${chart(r.rows, { label: "latency at batch 1, ms", cost: (x) => x.latencyP50Ms, ticks: decimalLogTicks, format: (v) => (v < 1 ? String(Number(v.toPrecision(2))) : String(Math.round(v))), front: (x) => x.paretoLatency })}
${chart(r.rows, { label: "file size", cost: (x) => x.onnxBytes, ticks: binaryByteTicks, format: byteTickLabel, front: (x) => x.paretoSize })}
</div>
</body></html>
`;
}
