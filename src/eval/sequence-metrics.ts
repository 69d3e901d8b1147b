// Corpus metrics for sequence outputs, each against one or more references per item (a word's
// alternative pronunciations):
// - word error rate: the share of items whose output equals none of its references;
// - token error rate (phoneme error rate for G2P): Σ edit distance to the closest reference ÷
//   Σ that reference's length;
// - BLEU (Papineni et al. 2002) exactly as sacreBLEU 2.x computes corpus BLEU with tokenize=none:
//   clipped n-gram precisions for n = 1..4 against the per-n-gram maximum count over the
//   references, brevity penalty against the closest reference length (ties: the shorter), and by
//   default sacreBLEU's "exp" smoothing of zero-match orders;
// - chrF (Popović 2015) exactly as sacreBLEU 2.x's default CHRF: character n-grams n = 1..6 with
//   whitespace removed, β = 2, precision and recall averaged over the orders both sides have
//   before the F-score is taken (its "effective order"), each item's statistics taken from the
//   reference with the best sentence-level chrF.
// Scores are on the scale they are published on: error rates as fractions 0–1, BLEU and chrF 0–100.

export type Symbols = readonly string[];

function checkCorpus(outputs: number, references: readonly (readonly unknown[])[]): void {
  if (outputs !== references.length) throw new RangeError(`${outputs} outputs but ${references.length} reference lists`);
  if (outputs === 0) throw new RangeError("no outputs to score");
  const empty = references.findIndex((r) => r.length === 0);
  if (empty >= 0) throw new RangeError(`item ${empty} has no reference`);
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions (each costing 1) that turn `a` into `b`. */
export function editDistance(a: Symbols, b: Symbols): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length]!;
}

const sameSymbols = (a: Symbols, b: Symbols) => a.length === b.length && a.every((s, i) => s === b[i]);

export interface WordErrorRate {
  /** Items whose output equals none of their references. */
  errors: number;
  items: number;
  rate: number;
}

export function wordErrorRate(outputs: readonly Symbols[], references: readonly (readonly Symbols[])[]): WordErrorRate {
  checkCorpus(outputs.length, references);
  const errors = outputs.filter((out, i) => !references[i]!.some((ref) => sameSymbols(out, ref))).length;
  return { errors, items: outputs.length, rate: errors / outputs.length };
}

export interface TokenErrorRate {
  /** Σ edit distance to each item's closest reference. */
  edits: number;
  /** Σ length of those references. */
  referenceTokens: number;
  rate: number;
}

/**
 * Each item is scored against its closest reference (fewest edits; at equal distance the first
 * listed, a dictionary's main pronunciation). An empty output costs its reference's length.
 */
export function tokenErrorRate(outputs: readonly Symbols[], references: readonly (readonly Symbols[])[]): TokenErrorRate {
  checkCorpus(outputs.length, references);
  let edits = 0, referenceTokens = 0;
  outputs.forEach((out, i) => {
    let best = { distance: Infinity, length: 0 };
    for (const ref of references[i]!) {
      const distance = editDistance(out, ref);
      if (distance < best.distance) best = { distance, length: ref.length };
    }
    edits += best.distance;
    referenceTokens += best.length;
  });
  if (referenceTokens === 0) throw new RangeError("every closest reference is empty: the token error rate is undefined");
  return { edits, referenceTokens, rate: edits / referenceTokens };
}

// ---- BLEU -------------------------------------------------------------------------------------

export const BLEU_MAX_ORDER = 4;

/**
 * How an order with no matching n-gram is scored (Chen & Cherry 2014, as sacreBLEU names them):
 * exp (sacreBLEU's default, mteval's "NIST" smoothing): the k-th such order gets 1 / (2^k · total);
 * none: precision 0, so BLEU 0 (Papineni's definition); floor: `value` / total.
 */
export type BleuSmoothing = "exp" | "none" | { floor: number };

export interface BleuStatistics {
  /** Clipped n-gram matches for n = 1..4. */
  matches: number[];
  /** Output n-grams for n = 1..4. */
  totals: number[];
  outputLength: number;
  /** Σ over items of the reference length closest to the output's. */
  referenceLength: number;
}

export interface Bleu extends BleuStatistics {
  score: number;
  /** Percent, after smoothing. */
  precisions: number[];
  brevityPenalty: number;
}

