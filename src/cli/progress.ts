// A one-line progress bar on stderr for long CLI steps. It draws only when the stream is a terminal
// (so logs and pipes stay clean), redraws at most every REDRAW_MS, and erases itself when done.

export interface Progress {
  /** Reports `done` out of the total given at creation (fractions are fine). */
  update(done: number): void;
  /** Finishes the bar: clears the line so the next output starts clean. */
  done(): void;
}

/** The parts of a stream the bar uses (process.stderr by default; tests pass their own). */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

const REDRAW_MS = 100;
const BAR_WIDTH = 30;

/** Formats the bar line for `done` of `total` (exported for tests). */
export function formatProgress(label: string, done: number, total: number, width = BAR_WIDTH): string {
  const fraction = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
  const filled = Math.round(fraction * width);
  const count = Number.isInteger(total) && total > 1 ? ` ${Math.min(done, total)}/${total}` : '';
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]${count} ${Math.floor(fraction * 100)}%`;
}

/** A progress bar for `total` units of work, drawn on `stream` only when it is a terminal. */
export function createProgress(label: string, total: number, stream: ProgressStream = process.stderr, now: () => number = Date.now): Progress {
  if (!stream.isTTY) return { update() {}, done() {} };
  let lastDraw = -Infinity;
  let finished = false;
  const draw = (done: number): void => {
    let line = formatProgress(label, done, total);
    if (stream.columns && line.length >= stream.columns) line = line.slice(0, stream.columns - 1);
    stream.write(`\r${line}\x1b[K`);
  };
  return {
    update(done: number): void {
      if (finished) return;
      const t = now();
      if (t - lastDraw < REDRAW_MS && done < total) return;
      lastDraw = t;
      draw(done);
    },
    done(): void {
      if (finished) return;
      finished = true;
      stream.write('\r\x1b[K');
    },
  };
}
