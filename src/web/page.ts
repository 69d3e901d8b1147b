// The exported page's two files, kept as strings so they ship inside dist/ with the compiled code.
// Plain ES modules: app.js imports onnxruntime-web's wasm build from ./ort/ and reads ./model.json.

export const INDEX_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>distill: teacher vs student in the browser</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;max-width:1100px}
#pad{background:#000;touch-action:none;cursor:crosshair;border:1px solid #444}
.row{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start}
.model{border:1px solid #ccc;padding:.5em 1em;min-width:220px}
.pred{font-size:2.5em;font-weight:bold}
.bar{display:flex;align-items:center;gap:.4em;font-size:12px}
.bar span.fill{display:inline-block;height:10px;background:#1f77b4}
#samples button{padding:0;margin:2px;border:1px solid #888;background:#000}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child{text-align:left}
</style></head>
<body>
<h1 id="title">distill in the browser</h1>
<p>Draw a digit (white on black) or pick a test image. Each model runs here with onnxruntime-web (WebAssembly); latency is the median of 20 runs in this page.</p>
<div class="row">
  <div><canvas id="pad" width="280" height="280"></canvas><br><button id="clear">clear</button> <span id="status">loading…</span></div>
  <div id="results" class="row"></div>
</div>
<h2>Test images</h2>
<div id="samples"></div>
<h2>Download cost</h2>
<table id="costs"><thead><tr><th>file</th><th>bytes</th><th>gzip</th></tr></thead><tbody></tbody></table>
<p id="threads"></p>
<script type="module" src="app.js"></script>
</body></html>
`;

export const APP_JS = `import * as ort from "./ort/ort.wasm.min.mjs";

// Multi-threaded wasm needs SharedArrayBuffer, i.e. a cross-origin-isolated page (served with
// Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp).
ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

const $ = (id) => document.getElementById(id);
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
    const times = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    const probs = m.probabilitiesName && first[m.probabilitiesName] ? Array.from(first[m.probabilitiesName].data) : softmax(logits);
    const best = logits.indexOf(Math.max(...logits));
    out.push({ model: m.name, prediction: best, label: m.classLabels[best], logits, probabilities: probs, latencyMs: times[10] });
    const box = document.querySelector('section[data-model="' + m.name + '"]');
    box.querySelector(".pred").textContent = m.classLabels[best] ?? String(best);
    box.querySelector(".latency").textContent = times[10].toFixed(3) + " ms (median of 20)";
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
`;
