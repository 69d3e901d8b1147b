import * as ort from "./ort/ort.wasm.min.mjs";
import { clockResolution, formatDuration, timeRuns } from "./timing.js";

// Multi-threaded wasm needs SharedArrayBuffer, i.e. a cross-origin-isolated page (served with
// Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp).
ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

const $ = (id) => document.getElementById(id);
const now = () => performance.now();
const resolutionMs = clockResolution(now);
const manifest = await (await fetch("model.json")).json();
const W = manifest.width, H = manifest.height;
$("title").textContent = manifest.run + ": teacher vs student vs int8 student, in the browser";

const sessions = [];
for (const m of manifest.models) {
  const bytes = new Uint8Array(await (await fetch(m.file)).arrayBuffer());
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  sessions.push({ m, session });
  const box = document.createElement("section");
  box.className = "model";
  box.dataset.model = m.name;
  box.innerHTML = "<h3></h3><div class=pred>–</div><div class=latency></div><div class=probs></div>";
  box.querySelector("h3").textContent = m.name + " (" + Math.round(m.bytes / 1024) + " KiB)";
  $("results").appendChild(box);
}
const costs = $("costs").querySelector("tbody");
for (const f of manifest.models.map((m) => ({ name: m.file, bytes: m.bytes, gzipBytes: m.gzipBytes })).concat(manifest.runtime.files)) {
  const tr = document.createElement("tr");
  for (const v of [f.name, f.bytes.toLocaleString("en"), f.gzipBytes.toLocaleString("en")]) {
    const td = document.createElement("td");
    td.textContent = v;
    tr.appendChild(td);
  }
  costs.appendChild(tr);
}
$("threads").textContent = "Cross-origin isolated: " + (self.crossOriginIsolated ? "yes" : "no") + "; onnxruntime-web runs " + ort.env.wasm.numThreads + " thread(s). Serve the folder with COOP: same-origin and COEP: require-corp headers for more.";

function softmax(v) {
  const mx = Math.max(...v);
  const e = v.map((x) => Math.exp(x - mx));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

async function predict(pixels) {
  window.distill.lastInput = Array.from(pixels);
  const out = [];
  for (const { m, session } of sessions) {
    const input = new ort.Tensor("float32", Float32Array.from(pixels), [1].concat(m.inputShape));
    const feeds = { [m.inputName]: input };
    const first = await session.run(feeds);
    const logits = Array.from(first[m.outputName].data);
    const timing = await timeRuns(() => session.run(feeds), now, resolutionMs);
    const probs = m.probabilitiesName && first[m.probabilitiesName] ? Array.from(first[m.probabilitiesName].data) : softmax(logits);
    const best = logits.indexOf(Math.max(...logits));
    out.push({ model: m.name, prediction: best, label: m.classLabels[best], logits, probabilities: probs, latencyMs: timing.latencyMs, timing });
    const box = document.querySelector('section[data-model="' + m.name + '"]');
    box.querySelector(".pred").textContent = m.classLabels[best] ?? String(best);
    const latency = box.querySelector(".latency");
    latency.textContent = formatDuration(timing.latencyMs) + " per run ";
    const detail = document.createElement("small");
    detail.textContent = "(" + timing.runs + " runs in " + formatDuration(timing.elapsedMs) + "; clock resolution " + formatDuration(timing.resolutionMs) + ")";
    latency.appendChild(detail);
    const bars = box.querySelector(".probs");
    bars.textContent = "";
    probs.forEach((p, c) => {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = "<span class=name></span><span class=fill></span><span class=value></span>";
      row.querySelector(".name").textContent = m.classLabels[c] ?? String(c);
      row.querySelector(".fill").style.width = Math.round(p * 120) + "px";
      row.querySelector(".value").textContent = (p * 100).toFixed(1) + "%";
      bars.appendChild(row);
    });
  }
  window.distill.results = out;
  window.distill.predictions += 1;
  document.body.dataset.predictions = String(window.distill.predictions);
  return out;
}

// Drawing pad: strokes on a 280×280 canvas, read back as a W×H image by area downsampling.
const pad = $("pad"), ctx = pad.getContext("2d");
function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
}
clearPad();
let drawing = false;
function at(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * (pad.width / r.width), (e.clientY - r.top) * (pad.height / r.height)];
}
pad.addEventListener("pointerdown", (e) => {
  drawing = true;
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 22;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...at(e));
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  ctx.lineTo(...at(e));
  ctx.stroke();
});
window.addEventListener("pointerup", () => {
  if (!drawing) return;
  drawing = false;
  predict(padPixels());
});
$("clear").addEventListener("click", clearPad);

function padPixels() {
  const small = document.createElement("canvas");
  small.width = W;
  small.height = H;
  const sctx = small.getContext("2d");
  sctx.imageSmoothingEnabled = true;
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(pad, 0, 0, W, H);
  const rgba = sctx.getImageData(0, 0, W, H).data;
  const px = new Float32Array(W * H);
  for (let i = 0; i < W * H; i++) px[i] = rgba[i * 4];
  return px;
}

function showOnPad(pixels) {
  const img = new ImageData(W, H);
  for (let i = 0; i < W * H; i++) {
    img.data[i * 4] = img.data[i * 4 + 1] = img.data[i * 4 + 2] = pixels[i];
    img.data[i * 4 + 3] = 255;
  }
  const small = document.createElement("canvas");
  small.width = W;
  small.height = H;
  small.getContext("2d").putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, pad.width, pad.height);
}

for (const s of manifest.samples) {
  const b = document.createElement("button");
  b.dataset.sample = String(s.index);
  b.title = "test image " + s.index + " (label " + s.label + ")";
  const c = document.createElement("canvas");
  c.width = W;
  c.height = H;
  const img = new ImageData(W, H);
  s.pixels.forEach((v, i) => {
    img.data[i * 4] = img.data[i * 4 + 1] = img.data[i * 4 + 2] = v;
    img.data[i * 4 + 3] = 255;
  });
  c.getContext("2d").putImageData(img, 0, 0);
  b.appendChild(c);
  b.addEventListener("click", () => {
    showOnPad(s.pixels);
    predict(Float32Array.from(s.pixels));
  });
  $("samples").appendChild(b);
}

window.distill = { predict, results: null, lastInput: null, predictions: 0 };
$("status").textContent = "ready: " + sessions.length + " models loaded";
document.body.dataset.ready = "1";
