// Stage 4 of a sequence run: every model on the test split — greedy and beam outputs scored with
// WER, PER (token error rate), BLEU and chrF against all of each word's references — then their
// size and latency per word, all models timed together and interleaved, through the exported
// .onnx files; results.json's content.

import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describeSequenceData } from "../../data/sequence/load.js";
import type { RunFolder } from "../../distill/run-folder.js";
import { machineFacts } from "../../eval/details.js";
import { measurePerWordInterleaved, sizeOf } from "../../eval/latency.js";
import { meanStd } from "../../eval/metrics.js";
import { Seq2SeqDecoder } from "../../eval/seq2seq-decode.js";
import { OnnxSeq2Seq } from "../../eval/onnx-seq2seq.js";
import { decodeTestSplit } from "../../eval/seq2seq-eval.js";
import { sequenceScores, type SequenceScores } from "../../eval/sequence-metrics.js";
import { importSeq2SeqOnnx } from "../../nn/seq2seq-export.js";
import { pairedDifference } from "../../report/headline.js";
import { SCORE_KEYS, type Seq2SeqMetricKey, type Seq2SeqModelMetrics, type Seq2SeqResults, type Seq2SeqRoleResult } from "../../report/seq2seq-results.js";
import { writeFileAtomic } from "../../util/fs.js";
import type { Seq2SeqPlan } from "./plan.js";
import { seq2seqStudentStages } from "./student-stage.js";

/** A role's model files, one per seed. */
interface RoleFiles {
  role: string;
  file: string;
  perSeed: { seed: number; path: string }[];
}

type Quality = Pick<Seq2SeqModelMetrics, "seed" | "total" | "tooLong" | "greedy" | "beam" | "params" | "onnxBytes" | "onnxGzipBytes">;


export async function evaluateSeq2Seq(plan: Seq2SeqPlan, run: RunFolder): Promise<Seq2SeqResults> {
  const machine = machineFacts(); // the load average as timing starts
  const roles = roleFiles(plan, run);
  const quality: Quality[][] = [];
  for (const r of roles) {
    const list: Quality[] = [];
    for (const { seed, path } of r.perSeed) list.push(await qualityOnce(plan, run, r.role, seed, path));
    quality.push(list);
  }
  const latency = await timeModels(plan, roles);
  let next = 0;
  const models: Seq2SeqRoleResult[] = roles.map((r, i) => {
    const perSeed = quality[i]!.map((q) => ({ ...q, ...latency[next++]! }));
    return { role: r.role, file: r.file, perSeed, summary: summaryOf(perSeed) };
  });
  const baseline = models.find((m) => m.role === "baseline")!;
  for (const m of models)
    if (m.role.startsWith("student-")) m.vsBaseline = Object.fromEntries(scoreKeys().map((k) => [k, pairedDifference(m.perSeed.map((s) => metric(s, k)), baseline.perSeed.map((s) => metric(s, k)))]));
  run.writeMetricsLog();
  run.saveState();
  return resultsOf(plan, run, models, machine);
}

function roleFiles(plan: Seq2SeqPlan, run: RunFolder): RoleFiles[] {
  const roles: RoleFiles[] = [];
  // A teacher that is a file of its outputs cannot be run on the test set: no teacher row.
  if (plan.config.teacher.outputs === undefined) roles.push({ role: "teacher", file: "teacher.onnx", perSeed: [{ seed: plan.teacherSeed, path: run.teacherFile }] });
  for (const { stage } of seq2seqStudentStages(plan)) {
    const perSeed = plan.config.seeds.map((seed) => ({ seed, path: run.modelPath(stage, seed) }));
    const top = join(run.dir, `${stage}.onnx`);
    if (!existsSync(top)) copyFileSync(perSeed[0]!.path, top);
    roles.push({ role: stage, file: `${stage}.onnx`, perSeed });
  }
  return roles;
}

/** Test scores of one model, computed once and kept (with its outputs) in evaluation/<role>-s<seed>.json. */
async function qualityOnce(plan: Seq2SeqPlan, run: RunFolder, role: string, seed: number, path: string): Promise<Quality> {
  const kept = join(run.dir, "evaluation", `${role}-s${seed}.json`);
  if (existsSync(kept)) return (JSON.parse(readFileSync(kept, "utf8")) as { quality: Quality }).quality;
  const bytes = readFileSync(path);
  const { model, params } = importSeq2SeqOnnx(bytes, path);
  const decoder = new Seq2SeqDecoder(model, params, { sourceLengths: plan.buckets.map(([ls]) => ls) });
  const { entries, sources } = plan.test;
  const beam = plan.config.evaluate.beam;
  const task = plan.progress.task(`evaluate ${role}${role === "teacher" ? "" : ` seed ${seed}`} (greedy and beam ${beam})`, entries.length);
  let decoded: { greedy: string[][]; beam: string[][] };
  try {
    decoded = await decodeTestSplit(decoder, plan.vocab.target.symbols, entries, sources, beam, (done) => task.update(done));
  } finally {
    await decoder.dispose();
  }
  const references = entries.map((e) => e.targets);
  const quality: Quality = {
    seed, total: entries.length, tooLong: sources.filter((s) => !s).length,
    greedy: sequenceScores(decoded.greedy, references), beam: sequenceScores(decoded.beam, references),
    params: params.count(), ...sizeOf(bytes),
  };
  task.finish(`WER greedy ${percent(quality.greedy.wordErrorRate)}, beam ${percent(quality.beam.wordErrorRate)}; PER ${percent(quality.beam.tokenErrorRate)}; BLEU ${quality.beam.bleu.toFixed(2)}`);
  const joiner = plan.vocab.target.split === "chars" ? "" : " ";
  const outputs = entries.map((e, i) => ({ source: e.text, greedy: decoded.greedy[i]!.join(joiner), beam: decoded.beam[i]!.join(joiner) }));
  writeFileAtomic(kept, JSON.stringify({ quality, outputs }) + "\n");
  return quality;
}

