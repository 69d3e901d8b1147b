// The HTML report opened in headless Chromium (charts actually drawn, names escaped, no network),
// writeReport's file handling, and the latency/size measurements on a tiny engine-built model.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { gzipSync } from "node:zlib";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { launchBrowser } from "./helpers/browser.js";
import { renderReport, writeReport } from "../src/report/html.js";
import { comparePage, int8Summary, labelWidth } from "../src/compress/compare-html.js";
import type { CompareResult, CompareRow } from "../src/compress/compare-result.js";
import { writeShrinkReport } from "../src/tune/report.js";
import type { ShrinkResults } from "../src/tune/results.js";
import { headline, pairedDifference, tQuantile95 } from "../src/report/headline.js";
import { summarize } from "../src/eval/metrics.js";
import { measureInterleaved, measureOnnx, sizeOf } from "../src/eval/latency.js";
import { divergences, divergenceWarning, findDivergence } from "../src/eval/divergence.js";
import { trainStage } from "../src/distill/train-stage.js";
import { Model } from "../src/nn/model.js";
import * as L from "../src/nn/layers.js";
import type { TrainSpec } from "../src/config/schema.js";
import { mnist } from "./helpers/mnist-models.js";
import { Graph } from "../src/engine/graph.js";
import * as F from "../src/engine/functional.js";
import { encodeModel } from "../src/engine/onnx.js";
import { UserError } from "../src/errors.js";
import type { EpochMetric, ModelMetrics, ModelResult, RunResults } from "../src/eval/types.js";

const HOSTILE = "student <b>bold</b> & co";

type Base = { acc: number; params: number; bytes: number; p50: number; step?: number };

function metrics(seed: number, base: Base, teacher: boolean): ModelMetrics {
  const accuracy = base.acc + seed * (base.step ?? 0.002);
  return {
    accuracy,
    errors: Math.round((1 - accuracy) * 10000),
    total: 10000,
    macroF1: accuracy - 0.001,
    nll: 0.3 - base.acc * 0.2,
    ece: 0.02 + seed * 0.001,
    agreement: teacher ? null : 0.96 + seed * 0.005,
    precision: null, recall: null, f1: null, rocAuc: null,
    params: base.params,
    onnxBytes: base.bytes,
    onnxGzipBytes: Math.round(base.bytes * 0.92),
    latencyP50Ms: base.p50 * (1 + seed * 0.05),
    latencyP95Ms: base.p50 * 1.6,
    throughput: 128000 / (base.p50 * 20),
  };
}

function model(role: string, base: Base): ModelResult {
  const perSeed = [0, 1].map((s) => metrics(s, base, role === "teacher"));
  return { role, file: `models/${role.replace(/\W+/g, "_")}.onnx`, perSeed, summary: summarize(perSeed) };
}

export function fixture(): { results: RunResults; epochs: EpochMetric[] } {
  const models = [
    model("teacher", { acc: 0.985, params: 1_200_000, bytes: 4_800_000, p50: 0.9 }),
    model("baseline", { acc: 0.962, params: 50_000, bytes: 200_000, p50: 0.08 }),
    // errors 270 and 235 against the baseline's 380 and 360: paired differences −110 and −125
    model("student", { acc: 0.973, params: 50_000, bytes: 200_000, p50: 0.08, step: 0.0035 }),
    model(HOSTILE, { acc: 0.97, params: 25_000, bytes: 100_000, p50: 0.05 }),
  ];
  const epochs: EpochMetric[] = [];
  models.forEach((m, mi) => {
    for (const seed of [0, 1])
      for (let epoch = 1; epoch <= 3; epoch++) {
        const acc = m.perSeed[seed]!.accuracy - 0.04 / epoch;
        epochs.push({
          stage: m.role, seed, epoch, lr: 0.01 / epoch,
          trainLoss: (0.6 + 0.3 * mi) / epoch + seed * 0.02,
          terms: { loss_ce: 0.5 / epoch, loss_kd: 0.2 / epoch },
          trainAccuracy: acc + 0.005, valAccuracy: acc, valLoss: 0.5 / epoch, seconds: 12,
        });
      }
  });
  const results: RunResults = {
    name: "mnist </script> <i>run</i>",
    createdAt: "2025-01-01T00:00:00.000Z",
    codeVersion: "0.1.0+abc1234",
    seeds: [0, 1],
    dataset: "mnist",
    temperature: 4,
    alpha: 0.9,
    epochs: 3,
    wallSeconds: 3725,
    models,
    data: { train: 55000, validation: 5000, test: 10000, transfer: 55000, transferLabeled: true },
    setup: { student: { model: { layers: [{ type: "linear", units: 64 }] } }, kd: { temperature: 4, alpha: 0.9 } },
    machine: { cpus: 2, cpuModel: "Test CPU", onnxThreads: 2, loadAverage: [0.5, 0.4, 0.3] },
    details: {
      classLabels: ["zero", "one", "two"],
      confusion: Object.fromEntries(models.slice(0, 3).map((m, i) => [m.role, [[50, 2 + i, 0], [1, 40, 3], [0, 4 + i, 30]]])),
      image: { height: 28, width: 28 },
      disagreements: [0, 1].map((i) => ({ index: 10 + i, label: i, teacher: i, student: 2, pixels: Buffer.alloc(784, 40 * (i + 1)).toString("base64") })),
      disagreementCount: 17,
    },
  };
  return { results, epochs };
}

