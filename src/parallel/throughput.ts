// Per-thread throughput estimates: work units (multiply-adds) per millisecond for each participant,
// measured once at start-up on a real kernel and then followed as an exponential moving average of the
// times threads report for their shares. Shares of the next split are proportional to these speeds.

/** Weight of the newest measurement in the moving average. */
const EMA_ALPHA = 0.25;
/** Shares below this many milliseconds are too short for the timer to say anything. */
const MIN_MEASURABLE_MS = 0.01;

export class ThroughputModel {
  /** Work units per millisecond of each participant (0 is the coordinator). */
  readonly speeds: Float64Array;
  private readonly seen: Uint8Array;

  constructor(readonly participants: number) {
    this.speeds = new Float64Array(participants).fill(1);
    this.seen = new Uint8Array(participants);
  }

  /** Folds one measurement of participant p in: `work` units took `ms` milliseconds. */
  observe(p: number, work: number, ms: number): void {
    if (!(work > 0) || !(ms >= MIN_MEASURABLE_MS)) return;
    const speed = work / ms;
    this.speeds[p] = this.seen[p] ? this.speeds[p]! * (1 - EMA_ALPHA) + speed * EMA_ALPHA : speed;
    this.seen[p] = 1;
  }

  /** Replaces participant p's estimate (start-up calibration). */
  set(p: number, work: number, ms: number): void {
    if (!(work > 0) || !(ms > 0)) return;
    this.speeds[p] = work / ms;
    this.seen[p] = 1;
  }

  /** Milliseconds the coordinator alone would need for `work` units. */
  soloMs(work: number): number {
    return this.seen[0] ? work / this.speeds[0]! : Infinity;
  }

  /** Each participant's fraction of the work under proportional shares. */
  shares(): number[] {
    let sum = 0;
    for (let p = 0; p < this.participants; p++) sum += this.speeds[p]!;
    return Array.from(this.speeds, (s) => s / sum);
  }
}

/**
 * The coordinator's own speed per kind of call (work units per millisecond, each kind counting its
 * units its own way), from calls it ran alone and from its share of split calls: a SwiGLU or a
 * conversion moves far fewer multiply-adds per millisecond than a matmul, so deciding whether such a
 * call repays a split by the matmul's speed would misjudge it. A kind never timed yet falls back to
 * `fallback` (the calibrated matmul speed).
 */
export class KindSpeeds {
  private readonly speeds: Float64Array;
  private readonly seen: Uint8Array;

  constructor(kinds: number) {
    this.speeds = new Float64Array(kinds);
    this.seen = new Uint8Array(kinds);
  }

  /** Folds one timing in: the coordinator did `work` units of kind k in `ms` milliseconds. */
  observe(k: number, work: number, ms: number): void {
    // Calls of a couple of microseconds still time usefully with performance.now()'s resolution in
    // Node (sub-microsecond); below that the clock pair itself dominates.
    if (!(work > 0) || !(ms >= KIND_MIN_MS)) return;
    const speed = work / ms;
    this.speeds[k] = this.seen[k] ? this.speeds[k]! * (1 - EMA_ALPHA) + speed * EMA_ALPHA : speed;
    this.seen[k] = 1;
  }

  /** Milliseconds the coordinator alone would need for `work` units of kind k. */
  soloMs(k: number, work: number, fallback: ThroughputModel): number {
    return this.seen[k] ? work / this.speeds[k]! : fallback.soloMs(work);
  }
}

const KIND_MIN_MS = 0.002;
