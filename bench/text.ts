// `npm run build && node dist/bench/text.js [--splits 3] [--layers '<JSON layer list>' --lr 0.003 --epochs 8]`:
// the text pipeline's figures for
// docs/text.md — tokenizer speed (JS and inside the graph, onnxruntime-node and -web), agreement of
// the in-graph ids with tokenize() on every UCI sentence, held-out accuracy of the fastText-like
// student and a CNN, and the exported models' sizes and latency with raw-string and token-id input.
// A benchmark, not a test: it measures, it asserts nothing.

import os from "node:os";
import type { LayerSpec } from "../src/config/schema.js";
import { performance } from "node:perf_hooks";
import { buildVocabulary, tokenizeAll } from "../src/data/tokenizer.js";
import { tokenizerOnnx } from "../src/data/text-onnx.js";
import { exportTextOnnx } from "../src/nn/text-export.js";
import { Session } from "../src/engine/runtime.js";
import { createWasmSession, measureWasm } from "../src/compress/wasm-runtime.js";
import { measureOnnx, percentile, sizeOf } from "../src/eval/latency.js";
import { CNN_TEACHER, FASTTEXT_LIKE, accuracy, trainTextClassifier } from "../test/helpers/text-model.js";
import { uciSentences, uciSplit } from "../test/helpers/uci-sentences.js";

const args = process.argv.slice(2);
const splits = args.includes("--splits") ? Number(args[args.indexOf("--splits") + 1]) : 3;
const maxTokens = 64, vocabSize = 20_000;
const all = uciSentences().texts;

/** Median of `repeats` timings of `f`, in ms. */
async function medianMs(repeats: number, f: () => unknown): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await f();
    times.push(performance.now() - t0);
  }
  return percentile(times.sort((a, b) => a - b), 0.5);
}

console.log(`machine: ${os.cpus()[0]?.model ?? "?"}, load ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}, node ${process.version}`);

// ---- tokenizer speed and agreement
const { train: train0 } = uciSplit(2000, 0);
const vocab0 = buildVocabulary(train0.texts, { vocabSize, maxTokens });
const buildMs = await medianMs(5, () => buildVocabulary(train0.texts, { vocabSize, maxTokens }));
const jsMs = await medianMs(5, () => tokenizeAll(all, vocab0));
const js = tokenizeAll(all, vocab0);
const tokBytes = tokenizerOnnx(vocab0);
const node = await Session.create(tokBytes, { threads: 1 });
const feed = { text: { dtype: "string" as const, shape: [all.length], data: all } };
const nodeIds = (await node.run(feed))["ids"]!.data as BigInt64Array;
const nodeMs = await medianMs(5, () => node.run(feed));
await node.dispose();
const web = await createWasmSession<BigInt64Array>(tokBytes, "text", "ids");
const webIds = await web.run(all, [all.length]);
const webMs = await medianMs(5, () => web.run(all, [all.length]));
await web.dispose();
const rowsEqual = (ids: BigInt64Array) => all.filter((_, i) => ids.subarray(i * maxTokens, (i + 1) * maxTokens).every((v, j) => v === BigInt(js[i * maxTokens + j]!))).length;
console.log(`\nvocabulary: ${vocab0.tokens.length} tokens (${vocab0.tokens.filter((t) => t.includes(" ")).length} bigrams) from 2,000 sentences in ${buildMs.toFixed(1)} ms`);
console.log("| tokenizer, 3,000 sentences → ids [3000, 64] | ms | sentences/s | rows equal to tokenize() |");
console.log("|---|---|---|---|");
console.log(`| JS tokenizeAll | ${jsMs.toFixed(1)} | ${Math.round((all.length * 1000) / jsMs)} | — |`);
console.log(`| in the graph, onnxruntime-node (1 thread) | ${nodeMs.toFixed(1)} | ${Math.round((all.length * 1000) / nodeMs)} | ${rowsEqual(nodeIds)} / ${all.length} |`);
console.log(`| in the graph, onnxruntime-web (wasm, 1 thread) | ${webMs.toFixed(1)} | ${Math.round((all.length * 1000) / webMs)} | ${rowsEqual(webIds)} / ${all.length} |`);
console.log(`tokenizer-only model: ${sizeOf(tokBytes).onnxBytes} bytes, ${sizeOf(tokBytes).onnxGzipBytes} gzipped`);