interface Box {
  label?: string;
  left: number;
  top: number;
  width: number;
  height: number;
}

const overlapArea = (a: Box, b: Box) =>
  Math.max(0, Math.min(a.left + a.width, b.left + b.width) - Math.max(a.left, b.left)) * Math.max(0, Math.min(a.top + a.height, b.top + b.height) - Math.max(a.top, b.top));

/** No two label boxes share a pixel, and no box covers a point's marker (a square of `radius`). */
function assertNoOverlap(boxes: Box[], points: { x: number; y: number }[], radius: number, where: string): void {
  for (const [i, a] of boxes.entries()) {
    for (const b of boxes.slice(i + 1)) assert.equal(overlapArea(a, b), 0, `${where}: "${a.label}" overlaps "${b.label}": ${JSON.stringify([a, b])}`);
    for (const p of points) assert.equal(overlapArea(a, { left: p.x - radius, top: p.y - radius, width: 2 * radius, height: 2 * radius }), 0, `${where}: "${a.label}" covers the point at ${p.x}, ${p.y}`);
  }
}

/** "200 KiB" → 204800: the value a byte label claims. */
function bytesOfLabel(label: string): number {
  const m = /^([\d.]+) (B|KiB|MiB|GiB)$/.exec(label);
  assert.ok(m, `not a byte label: ${JSON.stringify(label)}`);
  return Number(m[1]) * 1024 ** ["B", "KiB", "MiB", "GiB"].indexOf(m[2]!);
}

/** The JSON a rendered report embeds for its charts. */
function embeddedData(html: string) {
  const start = html.indexOf('id="report-data">') + 'id="report-data">'.length;
  return JSON.parse(html.slice(start, html.indexOf("</script>", start)));
}

/** The fixture with `role`'s accuracy set to `acc` (its seeds step by 0.0035). */
function withAccuracy(role: string, acc: number): RunResults {
  const { results } = fixture();
  return { ...results, models: results.models.map((m) => (m.role === role ? model(role, { acc, params: 50_000, bytes: 200_000, p50: 0.08, step: 0.0035 }) : m)) };
}

/** On both trade-off charts: a name per model, none overlapping another or a point, all on the canvas. */
async function assertNamesApart(page: Page, models: number): Promise<void> {
  for (const id of ["chart-accuracy-latency", "chart-accuracy-size"]) {
    const { boxes, points, width, height } = await page.evaluate((chartId) => {
      const canvas = document.getElementById(chartId) as HTMLCanvasElement;
      const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: { pareto?: boolean }[] }; getDatasetMeta(i: number): { data: { x: number; y: number }[] }; width: number; height: number } } }).Chart.getChart(canvas);
      const points = chart.data.datasets.flatMap((d, i) => (d.pareto ? [] : chart.getDatasetMeta(i).data.map((e) => ({ x: e.x, y: e.y }))));
      return { boxes: JSON.parse(canvas.dataset["labelBoxes"] ?? "[]") as Box[], points, width: chart.width, height: chart.height };
    }, id);
    assert.equal(boxes.length, models, `${id}: a name per model`);
    assertNoOverlap(boxes, points, 5, id);
    for (const b of boxes) assert.ok(b.left >= 0 && b.top >= 0 && b.left + b.width <= width && b.top + b.height <= height, `${id}: ${b.label} drawn off the canvas`);
  }
}

