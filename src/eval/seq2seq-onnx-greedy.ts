// Greedy decoding with an exported sequence model (exportSeq2SeqOnnx: source [B, Ls], target prefix
// [B, Lt] → logits [B, Lt, V]) under onnxruntime-node: what a deployment of the .onnx file runs,
// so the run's latency per word is measured on the file that ships. One run of the whole graph
// per output symbol, at the export's fixed lengths.

import { Session, type Tensor } from "../engine/runtime.js";
import { SYMBOL_IDS, splitSymbols, symbolIds, type SymbolVocabulary } from "../data/sequence/symbols.js";
import type { Seq2SeqSpec } from "../nn/seq2seq.js";

export class OnnxGreedyDecoder {
  private constructor(
    private readonly session: Session,
    private readonly spec: Seq2SeqSpec,
    private readonly source: SymbolVocabulary,
    private readonly target: SymbolVocabulary,
  ) {}

  static async create(bytes: Uint8Array, spec: Seq2SeqSpec, vocab: { source: SymbolVocabulary; target: SymbolVocabulary }): Promise<OnnxGreedyDecoder> {
    return new OnnxGreedyDecoder(await Session.create(bytes), spec, vocab.source, vocab.target);
  }

  /** Each word's output symbols; a word longer than the model takes is cut to its length. */
  async decode(words: readonly string[]): Promise<string[][]> {
    const n = words.length, ls = this.spec.sourceLength, lt = this.spec.targetLength;
    const source = new BigInt64Array(n * ls), target = new BigInt64Array(n * lt);
    words.forEach((w, i) => {
      symbolIds(splitSymbols(w, this.source.split), this.source).slice(0, ls).forEach((id, j) => (source[i * ls + j] = BigInt(id)));
      target[i * lt] = BigInt(SYMBOL_IDS.bos);
    });
    const outputs: number[][] = words.map(() => []);
    const done = new Array<boolean>(n).fill(false);
    const feeds: Record<string, Tensor> = { source: { dtype: "int64", shape: [n, ls], data: source }, target: { dtype: "int64", shape: [n, lt], data: target } };
    for (let t = 1; t <= lt && done.includes(false); t++) {
      const logits = (await this.session.run(feeds))["logits"]!.data as Float32Array;
      const v = logits.length / (n * lt);
      for (let i = 0; i < n; i++) {
        if (done[i]) continue;
        const row = logits.subarray((i * lt + t - 1) * v, (i * lt + t) * v);
        let best = -1;
        for (let id = 0; id < v; id++) if (id !== SYMBOL_IDS.pad && (best < 0 || row[id]! > row[best]!)) best = id;
        if (best === SYMBOL_IDS.eos || t === lt) done[i] = true;
        if (best !== SYMBOL_IDS.eos) {
          outputs[i]!.push(best);
          if (t < lt) target[i * lt + t] = BigInt(best);
        }
      }
    }
    return outputs.map((ids) => ids.map((id) => this.target.symbols[id]!));
  }

  async dispose(): Promise<void> {
    await this.session.dispose();
  }
}