/**
 * Latency per word of every model, all timed together: each exported .onnx decoded greedily by the
 * driver that ships with it (seq2seq-driver.js, as the export-web page and OnnxSeq2Seq run it), so
 * the figure is what a deployment of the file sees.
 */
async function timeModels(plan: Seq2SeqPlan, roles: RoleFiles[]): Promise<Pick<Seq2SeqModelMetrics, "latencyP50Ms" | "latencyP95Ms" | "wordsPerSecond">[]> {
  const words = plan.test.entries.filter((_, i) => plan.test.sources[i]).map((e) => e.text);
  const files = roles.flatMap((r) => r.perSeed.map((s) => s.path));
  if (words.length === 0) return files.map(() => ({ latencyP50Ms: NaN, latencyP95Ms: NaN, wordsPerSecond: NaN }));
  const task = plan.progress.task(`latency per word (${files.length} models, interleaved)`, 1);
  const models: OnnxSeq2Seq[] = [];
  try {
    for (const path of files) models.push(await OnnxSeq2Seq.load(path));
    const timed = await measurePerWordInterleaved(models.map((m) => (w: readonly string[]) => m.convert(w, 1)), words, { runs: plan.config.evaluate.latencyRuns });
    task.finish(`${words.length} test words`);
    return timed.map((t) => ({ latencyP50Ms: t.latencyP50Ms, latencyP95Ms: t.latencyP95Ms, wordsPerSecond: t.throughput }));
  } finally {
    for (const m of models) await m.dispose();
  }
}

function scoreKeys(): Seq2SeqMetricKey[] {
  return (["beam", "greedy"] as const).flatMap((d) => SCORE_KEYS.map((k) => `${d}.${k}` as Seq2SeqMetricKey));
}

const ALL_KEYS: Seq2SeqMetricKey[] = [...scoreKeys(), "params", "onnxBytes", "onnxGzipBytes", "latencyP50Ms", "latencyP95Ms", "wordsPerSecond"];

export function metric(m: Seq2SeqModelMetrics, key: Seq2SeqMetricKey): number {
  const [decoding, score] = key.split(".") as ["greedy" | "beam", keyof SequenceScores | undefined];
  return score ? m[decoding][score] : (m[key as keyof Seq2SeqModelMetrics] as number);
}

function summaryOf(perSeed: Seq2SeqModelMetrics[]): Seq2SeqRoleResult["summary"] {
  return Object.fromEntries(ALL_KEYS.map((k) => [k, meanStd(perSeed.map((m) => metric(m, k)))])) as Seq2SeqRoleResult["summary"];
}

function resultsOf(plan: Seq2SeqPlan, run: RunFolder, models: Seq2SeqRoleResult[], machine: Seq2SeqResults["machine"]): Seq2SeqResults {
  const { config, data } = plan;
  return {
    task: "seq2seq",
    name: config.name,
    createdAt: run.state.createdAt,
    codeVersion: run.state.codeVersion,
    seeds: config.seeds,
    dataset: data.name,
    wallSeconds: Math.round(run.state.activeSeconds * 10) / 10,
    evaluateBeam: config.evaluate.beam,
    models,
    data: {
      entries: { train: data.train.length, validation: data.validation.length, test: data.test.length },
      trainPairs: plan.trainPairs.length,
      lengths: plan.lengths, buckets: plan.buckets, leftOut: plan.leftOut,
      describe: describeSequenceData(data),
    },
    ...(run.state.teacherTargets ? { teacherTargets: run.state.teacherTargets } : {}),
    setup: { data: config.data, teacher: config.teacher, student: config.student, kd: config.kd, evaluate: config.evaluate, buckets: plan.buckets, seeds: config.seeds },
    machine,
  };
}

export function percent(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : String(x);
}

/** The run's last line: each role's test WER at the evaluation beam. */
export function seq2seqSummaryLine(r: Seq2SeqResults): string {
  const parts = r.models.map((m) => {
    const s = m.summary["beam.wordErrorRate"];
    return `${m.role} ${percent(s.mean)}${s.values.length > 1 ? ` ± ${(s.std * 100).toFixed(2)}` : ""}`;
  });
  return `${r.name}: test WER (beam ${r.evaluateBeam}) ${parts.join(", ")} (of ${r.models[0]!.perSeed[0]!.total} words)`;
}
