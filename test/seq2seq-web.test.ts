// distill export-web on a sequence run: a folder laid out as a run (teacher.onnx and student.onnx
// written by exportSeq2SeqOnnx, results.json) becomes a page with a text box; in headless Chromium,
// words typed there get, from every model, the greedy and beam outputs onnxruntime-node gives
// through the same driver (OnnxSeq2Seq), with in-page latency per word and each model's size.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import type { Server } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { launchBrowser } from "./helpers/browser.js";
import { baseUrl, serve } from "./helpers/serve.js";
import { tinyG2pData, trainTinyG2p } from "./helpers/tiny-g2p.js";
import { exportWeb } from "../src/web/export.js";
import type { Seq2SeqWebManifest } from "../src/web/seq2seq-export.js";
import { exportSeq2SeqOnnx } from "../src/nn/seq2seq-export.js";
import { OnnxSeq2Seq } from "../src/eval/onnx-seq2seq.js";
import { runCli } from "../src/cli/args.js";

interface Converted {
  text: string;
  ids: number[];
  logProb: number;
  latencyMs: number;
  timing: { runs: number; elapsedMs: number; resolutionMs: number };
}
interface PageResult {
  model: string;
  input: string;
  greedy?: Converted;
  beam?: Converted;
  error?: string;
}

