// distill export-web end to end: a real run folder exported, the page served on 127.0.0.1 and driven
// in headless Chromium (pick test images, draw a digit); the page's predictions must equal
// onnxruntime-node's on the same pixels, for the teacher, the student and the int8 student.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { readFileSync, rmSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Browser } from "playwright-core";
import { launchBrowser } from "./helpers/browser.js";
import { serve } from "./helpers/serve.js";
import { tinyRun } from "./helpers/tiny-run.js";
import { exportWeb, type WebManifest } from "../src/web/export.js";
import { runCli } from "../src/cli/args.js";
import { Session } from "../src/engine/runtime.js";

interface PageResult {
  model: string;
  prediction: number;
  logits: number[];
  latencyMs: number;
  timing: { runs: number; elapsedMs: number; resolutionMs: number };
}

// The page's timing module, plain ES module JavaScript shipped as an asset (src/report/assets/web).
interface PageTiming {
  TICKS_PER_BATCH: number;
  MAX_RUNS: number;
  clockResolution(now: () => number): number;
  timeRuns(run: () => Promise<unknown>, now: () => number, resolutionMs: number): Promise<{ latencyMs: number; runs: number; elapsedMs: number; resolutionMs: number }>;
}
const pageTiming = () => import(new URL("../../src/report/assets/web/timing.js", import.meta.url).href) as Promise<PageTiming>;

/** A browser-like clock: true time advanced by hand, read rounded down to `tickMs`. */
function coarseClock(tickMs: number) {
  let trueMs = 1000.037;
  return { now: () => Math.floor(trueMs / tickMs) * tickMs, advance: (ms: number) => void (trueMs += ms) };
}

async function nodeLogits(dir: string, m: WebManifest["models"][number], pixels: number[]): Promise<number[]> {
  const s = await Session.create(readFileSync(join(dir, m.file)));
  try {
    const out = await s.run({ [m.inputName]: { dtype: "float32", shape: [1, ...m.inputShape], data: Float32Array.from(pixels) } }, undefined, [m.outputName]);
    return Array.from(out[m.outputName]!.data as Float32Array);
  } finally {
    await s.dispose();
  }
}

const argmax = (v: number[]) => v.indexOf(Math.max(...v));