describe("HTML report in Chromium", () => {
  let browser: Browser | undefined;
  const dir = mkdtempSync(join(tmpdir(), "distill-report-"));

  before(async () => {
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("names the points of models that sit within a few pixels of each other without overlap", async () => {
    // Student and baseline: the same size and latency, 0.1 accuracy points apart.
    const file = join(dir, "crowded.html");
    writeFileSync(file, renderReport(withAccuracy("student", 0.9625), fixture().epochs));
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction(() => document.body.dataset["chartsRendered"] === "6", undefined, { timeout: 15000 });
    await assertNamesApart(page, 4);
    // Left open: this Chromium runs as one process, and closing its last page would end it.
  });

  it("answers the question at the top, draws six charts, per-class errors and disagreements, escapes names, needs no network", async () => {
    const { results, epochs } = fixture();
    const html = renderReport(results, epochs);
    assert.ok(!html.includes("<b>bold</b>"), "raw markup from a model name reached the page");
    const file = join(dir, "report.html");
    writeFileSync(file, html);

    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const foreign: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) foreign.push(r.url());
    });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => void (m.type() === "error" && errors.push(m.text())));
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction(() => document.body.dataset["chartsRendered"] === "6", undefined, { timeout: 15000 }).catch((e) => {
      throw new Error(`charts not rendered (page errors: ${errors.join("; ") || "none"}): ${e}`);
    });
    assert.deepEqual(errors, [], "no page or console errors");
    assert.deepEqual(foreign, [], "the report must not touch the network");

    // The headline, worked by hand from the fixture: errors 270/235 vs 380/360 → −110, −125.
    const vsBaseline = (await page.textContent("#headline-vs-baseline"))!;
    assert.match(vsBaseline, /−117\.5 errors/);
    assert.match(vsBaseline, /\+1\.1[78] accuracy points/); // 97.475 − 96.3 = 1.175
    assert.match(vsBaseline, /95% interval \[−212\.8, −22\.2\] errors over 2 seeds/); // t(1) = 12.706, sd 10.61
    assert.match(vsBaseline, /excludes zero/);
    assert.match((await page.textContent("#headline-gap"))!, /closes 51 % of the gap/); // (370 − 252.5) / (370 − 140)
    const vsTeacher = (await page.textContent("#headline-vs-teacher"))!;
    assert.match(vsTeacher, /24× fewer parameters/);
    assert.match(vsTeacher, /11× lower batch-1 latency \(11× to 12× over the student's 2 seeds\)/); // 0.9225 / 0.082; per seed ÷ 0.084 and ÷ 0.08

    // Chart.js draws on a transparent canvas, so any non-zero alpha means something was painted.
    const canvases = ["chart-val-accuracy", "chart-val-loss", "chart-accuracy-latency", "chart-accuracy-size", "chart-per-class"];
    const painted = await page.evaluate((ids) =>
      ids.map((id) => {
        const c = document.getElementById(id) as HTMLCanvasElement | null;
        if (!c || c.width === 0 || c.height === 0) return { id, painted: 0 };
        const px = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) n++;
        return { id, painted: n };
      }), canvases);
    for (const p of painted) assert.ok(p.painted > 1000, `canvas #${p.id} is blank (${p.painted} painted pixels)`);

    const rows = await page.$$eval("#comparison tbody tr", (trs) => trs.map((tr) => tr.querySelector("th")!.textContent ?? ""));
    assert.equal(rows.length, 4);
    assert.ok(rows[3]!.includes(HOSTILE), `row shows ${JSON.stringify(rows[3])}`);
    assert.equal(await page.$$eval("#comparison b, h1 i", (els) => els.length), 0, "names must be shown as text, not markup");
    assert.equal(await page.textContent("h1"), results.name);
    assert.equal(await page.title(), `distill report — ${results.name}`);

    // Two seeds: mean ± std. The teacher has no agreement. Sub-millisecond latency reads in µs.
    const teacherCells = await page.$$eval("#comparison tbody tr:first-child td", (tds) => tds.map((td) => td.textContent ?? ""));
    assert.match(teacherCells[0]!, /^98\.60 % ± 0\.14$/);
    assert.equal(teacherCells[5], "—");
    assert.match(teacherCells[1]!, /^140 \/ 10,000 ± 14\.1$/);
    assert.match(teacherCells[8]!, /^922\.5 µs \/ 1\.44 ms/);
    assert.match((await page.textContent("main, body"))!, /2 intra-op threads on 2 cores \(Test CPU\); load average 0\.5, 0\.4, 0\.3/);

    // A confusion matrix per model with per-class errors; thumbnails of the disagreements drawn.
    const matrices = await page.$$eval("table.confusion", (ts) => ts.map((t) => [t.getAttribute("data-role"), t.querySelectorAll("tbody tr").length, t.querySelector("tbody tr:last-child td.row-errors")?.textContent]));
    // The fixture's matrices are sums over its two seeds: shown as one model's counts.
    assert.deepEqual(matrices, [["teacher", 3, "2"], ["baseline", 3, "2.5"], ["student", 3, "3"]]);

    await assertNamesApart(page, 4);
    // Size ticks name their values exactly: "200 KiB" sits at 204,800 bytes.
    const ticks = await page.evaluate(() => (window as unknown as { Chart: { getChart(id: string): { scales: { x: { ticks: { value: number; label: string }[] } } } } }).Chart.getChart("chart-accuracy-size").scales.x.ticks.map((t) => [t.value, t.label] as [number, string]));
    assert.ok(ticks.length >= 3, JSON.stringify(ticks));
    for (const [value, label] of ticks) assert.equal(bytesOfLabel(label), value, `tick "${label}" at ${value} bytes`);
    // The distilled student's loss terms each in their own colour.
    const termColours = await page.evaluate(() => (window as unknown as { Chart: { getChart(id: string): { data: { datasets: { label: string; borderColor: string; band?: boolean }[] } } } }).Chart.getChart("chart-student-terms").data.datasets.filter((d) => !d.band).map((d) => d.borderColor));
    assert.equal(termColours.length, 2);
    assert.notEqual(termColours[0], termColours[1], "loss_ce and loss_kd drawn in one colour");
    assert.equal(await page.evaluate(() => document.body.dataset["thumbnailsDrawn"]), "2");
    const thumbInk = await page.evaluate(() => {
      const c = document.querySelector("canvas.thumb") as HTMLCanvasElement;
      return c.getContext("2d")!.getImageData(0, 0, 1, 1).data[0];
    });
    assert.equal(thumbInk, 255 - 40, "thumbnail pixels come from the data (ink dark on white)");
    assert.match((await page.textContent("#disagreements"))!, /#10 true zero/);

    // The set-up is one click away, closed by default.
    assert.equal(await page.$eval("details#setup", (d) => (d as HTMLDetailsElement).open), false);
    assert.match((await page.textContent("details#setup"))!, /Training 55,000, validation 5,000, test 10,000/);

    // Kept for people: a screenshot of the page (REPORT_SCREENSHOT chooses where).
    const shot = process.env["REPORT_SCREENSHOT"] ?? join(tmpdir(), "distill-report-screenshot.png");
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot));
    console.log(`# report screenshot: ${shot}`);
    await page.close();
  });

  it("writeReport reads a run folder and writes report.html", () => {
    const { results, epochs } = fixture();
    const run = join(dir, "run");
    assert.throws(() => writeReport(run), (e: unknown) => e instanceof UserError && e.where.endsWith("results.json") && /not found/.test(e.message));
    const resultsPath = join(run, "results.json");
    // Corrupt (truncated) results.json names the file.
    const json = JSON.stringify(results);
    mkdirSync(run, { recursive: true });
    writeFileSync(resultsPath, json.slice(0, 40));
    assert.throws(() => writeReport(run), (e: unknown) => e instanceof UserError && e.where === resultsPath && /not valid JSON/.test(e.message));
    writeFileSync(resultsPath, JSON.stringify({ ...results, models: "x" }));
    assert.throws(() => writeReport(run), (e: unknown) => e instanceof UserError && /models/.test(e.message));

    writeFileSync(resultsPath, json);
    writeFileSync(join(run, "metrics.jsonl"), epochs.map((e) => JSON.stringify(e)).join("\n") + "\n");
    const out = writeReport(run);
    assert.equal(out, join(run, "report.html"));
    const html = readFileSync(out, "utf8");
    assert.ok(html.includes('id="chart-accuracy-latency"'));
    assert.ok(html.includes("&lt;b&gt;bold&lt;/b&gt;"));
    // The embedded data never closes its own <script> early.
    const start = html.indexOf('id="report-data">') + 'id="report-data">'.length;
    const embedded = html.slice(start, html.indexOf("</script>", start));
    const data = JSON.parse(embedded);
    assert.equal(data.tradeoff.length, 4);
    // The student's loss terms per epoch: one series per term, the mean over its two seeds.
    assert.deepEqual(data.studentTerms.map((s: { label: string }) => s.label), ["loss_ce", "loss_kd"]);
    assert.notEqual(data.studentTerms[0].color, data.studentTerms[1].color);
    assert.deepEqual(data.studentTerms[0].points.map((p: { epoch: number; mean: number; n: number }) => [p.epoch, p.mean, p.n]), [[1, 0.5, 2], [2, 0.25, 2], [3, 0.5 / 3, 2]]);

    assert.ok(!html.includes('id="compare-link"'), "no link without compare.html");
    writeFileSync(join(run, "compare.html"), "<!doctype html>");
    assert.ok(readFileSync(writeReport(run), "utf8").includes('<a href="compare.html">'), "linked once distill compare wrote it");

    writeFileSync(join(run, "metrics.jsonl"), JSON.stringify(epochs[0]) + "\n{oops\n");
    assert.throws(() => writeReport(run), (e: unknown) => e instanceof UserError && e.where.endsWith("metrics.jsonl:2"));
  });
});

