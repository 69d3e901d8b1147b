// The decoding driver for a sequence model exported by distill (exportSeq2SeqOnnx): string in,
// string out, around a graph that maps (source [B, Ls], target prefix [B, Lt]) → logits [B, Lt, V].
// A plain ES module with no imports, so the same file runs in Node (distill's OnnxSeq2Seq, over
// onnxruntime-node) and in the exported web page (over onnxruntime-web): both give the same outputs.
//
//   const driver = new Seq2SeqDriver(run, seq2seqMetadata(onnxMetadata));
//   const [{ text }] = await driver.convert(["PHONE"], 4);   // "F OW N"
//
// `run(sourceIds, targetIds, batch)` runs the graph once: BigInt64Arrays of batch × Ls and
// batch × Lt ids (0-padded), resolving to its logits as a Float32Array of batch × Lt × V.
// Search follows distill's own decoder (src/eval/seq2seq-decode.ts, Seq2SeqDecoder.beamSearch)
// rule for rule, so an exported model decodes here exactly as it did in training.

/** The driver's settings from an exported file's metadata (string → string, as ONNX stores it). */
export function seq2seqMetadata(metadata) {
  const field = (key) => {
    const text = metadata[key];
    if (typeof text !== "string") throw new Error("metadata " + key + " is missing: not a sequence model exported by distill");
    return JSON.parse(text);
  };
  if (metadata["distill.task"] !== "seq2seq") throw new Error("metadata distill.task is " + JSON.stringify(metadata["distill.task"] ?? null) + ", not seq2seq");
  const spec = field("distill.seq2seq");
  return {
    sourceLength: spec.sourceLength,
    targetLength: spec.targetLength,
    sourceVocabulary: field("distill.source_vocabulary"),
    targetVocabulary: field("distill.target_vocabulary"),
    specialIds: field("distill.special_ids"),
  };
}

/** The symbols of `text`: code points ("chars") or whitespace-separated tokens ("whitespace"), as distill's data reader splits them. */
export function splitSymbols(text, split) {
  if (split === "chars") return Array.from(text);
  const trimmed = text.trim();
  return trimmed === "" ? [] : trimmed.split(/\s+/);
}

/** Indices of the k largest values (ties: lower index first), leaving out `skip`: topIndices in seq2seq-decode.ts. */
export function topIndices(row, k, skip) {
  const best = [];
  for (let i = 0; i < row.length; i++) {
    if (i === skip) continue;
    if (best.length < k) {
      best.push(i);
      best.sort((a, b) => row[b] - row[a] || a - b);
    } else if (row[i] > row[best[k - 1]]) {
      best[k - 1] = i;
      best.sort((a, b) => row[b] - row[a] || a - b);
    }
  }
  return best;
}

/** log softmax of logits[from, from + v), in float64. */
function logSoftmax(logits, from, v) {
  let max = -Infinity;
  for (let i = 0; i < v; i++) max = Math.max(max, logits[from + i]);
  let sum = 0;
  for (let i = 0; i < v; i++) sum += Math.exp(logits[from + i] - max);
  const shift = max + Math.log(sum);
  const out = new Float64Array(v);
  for (let i = 0; i < v; i++) out[i] = logits[from + i] - shift;
  return out;
}

export class Seq2SeqDriver {
  constructor(run, metadata) {
    this.run = run;
    this.meta = metadata;
    this.ids = metadata.specialIds;
    // Special symbols are names, not input: typed "<eos>" is unknown, as in distill's symbolIndex.
    this.sourceIndex = new Map();
    metadata.sourceVocabulary.symbols.forEach((s, id) => {
      if (id > this.ids.unk) this.sourceIndex.set(s, id);
    });
  }

  /** Source ids of `text`; unknown symbols become <unk>; a source longer than the model takes is an error. */
  encode(text) {
    const symbols = splitSymbols(text, this.meta.sourceVocabulary.split);
    if (symbols.length > this.meta.sourceLength)
      throw new RangeError("a source of " + symbols.length + " symbols is longer than the model's " + this.meta.sourceLength);
    return symbols.map((s) => this.sourceIndex.get(s) ?? this.ids.unk);
  }

