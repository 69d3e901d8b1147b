// `distill compare <run-dir>`: every way to shrink the teacher, measured side by side on the run's
// test set — teacher, baseline (the student's light architecture trained on labels only), distilled
// student, student int8 / fp16, teacher int8, the teacher pruned to the student's size (+ KD
// fine-tune). Missing variants are made first (in <run-dir>/compressed/). Writes compare.json and a
// self-contained compare.html (table + accuracy-vs-latency and accuracy-vs-size charts).

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../config/load.js";
import { loadData } from "../data/load.js";
import { allIndices, firstN } from "../data/split.js";
import { UserError } from "../errors.js";
import { decodeModel } from "../engine/onnx.js";
import { measureInterleaved } from "../eval/latency.js";
import type { ModelMetrics, RunResults } from "../eval/types.js";
import { writeFileAtomic } from "../util/fs.js";
import { checkModel, parameterCountOf, sampleBatch } from "./check.js";
import { comparePage, int8Summary } from "./compare-html.js";
import type { CompareResult, CompareRow } from "./compare-result.js";
import { keepForParams, pruneStructured } from "./prune.js";
import { convertFp16, quantizeDynamic } from "./quantize.js";

export type { CompareResult, CompareRow } from "./compare-result.js";

export interface CompareOptions {
  limit?: number;
  /** Latency rounds, each timing every model in turn; the p50 is over all rounds' runs. */
  rounds?: number;
  finetuneEpochs?: number;
  cacheDir?: string;
  log?: (line: string) => void;
}

interface Variant {
  name: string;
  how: string;
  file: string;
  /** Accuracy over seeds from results.json, for the trained fp32 models. */
  seeds?: ModelMetrics[];
  params?: number;
}

function readResults(runDir: string): RunResults {
  const path = join(runDir, "results.json");
  if (!existsSync(path)) throw new UserError(runDir, "no results.json: not a finished run folder (finish it with `distill resume`)");
  try {
    return JSON.parse(readFileSync(path, "utf8")) as RunResults;
  } catch (e) {
    throw new UserError(path, `not valid JSON (${(e as Error).message})`);
  }
}

/** Makes the compressed variants that are not in <run-dir>/compressed yet. */
async function makeVariants(runDir: string, results: RunResults, o: CompareOptions): Promise<Variant[]> {
  const log = o.log ?? (() => {});
  const dir = join(runDir, "compressed");
  const role = (r: string) => results.models.find((m) => m.role === r);
  const out: Variant[] = [];
  for (const r of ["teacher", "baseline", "student"]) {
    const m = role(r);
    if (m) out.push({ name: r === "student" ? "distilled student" : r === "baseline" ? "baseline (labels only)" : "teacher", how: r === "baseline" ? "student architecture, trained without a teacher" : r === "student" ? `KD, T=${results.temperature}, α=${results.alpha}` : "fp32", file: m.file, seeds: m.perSeed, params: m.summary.params.mean });
  }
  const make = async (file: string, build: () => Promise<Uint8Array> | Uint8Array) => {
    const path = join(dir, file);
    if (!existsSync(path)) {
      log(`making compressed/${file}`);
      writeFileAtomic(path, await build());
    }
    return `compressed/${file}`;
  };
  const bytesOf = (f: string) => readFileSync(join(runDir, f));
  const student = role("student"), teacher = role("teacher");
  if (student) {
    out.push({ name: "student int8", how: "dynamic int8 (auto form)", file: await make("student-int8.onnx", () => quantizeDynamic(bytesOf(student.file), student.file, "auto").bytes), params: student.summary.params.mean });
    out.push({ name: "student fp16", how: "fp16 weights", file: await make("student-fp16.onnx", () => convertFp16(bytesOf(student.file), student.file).bytes), params: student.summary.params.mean });
  }
  if (teacher) {
    out.push({ name: "teacher int8", how: "dynamic int8 (auto form)", file: await make("teacher-int8.onnx", () => quantizeDynamic(bytesOf(teacher.file), teacher.file, "auto").bytes), params: teacher.summary.params.mean });
    if (student) {
      const target = student.summary.params.mean;
      const epochs = o.finetuneEpochs ?? 2;
      const canFinetune = loadConfig(join(runDir, "config.yaml")).teacher?.model !== undefined;
      const file = await make("teacher-pruned.onnx", async () => {
        const src = bytesOf(teacher.file);
        const pruned = pruneStructured(src, teacher.file, keepForParams(src, teacher.file, target)).bytes;
        if (!canFinetune || epochs === 0) return pruned;
        const { finetunePruned } = await import("./finetune.js");
        return finetunePruned(runDir, pruned, teacher.file, { epochs, ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}), onEpoch: (e, l) => log(`  fine-tune epoch ${e}/${epochs}: KD loss ${l.toFixed(4)}`) });
      });
      out.push({ name: "teacher pruned", how: `structured L1 pruning to ≈ the student's ${target} parameters${canFinetune && epochs ? ` + ${epochs} epochs KD fine-tune` : ", no fine-tune"}`, file });
    }
  }
  return out;
}