function ngramCounts(tokens: Symbols, n: number): Map<string, number> {
  const counts = new Map<string, number>();
  // NUL never occurs in a symbol read from text, so joined n-grams cannot collide.
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0000");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** sacreBLEU's _get_closest_ref_len: the reference length nearest the output's, the shorter on a tie. */
function closestReferenceLength(outputLength: number, lengths: number[]): number {
  return lengths.reduce((best, len) => {
    const d = Math.abs(outputLength - len), bestD = Math.abs(outputLength - best);
    return d < bestD || (d === bestD && len < best) ? len : best;
  });
}

export function bleuStatistics(outputs: readonly Symbols[], references: readonly (readonly Symbols[])[]): BleuStatistics {
  checkCorpus(outputs.length, references);
  const matches = new Array<number>(BLEU_MAX_ORDER).fill(0), totals = new Array<number>(BLEU_MAX_ORDER).fill(0);
  let outputLength = 0, referenceLength = 0;
  outputs.forEach((out, i) => {
    const refs = references[i]!;
    outputLength += out.length;
    referenceLength += closestReferenceLength(out.length, refs.map((r) => r.length));
    for (let n = 1; n <= BLEU_MAX_ORDER; n++) {
      // Clipping: an n-gram counts at most as often as it occurs in any single reference.
      const maxRef = new Map<string, number>();
      for (const ref of refs) for (const [g, c] of ngramCounts(ref, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
      for (const [g, c] of ngramCounts(out, n)) {
        totals[n - 1]! += c;
        matches[n - 1]! += Math.min(c, maxRef.get(g) ?? 0);
      }
    }
  });
  return { matches, totals, outputLength, referenceLength };
}

/** BLEU from its sufficient statistics (sacreBLEU's BLEU.compute_bleu, effective_order off). */
export function bleuFromStatistics(stats: BleuStatistics, smoothing: BleuSmoothing = "exp"): Bleu {
  const { matches, totals, outputLength: c, referenceLength: r } = stats;
  const brevityPenalty = c < r ? (c > 0 ? Math.exp(1 - r / c) : 0) : 1;
  const precisions = new Array<number>(BLEU_MAX_ORDER).fill(0);
  // No match at any order: 0 whatever the smoothing (sacreBLEU #141).
  if (matches.every((m) => m === 0)) return { ...stats, score: 0, precisions, brevityPenalty };
  let halvings = 1;
  for (let n = 0; n < BLEU_MAX_ORDER; n++) {
    if (totals[n] === 0) break; // outputs too short for this order: its precision stays 0
    if (matches[n]! > 0) precisions[n] = (100 * matches[n]!) / totals[n]!;
    else if (smoothing === "exp") precisions[n] = 100 / ((halvings *= 2) * totals[n]!);
    else if (smoothing !== "none") precisions[n] = (100 * smoothing.floor) / totals[n]!;
  }
  // log 0 is floored as sacreBLEU's my_log does, which makes the score 0.
  const logMean = precisions.reduce((s, p) => s + (p === 0 ? -9999999999 : Math.log(p)), 0) / BLEU_MAX_ORDER;
  return { ...stats, score: brevityPenalty * Math.exp(logMean), precisions, brevityPenalty };
}

/** Corpus BLEU of symbol sequences (sacreBLEU with tokenize=none on the space-joined symbols). */
export function corpusBleu(outputs: readonly Symbols[], references: readonly (readonly Symbols[])[], smoothing: BleuSmoothing = "exp"): Bleu {
  return bleuFromStatistics(bleuStatistics(outputs, references), smoothing);
}

// ---- chrF -------------------------------------------------------------------------------------

export interface ChrfOptions {
  /** Recall weighs β times as much as precision (default 2: chrF2). */
  beta?: number;
  /** Character n-gram orders 1..charOrder (default 6). */
  charOrder?: number;
  /**
   * chrF++.py's smoothing (sacreBLEU's eps_smoothing): the F-score of each order, averaged over
   * all orders with 1e-16 for empty ones. Default false: sacreBLEU's effective-order average.
   */
  epsSmoothing?: boolean;
}

/** Code points with whitespace removed: sacreBLEU's `''.join(line.split())`, indexed as Python indexes strings. */
function characters(text: string): string[] {
  return Array.from(text.replace(/\s+/gu, ""));
}

function charNgramCounts(chars: string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= chars.length; i++) {
    const key = chars.slice(i, i + n).join("");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** [output n-grams, reference n-grams, matches] per order, flattened (sacreBLEU's _get_match_statistics). */
function chrfMatchStatistics(output: Map<string, number>[], reference: Map<string, number>[]): number[] {
  return output.flatMap((out, k) => {
    const ref = reference[k]!;
    let outCount = 0, matches = 0, refCount = 0;
    for (const [g, c] of out) {
      outCount += c;
      matches += Math.min(c, ref.get(g) ?? 0);
    }
    for (const c of ref.values()) refCount += c;
    // As sacreBLEU: output n-grams of an order the reference has none of are not counted.
    return [ref.size > 0 ? outCount : 0, refCount, matches];
  });
}

function chrfScore(stats: number[], beta: number, epsSmoothing: boolean): number {
  const eps = 1e-16, factor = beta * beta, orders = stats.length / 3;
  let fSum = 0, precisionSum = 0, recallSum = 0, effectiveOrder = 0;
  for (let k = 0; k < orders; k++) {
    const [outCount, refCount, matches] = stats.slice(3 * k, 3 * k + 3) as [number, number, number];
    const precision = outCount > 0 ? matches / outCount : eps;
    const recall = refCount > 0 ? matches / refCount : eps;
    const denominator = factor * precision + recall;
    fSum += denominator > 0 ? ((1 + factor) * precision * recall) / denominator : eps;
    if (outCount > 0 && refCount > 0) {
      precisionSum += precision;
      recallSum += recall;
      effectiveOrder++;
    }
  }
  if (epsSmoothing) return (100 * fSum) / orders;
  if (effectiveOrder === 0) return 0;
  const p = precisionSum / effectiveOrder, r = recallSum / effectiveOrder;
  if (p + r === 0) return 0;
  // sacreBLEU's order of operations, to the last bit: the best reference is chosen by comparing
  // these scores, and a different rounding can turn a near-tie the other way.
  const f = ((1 + factor) * p * r) / (factor * p + r);
  return 100 * f;
}

export interface Chrf {
  score: number;
  /** [output n-grams, reference n-grams, matches] for orders 1..charOrder, summed over the corpus. */
  statistics: number[];
}

/** Corpus chrF of texts (for symbol sequences, pass them space-joined: whitespace is removed anyway). */
export function corpusChrf(outputs: readonly string[], references: readonly (readonly string[])[], o: ChrfOptions = {}): Chrf {
  const { beta = 2, charOrder = 6, epsSmoothing = false } = o;
  checkCorpus(outputs.length, references);
  const ngrams = (text: string) => {
    const chars = characters(text);
    return Array.from({ length: charOrder }, (_, k) => charNgramCounts(chars, k + 1));
  };
  const statistics = new Array<number>(3 * charOrder).fill(0);
  outputs.forEach((out, i) => {
    const outNgrams = ngrams(out);
    // The reference with the best sentence-level score; on a tie the first (sacreBLEU's strict >).
    let best: number[] = [], bestScore = -1;
    for (const ref of references[i]!) {
      const stats = chrfMatchStatistics(outNgrams, ngrams(ref));
      const score = chrfScore(stats, beta, epsSmoothing);
      if (score > bestScore) [best, bestScore] = [stats, score];
    }
    best.forEach((v, k) => (statistics[k]! += v));
  });
  return { score: chrfScore(statistics, beta, epsSmoothing), statistics };
}

// ---- all of them ------------------------------------------------------------------------------

export interface SequenceScores {
  wordErrorRate: number;
  tokenErrorRate: number;
  bleu: number;
  chrf: number;
}

/** The four corpus scores of symbol outputs (chrF over the space-joined symbols, as sacreBLEU would see them). */
export function sequenceScores(outputs: readonly Symbols[], references: readonly (readonly Symbols[])[]): SequenceScores {
  const joined = (s: Symbols) => s.join(" ");
  return {
    wordErrorRate: wordErrorRate(outputs, references).rate,
    tokenErrorRate: tokenErrorRate(outputs, references).rate,
    bleu: corpusBleu(outputs, references).score,
    chrf: corpusChrf(outputs.map(joined), references.map((refs) => refs.map(joined))).score,
  };
}
