// Decoding a trained Seq2SeqModel: greedy and beam search, and the teacher's top-k next-symbol
// distributions under teacher forcing (what word-level distillation stores).
//
// The encoder runs once per batch. The decoder runs once per output position, on a graph built for
// that prefix length (t = 1, 2, …), so step t costs t positions rather than the model's longest
// target: Σt instead of t·Lt over a word. Graphs are built on first use and kept.

import { Graph, type Tensor } from "../engine/graph.js";
import * as F from "../engine/functional.js";
import { encodeModel } from "../engine/onnx.js";
import { Session } from "../engine/runtime.js";
import type { ParameterSet } from "../nn/module.js";
import type { Seq2SeqModel } from "../nn/seq2seq.js";
import { SYMBOL_IDS } from "../data/sequence/symbols.js";

export interface Hypothesis {
  /** Output ids, <bos> and <eos> left out. */
  ids: number[];
  /** Sum of the log-probabilities of its symbols, <eos> included. */
  logProb: number;
}

export interface TopK {
  /** [positions × k] ids and log-probabilities (T = 1), most likely first, for each target position. */
  ids: Int32Array;
  logProbs: Float32Array;
  positions: number;
  k: number;
}

export class Seq2SeqDecoder {
  private readonly encoders = new Map<number, Promise<Session>>();
  private readonly decoders = new Map<string, Promise<Session>>();
  private readonly forced = new Map<string, Promise<Session>>();
  /** Source lengths graphs are built for: a batch of sources is padded to the smallest that holds it. */
  readonly sourceLengths: number[];

  constructor(
    readonly model: Seq2SeqModel,
    private readonly params: ParameterSet,
    private readonly opts: { threads?: number; sourceLengths?: number[] } = {},
  ) {
    const longest = model.spec.sourceLength;
    this.sourceLengths = [...new Set([...(opts.sourceLengths ?? []).filter((l) => l < longest), longest])].sort((a, b) => a - b);
  }

  private sourceLengthFor(n: number): number {
    const l = this.sourceLengths.find((x) => x >= n);
    if (l === undefined) throw new RangeError(`a source of ${n} symbols is longer than the model's ${this.model.spec.sourceLength}`);
    return l;
  }

  private encoder(ls: number): Promise<Session> {
    let s = this.encoders.get(ls);
    if (!s) {
      const g = new Graph();
      const { ctx } = this.model.context(g, "eval", { kind: "initializers", params: this.params });
      const memory = this.model.encode(ctx, g.input("source", ["B", ls], "int64"));
      g.output(memory.value, "memory");
      g.output(memory.mask, "mask");
      s = Session.create(encodeModel(g), { threads: this.opts.threads });
      this.encoders.set(ls, s);
    }
    return s;
  }

  /** Decoder on a prefix of t symbols: log-probabilities of the next symbol [B, V]. */
  private decoder(ls: number, t: number): Promise<Session> {
    const key = `${ls}:${t}`;
    let s = this.decoders.get(key);
    if (!s) {
      const g = new Graph();
      const d = this.model.spec.dims;
      const { ctx } = this.model.context(g, "eval", { kind: "initializers", params: this.params });
      const memory = { value: g.input("memory", ["B", ls, d]), mask: g.input("mask", ["B", ls]) };
      const logits = this.model.decode(ctx, memory, g.input("target", ["B", t], "int64"));
      const last = F.squeeze(F.slice(logits, [t - 1], [t], [1]), [1]);
      g.output(F.logSoftmax(last, -1), "logprobs");
      s = Session.create(encodeModel(g), { threads: this.opts.threads });
      this.decoders.set(key, s);
    }
    return s;
  }

  /** The whole model under teacher forcing: log-probabilities [B, lt, V]. */
  private teacherForced(ls: number, lt: number): Promise<Session> {
    const key = `${ls}:${lt}`;
    let s = this.forced.get(key);
    if (!s) {
      const g = new Graph();
      const { ctx } = this.model.context(g, "eval", { kind: "initializers", params: this.params });
      const logits = this.model.forward(ctx, g.input("source", ["B", ls], "int64"), g.input("target", ["B", lt], "int64"));
      g.output(F.logSoftmax(logits, -1), "logprobs");
      s = Session.create(encodeModel(g), { threads: this.opts.threads });
      this.forced.set(key, s);
    }
    return s;
  }

  private async encode(sources: number[][]): Promise<{ ls: number; memory: Float32Array; mask: Float32Array }> {
    const ls = this.sourceLengthFor(Math.max(1, ...sources.map((s) => s.length)));
    const ids = new BigInt64Array(sources.length * ls);
    sources.forEach((s, i) => s.forEach((id, j) => (ids[i * ls + j] = BigInt(id))));
    const out = await (await this.encoder(ls)).run({ source: { dtype: "int64", shape: [sources.length, ls], data: ids } });
    return { ls, memory: out["memory"]!.data as Float32Array, mask: out["mask"]!.data as Float32Array };
  }

