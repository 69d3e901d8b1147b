// Latency in the exported page. Browsers coarsen performance.now() (Chromium: to 100 µs unless the
// page is cross-origin isolated), so one run of a small model reads 0 or one tick. Instead a batch
// of runs is timed between one pair of timestamps, the batch doubling until it spans many ticks of
// the clock, and the result is the batch's mean. The clock is a parameter so tests can script it.

/** Clock ticks a timed batch must span: the rounding of its two timestamps stays under 1 %. */
export const TICKS_PER_BATCH = 200;
/** And at least this long (ms), so a fine clock still averages over many runs. */
export const MIN_BATCH_MS = 10;
/** The largest batch; a model this fast is timed over whatever span that is. */
export const MAX_RUNS = 1 << 16;

/** The clock's step in ms: the least non-zero difference between successive readings (Infinity if it never moved). */
export function clockResolution(now, changes = 5) {
  let best = Infinity;
  let last = now();
  for (let seen = 0, reads = 0; seen < changes && reads < 1e7; reads++) {
    const t = now();
    if (t !== last) {
      best = Math.min(best, t - last);
      last = t;
      seen++;
    }
  }
  return best;
}

/** Mean time of one `run()`, in ms, from batches of 1, 2, 4, … runs, each timed between one pair of timestamps. */
export async function timeRuns(run, now, resolutionMs) {
  const span = Math.max(TICKS_PER_BATCH * resolutionMs, MIN_BATCH_MS);
  for (let runs = 1; ; runs *= 2) {
    const t0 = now();
    for (let i = 0; i < runs; i++) await run();
    const elapsedMs = now() - t0;
    if (elapsedMs >= span || runs >= MAX_RUNS) return { latencyMs: elapsedMs / runs, runs, elapsedMs, resolutionMs };
  }
}

/** "23.4 µs" below a millisecond, else "1.25 ms". */
export function formatDuration(ms) {
  return ms < 1 ? (ms * 1000).toFixed(ms < 0.01 ? 2 : 1) + " µs" : ms.toFixed(ms < 10 ? 2 : 1) + " ms";
}