describe("distill export-web", () => {
  let browser: Browser | undefined;
  let server: Server | undefined;
  let root = "";
  let web = "";
  let manifest: WebManifest;

  before(async () => {
    const run = await tinyRun("web");
    root = run.root;
    web = join(root, "web");
    manifest = (await exportWeb(run.runDir, { output: web, samples: 6 })).manifest as WebManifest;
    server = await serve(web);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    server?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("writes the page, the models, the wasm runtime and a model.json with each model's metadata", () => {
    for (const f of ["index.html", "app.js", "model.json", "ort/ort.wasm.min.mjs", "ort/ort-wasm-simd-threaded.wasm", "models/teacher.onnx", "models/student.onnx", "models/student-int8.onnx"])
      assert.ok(existsSync(join(web, f)), `${f} written`);
    assert.deepEqual(manifest.models.map((m) => m.name), ["teacher", "student", "student int8"]);
    assert.deepEqual(manifest.models[0]!.inputShape, [784]);
    assert.deepEqual(manifest.models[1]!.inputShape, [1, 28, 28]);
    for (const m of manifest.models) assert.deepEqual(m.classLabels, [..."0123456789"]);
    assert.ok(manifest.models[2]!.bytes * 2.5 < manifest.models[1]!.bytes, "int8 student is smaller");
    assert.ok(manifest.runtime.files.every((f) => f.bytes > 0 && f.gzipBytes < f.bytes));
  });

  it("in Chromium: picked test images and a drawn digit get onnxruntime-node's predictions, with in-page latency", async () => {
    const page = await browser!.newPage();
    const errors: string[] = [];
    const foreign: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("request", (r) => {
      if (!r.url().startsWith(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/`)) foreign.push(r.url());
    });
    await page.goto(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/`);
    await page.waitForFunction(() => document.body.dataset["ready"] === "1", undefined, { timeout: 60000 }).catch((e) => {
      throw new Error(`page not ready (errors: ${errors.join("; ") || "none"}): ${e}`);
    });
    let count = 0;
    const check = async (pixels: number[], what: string) => {
      await page.waitForFunction((n) => Number(document.body.dataset["predictions"]) === n, count, { timeout: 30000 });
      const results = (await page.evaluate(() => (window as unknown as { distill: { results: PageResult[] } }).distill.results)) as PageResult[];
      assert.equal(results.length, 3);
      for (const [i, m] of manifest.models.entries()) {
        const r = results[i]!;
        const ref = await nodeLogits(web, m, pixels);
        assert.equal(r.prediction, argmax(ref), `${what}, ${m.name}: page predicts ${r.prediction}, onnxruntime-node ${argmax(ref)}`);
        const diff = Math.max(...ref.map((v, c) => Math.abs(v - r.logits[c]!)));
        assert.ok(diff < (m.name.includes("int8") ? 0.5 : 1e-3), `${what}, ${m.name}: logits differ by ${diff}`);
        // One batch between one pair of timestamps, long enough that their rounding is under 1 %.
        const t = r.timing;
        assert.ok(t.resolutionMs > 0 && Number.isFinite(t.resolutionMs), `${m.name}: clock resolution ${t.resolutionMs}`);
        assert.ok(t.elapsedMs >= 200 * t.resolutionMs || t.runs === 1 << 16, `${m.name}: ${t.runs} runs spanned ${t.elapsedMs} ms, under 200 ticks of ${t.resolutionMs} ms`);
        assert.equal(r.latencyMs, t.elapsedMs / t.runs);
        assert.match((await page.locator(`section[data-model="${m.name}"] .latency`).textContent())!, /per run \(\d+ runs in .+; clock resolution .+\)/);
        const shown = await page.locator(`section[data-model="${m.name}"] .pred`).textContent();
        assert.equal(shown, m.classLabels[r.prediction]);
      }
    };
    for (const s of manifest.samples.slice(0, 3)) {
      await page.click(`button[data-sample="${s.index}"]`);
      count++;
      await check(s.pixels, `test image ${s.index}`);
    }
    // Draw a "1": one vertical stroke on the pad (clicking the samples may have scrolled it away).
    await page.locator("#pad").scrollIntoViewIfNeeded();
    const box = (await page.locator("#pad").boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.2);
    await page.mouse.down();
    for (let t = 0.2; t <= 0.8; t += 0.05) await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * t);
    await page.mouse.up();
    count++;
    await page.waitForFunction((n) => Number(document.body.dataset["predictions"]) === n, count, { timeout: 30000 }).catch((e) => {
      throw new Error(`no prediction for the drawn digit (page errors: ${errors.join("; ") || "none"}): ${e}`);
    });
    const drawn = (await page.evaluate(() => (window as unknown as { distill: { lastInput: number[] } }).distill.lastInput)) as number[];
    assert.equal(drawn.length, 784);
    assert.ok(drawn.filter((v) => v > 128).length > 20, "the stroke reached the model's input");
    await check(drawn, "drawn digit");
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], "the page fetched only its own files");
    await page.close();
  });

  it("the page's timing, on a scripted 100 µs clock: a 23 µs model reads 23 µs, not 0 or 100", async () => {
    const { clockResolution, timeRuns, TICKS_PER_BATCH } = await pageTiming();
    const clock = coarseClock(0.1);
    // The clock only moves when a run does; reading it must not (so the resolution probe runs one).
    let probing = 0;
    const resolution = clockResolution(() => {
      if (++probing % 3 === 0) clock.advance(0.04);
      return clock.now();
    });
    assert.ok(Math.abs(resolution - 0.1) < 1e-9, `resolution ${resolution}`);
    const t = await timeRuns(async () => clock.advance(0.023), clock.now, resolution);
    assert.ok(Math.abs(t.latencyMs - 0.023) < 0.023 * 0.01, `latency ${t.latencyMs} ms from ${t.runs} runs in ${t.elapsedMs} ms`);
    assert.ok(t.elapsedMs >= TICKS_PER_BATCH * 0.1 && t.runs === 1024, `${t.runs} runs in ${t.elapsedMs} ms`);
    // A slow model needs few runs: 3 ms each on the same clock, 4 runs (12 ms, under 20 ms, doubled to 8).
    const slow = await timeRuns(async () => clock.advance(3), clock.now, resolution);
    assert.equal(slow.runs, 8);
    assert.ok(Math.abs(slow.latencyMs - 3) < 0.03, String(slow.latencyMs));
  });

  it("bad input: a folder that is not a finished run exits 2 with one line", async () => {
    const err: string[] = [];
    const code = await runCli(["node", "distill", "export-web", join(root, "nope")], { writeOut: () => {}, writeErr: (s) => void err.push(s) });
    assert.equal(code, 2);
    assert.equal(err.join(""), `distill: ${join(root, "nope")}: no results.json: not a finished run folder (finish it with \`distill resume\`)\n`);
  });
});
