// Where a multithreaded forward pass spends its time, from the executor's call statistics over one
// phase (a prefill or a decode run): split calls versus calls the coordinator runs alone, the
// coordinator's wait at the barrier, each thread's kernel time and how unevenly the splits finish.
import type { CallKind, CallKindStats, CallStatsByKind, ExecutorStats } from '../parallel/executor.js';
import { CALL_KINDS, sumCallStats } from '../parallel/executor.js';
import { markdownTable } from './table.js';

export interface ThreadProfileKind {
  readonly kind: CallKind;
  readonly calls: number;
  readonly splitCalls: number;
  /** Wall time of the kind's calls: split ones dispatch to join, plus the ones run alone. */
  readonly ms: number;
  /** The coordinator's wait at the barrier in this kind's split calls. */
  readonly waitMs: number;
  /** Kernel milliseconds of each thread in split calls. */
  readonly threadMs: readonly number[];
  /** Slowest thread over the mean thread, minus 1, summed over split calls (0 = even finish). */
  readonly imbalance: number;
}

export interface ThreadProfile {
  readonly threads: number;
  /** Wall time of the phase the statistics cover, and the forward passes in it. */
  readonly wallMs: number;
  readonly forwardPasses: number;
  /** The executor's current estimate of one barrier (kept up to date from split calls). */
  readonly barrierMs: number;
  /** Wall time inside split calls; inside calls run by the coordinator alone; outside any executor call
   *  (JavaScript, rope, embedding rows, logits copies). */
  readonly splitMs: number;
  readonly serialMs: number;
  readonly outsideMs: number;
  /** Of splitMs: waking the workers, the coordinator's own share, its wait at the barrier. */
  readonly wakeMs: number;
  readonly ownMs: number;
  readonly waitMs: number;
  /** splitMs minus the slowest thread's kernel time of every split call: the cost of the barriers. */
  readonly barrierOverheadMs: number;
  /** Kernel milliseconds per thread: split shares (thread 0 also its calls alone). */
  readonly threadBusyMs: readonly number[];
  /** Over split calls: slowest thread's time over the mean thread's, minus 1. */
  readonly imbalance: number;
  readonly kinds: readonly ThreadProfileKind[];
  /** The raw counters. */
  readonly calls: CallStatsByKind;
}

function imbalanceOf(s: CallKindStats): number {
  const n = s.threadMs.length;
  const mean = s.threadMs.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  return mean > 0 ? s.slowestMs / mean - 1 : 0;
}

/**
 * The profile of a phase of `wallMs` of a model of `layers` layers, from executor statistics reset
 * (with timeSerialCalls) at its start and read at its end.
 */
export function threadProfile(stats: Pick<ExecutorStats, 'threads' | 'barrierMs' | 'calls'>, wallMs: number, layers: number): ThreadProfile {
  const total = sumCallStats(stats.calls);
  // Every forward pass makes one attention call per layer.
  const forwardPasses = layers > 0 ? Math.round(stats.calls.attention.calls / layers) : 0;
  const serialMs = total.serialMs ?? 0;
  const kinds = CALL_KINDS.map((kind): ThreadProfileKind => {
    const s = stats.calls[kind];
    return { kind, calls: s.calls, splitCalls: s.splitCalls, ms: s.splitMs + (s.serialMs ?? 0), waitMs: s.waitMs, threadMs: s.threadMs, imbalance: imbalanceOf(s) };
  }).filter((k) => k.calls > 0);
  return {
    threads: stats.threads,
    wallMs,
    forwardPasses,
    barrierMs: stats.barrierMs,
    splitMs: total.splitMs,
    serialMs,
    outsideMs: Math.max(0, wallMs - total.splitMs - serialMs),
    wakeMs: total.wakeMs,
    ownMs: total.ownMs,
    waitMs: total.waitMs,
    barrierOverheadMs: Math.max(0, total.splitMs - total.slowestMs),
    threadBusyMs: total.threadMs.map((ms, p) => (p === 0 ? ms + serialMs : ms)),
    imbalance: imbalanceOf(total),
    kinds,
    calls: stats.calls,
  };
}

const share = (ms: number, of: number): string => `${((ms / Math.max(of, 1e-9)) * 100).toFixed(1)}%`;

/** The text form: a summary of where the step's time went, then one row per kind of call. */
export function formatThreadProfile(title: string, p: ThreadProfile): string {
  const threads = p.threadBusyMs.map((ms, t) => `thread ${t} ${ms.toFixed(2)} ms`).join(', ');
  const summary = [
    `thread time, ${title}, ${p.wallMs.toFixed(1)} ms over ${p.forwardPasses} forward pass${p.forwardPasses === 1 ? '' : 'es'}:`,
    `  split calls ${p.splitMs.toFixed(2)} ms (${share(p.splitMs, p.wallMs)}): waking workers ${p.wakeMs.toFixed(2)}, own share ${p.ownMs.toFixed(2)}, ` +
      `waiting at the barrier ${p.waitMs.toFixed(2)} ms (${share(p.waitMs, p.wallMs)} of the wall time); barrier overhead over the slowest thread ${p.barrierOverheadMs.toFixed(2)} ms ` +
      `(barrier estimate ${(p.barrierMs * 1000).toFixed(1)} µs)`,
    `  calls run alone on thread 0 ${p.serialMs.toFixed(2)} ms (${share(p.serialMs, p.wallMs)}); outside executor calls ${p.outsideMs.toFixed(2)} ms (${share(p.outsideMs, p.wallMs)})`,
    `  kernel time per thread: ${threads}; split imbalance (slowest over mean) ${(p.imbalance * 100).toFixed(1)}%`,
  ];
  const rows = p.kinds.map((k) => [
    k.kind,
    String(k.calls),
    String(k.splitCalls),
    k.ms.toFixed(2),
    k.waitMs.toFixed(2),
    ...k.threadMs.map((ms) => ms.toFixed(2)),
    `${(k.imbalance * 100).toFixed(1)}%`,
  ]);
  const headers = ['call', 'calls', 'split', 'ms', 'barrier wait ms', ...p.threadBusyMs.map((_, t) => `thread ${t} ms`), 'imbalance'];
  return summary.join('\n') + '\n' + markdownTable(headers, rows);
}
