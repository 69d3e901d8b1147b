// Is the tuned setting really better than the config's own? The final runs train both with the
// same seeds, so seed i of one pairs with seed i of the other (same initialisation and batch
// order), and a paired t-test on the per-seed differences says whether the gap exceeds the seed
// spread. A search chooses on validation accuracy, so a winner can fit the validation split and
// lose on test; this is where that shows.

import jstatModule from "jstat";

const { jStat } = jstatModule;

export interface PairedComparison {
  /** Per seed: the winner's test errors minus the config's (negative: the winner made fewer). */
  differences: number[];
  meanDifference: number;
  /** Sample standard deviation of the differences (n − 1). */
  std: number;
  /** Paired t statistic; null with one seed. */
  t: number | null;
  /** Two-sided p-value of "no difference"; null with one seed. */
  pValue: number | null;
  verdict: "winner better" | "config better" | "no significant difference" | "one seed: not tested";
}

/** Paired two-sided t-test at level `alpha` of the winner's test errors against the config's. */
export function comparePaired(winner: number[], config: number[], alpha = 0.05): PairedComparison {
  if (winner.length !== config.length || winner.length === 0) throw new Error(`paired comparison needs equal, non-empty seed lists (${winner.length} vs ${config.length})`);
  const differences = winner.map((w, i) => w - config[i]!);
  const n = differences.length;
  const meanDifference = differences.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(differences.reduce((a, d) => a + (d - meanDifference) ** 2, 0) / (n - 1)) : 0;
  if (n < 2) return { differences, meanDifference, std, t: null, pValue: null, verdict: "one seed: not tested" };
  // Identical differences on every seed: no spread, so any non-zero gap is certain (t = ±∞).
  const t = std === 0 ? (meanDifference === 0 ? 0 : Math.sign(meanDifference) * Infinity) : meanDifference / (std / Math.sqrt(n));
  const pValue = Number.isFinite(t) ? 2 * (1 - jStat.studentt.cdf(Math.abs(t), n - 1)) : 0;
  const verdict = pValue >= alpha ? "no significant difference" : meanDifference < 0 ? "winner better" : "config better";
  return { differences, meanDifference, std, t, pValue, verdict };
}
