// Text → token ids: words (and word bigrams) looked up in a vocabulary built from the training
// split. Every rule here is one the exported ONNX graph reproduces with onnxruntime's own string
// kernels (text-onnx.ts), so a deployed student takes raw strings and no copy of this code:
// - words are the matches of WORD_PATTERN on the original text (onnxruntime's `Tokenizer` runs the
//   same regex with RE2), then lower-cased. The pattern is ASCII-only on purpose: lower-casing
//   ASCII is the same in every locale and runtime, while non-ASCII case mapping depends on the
//   C library's locale (onnxruntime-node fails to load a model asking for en_US.UTF-8 where that
//   locale is not installed, and its "C" locale leaves É alone where onnxruntime-web lowers it).
//   A non-ASCII character therefore separates words ("café" → "caf"), the same at training time
//   and at deployment.
// - bigrams rather than character n-grams: a bigram id is a lookup on the pair of word ids, which
//   is two integer ops in the graph, and word bigrams are what fastText's "bag of tricks" adds
//   for sentiment (Joulin et al. 2016, §2.2); character n-grams would need substring ops that
//   ONNX lacks.

/** Id of padding (and of an unknown bigram, which is dropped like padding). */
export const PAD_ID = 0;
/** Id of a word the vocabulary does not hold. */
export const UNKNOWN_ID = 1;

/** ASCII letters and digits, with apostrophes inside a word kept ("don't", "rock'n'roll"). */
export const WORD_PATTERN = "[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*";

export interface TokenizerRules {
  /** A word is a match of this regular expression on the original text (RE2 and JS agree on it). */
  words: typeof WORD_PATTERN;
  /** Words are lower-cased after matching; they are ASCII, so this is A–Z → a–z. */
  lowercase: "ascii";
  /**
   * With bigrams the ids interleave words and the bigram each word starts — w0, b01, w1, b12, …,
   * w(k−1), 0 — so a sequence of k words uses 2k positions; without, the ids are w0 … w(k−1).
   */
  bigrams: boolean;
}

/**
 * The vocabulary and the rules that produce ids from text: serialisable, and written into an
 * exported model's metadata. `tokens[id]` is the token of an id; ids 0 and 1 are "<pad>" and "<unk>".
 * A bigram is its two words joined by one space.
 */
export interface Vocabulary {
  tokens: string[];
  /** Every text becomes exactly this many ids: truncated, or padded with PAD_ID. */
  maxTokens: number;
  rules: TokenizerRules;
}

export interface VocabularyOptions {
  /** Ids in all, the two reserved ones included. */
  vocabSize: number;
  maxTokens: number;
  /** Add word bigrams (default true). */
  bigrams?: boolean;
  /**
   * Tokens seen fewer times than this in the training texts are left out (default 2): a word seen
   * once gets an embedding fitted to one example, which on held-out UCI sentences cost 3–4 points
   * of accuracy against treating it as unknown (docs/text.md).
   */
  minCount?: number;
}

const WORD_RE = new RegExp(WORD_PATTERN, "g");

/** The lower-cased words of `text`, in order. */
export function words(text: string): string[] {
  return (text.match(WORD_RE) ?? []).map((w) => w.toLowerCase());
}

const bigramOf = (left: string, right: string) => `${left} ${right}`;

/**
 * The vocabulary of the training texts: ids 0 = padding and 1 = unknown, then tokens by count
 * descending; at equal counts words come before bigrams and each kind is in code-point order, so
 * the result depends on the texts alone. Since a word is at least as frequent as every bigram
 * containing it, a kept bigram's two words are always kept too — which lets the graph find a
 * bigram's id from its word ids.
 */
export function buildVocabulary(texts: readonly string[], opts: VocabularyOptions): Vocabulary {
  const { vocabSize, maxTokens, bigrams = true, minCount = 2 } = opts;
  if (!Number.isInteger(vocabSize) || vocabSize < 2) throw new RangeError(`vocabSize must be an integer ≥ 2, got ${vocabSize}`);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxTokens must be a positive integer, got ${maxTokens}`);
  const counts = new Map<string, number>();
  const bigramCounts = new Map<string, number>();
  const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);
  for (const text of texts) {
    const ws = words(text);
    ws.forEach((w, i) => {
      bump(counts, w);
      if (bigrams && i + 1 < ws.length) bump(bigramCounts, bigramOf(w, ws[i + 1]!));
    });
  }
  const ranked = [
    ...[...counts].map(([token, count]) => ({ token, count, kind: 0 })),
    ...[...bigramCounts].map(([token, count]) => ({ token, count, kind: 1 })),
  ]
    .filter((t) => t.count >= minCount)
    .sort((a, b) => b.count - a.count || a.kind - b.kind || (a.token < b.token ? -1 : a.token > b.token ? 1 : 0));
  const tokens = ["<pad>", "<unk>", ...ranked.slice(0, vocabSize - 2).map((t) => t.token)];
  return { tokens, maxTokens, rules: { words: WORD_PATTERN, lowercase: "ascii", bigrams } };
}

const indexes = new WeakMap<Vocabulary, Map<string, number>>();

/** Token → id, built once per vocabulary. */
export function vocabularyIndex(vocab: Vocabulary): Map<string, number> {
  let index = indexes.get(vocab);
  if (!index) {
    index = new Map(vocab.tokens.map((t, id) => [t, id]));
    // The placeholders are names, not tokens a text can produce.
    index.delete(vocab.tokens[PAD_ID]!);
    index.delete(vocab.tokens[UNKNOWN_ID]!);
    indexes.set(vocab, index);
  }
  return index;
}

/** Writes the ids of `text` into `out` (length maxTokens), padding with PAD_ID. */
function tokenizeInto(text: string, vocab: Vocabulary, index: Map<string, number>, out: Int32Array): void {
  const ws = words(text);
  const ids = ws.map((w) => index.get(w) ?? UNKNOWN_ID);
  let at = 0;
  for (let i = 0; i < ws.length && at < out.length; i++) {
    out[at++] = ids[i]!;
    if (vocab.rules.bigrams && at < out.length) out[at++] = i + 1 < ws.length ? index.get(bigramOf(ws[i]!, ws[i + 1]!)) ?? PAD_ID : PAD_ID;
  }
  out.fill(PAD_ID, at);
}

/** The ids of one text: Int32Array(maxTokens). */
export function tokenize(text: string, vocab: Vocabulary): Int32Array {
  const out = new Int32Array(vocab.maxTokens);
  tokenizeInto(text, vocab, vocabularyIndex(vocab), out);
  return out;
}

/** The ids of many texts, row-major [texts.length × maxTokens]. */
export function tokenizeAll(texts: readonly string[], vocab: Vocabulary): Int32Array {
  const index = vocabularyIndex(vocab);
  const out = new Int32Array(texts.length * vocab.maxTokens);
  texts.forEach((text, i) => tokenizeInto(text, vocab, index, out.subarray(i * vocab.maxTokens, (i + 1) * vocab.maxTokens)));
  return out;
}