  /** Symbols of `text` the source vocabulary lacks (each once, in order). */
  unknownSymbols(text) {
    return [...new Set(splitSymbols(text, this.meta.sourceVocabulary.split).filter((s) => !this.sourceIndex.has(s)))];
  }

  /** Output ids (no <bos>/<eos>) → text: symbols joined by a space (whitespace vocabularies) or by nothing (chars). */
  decode(ids) {
    const v = this.meta.targetVocabulary;
    return ids.map((id) => v.symbols[id] ?? "<unk>").join(v.split === "whitespace" ? " " : "");
  }

  /** Converts each text: beam 1 is greedy. Resolves to { text, ids, logProb } per input. */
  async convert(texts, beam = 1) {
    const hypotheses = await this.search(texts.map((t) => this.encode(t)), beam);
    return hypotheses.map((h) => ({ text: this.decode(h.ids), ids: h.ids, logProb: h.logProb }));
  }

  /**
   * Beam search over source ids with `beam` hypotheses per source (1 = greedy), ranked by the sum
   * of log-probabilities, no length normalisation; <pad> is never emitted. A source is done when
   * its best finished hypothesis scores at least its best live one (scores only fall as symbols
   * are added), when it has `beam` finished ones, or at the longest target. Resolves to
   * { ids, logProb } per source (ids without <bos>/<eos>).
   */
  async search(sources, beam = 1) {
    if (!(Number.isInteger(beam) && beam >= 1)) throw new RangeError("beam must be a whole number ≥ 1, got " + beam);
    const { pad, bos, eos } = this.ids;
    const lt = this.meta.targetLength;
    let live = sources.map((_, i) => ({ source: i, ids: [bos], logProb: 0 }));
    const finished = sources.map(() => []);
    for (let t = 1; t <= lt && live.length; t++) {
      const rows = await this.nextLogProbs(sources, live, t);
      // Candidates per source: each live hypothesis extended by each of its `beam` best symbols.
      const candidates = new Map();
      live.forEach((h, r) => {
        const row = rows[r];
        const list = candidates.get(h.source) ?? [];
        for (const id of topIndices(row, beam, pad)) list.push({ parent: r, id, logProb: h.logProb + row[id] });
        candidates.set(h.source, list);
      });
      const next = [];
      for (const [source, list] of candidates) {
        list.sort((a, b) => b.logProb - a.logProb);
        const kept = [];
        for (const c of list.slice(0, beam)) {
          const ids = [...live[c.parent].ids, c.id];
          if (c.id === eos || t === lt) finished[source].push({ ids: ids.slice(1).filter((x) => x !== eos), logProb: c.logProb });
          else kept.push({ source, ids, logProb: c.logProb });
        }
        const best = Math.max(...finished[source].map((h) => h.logProb));
        const done = finished[source].length >= beam || kept.length === 0 || best >= kept[0].logProb;
        if (!done) next.push(...kept);
      }
      live = next;
    }
    return finished.map((list) => list.reduce((a, b) => (b.logProb > a.logProb ? b : a), { ids: [], logProb: -Infinity }));
  }

  /** One run of the graph: each live hypothesis's log-probabilities of the symbol after its t-symbol prefix. */
  async nextLogProbs(sources, live, t) {
    const ls = this.meta.sourceLength, lt = this.meta.targetLength;
    const batch = live.length;
    const source = new BigInt64Array(batch * ls), target = new BigInt64Array(batch * lt);
    live.forEach((h, r) => {
      sources[h.source].forEach((id, j) => (source[r * ls + j] = BigInt(id)));
      h.ids.forEach((id, j) => (target[r * lt + j] = BigInt(id)));
    });
    const logits = await this.run(source, target, batch);
    const v = logits.length / (batch * lt);
    if (!Number.isInteger(v) || v < 1) throw new Error("the model returned " + logits.length + " logits for " + batch + " × " + lt + " positions");
    return live.map((_, r) => logSoftmax(logits, (r * lt + t - 1) * v, v));
  }
}