describe("distill export-web on a sequence run", () => {
  let browser: Browser | undefined;
  let server: Server | undefined;
  let root = "", runDir = "", web = "";
  let manifest: Seq2SeqWebManifest;

  before(async () => {
    const { vocab } = tinyG2pData();
    root = mkdtempSync(join(tmpdir(), "distill-seqweb-"));
    runDir = join(root, "run");
    web = join(root, "web");
    // Two models that decode differently: a longer-trained "teacher" and a shorter-trained student.
    const teacher = await trainTinyG2p(6, 1), student = await trainTinyG2p(3, 2);
    mkdirSync(runDir);
    writeFileSync(join(runDir, "teacher.onnx"), exportSeq2SeqOnnx(teacher.model, teacher.params, vocab));
    writeFileSync(join(runDir, "student.onnx"), exportSeq2SeqOnnx(student.model, student.params, vocab));
    writeFileSync(join(runDir, "results.json"), JSON.stringify({ name: "g2p-tiny" }) + "\n");
    manifest = (await exportWeb(runDir, { output: web })).manifest as Seq2SeqWebManifest;
    server = await serve(web);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    server?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("writes the page, the driver, the models and a model.json with the metadata the driver reads", () => {
    for (const f of ["index.html", "seq2seq-app.js", "seq2seq-driver.js", "timing.js", "model.json", "ort/ort.wasm.min.mjs", "ort/ort-wasm-simd-threaded.wasm", "models/teacher.onnx", "models/student.onnx"])
      assert.ok(existsSync(join(web, f)), `${f} written`);
    assert.equal(manifest.kind, "seq2seq");
    assert.equal(manifest.run, "g2p-tiny");
    assert.equal(manifest.beam, 4);
    assert.deepEqual(manifest.models.map((m) => m.name), ["teacher", "student"]);
    for (const m of manifest.models) {
      assert.equal(m.metadata["distill.task"], "seq2seq");
      assert.ok(m.parameters! > 1000 && m.gzipBytes < m.bytes, `${m.name}: ${m.parameters} parameters, ${m.gzipBytes} of ${m.bytes} bytes`);
    }
  });

  it("in Chromium: typed words get onnxruntime-node's greedy and beam outputs from every model, with per-word latency", async () => {
    const words = [...tinyG2pData().words.slice(0, 6), "phone"];
    const reference = new Map<string, { greedy: { ids: number[]; text: string; logProb: number }[]; beam: { ids: number[]; text: string; logProb: number }[] }>();
    for (const m of manifest.models) {
      const node = await OnnxSeq2Seq.load(join(web, m.file), { threads: 1 });
      try {
        const upper = words.map((w) => w.toUpperCase());
        reference.set(m.name, { greedy: await node.convert(upper, 1), beam: await node.convert(upper, manifest.beam) });
      } finally {
        await node.dispose();
      }
    }
    const page = await browser!.newPage();
    const errors: string[] = [], foreign: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("request", (r) => {
      if (!r.url().startsWith(baseUrl(server!))) foreign.push(r.url());
    });
    await page.goto(baseUrl(server!));
    await page.waitForFunction(() => document.body.dataset["ready"] === "1", undefined, { timeout: 60000 }).catch((e) => {
      throw new Error(`page not ready (errors: ${errors.join("; ") || "none"}): ${e}`);
    });
    let differs = 0;
    for (const [i, word] of words.entries()) {
      await page.fill("#text", word);
      await page.waitForFunction(([n, w]) => Number(document.body.dataset["conversions"]) >= (n as number) && (window as unknown as { distill: { lastText: string } }).distill.lastText === w, [i + 1, word], { timeout: 60000 }).catch((e) => {
        throw new Error(`no conversion of ${word} (page errors: ${errors.join("; ") || "none"}): ${e}`);
      });
      const results = (await page.evaluate(() => (window as unknown as { distill: { results: PageResult[] } }).distill.results)) as PageResult[];
      assert.equal(results.length, manifest.models.length);
      for (const [j, m] of manifest.models.entries()) {
        const r = results[j]!, ref = reference.get(m.name)!;
        assert.equal(r.model, m.name);
        assert.equal(r.input, word.toUpperCase(), "the page upper-cases for a capitals-only vocabulary");
        assert.equal(r.error, undefined);
        for (const kind of ["greedy", "beam"] as const) {
          const got = r[kind]!, want = ref[kind][i]!;
          assert.deepEqual(got.ids, want.ids, `${word}, ${m.name}, ${kind}: page ${got.text}, onnxruntime-node ${want.text}`);
          assert.equal(got.text, want.text);
          assert.ok(Math.abs(got.logProb - want.logProb) < 1e-3, `${word}, ${m.name}, ${kind}: log-probability ${got.logProb} vs ${want.logProb}`);
          // timing.js's rule: one batch of conversions between one pair of timestamps, ≥ 200 clock ticks.
          const t = got.timing;
          assert.ok(t.resolutionMs > 0 && Number.isFinite(t.resolutionMs), `clock resolution ${t.resolutionMs}`);
          assert.ok(t.elapsedMs >= 200 * t.resolutionMs || t.runs === 1 << 16, `${t.runs} runs spanned ${t.elapsedMs} ms`);
          assert.equal(got.latencyMs, t.elapsedMs / t.runs);
          const section = page.locator(`section[data-model="${m.name}"]`);
          assert.equal(await section.locator(`.output.${kind}`).textContent(), want.text);
          assert.match((await section.locator(`.latency.${kind}`).textContent())!, /per word \(\d+ conversions in .+; clock resolution .+\)/);
        }
        if (ref.greedy[i]!.text !== ref.beam[i]!.text) differs++;
      }
    }
    assert.ok(differs > 0, "beam search changes some output (else the beam column would go untested)");
    assert.match((await page.locator('section[data-model="student"] h3').textContent())!, /^student \(\d+ KiB, [\d,]+ parameters\)$/);
    assert.match((await page.locator("#note").textContent())!, /Upper-cased for models trained on capitals: PHONE/);
    // Too long for the model: the page says so instead of converting.
    await page.fill("#text", "ABCDEFGHIJKLMNOP");
    await page.waitForFunction(() => (window as unknown as { distill: { lastText: string } }).distill.lastText === "ABCDEFGHIJKLMNOP", undefined, { timeout: 60000 });
    assert.match((await page.locator('section[data-model="teacher"] .latency.greedy').textContent())!, /a source of 16 symbols is longer than the model's 10/);
    assert.deepEqual(errors, []);
    assert.deepEqual(foreign, [], "the page fetched only its own files");
    await page.close();
  });

  it("bad input: --beam 1 exits 2 with one line, and nothing is written", async () => {
    const err: string[] = [];
    const out = join(root, "web-beam1");
    const code = await runCli(["node", "distill", "export-web", runDir, "--beam", "1", "-o", out], { writeOut: () => {}, writeErr: (s) => void err.push(s) });
    assert.equal(code, 2);
    assert.equal(err.join(""), "distill: --beam: expected a whole number ≥ 2, got 1\n");
    assert.ok(!existsSync(out));
  });
});
