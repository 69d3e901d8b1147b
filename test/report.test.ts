// The HTML report opened in headless Chromium (charts actually drawn, names escaped, no network),
// writeReport's file handling, and the latency/size measurements on a tiny engine-built model.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Browser } from "playwright-core";
import { launchBrowser } from "./helpers/browser.js";
import { renderReport, writeReport } from "../src/report/html.js";
import { headline, pairedDifference, tQuantile95 } from "../src/report/headline.js";
import { summarize } from "../src/eval/metrics.js";
import { measureOnnx, sizeOf } from "../src/eval/latency.js";
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
          terms: { loss_ce: 0.5 / epoch },
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
    assert.match(vsTeacher, /11× lower batch-1 latency/); // 0.9225 / 0.082

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
    assert.deepEqual(matrices, [["teacher", 3, "4"], ["baseline", 3, "5"], ["student", 3, "6"]]);
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
    assert.deepEqual(data.studentTerms.map((s: { label: string }) => s.label), ["loss_ce"]);
    assert.deepEqual(data.studentTerms[0].points.map((p: { epoch: number; mean: number; n: number }) => [p.epoch, p.mean, p.n]), [[1, 0.5, 2], [2, 0.25, 2], [3, 0.5 / 3, 2]]);

    assert.ok(!html.includes('id="compare-link"'), "no link without compare.html");
    writeFileSync(join(run, "compare.html"), "<!doctype html>");
    assert.ok(readFileSync(writeReport(run), "utf8").includes('<a href="compare.html">'), "linked once distill compare wrote it");

    writeFileSync(join(run, "metrics.jsonl"), JSON.stringify(epochs[0]) + "\n{oops\n");
    assert.throws(() => writeReport(run), (e: unknown) => e instanceof UserError && e.where.endsWith("metrics.jsonl:2"));
  });
});

describe("latency and size", () => {
  it("measureOnnx times a tiny engine-built model", async () => {
    const g = new Graph();
    const x = g.input("input", ["batch", 4]);
    g.output(F.relu(x), "y");
    const bytes = encodeModel(g);
    const r = await measureOnnx(
      bytes,
      (batch) => ({ name: "input", dtype: "float32", shape: [batch, 4], data: new Float32Array(batch * 4).fill(-0.5) }),
      { warmup: 5, runs: 50, threads: 1 },
    );
    for (const [k, v] of Object.entries(r)) assert.ok(Number.isFinite(v) && v > 0, `${k} = ${v}`);
    assert.ok(r.latencyP95Ms >= r.latencyP50Ms, `p95 ${r.latencyP95Ms} < p50 ${r.latencyP50Ms}`);

    const size = sizeOf(bytes);
    assert.equal(size.onnxBytes, bytes.byteLength);
    assert.ok(size.onnxGzipBytes > 0);
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
