// The running estimate of what one split costs beyond its slowest thread's kernel time (waking the
// workers, joining them, the clock reads): measured once at start-up on empty dispatches, then followed
// from every split call. Single measurements swing by two orders of magnitude (a worker that had gone
// to sleep, another process holding the core), so the estimate follows the minimum of each window of
// observations (what a split costs when nothing interferes) through a moving average, within bounds
// that keep one wild start-up probe from switching splitting off or on for a whole run.

/** Observations per window; the window's minimum is what the average takes in. */
const WINDOW = 16;
/** Weight of a new window minimum in the moving average. */
const EMA_ALPHA = 0.25;
/** The estimate never leaves [MIN_MS, MAX_MS]: below, clock noise; above, a worker asleep or starved. */
export const BARRIER_MIN_MS = 0.002;
export const BARRIER_MAX_MS = 0.1;

export class BarrierCost {
  private estimate: number;
  private windowMin = Infinity;
  private windowCount = 0;

  constructor(initialMs: number) {
    this.estimate = clamp(initialMs);
  }

  /** Current estimate in milliseconds. */
  get ms(): number {
    return this.estimate;
  }

  /** One split call's overhead: its wall time minus its slowest participant's kernel time. */
  observe(overheadMs: number): void {
    if (!(overheadMs >= 0)) return;
    if (overheadMs < this.windowMin) this.windowMin = overheadMs;
    if (++this.windowCount < WINDOW) return;
    this.estimate = clamp(this.estimate * (1 - EMA_ALPHA) + this.windowMin * EMA_ALPHA);
    this.windowMin = Infinity;
    this.windowCount = 0;
  }
}

function clamp(ms: number): number {
  return Number.isFinite(ms) ? Math.min(BARRIER_MAX_MS, Math.max(BARRIER_MIN_MS, ms)) : BARRIER_MAX_MS;
}
