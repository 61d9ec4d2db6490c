// Counters of an executor's kernel calls by kind: how many ran on the coordinator alone and how many
// were split, and for split calls where the time went (the coordinator's own share, its wait at the
// barrier, each thread's kernel time as the threads report it in the control block). Counting and the
// timing of split calls are always on: a split call already reads the clock, one more read costs
// ~0.1 µs against a dispatch of several µs. Timing calls run on the coordinator alone takes a clock
// pair per call, which a decode step of hundreds of small calls can notice, so it is asked for.

/** The kinds of executor calls, one per Executor method (a matmul group counts once). */
export const CALL_KINDS = ['matmul', 'attention', 'norm', 'convert', 'swiglu', 'add'] as const;
export type CallKind = (typeof CALL_KINDS)[number];
/** Each kind's index in CALL_KINDS. */
export const KIND_INDEX: Readonly<Record<CallKind, number>> = { matmul: 0, attention: 1, norm: 2, convert: 3, swiglu: 4, add: 5 };

export interface CallKindStats {
  /** Executor calls of this kind: serialCalls + splitCalls. */
  readonly calls: number;
  /** Calls run on the coordinator alone (too small to split, or no pool), and calls split. */
  readonly serialCalls: number;
  readonly splitCalls: number;
  /** Kernel jobs in those calls: a matmul group of q/k/v is 3 jobs, every other call 1. */
  readonly jobs: number;
  /** Milliseconds of the calls run alone; null unless serial timing was asked for at the last reset. */
  readonly serialMs: number | null;
  /** Wall milliseconds of split calls, from waking the workers to the end of the join. */
  readonly splitMs: number;
  /**
   * The parts of splitMs: waking the workers (the notify), the coordinator running its own share,
   * then waiting at the barrier for the workers to finish theirs.
   */
  readonly wakeMs: number;
  readonly ownMs: number;
  readonly waitMs: number;
  /** Kernel milliseconds of each participant in split calls (0 = the coordinator), as each measured. */
  readonly threadMs: readonly number[];
  /** Sum over split calls of the slowest participant's kernel time: the split calls' critical path. */
  readonly slowestMs: number;
}

export type CallStatsByKind = Readonly<Record<CallKind, CallKindStats>>;

// Fields of one kind's record in the flat counter array.
const CALLS_SERIAL = 0;
const CALLS_SPLIT = 1;
const JOBS = 2;
const SERIAL_MS = 3;
const SPLIT_MS = 4;
const OWN_MS = 5;
const WAIT_MS = 6;
const SLOWEST_MS = 7;
const WAKE_MS = 8;
const THREAD_MS = 9;

/** The counters of one executor, for `participants` threads (coordinator included). */
export class CallStats {
  /** Whether calls run on the coordinator alone are timed (set by reset). */
  timeSerialCalls = false;
  private readonly stride: number;
  private readonly counters: Float64Array;

  constructor(readonly participants: number) {
    this.stride = THREAD_MS + participants;
    this.counters = new Float64Array(CALL_KINDS.length * this.stride);
  }

  /** Zeroes every counter; `timeSerialCalls` says whether calls run alone are timed from now on. */
  reset(timeSerialCalls = false): void {
    this.counters.fill(0);
    this.timeSerialCalls = timeSerialCalls;
  }

  /** The clock reading to pass to `serial` (0 when serial calls are not timed). */
  serialStart(): number {
    return this.timeSerialCalls ? performance.now() : 0;
  }

  /** A call of `kind` of `jobs` kernel jobs ran on the coordinator alone, started at `t0` (serialStart). */
  serial(kind: CallKind, jobs: number, t0: number): void {
    const b = KIND_INDEX[kind] * this.stride;
    const c = this.counters;
    c[b + CALLS_SERIAL]++;
    c[b + JOBS] += jobs;
    if (this.timeSerialCalls) c[b + SERIAL_MS] += performance.now() - t0;
  }

  /**
   * A split call of `kind` ran: the workers were woken from tWake, the coordinator ran its share from
   * t0 to t1 and joined them at t2; elapsed[elapsedAt + p] is participant p's own kernel time for it.
   */
  split(kind: CallKind, jobs: number, tWake: number, t0: number, t1: number, t2: number, threads: number, elapsed: Float64Array, elapsedAt: number): void {
    const b = KIND_INDEX[kind] * this.stride;
    const c = this.counters;
    c[b + CALLS_SPLIT]++;
    c[b + JOBS] += jobs;
    c[b + SPLIT_MS] += t2 - tWake;
    c[b + WAKE_MS] += t0 - tWake;
    c[b + OWN_MS] += t1 - t0;
    c[b + WAIT_MS] += t2 - t1;
    let slowest = 0;
    for (let p = 0; p < threads && p < this.participants; p++) {
      const ms = elapsed[elapsedAt + p]!;
      c[b + THREAD_MS + p] += ms;
      if (ms > slowest) slowest = ms;
    }
    c[b + SLOWEST_MS] += slowest;
  }

  /** Total calls counted (both ways) since the last reset. */
  totalCalls(): number {
    let n = 0;
    for (let k = 0; k < CALL_KINDS.length; k++) n += this.counters[k * this.stride + CALLS_SERIAL]! + this.counters[k * this.stride + CALLS_SPLIT]!;
    return n;
  }

  /** A snapshot of every kind's counters. */
  snapshot(): CallStatsByKind {
    const out = {} as Record<CallKind, CallKindStats>;
    const c = this.counters;
    CALL_KINDS.forEach((kind, k) => {
      const b = k * this.stride;
      out[kind] = {
        calls: c[b + CALLS_SERIAL]! + c[b + CALLS_SPLIT]!,
        serialCalls: c[b + CALLS_SERIAL]!,
        splitCalls: c[b + CALLS_SPLIT]!,
        jobs: c[b + JOBS]!,
        serialMs: this.timeSerialCalls ? c[b + SERIAL_MS]! : null,
        splitMs: c[b + SPLIT_MS]!,
        wakeMs: c[b + WAKE_MS]!,
        ownMs: c[b + OWN_MS]!,
        waitMs: c[b + WAIT_MS]!,
        threadMs: Array.from(c.subarray(b + THREAD_MS, b + THREAD_MS + this.participants)),
        slowestMs: c[b + SLOWEST_MS]!,
      };
    });
    return out;
  }
}

/** The counters of several kinds added up (e.g. a whole step). */
export function sumCallStats(stats: CallStatsByKind, kinds: readonly CallKind[] = CALL_KINDS): CallKindStats {
  const first = stats[kinds[0] ?? 'matmul'];
  const threadMs = new Array<number>(first.threadMs.length).fill(0);
  let calls = 0, serialCalls = 0, splitCalls = 0, jobs = 0, splitMs = 0, wakeMs = 0, ownMs = 0, waitMs = 0, slowestMs = 0;
  let serialMs: number | null = 0;
  for (const kind of kinds) {
    const s = stats[kind];
    calls += s.calls;
    serialCalls += s.serialCalls;
    splitCalls += s.splitCalls;
    jobs += s.jobs;
    serialMs = serialMs === null || s.serialMs === null ? null : serialMs + s.serialMs;
    splitMs += s.splitMs;
    wakeMs += s.wakeMs;
    ownMs += s.ownMs;
    waitMs += s.waitMs;
    slowestMs += s.slowestMs;
    s.threadMs.forEach((ms, p) => (threadMs[p] = (threadMs[p] ?? 0) + ms));
  }
  return { calls, serialCalls, splitCalls, jobs, serialMs, splitMs, wakeMs, ownMs, waitMs, threadMs, slowestMs };
}
