// A Seq2SeqModel as one plain ONNX file, and back. The graph is the whole model under teacher
// forcing: `source` int64 [batch, Ls] (symbol ids, 0-padded) and `target` int64 [batch, Lt]
// (<bos> then the output so far, 0-padded) → `logits` [batch, Lt, V]; the next symbol after a
// prefix of t ids is the argmax at position t − 1. A decoding driver (greedy or beam) calls it
// once per output symbol. The metadata holds everything a driver needs to go from a string to a
// string: the architecture, both vocabularies and the special ids.

import { Graph } from "../engine/graph.js";
import { decodeModel, encodeModel } from "../engine/onnx.js";
import { ParameterSet } from "./module.js";
import { Seq2SeqModel, type Seq2SeqSpec } from "./seq2seq.js";
import { SYMBOL_IDS, type SymbolVocabulary } from "../data/sequence/symbols.js";

export interface Seq2SeqVocabularies {
  source: SymbolVocabulary;
  target: SymbolVocabulary;
}

export const SEQ2SEQ_TASK = "seq2seq";

export function exportSeq2SeqOnnx(model: Seq2SeqModel, params: ParameterSet, vocab: Seq2SeqVocabularies, metadata: Record<string, string> = {}): Uint8Array {
  const s = model.spec;
  const g = new Graph();
  const { ctx } = model.context(g, "eval", { kind: "initializers", params });
  const logits = model.forward(ctx, g.input("source", ["batch", s.sourceLength], "int64"), g.input("target", ["batch", s.targetLength], "int64"));
  g.output(logits, "logits");
  return encodeModel(g, {
    graphName: "distill-seq2seq",
    docString: "Exported by distill: logits[b, t] = next-symbol scores after target[b, 0..t] given source[b]; see metadata for vocabularies.",
    metadata: {
      "distill.task": SEQ2SEQ_TASK,
      "distill.input_names": JSON.stringify(["source", "target"]),
      "distill.output_name": "logits",
      "distill.seq2seq": JSON.stringify(s),
      "distill.source_vocabulary": JSON.stringify(vocab.source),
      "distill.target_vocabulary": JSON.stringify(vocab.target),
      "distill.special_ids": JSON.stringify(SYMBOL_IDS),
      "distill.parameters": String(params.count()),
      ...metadata,
    },
  });
}

/** Reads a file written by exportSeq2SeqOnnx back into a model, its parameters and vocabularies; `where` names the file in errors. */
export function importSeq2SeqOnnx(bytes: Uint8Array, where: string): { model: Seq2SeqModel; params: ParameterSet; vocab: Seq2SeqVocabularies; metadata: Record<string, string> } {
  const m = decodeModel(bytes);
  if (m.metadata["distill.task"] !== SEQ2SEQ_TASK) throw new Error(`${where}: not a sequence model exported by distill (metadata distill.task is ${JSON.stringify(m.metadata["distill.task"] ?? null)})`);
  const spec = JSON.parse(m.metadata["distill.seq2seq"] ?? "null") as Seq2SeqSpec;
  const model = new Seq2SeqModel(spec);
  const decls = model.declarations();
  const tensors = new Map(decls.map((d) => {
    const t = m.initializers.get(d.name);
    const n = d.shape.reduce((a, b) => a * b, 1);
    if (!t || t.data.length !== n) throw new Error(`${where}: parameter ${d.name} is missing or has another size`);
    return [d.name, { dtype: "float32" as const, shape: d.shape, data: t.data }];
  }));
  const vocab = {
    source: JSON.parse(m.metadata["distill.source_vocabulary"] ?? "null") as SymbolVocabulary,
    target: JSON.parse(m.metadata["distill.target_vocabulary"] ?? "null") as SymbolVocabulary,
  };
  return { model, params: new ParameterSet(decls, tensors), vocab, metadata: m.metadata };
}
