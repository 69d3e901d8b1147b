// Stage 2 of a sequence run: what the distilled students learn from the frozen teacher, computed
// once per run and stored in the run folder (a resume reads them back):
//   word      its top-k next symbols at every position of each gold training pair (teacher forcing)
//   sequence  its beam-search output for each training source (Kim & Rush 2016's sequence-level targets)
//   both      the sequence-level pairs, and its top-k on them
// A teacher given as a file of its outputs is stored the same way, from the file.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors.js";
import type { IdPair } from "../../distill/seq2seq-stage.js";
import type { RunFolder } from "../../distill/run-folder.js";
import { readTopKStore, topKStoreKey, writeTopKStore } from "../../distill/topk-store.js";
import { Seq2SeqDecoder, type TopK } from "../../eval/seq2seq-decode.js";
import { writeFileAtomic } from "../../util/fs.js";
import { storeFile, type TeacherStore } from "./files.js";
import { needsStore, type Seq2SeqPlan } from "./plan.js";
import { loadSeq2SeqTeacher } from "./teacher-stage.js";

export interface TeacherTargets {
  /** Aligned with plan.trainPairs. */
  word?: TopK[];
  /** Each training source with the teacher's output as its target (outputs longer than the models take left out). */
  sequencePairs?: IdPair[];
  /** Aligned with sequencePairs. */
  sequenceTopK?: TopK[];
}

const BATCH = 256;

export async function teacherTargets(plan: Seq2SeqPlan, run: RunFolder): Promise<TeacherTargets> {
  const out: TeacherTargets = {};
  let decoder: Seq2SeqDecoder | undefined;
  const teacher = () => (decoder ??= openDecoder(plan, run));
  const identity = teacherIdentity(plan, run);
  try {
    if (needsStore(plan, "word")) out.word = await topKOf(plan, run, "word", plan.trainPairs, identity, teacher, plan.fileTargets?.word);
    if (needsStore(plan, "sequence")) out.sequencePairs = await sequencePairs(plan, run, teacher);
    if (needsStore(plan, "sequence-topk")) out.sequenceTopK = await topKOf(plan, run, "sequence-topk", out.sequencePairs!, identity, teacher);
  } finally {
    await decoder?.dispose();
  }
  run.saveState();
  return out;
}

function openDecoder(plan: Seq2SeqPlan, run: RunFolder): Seq2SeqDecoder {
  const t = loadSeq2SeqTeacher(plan, run);
  // A file teacher has no model: its stores were written from the file, so nothing is decoded.
  if (!t) throw new UserError(plan.config.teacher.outputs!, "teacher.outputs: the run folder's stored teacher targets are missing or do not match the data; start the run again");
  return new Seq2SeqDecoder(t.model, t.params, { sourceLengths: plan.buckets.map(([ls]) => ls) });
}

/** What the stored targets came from: the teacher file's digest, or the outputs file. */
function teacherIdentity(plan: Seq2SeqPlan, run: RunFolder): string {
  if (plan.config.teacher.outputs !== undefined) return "teacher.outputs";
  return existsSync(run.teacherFile) ? createHash("sha256").update(readFileSync(run.teacherFile)).digest("hex").slice(0, 16) : "none";
}

async function topKOf(plan: Seq2SeqPlan, run: RunFolder, store: TeacherStore, pairs: IdPair[], identity: string, teacher: () => Seq2SeqDecoder, fromFile?: TopK[]): Promise<TopK[]> {
  const k = plan.config.kd.topK;
  const path = join(run.dir, storeFile(store));
  const key = topKStoreKey(pairs, k, identity);
  const stored = readTopKStore(path, key);
  const label = `teacher top-${k} on ${store === "word" ? "the training pairs" : "its own outputs"}`;
  if (stored) {
    plan.progress.log(`${label}: ${pairs.length} pairs, stored`);
    return stored;
  }
  const started = performance.now();
  let list: TopK[];
  if (fromFile) list = fromFile;
  else {
    const task = plan.progress.task(label, pairs.length);
    list = [];
    for (let s = 0; s < pairs.length; s += BATCH) {
      const batch = pairs.slice(s, s + BATCH);
      list.push(...(await teacher().topK(batch.map((p) => p.source), batch.map((p) => p.target), k)));
      task.update(list.length);
    }
    task.finish(`${pairs.length} pairs`);
  }
  writeTopKStore(path, list, k, key);
  run.state.teacherTargets = { ...run.state.teacherTargets, [store]: { items: pairs.length, seconds: fromFile ? 0 : (performance.now() - started) / 1000 } };
  // Read back, so a fresh run trains on exactly what a resumed one would.
  return readTopKStore(path, key)!;
}

/** The teacher's beam output on every training source, stored as jsonl {source, output, ids}. */
async function sequencePairs(plan: Seq2SeqPlan, run: RunFolder, teacher: () => Seq2SeqDecoder): Promise<IdPair[]> {
  const path = join(run.dir, storeFile("sequence"));
  const sources = plan.trainSources;
  let outputs = readOutputsStore(path, sources.map((s) => s.text));
  const beam = plan.config.kd.beam;
  if (outputs) plan.progress.log(`teacher outputs on ${sources.length} training sources: stored`);
  else {
    const started = performance.now();
    if (plan.fileTargets?.sequences) outputs = plan.fileTargets.sequences;
    else {
      const task = plan.progress.task(`teacher beam-${beam} outputs on the training sources`, sources.length);
      outputs = [];
      for (let s = 0; s < sources.length; s += BATCH) {
        outputs.push(...(await teacher().beamSearch(sources.slice(s, s + BATCH).map((x) => x.ids), beam)).map((h) => h.ids));
        task.update(outputs.length);
      }
      task.finish(`${sources.length} sources in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    const symbols = plan.vocab.target.symbols, joiner = plan.vocab.target.split === "chars" ? "" : " ";
    writeFileAtomic(path, sources.map((s, i) => JSON.stringify({ source: s.text, output: outputs![i]!.map((id) => symbols[id]).join(joiner), ids: outputs![i] })).join("\n") + "\n");
    const leftOut = outputs.filter((o) => o.length + 1 > plan.lengths.target).length;
    run.state.teacherTargets = { ...run.state.teacherTargets, sequence: { items: sources.length, seconds: plan.fileTargets ? 0 : (performance.now() - started) / 1000, beam, leftOut } };
  }
  return sources.flatMap((s, i) => (outputs![i]!.length + 1 <= plan.lengths.target ? [{ source: s.ids, target: outputs![i]! }] : []));
}

/** The stored outputs when they are for these sources in this order; else undefined (computed again). */
function readOutputsStore(path: string, sources: string[]): number[][] | undefined {
  if (!existsSync(path)) return undefined;
  const lines = readFileSync(path, "utf8").split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== sources.length) return undefined;
  const out: number[][] = [];
  for (const [i, line] of lines.entries()) {
    let row: { source?: unknown; ids?: unknown };
    try {
      row = JSON.parse(line) as typeof row;
    } catch (e) {
      throw new UserError(`${path}: line ${i + 1}`, `damaged teacher outputs (${(e as Error).message}); delete the file and the run computes them again`);
    }
    if (row.source !== sources[i] || !Array.isArray(row.ids) || !row.ids.every((x) => Number.isInteger(x))) return undefined;
    out.push(row.ids as number[]);
  }
  return out;
}