// ---- accuracy over splits, then sizes and latency of the first split's models
const opt = (name: string) => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : undefined);
const layersArg = opt("layers");
// --layers measures one other model in their place (e.g. a candidate teacher).
const models = layersArg
  ? [{ name: layersArg, layers: JSON.parse(layersArg) as LayerSpec[], epochs: Number(opt("epochs") ?? 6), lr: Number(opt("lr") ?? 0.003) }]
  : [
      { name: "fastText-like [embedding 32, meanpool, linear]", layers: FASTTEXT_LIKE, epochs: 6, lr: 0.01 },
      { name: "CNN [embedding 64, conv1d 100×3, relu, maxovertime, dropout, linear]", layers: CNN_TEACHER(64, 100), epochs: 6, lr: 0.003 },
    ];
console.log("\n| model | parameters | held-out accuracy per split (2,000 train / 1,000 test) | mean |");
console.log("|---|---|---|---|");
const firstSplit: { name: string; bytes: { text: Uint8Array; ids: Uint8Array } }[] = [];
for (const m of models) {
  const accs: number[] = [];
  let parameters = 0;
  for (let s = 0; s < splits; s++) {
    const { train, test } = uciSplit(2000, s);
    const vocab = buildVocabulary(train.texts, { vocabSize, maxTokens });
    const { model, params } = await trainTextClassifier(m.layers, train, vocab, { epochs: m.epochs, lr: m.lr, seed: s + 1 });
    parameters = params.count();
    const bytes = exportTextOnnx(model, params, vocab);
    const session = await Session.create(bytes, { threads: 1 });
    const logits = (await session.run({ input: { dtype: "string", shape: [test.texts.length], data: test.texts } }))["logits"]!.data as Float32Array;
    await session.dispose();
    accs.push(accuracy(logits, test.labels));
    if (s === 0) firstSplit.push({ name: m.name, bytes: { text: bytes, ids: exportTextOnnx(model, params, vocab, { input: "tokens" }) } });
  }
  console.log(`| ${m.name} | ${parameters} | ${accs.map((a) => a.toFixed(3)).join(", ")} | ${(accs.reduce((a, b) => a + b) / accs.length).toFixed(3)} |`);
}

console.log("\n| model, input | .onnx bytes | gzipped | node p50 batch 1 (ms) | node batch 128 (sentences/s) | web p50 batch 1 (ms) | web batch 128 (sentences/s) |");
console.log("|---|---|---|---|---|---|---|");
const sentences = (b: number) => Array.from({ length: b }, (_, i) => all[(i * 37) % all.length]!);
const ids = (b: number) => BigInt64Array.from(tokenizeAll(sentences(b), vocab0), BigInt);
for (const m of firstSplit) {
  for (const [input, bytes] of Object.entries(m.bytes)) {
    const make = (b: number) => (input === "text" ? { dtype: "string" as const, shape: [b], data: sentences(b) } : { dtype: "int64" as const, shape: [b, maxTokens], data: ids(b) });
    const n = await measureOnnx(bytes, (b) => ({ name: "input", ...make(b) }), { threads: 1, runs: 200 });
    const w = await measureWasm(bytes, "input", "logits", (b) => make(b), { runs: 100 });
    const size = sizeOf(bytes);
    console.log(`| ${m.name.split(" [")[0]}, ${input === "text" ? "raw strings" : "token ids"} | ${size.onnxBytes} | ${size.onnxGzipBytes} | ${n.latencyP50Ms.toFixed(3)} | ${Math.round(n.throughput)} | ${w.latencyP50Ms.toFixed(3)} | ${Math.round(w.throughput)} |`);
  }
}
