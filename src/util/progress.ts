// Progress on stderr. On a terminal: live bars (label, bar, %, done/total, ETA, info such as loss
// and accuracy). Quiet, or when stderr is not a terminal (CI, redirected logs): no bars, one plain
// line per finished task, so logs stay readable and grep-able. stdout is left to results.

import cliProgress from "cli-progress";

export type ProgressInfo = Record<string, string | number>;

export interface ProgressTask {
  /** Sets the number of completed units (absolute, not an increment). */
  update(done: number, info?: ProgressInfo): void;
  /** Ends the task; `summary` replaces the info fields in its final line. */
  finish(summary?: string): void;
}

export interface Progress {
  task(label: string, total: number): ProgressTask;
  /** A line of text that stays (printed above any live bars). */
  log(line: string): void;
}

export interface ProgressOptions {
  quiet: boolean;
  /** Where to write; stderr by default (tests pass a collecting stream). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const live = !opts.quiet && stream.isTTY === true;
  return live ? liveProgress(stream) : plainProgress(stream);
}

/** "loss=0.2345 acc=0.9712": numbers to 4 significant digits, integers as they are. */
export function formatInfo(info: ProgressInfo | undefined): string {
  if (!info) return "";
  return Object.entries(info)
    .map(([k, v]) => `${k}=${typeof v === "number" ? formatNumber(v) : v}`)
    .join(" ");
}

function formatNumber(v: number): string {
  if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s - m * 60)).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

/** The line a finished task leaves behind, identical in both modes. */
function finishedLine(label: string, done: number, total: number, seconds: number, text: string): string {
  return `${label}: ${done}/${total} in ${formatSeconds(seconds)}${text ? ` | ${text}` : ""}`;
}

function plainProgress(stream: NodeJS.WritableStream): Progress {
  return {
    task(label, total) {
      const start = performance.now();
      let done = 0;
      let info: ProgressInfo | undefined;
      let finished = false;
      return {
        update(d, i) {
          done = d;
          if (i) info = i;
        },
        finish(summary) {
          if (finished) return;
          finished = true;
          const text = summary ?? formatInfo(info);
          stream.write(finishedLine(label, done, total, (performance.now() - start) / 1000, text) + "\n");
        },
      };
    },
    log(line) {
      stream.write(line + "\n");
    },
  };
}

/** Live bar sets not yet finished; stopped by stopAllProgress (on errors and at exit). */
const liveSets = new Set<() => void>();

/**
 * Clears any live bars and restores the cursor. The CLI calls this before printing an error, so
 * the message does not land in the middle of a bar; it also runs at process exit.
 */
export function stopAllProgress(): void {
  for (const stop of [...liveSets]) stop();
}

process.once("exit", stopAllProgress);

function liveProgress(stream: NodeJS.WritableStream): Progress {
  let multi: cliProgress.MultiBar | null = null;
  let active = 0;
  const stop = () => {
    multi?.stop();
    multi = null;
    active = 0;
    liveSets.delete(stop);
  };
  const open = (): cliProgress.MultiBar => {
    liveSets.add(stop);
    multi ??= new cliProgress.MultiBar(
      {
        stream,
        format: "{label} |{bar}| {percentage}% | {value}/{total} | ETA {eta_formatted} | {info}",
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true, // finished bars are replaced by their one-line summary
        etaBuffer: 50,
        autopadding: true,
        linewrap: null,
      },
      cliProgress.Presets.shades_classic,
    );
    return multi;
  };
  // Once no bar is live, the MultiBar is stopped (its timer would keep the process alive) and
  // lines go straight to the stream.
  const write = (line: string) => {
    if (multi && active > 0) multi.log(line + "\n");
    else stream.write(line + "\n");
  };
  return {
    task(label, total) {
      const start = performance.now();
      const m = open();
      const bar = m.create(Math.max(total, 0), 0, { label, info: "" });
      active++;
      let done = 0;
      let info: ProgressInfo | undefined;
      let finished = false;
      return {
        update(d, i) {
          if (finished) return;
          done = d;
          if (i) info = i;
          if (multi === m) bar.update(d, { label, info: formatInfo(info) });
        },
        finish(summary) {
          if (finished) return;
          finished = true;
          const line = finishedLine(label, done, total, (performance.now() - start) / 1000, summary ?? formatInfo(info));
          if (multi !== m) {
            stream.write(line + "\n"); // the bars were stopped from outside
            return;
          }
          active--;
          if (active > 0) {
            m.log(line + "\n");
            m.remove(bar);
          } else {
            m.remove(bar);
            stop();
            stream.write(line + "\n");
          }
        },
      };
    },
    log: write,
  };
}
