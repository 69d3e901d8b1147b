// The distillation losses written out directly in float64 from the papers (and mdistiller's
// reference code), independently of the engine: the values the graph versions are tested against.

export type Matrix = number[][];

export function softmax(row: number[], t = 1): number[] {
  const z = row.map((x) => x / t);
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

const kl = (p: number[], q: number[]) => p.reduce((a, pi, i) => (pi > 0 ? a + pi * Math.log(pi / q[i]!) : a), 0);

/** Zhao et al. (2022): α·TCKD + β·NCKD, × T², batch mean. */
export function dkdReference(s: Matrix, t: Matrix, labels: number[], alpha: number, beta: number, T: number): { tckd: number; nckd: number; loss: number } {
  let tckd = 0, nckd = 0;
  s.forEach((row, i) => {
    const ps = softmax(row, T), pt = softmax(t[i]!, T), y = labels[i]!;
    tckd += kl([pt[y]!, 1 - pt[y]!], [ps[y]!, 1 - ps[y]!]);
    const rest = (p: number[]) => {
      const q = p.filter((_, k) => k !== y);
      const z = q.reduce((a, b) => a + b, 0);
      return q.map((v) => v / z);
    };
    nckd += kl(rest(pt), rest(ps));
  });
  const n = s.length, t2 = T * T;
  return { tckd: (t2 * tckd) / n, nckd: (t2 * nckd) / n, loss: (t2 * (alpha * tckd + beta * nckd)) / n };
}

const normalize = (v: number[]) => {
  const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
  return v.map((x) => (n > 0 ? x / n : 0));
};

/** Zagoruyko & Komodakis (2017): a = normalize(mean_c |f|^p); mean over all of (a_s − a_t)². */
export function attentionReference(fs: number[][][][], ft: number[][][][], p: number): number {
  const map = (f: number[][][]) => normalize(f[0]!.flatMap((r, h) => r.map((_, w) => f.reduce((a, ch) => a + Math.abs(ch[h]![w]!) ** p, 0) / f.length)));
  let sum = 0, count = 0;
  fs.forEach((f, i) => {
    const a = map(f), b = map(ft[i]!);
    a.forEach((v, j) => ((sum += (v - b[j]!) ** 2), count++));
  });
  return sum / count;
}

const smoothL1 = (x: number) => (Math.abs(x) < 1 ? 0.5 * x * x : Math.abs(x) - 0.5);
const sub = (a: number[], b: number[]) => a.map((x, i) => x - b[i]!);
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** Park et al. (2019) as in mdistiller: distances over their off-diagonal mean, angles at each anchor; smooth-L1 means. */
export function rkdReference(s: Matrix, t: Matrix): { distance: number; angle: number } {
  const n = s.length;
  const dist = (e: Matrix) => {
    const d = e.map((a) => e.map((b) => Math.sqrt(dot(sub(a, b), sub(a, b)))));
    const off = d.flat().filter((_, k) => Math.floor(k / n) !== k % n);
    const mean = off.reduce((a, b) => a + b, 0) / off.length;
    return d.map((r) => r.map((x) => x / mean));
  };
  const angles = (e: Matrix) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) out.push(dot(normalize(sub(e[j]!, e[i]!)), normalize(sub(e[k]!, e[i]!))));
    return out;
  };
  const ds = dist(s).flat(), dt = dist(t).flat();
  const as = angles(s), at = angles(t);
  return {
    distance: ds.reduce((a, x, k) => a + smoothL1(x - dt[k]!), 0) / ds.length,
    angle: as.reduce((a, x, k) => a + smoothL1(x - at[k]!), 0) / as.length,
  };
}

/** Tung & Mori (2019): G = F·Fᵀ, rows L2-normalised; ‖G_t − G_s‖²_F / N². */
export function similarityReference(s: Matrix, t: Matrix): number {
  const gram = (f: Matrix) => f.map((a) => normalize(f.map((b) => dot(a, b))));
  const gs = gram(s), gt = gram(t), n = s.length;
  return gs.reduce((acc, row, i) => acc + row.reduce((a, v, j) => a + (gt[i]![j]! - v) ** 2, 0), 0) / (n * n);
}
