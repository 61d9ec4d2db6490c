// The Executor: how the model graph runs its heavy kernels. The serial executor calls the kernels on
// the coordinating thread over full ranges; the parallel one (parallel-executor.ts) splits each call
// into per-thread ranges that never divide a row, head or token, so results do not depend on the
// thread count. createExecutor picks one from the `threads` option.
import type { KernelExports } from '../runtime/kernel-exports.js';
import type { SelectedKernels } from '../runtime/kernels.js';

type KeysOfType<T, V> = { [K in keyof T]: T[K] extends V ? K : never }[keyof T];
/** Names of the matmul exports (out = x · Wᵀ over a row range). */
export type MatmulKernelName = Extract<KeysOfType<KernelExports, KernelExports['matmulF32']>, `matmul${string}`>;
/** Names of the exports converting f32 rows to an activation format. */
export type ConverterKernelName = Extract<KeysOfType<KernelExports, KernelExports['quantizeRowsQ8_0']>, `quantizeRows${string}` | `convertRows${string}`>;

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

/** Causal grouped-query attention of nTok queries at positions pos0.. (see KernelExports.attention). */
export interface AttentionJob {
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
  /** `scratchSlots` workspaces of `scratchStride` bytes each, every one at least pos0 + nTok f32. */
  readonly scratch: number;
  readonly scratchStride: number;
  readonly scratchSlots: number;
}

export interface ExecutorStats {
  /** Threads asked for (the coordinator included). */
  readonly threads: number;
  /** Threads taking part in dispatches now (1 while a failed pool is being rebuilt). */
  readonly activeThreads: number;
  /** Kernel calls split across threads, and calls run on the coordinator alone. */
  readonly parallelCalls: number;
  readonly serialCalls: number;
  /** Measured cost of starting and joining the workers once, in milliseconds. */
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
  /** out = silu(gate) * up on nTok rows of cols (the kernel's numerics depend on the row length). */
  siluMulRows(gate: number, up: number, out: number, cols: number, nTok: number): void;
  /** dst += src over n elements. */
  addRows(dst: number, src: number, n: number): void;
  /** Measures thread speeds on a real kernel call (start-up); a no-op on one thread. */
  calibrate(job: MatmulJob): void;
  stats(): ExecutorStats;
  /** Resolves when no pool rebuild is under way. */
  ready(): Promise<void>;
  /** Ends every worker thread; the executor cannot be used afterwards. */
  close(): Promise<void>;
}

/** Runs every kernel call on the calling thread over its full range. */
export class SerialExecutor implements Executor {
  readonly threads = 1;
  private calls = 0;

  constructor(private readonly k: KernelExports) {}

  matmuls(jobs: readonly MatmulJob[]): void {
    for (const j of jobs) this.k[j.kernel](j.w, j.x, j.out, j.cols, j.rows, j.nTok, 0, j.rows);
    this.calls += jobs.length;
  }

  attention(j: AttentionJob): void {
    this.k.attention(j.q, j.k, j.v, j.out, j.nTok, j.nHeads, j.nKVHeads, j.headDim, j.kvStride, j.pos0, j.scale, j.scratch, 0, j.nHeads);
    this.calls++;
  }

  convertRows(kernel: ConverterKernelName, x: number, dst: number, cols: number, nTok: number): void {
    this.k[kernel](x, dst, cols, nTok);
    this.calls++;
  }

  rmsNorm(x: number, weight: number, out: number, cols: number, nTok: number, eps: number): void {
    this.k.rmsNorm(x, weight, out, cols, nTok, eps);
    this.calls++;
  }

  siluMulRows(gate: number, up: number, out: number, cols: number, nTok: number): void {
    this.k.siluMulRows(gate, up, out, cols, nTok);
    this.calls++;
  }

  addRows(dst: number, src: number, n: number): void {
    this.k.addRows(dst, src, n);
    this.calls++;
  }

  calibrate(): void {}

  stats(): ExecutorStats {
    return { threads: 1, activeThreads: 1, parallelCalls: 0, serialCalls: this.calls, barrierMs: 0, shares: [1], faults: 0, lastFault: undefined };
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
   * (default: three measured barrier costs). 0 splits every call, however small.
   */
  minParallelMs?: number;
  /** A dispatch whose workers neither finish nor report a failure within this time fails (default 60 s). */
  stallTimeoutMs?: number;
  /** Atomics.load polls before a waiting thread sleeps (default 2000). */
  spinIterations?: number;
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
