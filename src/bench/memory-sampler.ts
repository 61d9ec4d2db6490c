// Process memory while a benchmark runs: the kernel's peak resident set (getrusage maxrss, which sees
// every moment) and the largest resident set sampled between measured steps (which a reader can tie
// to a phase: after load, after prefill, after decode).

export interface MemoryReport {
  /** Peak resident set of the whole process so far (getrusage ru_maxrss), bytes. */
  readonly peakRssBytes: number;
  /** Largest process.memoryUsage().rss seen by sample(), bytes. */
  readonly sampledPeakRssBytes: number;
  /** Resident set at each named sample, bytes. */
  readonly samples: readonly { readonly at: string; readonly rssBytes: number }[];
}

/** Samples are taken explicitly: a timer could not fire while a synchronous wasm kernel runs anyway. */
export class RssSampler {
  private peak = 0;
  private readonly taken: { at: string; rssBytes: number }[] = [];

  /** Records the current resident set under `at` and returns it. */
  sample(at: string): number {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
    this.taken.push({ at, rssBytes: rss });
    return rss;
  }

  /** Samples without keeping a named entry (for the many steps inside a test). */
  touch(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
  }

  report(): MemoryReport {
    // ru_maxrss is in kilobytes on Linux and macOS as Node reports it.
    return { peakRssBytes: process.resourceUsage().maxRSS * 1024, sampledPeakRssBytes: this.peak, samples: [...this.taken] };
  }
}