describe("compare.html and the shrink report", () => {
  let browser: Browser | undefined;
  const dir = mkdtempSync(join(tmpdir(), "distill-pages-"));
  before(async () => {
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Seven rows as `distill compare` writes them; the four students sit within a few pixels of each other. */
  function compareResult(): CompareResult {
    const row = (name: string, acc: number, bytes: number, p50: number, front: boolean): CompareRow => ({
      name, how: "—", file: `${name}.onnx`, accuracy: { mean: acc, std: 0, seeds: 1 }, fileAccuracy: acc, macroF1: acc - 0.001, params: bytes / 4,
      onnxBytes: bytes, onnxGzipBytes: Math.round(bytes * 0.9), latencyP50Ms: p50, latencyP95Ms: p50 * 1.4, latencyP50RangeMs: [p50 * 0.95, p50 * 1.1], throughput: 1e5,
      agreement: name === "teacher" ? null : 0.98, paretoLatency: front, paretoSize: front,
    });
    return {
      run: "demo", dataset: "mnist", testSamples: 10000, measuredAt: "2025-01-01T00:00:00.000Z", loadAverage: [0.2, 0.2, 0.1], rounds: 3,
      rows: [
        row("teacher", 0.9753, 2_700_000, 0.2, true), row("baseline (labels only)", 0.9549, 205_000, 0.024, false),
        row("distilled student", 0.9621, 205_000, 0.0235, false), row("student int8", 0.9626, 54_000, 0.0238, true),
        row("student fp16", 0.9621, 104_000, 0.0236, false), row("teacher int8", 0.9749, 690_000, 0.09, true), row("teacher pruned", 0.9402, 200_000, 0.025, false),
      ],
      int8Student: { sizeRatio: 205_000 / 54_000, accuracyChangePoints: 0.05, speedupVsTeacher: 0.2 / 0.0238 },
    };
  }

  it("compare.html: facts for people, not the project's targets; names placed apart; size ticks name their values", () => {
    const html = comparePage(compareResult());
    const text = html.replace(/<[^>]+>/g, " ");
    assert.doesNotMatch(text, /target|missed|≥|lost/i);
    assert.match(text, /The int8 student is 3\.80× smaller than the fp32 student and 0\.05 accuracy points more accurate on these test images; at batch 1 it runs 8\.4× faster than the teacher\./);
    assert.match(int8Summary({ sizeRatio: 3.8, accuracyChangePoints: -0.3, speedupVsTeacher: 0.5 })!, /0\.30 accuracy points less accurate .* 2\.0× slower than the teacher/);
    const svgs = html.match(/<svg .*?<\/svg>/gs)!;
    assert.equal(svgs.length, 2);
    for (const svg of svgs) {
      const boxes = [...svg.matchAll(/<text class="point-label"[^>]* data-box="([^"]+)">([^<]+)<\/text>/g)].map((m) => {
        const [left, top, width, height] = m[1]!.split(" ").map(Number);
        return { label: m[2]!, left: left!, top: top!, width: width!, height: height! };
      });
      assert.equal(boxes.length, 7);
      for (const b of boxes) assert.ok(b.width >= labelWidth(b.label) && b.left >= 0 && b.left + b.width <= 560 && b.top >= 0, JSON.stringify(b));
      const points = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]) }));
      assertNoOverlap(boxes, points, 6, "compare.html");
    }
    const sizeTicks = [...svgs[1]!.matchAll(/<text class="tick"[^>]* data-value="([\d.e+]+)">([^<]+)<\/text>/g)];
    assert.ok(sizeTicks.length >= 3);
    for (const [, value, label] of sizeTicks) assert.equal(bytesOfLabel(label!), Number(value), `tick ${label}`);
    assert.doesNotMatch(html, /<script/);
  });

  it("the shrink report: the chosen rung is a large marker drawn on top, whole, inside the plot", async () => {
    const rung = (id: string, width: number, params: number, latencyP50Ms: number, valAccuracy: number, passes: boolean) =>
      ({ id, width, params, latencyP50Ms, valAccuracy, testErrors: Math.round((1 - valAccuracy) * 1000), passes, pareto: true, latencyPareto: true });
    // The chosen rung is the largest and the most accurate: the top-right corner, where a marker used to be cut in half.
    const rungs = [rung("w0.25", 0.25, 5_000, 0.01, 0.9, false), rung("w0.5", 0.5, 20_000, 0.02, 0.95, false), rung("w1", 1, 80_000, 0.05, 0.985, true)];
    const results: ShrinkResults = {
      name: "ladder", configPath: "c.yaml", keep: 0.98, everyRung: true, teacherValAccuracy: 0.99, teacherParams: 500_000, teacherLatencyP50Ms: 0.3, testTotal: 1000,
      ladder: rungs.map((g) => ({ id: g.id, width: g.width, params: g.params, trained: true })), rungs, chosen: rungs[2]!, wallSeconds: 12,
    };
    const file = writeShrinkReport(dir, results);
    const page = await browser!.newPage({ viewport: { width: 1100, height: 900 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction(() => document.body.dataset["chartsRendered"] === "2", undefined, { timeout: 15000 }).catch((e) => {
      throw new Error(`charts not rendered (page errors: ${errors.join("; ") || "none"}): ${e}`);
    });
    for (const id of ["size", "latency"]) {
      const m = await page.evaluate((chartId) => {
        type ChartLike = { chartArea: { left: number; right: number; top: number; bottom: number }; data: { datasets: { label: string }[] }; getDatasetMeta(i: number): { data: { x: number; y: number; options: { radius: number } }[] } };
        const canvas = document.getElementById(chartId) as HTMLCanvasElement;
        const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): ChartLike } }).Chart.getChart(canvas);
        const i = chart.data.datasets.findIndex((d) => d.label === "chosen");
        const el = chart.getDatasetMeta(i).data[0]!;
        const scale = canvas.width / canvas.clientWidth;
        const px = canvas.getContext("2d")!.getImageData(Math.round(el.x * scale), Math.round(el.y * scale), 1, 1).data;
        return { x: el.x, y: el.y, radius: el.options.radius, area: chart.chartArea, pixel: [px[0], px[1], px[2]] };
      }, id);
      assert.ok(m.radius >= 8, `${id}: chosen marker radius ${m.radius}`);
      assert.ok(m.x - m.radius >= m.area.left && m.x + m.radius <= m.area.right && m.y - m.radius >= m.area.top && m.y + m.radius <= m.area.bottom, `${id}: chosen marker at ${m.x}, ${m.y} (r ${m.radius}) leaves the plot ${JSON.stringify(m.area)}`);
      assert.deepEqual(m.pixel, [0xe0, 0x70, 0x1b], `${id}: the chosen marker's colour is what shows at its centre`);
    }
    assert.deepEqual(errors, []);
    await page.close();
  });
});

