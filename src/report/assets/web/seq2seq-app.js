import * as ort from "./ort/ort.wasm.min.mjs";
import { Seq2SeqDriver, seq2seqMetadata } from "./seq2seq-driver.js";
import { clockResolution, formatDuration, timeRuns } from "./timing.js";

// Multi-threaded wasm needs a cross-origin-isolated page (see the classifier page's app.js).
ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

const $ = (id) => document.getElementById(id);
const now = () => performance.now();
const resolutionMs = clockResolution(now);
const manifest = await (await fetch("model.json")).json();
$("title").textContent = manifest.run + ": " + manifest.models.map((m) => m.name).join(" vs ") + ", in the browser";

const models = [];
for (const m of manifest.models) {
  const bytes = new Uint8Array(await (await fetch(m.file)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const meta = seq2seqMetadata(m.metadata);
  const run = async (source, target, batch) => {
    const out = await session.run({
      source: new ort.Tensor("int64", source, [batch, meta.sourceLength]),
      target: new ort.Tensor("int64", target, [batch, meta.targetLength]),
    });
    return out.logits.data;
  };
  models.push({ m, driver: new Seq2SeqDriver(run, meta), meta });
  const box = document.createElement("section");
  box.className = "model";
  box.dataset.model = m.name;
  box.innerHTML = "<h3></h3><div class=label>greedy</div><div class='output greedy'>–</div><div class='latency greedy'></div>" +
    "<div class=label></div><div class='output beam'>–</div><div class='latency beam'></div>";
  box.querySelector("h3").textContent = m.name + " (" + Math.round(m.bytes / 1024) + " KiB" + (m.parameters ? ", " + m.parameters.toLocaleString("en") + " parameters" : "") + ")";
  box.querySelectorAll(".label")[1].textContent = "beam " + manifest.beam;
  $("results").appendChild(box);
}
const costs = $("costs").querySelector("tbody");
for (const f of manifest.models.map((m) => ({ name: m.file, bytes: m.bytes, gzipBytes: m.gzipBytes, parameters: m.parameters })).concat(manifest.runtime.files)) {
  const tr = document.createElement("tr");
  for (const v of [f.name, f.bytes.toLocaleString("en"), f.gzipBytes.toLocaleString("en"), f.parameters ? f.parameters.toLocaleString("en") : ""]) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.appendChild(td);
  }
  costs.appendChild(tr);
}
$("threads").textContent = "Cross-origin isolated: " + (self.crossOriginIsolated ? "yes" : "no") + "; onnxruntime-web runs " + ort.env.wasm.numThreads + " thread(s).";

// A vocabulary of capitals only (CMUdict's words) would read lower-case letters as unknown: the page
// upper-cases what is typed for such a model, and says so.
function forModel(text, meta) {
  const symbols = meta.sourceVocabulary.symbols.filter((_, id) => id > meta.specialIds.unk);
  const capitalsOnly = symbols.some((s) => s !== s.toLowerCase()) && !symbols.some((s) => s !== s.toUpperCase());
  return capitalsOnly ? text.toUpperCase() : text;
}

function showLatency(el, timing) {
  el.textContent = formatDuration(timing.latencyMs) + " per word ";
  const detail = document.createElement("small");
  detail.textContent = "(" + timing.runs + " conversions in " + formatDuration(timing.elapsedMs) + "; clock resolution " + formatDuration(timing.resolutionMs) + ")";
  el.appendChild(detail);
}

async function convert(text) {
  const out = [];
  const notes = new Set();
  for (const { m, driver, meta } of models) {
    const box = document.querySelector('section[data-model="' + m.name + '"]');
    const input = forModel(text, meta);
    if (input !== text) notes.add("Upper-cased for models trained on capitals: " + input + ".");
    const unknown = driver.unknownSymbols(input);
    if (unknown.length) notes.add("Not in " + m.name + "'s vocabulary (read as <unk>): " + unknown.join(" "));
    const result = { model: m.name, input };
    try {
      for (const [kind, beam] of [["greedy", 1], ["beam", manifest.beam]]) {
        const [h] = await driver.convert([input], beam);
        const timing = await timeRuns(() => driver.convert([input], beam), now, resolutionMs);
        result[kind] = { text: h.text, ids: h.ids, logProb: h.logProb, latencyMs: timing.latencyMs, timing };
        box.querySelector(".output." + kind).textContent = h.text;
        showLatency(box.querySelector(".latency." + kind), timing);
      }
    } catch (e) {
      result.error = String(e.message ?? e);
      for (const kind of ["greedy", "beam"]) {
        box.querySelector(".output." + kind).textContent = "–";
        box.querySelector(".latency." + kind).textContent = result.error;
      }
    }
    out.push(result);
  }
  $("note").textContent = [...notes].join(" ");
  window.distill.results = out;
  window.distill.lastText = text;
  window.distill.conversions += 1;
  document.body.dataset.conversions = String(window.distill.conversions);
  return out;
}

// Conversions run one at a time; while one runs, only the latest text typed waits for its turn.
let running = null, pending = null;
async function request(text) {
  pending = text;
  if (running) return;
  while (pending !== null) {
    const next = pending;
    pending = null;
    running = next.trim() === "" ? Promise.resolve() : convert(next.trim());
    await running;
  }
  running = null;
}
$("text").addEventListener("input", (e) => request(e.target.value));

window.distill = { convert, results: null, lastText: null, conversions: 0 };
$("status").textContent = "ready: " + models.length + " models loaded";
document.body.dataset.ready = "1";
