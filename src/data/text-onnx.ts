// The tokenizer as ONNX nodes, so that an exported text model takes raw strings: onnxruntime's
// Tokenizer (RE2) finds the words, StringNormalizer lower-cases them, LabelEncoder looks up word
// ids and — keyed by the pair of word ids — bigram ids; integer ops interleave, pad and truncate.
// Each step reproduces one rule of tokenizer.ts exactly (checked on all UCI sentences, in
// onnxruntime-node and onnxruntime-web, by test/text.test.ts). A text model with this tokenizer in
// front is exported by nn/text-export.ts.

import { type Dim, Graph, type Value } from "../engine/graph.js";
import { encodeModel } from "../engine/onnx.js";
import * as F from "../engine/functional.js";
import { PAD_ID, UNKNOWN_ID, WORD_PATTERN, type Vocabulary, vocabularyIndex } from "./tokenizer.js";

/** Columns start..end (end may pass the last) of [N, W] with a run-time width, as `width` columns. */
function columns(x: Value, start: number, end: number, width: Dim): Value {
  const g = x.graph;
  // The width is only known at run time, which ops.ts's Slice rule does not accept; the output shape is given here.
  return g.addNode("Slice", [x, g.constInt64([start]), g.constInt64([end]), g.constInt64([1])], {}, [{ shape: [x.shape[0]!, width], dtype: x.dtype }])[0]!;
}

/** [N, W] with `count` zero columns appended, named `width` (a run-time width again). */
function padColumns(x: Value, count: number, width: Dim): Value {
  const g = x.graph;
  return g.addNode("Pad", [x, g.constInt64([0, 0, 0, count])], {}, [{ shape: [x.shape[0]!, width], dtype: x.dtype }])[0]!;
}

/** The lower-cased words of strings [N] as word ids [N, most words in the batch], 0 after a text's last word. */
function wordIdsOf(text: Value, vocab: Vocabulary): Value {
  const g = text.graph;
  const matched = F.one("Tokenizer", [text], { tokenexp: { s: vocab.rules.words }, mark: { i: 0 }, pad_value: { s: "" }, mincharnum: { i: 1 } }); // [N, W]
  // StringNormalizer takes a 1-D input and fails on an empty one (a batch without a single word),
  // so one "" rides along and is cut off after. Words are ASCII: in the "C" locale (which every C
  // library has) lower-casing them is A–Z → a–z.
  const flat = F.concat([F.reshape(matched, [-1], ["N*matches"]), g.constString([""])], 0);
  const lowered = F.one("StringNormalizer", [flat], { case_change_action: { s: "LOWER" }, locale: { s: "C" } });
  const wordsOnly = g.addNode("Slice", [lowered, g.constInt64([0]), g.constInt64([-1]), g.constInt64([0])], {}, [{ shape: ["N*matches"], dtype: "string" }])[0]!;
  // allowzero: a batch without words is [N, 0], and a 0 in Reshape's shape would otherwise mean "keep".
  const words = F.one("Reshape", [wordsOnly, F.one("Shape", [matched])], { allowzero: { i: 1 } }, matched.shape);
  const known = [...vocabularyIndex(vocab)].filter(([token]) => !token.includes(" "));
  return F.one("LabelEncoder", [words], {
    // "" is the Tokenizer's padding; no word is empty.
    keys_strings: { strings: ["", ...known.map(([token]) => token)] },
    values_int64s: { ints: [PAD_ID, ...known.map(([, id]) => id)] },
    default_int64: { i: UNKNOWN_ID },
  });
}

/**
 * The id of the bigram each word starts, [N, W]: a lookup of the key word·V + next word (next is
 * padding after the last word). Only known words make a known bigram (buildVocabulary guarantees
 * it), so padding and unknown words give a missing key: id 0.
 */
function bigramIdsOf(wordIds: Value, vocab: Vocabulary): Value {
  const g = wordIds.graph;
  const size = vocab.tokens.length, index = vocabularyIndex(vocab);
  const next = columns(padColumns(wordIds, 1, "matches+1"), 1, Number.MAX_SAFE_INTEGER, "matches");
  const key = F.add(F.mul(wordIds, g.constInt64([size], [])), next);
  const bigrams = [...index].filter(([token]) => token.includes(" "));
  const keyOf = (bigram: string) => {
    const [left, right] = bigram.split(" ") as [string, string];
    return index.get(left)! * size + index.get(right)!;
  };
  return F.one("LabelEncoder", [key], {
    keys_int64s: { ints: bigrams.map(([token]) => keyOf(token)) },
    values_int64s: { ints: bigrams.map(([, id]) => id) },
    default_int64: { i: PAD_ID },
  });
}

/** The ids of strings [N] as int64 [N, maxTokens], exactly as tokenizeAll computes them. */
export function tokenIdsFromText(text: Value, vocab: Vocabulary): Value {
  if (vocab.rules.words !== WORD_PATTERN || vocab.rules.lowercase !== "ascii")
    throw new Error(`this version of distill reproduces the tokenizer rules {words: ${WORD_PATTERN}, lowercase: ascii} only`);
  return text.graph.withScope("tokenizer", () => {
    const wordIds = wordIdsOf(text, vocab);
    // With bigrams: w0, b01, w1, b12, … row by row.
    const ids = vocab.rules.bigrams
      ? F.reshape(F.concat([F.unsqueeze(wordIds, [2]), F.unsqueeze(bigramIdsOf(wordIds, vocab), [2])], 2), [0, -1], [text.shape[0]!, "2*matches"])
      : wordIds;
    // Pad by maxTokens, then keep the first maxTokens: truncates long texts and pads short ones.
    return columns(padColumns(ids, vocab.maxTokens, "padded"), 0, vocab.maxTokens, vocab.maxTokens);
  });
}

/** The tokenizer alone as a model: strings "text" [N] → int64 ids "ids" [N, maxTokens]. */
export function tokenizerOnnx(vocab: Vocabulary): Uint8Array {
  const g = new Graph();
  g.output(tokenIdsFromText(g.input("text", ["batch"], "string"), vocab), "ids");
  return encodeModel(g, { metadata: vocabularyMetadata(vocab), graphName: "distill-tokenizer" });
}

/** The model's metadata entries that describe its tokenizer (read back by readVocabulary). */
export function vocabularyMetadata(vocab: Vocabulary): Record<string, string> {
  return { "distill.vocabulary": JSON.stringify(vocab.tokens), "distill.tokenizer": JSON.stringify({ maxTokens: vocab.maxTokens, ...vocab.rules }) };
}

/** The vocabulary an exported text model carries, or undefined for a model without one. */
export function readVocabulary(metadata: Record<string, string>): Vocabulary | undefined {
  const tokens = metadata["distill.vocabulary"], tokenizer = metadata["distill.tokenizer"];
  if (tokens === undefined || tokenizer === undefined) return undefined;
  const { maxTokens, ...rules } = JSON.parse(tokenizer) as { maxTokens: number } & Vocabulary["rules"];
  return { tokens: JSON.parse(tokens) as string[], maxTokens, rules };
}