  /**
   * Beam search with `beam` hypotheses per source (1 = greedy), ranked by the sum of log-probabilities;
   * a source is done when its best finished hypothesis scores at least its best live one (scores
   * only fall as symbols are added) or the target length is reached.
   */
  async beamSearch(sources: number[][], beam: number): Promise<Hypothesis[]> {
    if (sources.length === 0) return [];
    const { ls, memory, mask } = await this.encode(sources);
    const d = this.model.spec.dims, lt = this.model.spec.targetLength;
    let live: { source: number; ids: number[]; logProb: number }[] = sources.map((_, i) => ({ source: i, ids: [SYMBOL_IDS.bos], logProb: 0 }));
    const finished: Hypothesis[][] = sources.map(() => []);
    for (let t = 1; t <= lt && live.length; t++) {
      const rows = live.length;
      const mem = new Float32Array(rows * ls * d), msk = new Float32Array(rows * ls), target = new BigInt64Array(rows * t);
      live.forEach((h, r) => {
        mem.set(memory.subarray(h.source * ls * d, (h.source + 1) * ls * d), r * ls * d);
        msk.set(mask.subarray(h.source * ls, (h.source + 1) * ls), r * ls);
        h.ids.forEach((id, j) => (target[r * t + j] = BigInt(id)));
      });
      const out = await (await this.decoder(ls, t)).run({
        memory: { dtype: "float32", shape: [rows, ls, d], data: mem },
        mask: { dtype: "float32", shape: [rows, ls], data: msk },
        target: { dtype: "int64", shape: [rows, t], data: target },
      });
      const logProbs = out["logprobs"]!.data as Float32Array;
      const v = logProbs.length / rows;
      // Candidates per source: each live hypothesis extended by each of its `beam` best symbols.
      const candidates = new Map<number, { parent: number; id: number; logProb: number }[]>();
      live.forEach((h, r) => {
        const row = logProbs.subarray(r * v, (r + 1) * v);
        const list = candidates.get(h.source) ?? [];
        for (const id of topIndices(row, beam, SYMBOL_IDS.pad)) list.push({ parent: r, id, logProb: h.logProb + row[id]! });
        candidates.set(h.source, list);
      });
      const next: typeof live = [];
      for (const [source, list] of candidates) {
        list.sort((a, b) => b.logProb - a.logProb);
        // The `beam` best extensions: those ending in <eos> (or at the last position) are finished.
        const kept: typeof live = [];
        for (const c of list.slice(0, beam)) {
          const ids = [...live[c.parent]!.ids, c.id];
          if (c.id === SYMBOL_IDS.eos || t === lt) finished[source]!.push({ ids: ids.slice(1).filter((x) => x !== SYMBOL_IDS.eos), logProb: c.logProb });
          else kept.push({ source, ids, logProb: c.logProb });
        }
        const best = Math.max(...finished[source]!.map((h) => h.logProb));
        const done = finished[source]!.length >= beam || kept.length === 0 || best >= kept[0]!.logProb;
        if (!done) next.push(...kept);
      }
      live = next;
    }
    return finished.map((list) => list.reduce((a, b) => (b.logProb > a.logProb ? b : a), { ids: [], logProb: -Infinity }));
  }

  /**
   * The model's `k` most likely next symbols at every target position, teacher-forced on
   * `targets` (ids without <bos>/<eos>): one TopK per pair with targets.length + 1 positions
   * (the last predicts <eos>).
   */
  async topK(sources: number[][], targets: number[][], k: number): Promise<TopK[]> {
    const ls = this.sourceLengthFor(Math.max(1, ...sources.map((s) => s.length)));
    const lt = this.model.spec.targetLength;
    const longest = Math.max(...targets.map((t) => t.length + 1));
    if (longest > lt) throw new RangeError(`a target of ${longest - 1} symbols is longer than the model's ${lt - 1}`);
    const src = new BigInt64Array(sources.length * ls), tgt = new BigInt64Array(sources.length * lt);
    sources.forEach((s, i) => s.forEach((id, j) => (src[i * ls + j] = BigInt(id))));
    targets.forEach((t, i) => [SYMBOL_IDS.bos, ...t].forEach((id, j) => (tgt[i * lt + j] = BigInt(id))));
    const out = await (await this.teacherForced(ls, lt)).run({
      source: { dtype: "int64", shape: [sources.length, ls], data: src },
      target: { dtype: "int64", shape: [sources.length, lt], data: tgt },
    });
    const logProbs = out["logprobs"]!.data as Float32Array;
    const v = logProbs.length / (sources.length * lt);
    return targets.map((t, i) => {
      const positions = t.length + 1;
      const ids = new Int32Array(positions * k), lp = new Float32Array(positions * k);
      for (let p = 0; p < positions; p++) {
        const row = logProbs.subarray((i * lt + p) * v, (i * lt + p + 1) * v);
        topIndices(row, k, -1).forEach((id, j) => {
          ids[p * k + j] = id;
          lp[p * k + j] = row[id]!;
        });
      }
      return { ids, logProbs: lp, positions, k };
    });
  }

  async dispose(): Promise<void> {
    for (const m of [this.encoders, this.decoders, this.forced]) {
      for (const s of m.values()) await (await s).dispose();
      m.clear();
    }
  }
}

/** Indices of the k largest values (ties: lower index first), leaving out `skip`. */
export function topIndices(row: ArrayLike<number>, k: number, skip: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (i === skip) continue;
    if (best.length < k) {
      best.push(i);
      best.sort((a, b) => row[b]! - row[a]! || a - b);
    } else if (row[i]! > row[best[k - 1]!]!) {
      best[k - 1] = i;
      best.sort((a, b) => row[b]! - row[a]! || a - b);
    }
  }
  return best;
}

export type { Tensor };
