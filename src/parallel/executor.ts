// The Executor: how the model graph runs its heavy kernels. The serial executor calls the kernels on
// the coordinating thread over full ranges; the parallel one (parallel-executor.ts) splits each call
// into per-thread ranges that never divide a row, head or token, so results do not depend on the
// thread count. createExecutor picks one from the `threads` option.
import type { KernelExports } from '../runtime/kernel-exports.js';
import type { SelectedKernels } from '../runtime/kernels.js';
import { CallStats } from './call-stats.js';
import type { CallStatsByKind } from './call-stats.js';

export type { CallKind, CallKindStats, CallStatsByKind } from './call-stats.js';
export { CALL_KINDS, sumCallStats } from './call-stats.js';

type KeysOfType<T, V> = { [K in keyof T]: T[K] extends V ? K : never }[keyof T];
/** Names of the matmul exports (out = x · Wᵀ over a row range). */
export type MatmulKernelName = Extract<KeysOfType<KernelExports, KernelExports['matmulF32']>, `matmul${string}`>;
/** Names of the exports converting f32 rows to an activation format. */
export type ConverterKernelName = Extract<KeysOfType<KernelExports, KernelExports['quantizeRowsQ8_0']>, `quantizeRows${string}` | `convertRows${string}`>;
/** Names of the fused exports: rmsNorm into f32 rows and those rows into an activation format. */
export type NormConverterKernelName = Extract<KeysOfType<KernelExports, KernelExports['rmsNormToQ8_0']>, `rmsNormTo${string}`>;

/** out (nTok, rows) = x (nTok, cols) · Wᵀ, W being `rows` rows of `cols` in the kernel's format. */
export interface MatmulJob {
  readonly kernel: MatmulKernelName;
  readonly w: number;
  readonly x: number;
  readonly out: number;
  readonly cols: number;
  readonly rows: number;
  readonly nTok: number;
}

/** Names of the attention exports (same arguments; they differ in the KV cache format they read). */
export type AttentionKernelName = 'attention' | 'attentionTiled' | 'attentionKvF16' | 'attentionKvInt8' | 'attentionKvF16Tiled' | 'attentionKvInt8Tiled';

/** Causal grouped-query attention of nTok queries at positions pos0.. (see KernelExports.attention). */
export interface AttentionJob {
  /** The export to run: 'attention' (f32 cache, the default) or a variant reading an f16 / int8 cache. */
  readonly kernel?: AttentionKernelName;
  readonly q: number;
  readonly k: number;
  readonly v: number;
  readonly out: number;
  readonly nTok: number;
  readonly nHeads: number;
  readonly nKVHeads: number;
  readonly headDim: number;
  readonly kvStride: number;
  readonly pos0: number;
  readonly scale: number;
  /**
   * `scratchSlots` workspaces of `scratchStride` bytes each, every one at least pos0 + nTok f32
   * (attentionTiled: attentionTiledScratchBytes()).
   */
  readonly scratch: number;
  readonly scratchStride: number;
  readonly scratchSlots: number;
}

export interface ExecutorStats {
  /** Threads asked for (the coordinator included). */
  readonly threads: number;
  /** Threads taking part in dispatches now (1 while a failed pool is being rebuilt). */
  readonly activeThreads: number;
  /**
   * Kernel dispatches split across threads (start-up calibration included), and kernel jobs run on
   * the coordinator alone, since the last resetStats().
   */
  readonly parallelCalls: number;
  readonly serialCalls: number;
  /**
   * Per kind of call since the last resetStats(): calls run alone and split, and for split calls the
   * coordinator's own share, its wait at the barrier and every thread's kernel time (call-stats.ts).
   */
  readonly calls: CallStatsByKind;
  /**
   * Estimated cost of starting and joining the workers once, in milliseconds: measured at start-up,
   * then followed from the split calls (barrier-cost.ts).
   */
  readonly barrierMs: number;
  /** Current fraction of a split each participant gets (0 = the coordinator). */
  readonly shares: readonly number[];
  /** Worker failures so far, and the last one. */
  readonly faults: number;
  readonly lastFault: Error | undefined;
}

export interface Executor {
  readonly threads: number;
  /** Runs every job; the jobs are independent of each other (q/k/v, gate/up). */
  matmuls(jobs: readonly MatmulJob[]): void;
  attention(job: AttentionJob): void;
  /** nTok rows of `cols` f32 at x to rows of dstRowBytes at dst. */
  convertRows(kernel: ConverterKernelName, x: number, dst: number, cols: number, nTok: number, dstRowBytes: number): void;
  rmsNorm(x: number, weight: number, out: number, cols: number, nTok: number, eps: number): void;
  /**
   * rmsNorm(x, weight, out, ...) and the normed rows converted into rows of dstRowBytes at dst by the
   * fused kernel: the same bits as rmsNorm then convertRows, in one call (one barrier when split).
   */
  rmsNormConvert(kernel: NormConverterKernelName, x: number, weight: number, out: number, dst: number, cols: number, nTok: number, eps: number, dstRowBytes: number): void;
  /** out = silu(gate) * up on nTok rows of cols (the kernel's numerics depend on the row length). */
  siluMulRows(gate: number, up: number, out: number, cols: number, nTok: number): void;
  /** dst += src over n elements. */
  addRows(dst: number, src: number, n: number): void;
  /** Measures thread speeds on a real kernel call (start-up); a no-op on one thread. */
  calibrate(job: MatmulJob): void;
  stats(): ExecutorStats;
  /**
   * Zeroes the call counters (parallelCalls, serialCalls, calls). With timeSerialCalls, calls run on
   * the coordinator alone are timed too until the next reset (a clock pair per call).
   */
  resetStats(options?: { readonly timeSerialCalls?: boolean }): void;
  /** Resolves when no pool rebuild is under way. */
  ready(): Promise<void>;
  /** Ends every worker thread; the executor cannot be used afterwards. */
  close(): Promise<void>;
}