describe("latency and size", () => {
  const relu = () => {
    const g = new Graph();
    const x = g.input("input", ["batch", 4]);
    g.output(F.relu(x), "y");
    return encodeModel(g);
  };
  const input = (batch: number) => ({ name: "input", dtype: "float32" as const, shape: [batch, 4], data: new Float32Array(batch * 4).fill(-0.5) });
  /** A clock whose every second reading (the end of a timed span) has advanced by span k's scripted duration. */
  function scriptedClock(duration: (span: number) => number) {
    let now = 0, reads = 0;
    return () => {
      if (reads % 2 === 1) now += duration((reads - 1) / 2);
      reads++;
      return now;
    };
  }
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a}, expected ${b}`);

  it("measureOnnx reads percentiles and throughput off its clock: spans of 1, 2, … µs", async () => {
    // One round of 5 batch-1 runs (spans 0–4: 1–5 µs), then 3 batch runs (spans 5–7: 6–8 µs).
    const r = await measureOnnx(relu(), input, { warmup: 0, warmupMs: 0, runs: 5, rounds: 1, throughputBatch: 4, threads: 1, clock: scriptedClock((k) => (k + 1) / 1000) });
    close(r.latencyP50Ms, 0.003, "p50");
    close(r.latencyP95Ms, 0.0048, "p95"); // 4 + 0.8 × (5 − 4) µs
    close(r.throughput, 4000 / 0.007, "throughput"); // batch of 4 in the median 7 µs
  });

  it("measureInterleaved times the models in turn, round after round, and keeps each round's p50", async () => {
    const bytes = relu();
    // 2 rounds × (A: 2 runs + 3 batch runs, B: the same). Span k lasts k + 1 µs, so each model's
    // figures say which spans it got: interleaved, A has spans 0, 1, 10, 11 and B 5, 6, 15, 16.
    const [a, b] = await measureInterleaved([{ bytes, makeInput: input }, { bytes, makeInput: input }], { warmup: 0, warmupMs: 0, runs: 4, rounds: 2, throughputBatch: 4, threads: 1, clock: scriptedClock((k) => (k + 1) / 1000) });
    close(a!.latencyP50Ms, 0.0065, "A p50"); // of 1, 2, 11, 12 µs
    close(b!.latencyP50Ms, 0.0115, "B p50"); // of 6, 7, 16, 17 µs
    assert.deepEqual(a!.roundP50Ms.map((v) => Math.round(v * 1e4)), [15, 115]);
    assert.deepEqual(b!.roundP50Ms.map((v) => Math.round(v * 1e4)), [65, 165]);
    close(a!.throughput, 4000 / 0.009, "A throughput"); // batch spans 3, 4, 5, 13, 14, 15 µs: median 9
  });

  it("warms up on the clock: untimed runs until warmupMs have passed", async () => {
    let reads = 0;
    // Each reading advances 1 ms: the warm-up reads its start and then once per run until 5 ms have passed.
    await measureOnnx(relu(), input, { warmup: 0, warmupMs: 5, runs: 2, rounds: 1, throughputBatch: 2, threads: 1, clock: () => reads++ });
    assert.equal(reads, 1 + 5 + 2 * (2 + 3), "start, 5 warm-up checks, then 2 readings per timed span");
  });

  it("sizeOf: the file's bytes and its gzip -9 size", () => {
    const bytes = relu();
    const size = sizeOf(bytes);
    assert.equal(size.onnxBytes, bytes.byteLength);
    assert.equal(size.onnxGzipBytes, gzipSync(bytes, { level: 9 }).byteLength);
  });
});

describe("the report's numbers, on one footing", () => {
  it("per-class errors and confusion matrices count one trained model: a one-seed teacher beside two-seed students", () => {
    const { results, epochs } = fixture();
    const teacher = results.models[0]!;
    results.models[0] = { ...teacher, perSeed: [teacher.perSeed[0]!], summary: summarize([teacher.perSeed[0]!]) };
    const html = renderReport(results, epochs);
    const perClass = embeddedData(html).perClass.series.map((s: { label: string; errors: number[] }) => [s.label, s.errors]);
    // Teacher: its own matrix; baseline: [[50,3,0],[1,40,3],[0,5,30]] summed over 2 seeds, halved.
    assert.deepEqual(perClass, [["teacher", [2, 4, 4]], ["baseline", [1.5, 2, 2.5]], ["student", [2, 2, 3]]]);
    const baselineTable = /<table class="confusion" data-role="baseline">.*?<\/table>/s.exec(html)![0];
    assert.match(baselineTable, /<caption>baseline <span class="unit">mean of 2 seeds<\/span><\/caption>/);
    assert.match(baselineTable, /<td style="background:[^"]+">1\.5<\/td>/);
    assert.doesNotMatch(/<table class="confusion" data-role="teacher">.*?<\/table>/s.exec(html)![0], /mean of/);
  });

  it("the gap sentence says plainly when distillation did worse, and when the student beats the teacher", () => {
    const gap = (r: RunResults) => /<p id="headline-gap">(.*?)<\/p>/.exec(renderReport(r, []))![1]!.replace(/<[^>]+>/g, "");
    // Student errors 450 and 415 against the baseline's 380 and 360.
    const worse = gap(withAccuracy("student", 0.955));
    assert.doesNotMatch(worse, /−\d+ %|closes/);
    assert.match(worse, /closed none of the gap between the baseline \(370\.0 errors\) and the teacher \(140\.0 errors\): the distilled student made 62\.5 more errors than the baseline \(432\.5 errors\)/);
    assert.match(gap(withAccuracy("student", 0.99)), /beats its teacher: 82\.5 errors against the teacher's 140\.0 errors/);
    assert.match(gap(fixture().results), /It closes 51 % of the gap/);
  });

  it("a diverged stage gets a warning at the top of the report", () => {
    const { results, epochs } = fixture();
    assert.ok(!renderReport(results, epochs).includes('id="divergence-warning"'));
    const exploded = epochs.map((e) => (e.stage === "baseline" && e.seed === 1 && e.epoch === 3 ? { ...e, trainLoss: 2.7e30 } : e));
    const banner = /<p class="warning" id="divergence-warning">(.*?)<\/p>/.exec(renderReport(results, exploded))![1]!;
    assert.equal(banner, "Warning: baseline (seed 1) diverged: training loss 2.70e+30 at epoch 3 (its best earlier epoch: 0.470); its model is not usable. Lower student.train.optimizer.lr or set student.train.clipGradNorm.");
  });

  it("the training loop warns at the epoch a finite loss explodes: softmax regression at lr 1e5", async () => {
    // A linear model's gradient is bounded, so its weights (and loss) grow huge but finite: no NaN stop.
    const { train } = mnist();
    const model = new Model(new L.Sequential([new L.Linear({ outFeatures: 10 })]), { shape: [784], scale: 1 / 255, mean: [0.1307], std: [0.3081] }, [..."0123456789"]);
    const spec: TrainSpec = { epochs: 2, batchSize: 64, optimizer: { kind: "sgd", lr: 1e5, momentum: 0, nesterov: false, weightDecay: 0 }, schedule: { kind: "constant", warmupEpochs: 0 }, jitter: 0 };
    const lines: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), "distill-diverge-"));
    try {
      const { history } = await trainStage({
        stage: "baseline", seed: 0, model, train: spec, terms: [{ method: "cross-entropy", weight: 1 }], set: train,
        trainIndices: Int32Array.from({ length: 512 }, (_, i) => i), validationIndices: Int32Array.from({ length: 64 }, (_, i) => 1000 + i),
        useLabels: true, checkpointPath: join(dir, "baseline.ckpt"),
        progress: { task: () => ({ update: () => {}, finish: () => {} }), log: (line) => void lines.push(line) },
      });
      assert.ok(history.every((e) => Number.isFinite(e.trainLoss)) && history[0]!.trainLoss > 1e6, JSON.stringify(history.map((e) => e.trainLoss)));
      assert.deepEqual(lines.filter((l) => l.startsWith("warning:")), [`warning: ${divergenceWarning(findDivergence(history)!)}`], "one warning, at epoch 1");
      assert.match(lines[0]!, /^warning: baseline \(seed 0\) diverged: training loss \S+ at epoch 1; its model is not usable/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("findDivergence: a loss past 1e6, one 100× its best earlier epoch, or not finite", () => {
    const history = (losses: number[]) => losses.map((trainLoss, i) => ({ stage: "student", seed: 0, epoch: i + 1, lr: 0.1, trainLoss, terms: {}, trainAccuracy: 0.9, valAccuracy: 0.9, valLoss: 0.3, seconds: 1 }));
    assert.equal(findDivergence(history([0.5, 0.3, 0.2])), undefined);
    assert.equal(findDivergence(history([0.5, 0.3, 25])), undefined, "83× the best: a bad epoch, not divergence");
    assert.deepEqual(findDivergence(history([0.5, 0.3, 45, 1e9])), { stage: "student", seed: 0, epoch: 3, loss: 45, bestBefore: 0.3 });
    assert.equal(findDivergence(history([2e6]))?.epoch, 1, "an absurd loss at the first epoch");
    assert.equal(findDivergence(history([0.5, NaN]))?.epoch, 2);
    const mixed = [...history([0.5, 0.4]), ...history([0.5, 2e7]).map((e) => ({ ...e, seed: 1 }))];
    assert.deepEqual(divergences(mixed).map((d) => [d.seed, d.epoch]), [[1, 2]]);
  });
});

describe("headline statistics", () => {
  it("pairs seeds: mean, sample std and the t-interval of the differences", () => {
    // d = [−2, −4, −6]: mean −4, sd 2, t(2) = 4.303 → half width 4.303·2/√3 = 4.9687
    const d = pairedDifference([8, 6, 4], [10, 10, 10]);
    assert.equal(d.mean, -4);
    assert.equal(d.std, 2);
    assert.ok(Math.abs(d.ci95![0] - (-4 - 4.9687)) < 1e-3 && Math.abs(d.ci95![1] - (-4 + 4.9687)) < 1e-3, String(d.ci95));
    assert.equal(pairedDifference([3], [5]).ci95, null, "one seed has no interval");
    assert.throws(() => pairedDifference([1, 2], [1]), RangeError);
    assert.equal(tQuantile95(1), 12.706);
    assert.equal(tQuantile95(100), 1.96);
  });

  it("gap closed is null when the teacher is no better than the baseline, ratios are teacher ÷ student", () => {
    const { results } = fixture();
    const h = headline(results);
    assert.ok(Math.abs(h.baseline!.gapClosed! - 117.5 / 230) < 1e-12);
    assert.equal(h.vsTeacher!.params, 24);
    const worseTeacher = { ...results, models: results.models.map((m) => (m.role === "teacher" ? { ...m, summary: { ...m.summary, errors: { mean: 999, std: 0, values: [999] } } } : m)) };
    assert.equal(headline(worseTeacher).baseline!.gapClosed, null);
  });
});