/** Marks the rows no other row beats on both accuracy (higher) and cost (lower). */
export function paretoFront(points: { accuracy: number; cost: number }[]): boolean[] {
  return points.map((p, i) => !points.some((q, j) => j !== i && q.accuracy >= p.accuracy && q.cost <= p.cost && (q.accuracy > p.accuracy || q.cost < p.cost)));
}

export async function compareRun(runDir: string, o: CompareOptions = {}): Promise<CompareResult> {
  const results = readResults(runDir);
  const config = loadConfig(join(runDir, "config.yaml"));
  const variants = await makeVariants(runDir, results, o);
  const data = await loadData(config.data);
  const indices = firstN(allIndices(data.test.count), o.limit ?? config.data.testLimit ?? undefined);
  const log = o.log ?? (() => {});
  // Quality: one pass per model; agreement against the teacher's logits.
  const checks = [];
  let teacherLogits: Float32Array | undefined;
  for (const v of variants) {
    log(`evaluating ${v.name}`);
    const bytes = readFileSync(join(runDir, v.file));
    const c = await checkModel(bytes, v.file, { set: data.test, indices, latencyRuns: 1, ...(teacherLogits ? { referenceLogits: teacherLogits } : {}), params: v.params ?? parameterCountOf(bytes, v.file) });
    if (v.name === "teacher") teacherLogits = c.logits;
    checks.push({ v, bytes, metrics: c.metrics });
  }
  // Speed: every model warmed up, then rounds interleaved across them (A B C … A B C …) so load changes hit all alike.
  const rounds = o.rounds ?? 3;
  log(`timing ${checks.length} models (${rounds} interleaved rounds)`);
  const timings = await measureInterleaved(checks.map((c) => {
    const input = inputOf(c.bytes);
    return { bytes: c.bytes, makeInput: (b: number) => ({ name: input.name, dtype: "float32" as const, ...sampleBatch(data.test, indices, b, input.shape) }) };
  }), { rounds, runs: 100 * rounds });
  const rows: CompareRow[] = checks.map((c, i) => {
    const wholeTestSet = c.v.seeds?.[0]?.total === indices.length;
    const accs = wholeTestSet ? c.v.seeds!.map((s) => s.accuracy) : [c.metrics.accuracy];
    const mean = accs.reduce((a, b) => a + b, 0) / accs.length;
    const std = accs.length > 1 ? Math.sqrt(accs.reduce((a, b) => a + (b - mean) ** 2, 0) / (accs.length - 1)) : 0;
    return {
      name: c.v.name, how: c.v.how, file: c.v.file, accuracy: { mean, std, seeds: accs.length }, fileAccuracy: c.metrics.accuracy, macroF1: c.metrics.macroF1,
      params: c.metrics.params, onnxBytes: c.metrics.onnxBytes, onnxGzipBytes: c.metrics.onnxGzipBytes,
      latencyP50Ms: timings[i]!.latencyP50Ms, latencyP95Ms: timings[i]!.latencyP95Ms, throughput: timings[i]!.throughput,
      latencyP50RangeMs: [Math.min(...timings[i]!.roundP50Ms), Math.max(...timings[i]!.roundP50Ms)],
      agreement: c.v.name === "teacher" ? null : c.metrics.agreement, paretoLatency: false, paretoSize: false,
    };
  });
  paretoFront(rows.map((r) => ({ accuracy: r.accuracy.mean, cost: r.latencyP50Ms }))).forEach((p, i) => (rows[i]!.paretoLatency = p));
  paretoFront(rows.map((r) => ({ accuracy: r.accuracy.mean, cost: r.onnxBytes }))).forEach((p, i) => (rows[i]!.paretoSize = p));
  const row = (n: string) => rows.find((r) => r.name === n);
  const s = row("distilled student"), q = row("student int8"), t = row("teacher");
  const result: CompareResult = {
    run: results.name, dataset: data.name, testSamples: indices.length, measuredAt: new Date().toISOString(),
    loadAverage: loadAverage(), rounds, rows,
    int8Student: {
      sizeRatio: s && q ? s.onnxBytes / q.onnxBytes : NaN,
      accuracyChangePoints: s && q ? (q.fileAccuracy - s.fileAccuracy) * 100 : NaN,
      speedupVsTeacher: t && q ? t.latencyP50Ms / q.latencyP50Ms : NaN,
    },
  };
  writeFileAtomic(join(runDir, "compare.json"), JSON.stringify(result, null, 2) + "\n");
  writeFileAtomic(join(runDir, "compare.html"), comparePage(result));
  return result;
}