/** Runs every kernel call on the calling thread over its full range. */
export class SerialExecutor implements Executor {
  readonly threads = 1;
  private calls = 0;

  /** `callStats`: where calls are counted (the parallel executor passes its own, for its fallbacks). */
  constructor(
    private readonly k: KernelExports,
    readonly callStats: CallStats = new CallStats(1),
  ) {}

  matmuls(jobs: readonly MatmulJob[]): void {
    const t0 = this.callStats.serialStart();
    for (const j of jobs) this.k[j.kernel](j.w, j.x, j.out, j.cols, j.rows, j.nTok, 0, j.rows);
    this.calls += jobs.length;
    this.callStats.serial('matmul', jobs.length, t0);
  }

  attention(j: AttentionJob): void {
    const t0 = this.callStats.serialStart();
    this.k[j.kernel ?? 'attention'](j.q, j.k, j.v, j.out, j.nTok, j.nHeads, j.nKVHeads, j.headDim, j.kvStride, j.pos0, j.scale, j.scratch, 0, j.nHeads);
    this.calls++;
    this.callStats.serial('attention', 1, t0);
  }

  convertRows(kernel: ConverterKernelName, x: number, dst: number, cols: number, nTok: number): void {
    const t0 = this.callStats.serialStart();
    this.k[kernel](x, dst, cols, nTok);
    this.calls++;
    this.callStats.serial('convert', 1, t0);
  }

  rmsNorm(x: number, weight: number, out: number, cols: number, nTok: number, eps: number): void {
    const t0 = this.callStats.serialStart();
    this.k.rmsNorm(x, weight, out, cols, nTok, eps);
    this.calls++;
    this.callStats.serial('norm', 1, t0);
  }

  rmsNormConvert(kernel: NormConverterKernelName, x: number, weight: number, out: number, dst: number, cols: number, nTok: number, eps: number): void {
    const t0 = this.callStats.serialStart();
    this.k[kernel](x, weight, out, dst, cols, nTok, eps);
    this.calls++;
    this.callStats.serial('norm', 1, t0);
  }

  siluMulRows(gate: number, up: number, out: number, cols: number, nTok: number): void {
    const t0 = this.callStats.serialStart();
    this.k.siluMulRows(gate, up, out, cols, nTok);
    this.calls++;
    this.callStats.serial('swiglu', 1, t0);
  }

  addRows(dst: number, src: number, n: number): void {
    const t0 = this.callStats.serialStart();
    this.k.addRows(dst, src, n);
    this.calls++;
    this.callStats.serial('add', 1, t0);
  }

  calibrate(): void {}

  stats(): ExecutorStats {
    return {
      threads: 1,
      activeThreads: 1,
      parallelCalls: 0,
      serialCalls: this.calls,
      calls: this.callStats.snapshot(),
      barrierMs: 0,
      shares: [1],
      faults: 0,
      lastFault: undefined,
    };
  }

  resetStats(options?: { readonly timeSerialCalls?: boolean }): void {
    this.calls = 0;
    this.callStats.reset(options?.timeSerialCalls ?? false);
  }

  async ready(): Promise<void> {}

  async close(): Promise<void> {}
}

/** Tuning and test hooks of the parallel executor. */
export interface ParallelOptions {
  /**
   * 'throughput' (default): shares proportional to each thread's measured speed; 'even': equal
   * shares (for comparison).
   */
  balance?: 'throughput' | 'even';
  /**
   * A call runs on the coordinator alone when it would take it less than this many milliseconds
   * (by the calibrated matmul speed). Default: three barrier costs as currently estimated, judged
   * by the coordinator's own measured speed on that kind of call. 0 splits every call, however small.
   */
  minParallelMs?: number;
  /** A dispatch whose workers neither finish nor report a failure within this time fails (default 60 s). */
  stallTimeoutMs?: number;
  /**
   * Microseconds a waiting thread (a worker between dispatches, the coordinator at the barrier) polls
   * before it sleeps in Atomics.wait (default 1000): longer than the gaps between one forward pass's
   * kernel calls, so they do not each pay a wake-up; 0 sleeps at once.
   */
  spinMicros?: number;
  /** Test hook: worker `participant` spins (factor - 1) times its own job time after every job. */
  testSlowdown?: { readonly participant: number; readonly factor: number };
}

/** The number of threads this machine offers (os.availableParallelism, navigator.hardwareConcurrency). */
export async function defaultThreadCount(): Promise<number> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (proc?.versions?.node) {
    const os = await import('node:os');
    return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  }
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

/**
 * The executor for `threads` threads (the caller's included): serial for 1, otherwise a pool of
 * threads - 1 workers running `kernels.module` on the same memory.
 */
export async function createExecutor(kernels: SelectedKernels, memory: WebAssembly.Memory, threads: number, options: ParallelOptions = {}): Promise<Executor> {
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  if (threads === 1) return new SerialExecutor(kernels.exports);
  const { ParallelExecutor } = await import('./parallel-executor.js');
  return ParallelExecutor.start(kernels, memory, threads, options);
}
