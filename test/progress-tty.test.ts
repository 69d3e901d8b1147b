// Progress on a terminal: live bars (label, bar, percentage, done/total, the task's info), lines
// logged above them, the one-line summary a finished task leaves, the cursor hidden while bars are
// live and shown again after, and the bars cleared when an error is about to be printed. The
// terminal is a stream that says it is a TTY and records what is written to it (cursor moves and
// clears as the escape codes a real terminal gets). Quiet, the same stream gets plain lines only.

import { test } from "node:test";
import assert from "node:assert/strict";
import { clearLine, clearScreenDown, cursorTo, moveCursor } from "node:readline";
import { Writable } from "node:stream";
import { createProgress, stopAllProgress } from "../src/util/progress.js";

const HIDE_CURSOR = "\x1b[?25l", SHOW_CURSOR = "\x1b[?25h";

class Terminal extends Writable {
  readonly isTTY = true;
  readonly columns = 120;
  readonly rows = 40;
  text = "";
  override _write(chunk: Buffer | string, _e: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
  cursorTo(x: number, y?: number, cb?: () => void): boolean {
    return cursorTo(this, x, y, cb);
  }
  moveCursor(dx: number, dy: number, cb?: () => void): boolean {
    return moveCursor(this, dx, dy, cb);
  }
  clearLine(dir: -1 | 0 | 1, cb?: () => void): boolean {
    return clearLine(this, dir, cb);
  }
  clearScreenDown(cb?: () => void): boolean {
    return clearScreenDown(this, cb);
  }
  getWindowSize(): [number, number] {
    return [this.columns, this.rows];
  }
  /** Resolves once the output matches `pattern`: bars are drawn on the bar library's own timer. */
  async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.text)) {
      if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs / 1000} s in ${JSON.stringify(this.text)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

// What the terminal shows as text: escape codes removed.
const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");

test("on a terminal: a live bar with label, percentage, done/total and info; lines logged above it; the finished task's summary line; the cursor hidden, then shown", async () => {
  const term = new Terminal();
  const progress = createProgress({ quiet: false, stream: term });
  const task = progress.task("student epoch 1/4", 20);
  task.update(5, { loss: 0.123456, acc: 0.5 });
  await term.waitFor(/student epoch 1\/4 \|[█░]+\| +25% \| 5\/20 \| ETA .* \| loss=0\.1235 acc=0\.5/);
  assert.ok(term.text.includes(HIDE_CURSOR), "the cursor is hidden while bars are live");
  progress.log("warning: a line above the bars");
  task.update(20, { loss: 0.05, acc: 0.9 });
  task.finish("loss=0.0500 train_acc=0.9000");
  // The logged line takes the bar's place (cursor to column 1, line erased); the bar is drawn again below it.
  assert.match(term.text, /\x1b\[2Kwarning: a line above the bars\n/);
  // The finished bar is cleared (to the end of the screen) and its summary written in its place.
  assert.match(term.text, /\x1b\[0Jstudent epoch 1\/4: 20\/20 in \d+\.\ds \| loss=0\.0500 train_acc=0\.9000\n$/);
  assert.ok(term.text.lastIndexOf(SHOW_CURSOR) > term.text.lastIndexOf(HIDE_CURSOR), "the cursor is shown again once no bar is live");
  // Nothing left running: a finished task's update or finish writes nothing more.
  const before = term.text;
  task.update(3);
  task.finish();
  assert.equal(term.text, before);
});

test("two live bars: the first to finish leaves its line while the other stays live; stopAllProgress clears the bars before an error", async () => {
  const term = new Terminal();
  const progress = createProgress({ quiet: false, stream: term });
  const a = progress.task("teacher soft targets", 100), b = progress.task("teacher epoch 1/2", 10);
  a.update(40);
  b.update(2, { loss: 2.3 });
  await term.waitFor(/teacher soft targets \|.*40%.*\n?.*teacher epoch 1\/2 \|.*20%/s);
  a.update(100);
  a.finish("computed 100 samples, cached");
  assert.match(plain(term.text), /teacher soft targets: 100\/100 in \d+\.\ds \| computed 100 samples, cached\n/);
  assert.ok(term.text.lastIndexOf(HIDE_CURSOR) > term.text.lastIndexOf(SHOW_CURSOR), "b's bar is still live");
  // An error: the CLI stops the bars first, so its message starts on a clean line.
  stopAllProgress();
  assert.ok(term.text.lastIndexOf(SHOW_CURSOR) > term.text.lastIndexOf(HIDE_CURSOR), "cursor restored");
  const stoppedAt = term.text.length;
  b.finish("interrupted");
  assert.match(term.text.slice(stoppedAt), /^teacher epoch 1\/2: 2\/10 in \d+\.\ds \| interrupted\n$/, "a task finished after the stop is a plain line");
});

test("quiet on a terminal: no bars, no escape codes, one plain line per finished task", () => {
  const term = new Terminal();
  const progress = createProgress({ quiet: true, stream: term });
  const t = progress.task("baseline epoch 2/4", 30);
  t.update(30, { loss: 0.25 });
  progress.log("a line");
  t.finish();
  assert.match(term.text, /^a line\nbaseline epoch 2\/4: 30\/30 in \d+\.\ds \| loss=0\.25\n$/);
});