function loadAverage(): number[] {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
  } catch {
    return [];
  }
}

/** The model's input name and per-sample shape. */
function inputOf(bytes: Uint8Array): { name: string; shape: number[] } {
  const i = decodeModel(bytes).inputs[0]!;
  return { name: i.name, shape: i.shape.slice(1).map(Number) };
}

export function formatCompare(r: CompareResult): string {
  const pct = (v: number) => (v * 100).toFixed(2);
  const lines = [`${r.run} on ${r.testSamples} ${r.dataset} test images (latency: ${r.rounds} rounds interleaved across the models, load ${r.loadAverage.join(" ")})`];
  lines.push(`${"model".padEnd(24)} ${"accuracy %".padStart(14)} ${"F1".padStart(6)} ${"params".padStart(8)} ${"bytes".padStart(9)} ${"gzip".padStart(9)} ${"p50 ms".padStart(7)} ${"p95 ms".padStart(7)} ${"b128 /s".padStart(8)} ${"agree %".padStart(7)}  pareto`);
  for (const x of r.rows)
    lines.push(`${x.name.padEnd(24)} ${(pct(x.accuracy.mean) + (x.accuracy.seeds > 1 ? ` ± ${pct(x.accuracy.std)}` : "")).padStart(14)} ${x.macroF1.toFixed(3).padStart(6)} ${String(Math.round(x.params)).padStart(8)} ${String(x.onnxBytes).padStart(9)} ${String(x.onnxGzipBytes).padStart(9)} ${x.latencyP50Ms.toFixed(3).padStart(7)} ${x.latencyP95Ms.toFixed(3).padStart(7)} ${String(Math.round(x.throughput)).padStart(8)} ${(x.agreement === null ? "—" : pct(x.agreement)).padStart(7)}  ${[x.paretoLatency ? "latency" : "", x.paretoSize ? "size" : ""].filter(Boolean).join("+")}`);
  const int8 = int8Summary(r.int8Student);
  if (int8) lines.push(int8);
  return lines.join("\n") + "\n";
}
