// Summary statistics of repeated measurements: median and range, the figures a benchmark reports
// (the mean is left out on purpose: one slow run on a shared machine drags it far off).

export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** How many samples the summary is over. */
  readonly count: number;
}

/** Median (mean of the two middle values for an even count), min and max of `samples`. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError('cannot summarize zero samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, count: sorted.length };
}

/** Each sample mapped through `f`, summarized; for a decreasing `f` (time → rate) min and max swap. */
export function summarizeMapped(samples: readonly number[], f: (x: number) => number): Summary {
  return summarize(samples.map(f));
}
