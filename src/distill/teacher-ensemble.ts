// Several teachers as one (kd.teachers, kd.teacherWeights; and `distill eval` with several models):
// the weighted mean of their softened outputs. The result is written as logits at temperature T,
// T·log(mean), so that softmax(result / T) is exactly that mean and every method that reads teacher
// logits takes an ensemble unchanged.

/** An ensemble's logits at temperature T: T·log(Σ wᵢ softmax(zᵢ/T) / Σ wᵢ) row by row, in float64. */
export function averageSoftTargets(logits: Float32Array[], weights: number[], classes: number, temperature: number): Float32Array {
  const out = new Float32Array(logits[0]!.length);
  const total = weights.reduce((a, b) => a + b, 0);
  const mix = new Float64Array(classes);
  for (let row = 0; row < out.length / classes; row++) {
    mix.fill(0);
    logits.forEach((z, m) => {
      const at = row * classes;
      let max = -Infinity, sum = 0;
      for (let c = 0; c < classes; c++) max = Math.max(max, z[at + c]! / temperature);
      for (let c = 0; c < classes; c++) sum += Math.exp(z[at + c]! / temperature - max);
      for (let c = 0; c < classes; c++) mix[c]! += (weights[m]! / total) * (Math.exp(z[at + c]! / temperature - max) / sum);
    });
    for (let c = 0; c < classes; c++) out[row * classes + c] = temperature * Math.log(Math.max(mix[c]!, 1e-30));
  }
  return out;
}
