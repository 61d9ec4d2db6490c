// The parallel executor: the coordinating thread splits each kernel call into per-thread ranges (rows of
// a matmul, heads of attention, tokens of a norm or conversion, aligned runs of elements), writes them
// into the control block, wakes the workers with one notify, runs its own share, and joins them at a
// barrier. Shares follow each thread's measured throughput; calls too small to repay the barrier run on
// the coordinator alone. A worker that throws, exits or stalls fails the call with the cause, and the
// pool is rebuilt in the background while calls run on the coordinator alone meanwhile.
//
// The coordinator blocks in Atomics.wait, which Node allows on its main thread and browsers allow in
// workers (where the browser port runs the engine); nothing here needs to be the process's main thread.
import type { SelectedKernels } from '../runtime/kernels.js';
import { CallStats } from './call-stats.js';
import type { CallKind } from './call-stats.js';
import { CONTROL_LAYOUT as L, MAX_OPS, MAX_PARTICIPANTS } from './control-block.js';
import type { AttentionJob, ConverterKernelName, Executor, ExecutorStats, MatmulJob, MatmulKernelName, ParallelOptions } from './executor.js';
import { SerialExecutor } from './executor.js';
import { kernelFunctions, runShare } from './run-share.js';
import type { KernelFunction } from './run-share.js';
import { ELEMENT_ALIGN, ROW_ALIGN, partitionRange } from './partition.js';
import { WorkerPool } from './pool.js';
import { ThroughputModel } from './throughput.js';

const MATMUL_KERNELS: readonly MatmulKernelName[] = [
  'matmulF32', 'matmulF16', 'matmulBF16', 'matmulQ4_0', 'matmulQ4_1', 'matmulQ5_0', 'matmulQ5_1',
  'matmulQ8_0', 'matmulQ2_K', 'matmulQ3_K', 'matmulQ4_K', 'matmulQ5_K', 'matmulQ6_K',
];
const CONVERTER_KERNELS: readonly ConverterKernelName[] = ['quantizeRowsQ8_0', 'quantizeRowsQ8_1', 'quantizeRowsQ8_K', 'convertRowsF16', 'convertRowsBF16'];
/** The exports a dispatch can name; a kernel's id in the control block is its index here. */
const DISPATCH_KERNELS: readonly string[] = [...MATMUL_KERNELS, ...CONVERTER_KERNELS, 'rmsNorm', 'attention', 'siluMulRows', 'addRows', 'attentionKvF16', 'attentionKvInt8'];

/** How long one Atomics.wait of the coordinator lasts before it looks at the clock again. */
const WAIT_SLICE_MS = 50;
const DEFAULT_STALL_TIMEOUT_MS = 60_000;
const DEFAULT_SPIN_ITERATIONS = 2000;
/** A split must be expected to save this many barrier costs. */
const BARRIER_MARGIN = 3;

/** A worker thread threw, exited, or stopped answering during a kernel call. */
export class WorkerFaultError extends Error {
  constructor(
    message: string,
    readonly participant: number,
    readonly kind: 'threw' | 'exited' | 'lost' | 'stalled',
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'WorkerFaultError';
  }
}

type TestFault = 'throw' | 'exit' | 'hang';

export class ParallelExecutor implements Executor {
  private pool: WorkerPool | undefined;
  private rebuilding: Promise<void> | undefined;
  private closed = false;
  private readonly serial: SerialExecutor;
  /** Call counters, shared with `serial` so its fallbacks count under the same kinds. */
  private readonly callStats: CallStats;
  private readonly fns: KernelFunction[];
  private readonly kernelIds: ReadonlyMap<string, number>;
  private readonly throughput: ThroughputModel;
  /** Per-participant weights of the split being written, and the work units each got. */
  private readonly weights: Float64Array;
  private readonly work: Float64Array;
  private readonly args = new Float64Array(L.MAX_ARGS);
  private readonly balance: 'throughput' | 'even';
  private readonly stallTimeoutMs: number;
  private readonly spinIterations: number;
  private barrierMs = 0;
  private parallelCalls = 0;
  private faults = 0;
  private lastFault: Error | undefined;

  private constructor(
    private readonly kernels: SelectedKernels,
    private readonly memory: WebAssembly.Memory,
    readonly threads: number,
    private readonly options: ParallelOptions,
  ) {
    this.callStats = new CallStats(threads);
    this.serial = new SerialExecutor(kernels.exports, this.callStats);
    this.fns = kernelFunctions(kernels.exports, DISPATCH_KERNELS);
    this.kernelIds = new Map(DISPATCH_KERNELS.map((name, i) => [name, i]));
    this.throughput = new ThroughputModel(threads);
    this.weights = new Float64Array(threads);
    this.work = new Float64Array(threads);
    if (options.balance !== undefined && options.balance !== 'throughput' && options.balance !== 'even') {
      throw new RangeError(`parallel.balance must be "throughput" or "even", got ${String(options.balance)}`);
    }
    if (options.stallTimeoutMs !== undefined && !(options.stallTimeoutMs > 0)) throw new RangeError(`parallel.stallTimeoutMs must be positive, got ${options.stallTimeoutMs}`);
    if (options.spinIterations !== undefined && !(Number.isInteger(options.spinIterations) && options.spinIterations >= 0)) {
      throw new RangeError(`parallel.spinIterations must be a non-negative integer, got ${options.spinIterations}`);
    }
    this.balance = options.balance ?? 'throughput';
    this.stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.spinIterations = options.spinIterations ?? DEFAULT_SPIN_ITERATIONS;
  }

  /** Starts threads - 1 workers and measures the barrier. */
  static async start(kernels: SelectedKernels, memory: WebAssembly.Memory, threads: number, options: ParallelOptions = {}): Promise<ParallelExecutor> {
    if (!Number.isInteger(threads) || threads < 2 || threads > MAX_PARTICIPANTS) {
      throw new RangeError(`a parallel executor takes 2 to ${MAX_PARTICIPANTS} threads, got ${threads}`);
    }
    const ex = new ParallelExecutor(kernels, memory, threads, options);
    ex.pool = await ex.startPool();
    try {
      ex.barrierMs = ex.measureBarrier(ex.pool);
    } catch (e) {
      await ex.close();
      throw e;
    }
    return ex;
  }

  private async startPool(): Promise<WorkerPool> {
    const pool = await WorkerPool.start({
      workers: this.threads - 1,
      module: this.kernels.module,
      memory: this.memory,
      kernelNames: DISPATCH_KERNELS,
      spinIterations: this.spinIterations,
    });
    const slow = this.options.testSlowdown;
    if (slow && slow.participant >= 1 && slow.participant < this.threads) {
      pool.block.setSlowdownPercent(slow.participant, Math.round((slow.factor - 1) * 100));
    }
    return pool;
  }

  // ---- kernel calls ----

  matmuls(jobs: readonly MatmulJob[]): void {
    let total = 0;
    for (const j of jobs) total += j.rows * j.cols * j.nTok;
    const pool = jobs.length <= MAX_OPS && this.worthSplitting(total) ? this.activePool() : undefined;
    if (!pool) return this.serial.matmuls(jobs);
    const b = pool.block;
    const n = pool.workers + 1;
    this.setWeights(n, n);
    this.work.fill(0);
    for (let o = 0; o < jobs.length; o++) {
      const j = jobs[o]!;
      b.setRangeOp(o, this.kernelIds.get(j.kernel)!, 6);
      this.setArgs(b, o, j.w, j.x, j.out, j.cols, j.rows, j.nTok);
      const base = b.rangeBase(o);
      partitionRange(j.rows, this.weights, n, ROW_ALIGN, b.i32, base);
      for (let p = 0; p < n; p++) this.work[p] += (b.i32[base + 2 * p + 1]! - b.i32[base + 2 * p]!) * j.cols * j.nTok;
    }
    this.run(pool, jobs.length, true, 'matmul', jobs.length);
  }

  attention(j: AttentionJob): void {
    // q·k and the weighted sum of v: two multiply-adds per key position, head element and query.
    const work = 2 * j.nHeads * j.headDim * j.nTok * (j.pos0 + (j.nTok + 1) / 2);
    const pool = j.nHeads > 1 && j.scratchSlots > 1 && this.worthSplitting(work) ? this.activePool() : undefined;
    if (!pool) return this.serial.attention(j);
    const b = pool.block;
    const n = pool.workers + 1;
    // Each participant needs its own scratch slot, so at most scratchSlots of them take part.
    this.setWeights(n, Math.min(n, j.scratchSlots, j.nHeads));
    b.setRangeOp(0, this.kernelIds.get(j.kernel ?? 'attention')!, 12, 11, j.scratchStride);
    this.setArgs(b, 0, j.q, j.k, j.v, j.out, j.nTok, j.nHeads, j.nKVHeads, j.headDim, j.kvStride, j.pos0, j.scale, j.scratch);
    partitionRange(j.nHeads, this.weights, n, 1, b.i32, b.rangeBase(0));
    this.run(pool, 1, false, 'attention');
  }

  convertRows(kernel: ConverterKernelName, x: number, dst: number, cols: number, nTok: number, dstRowBytes: number): void {
    const pool = nTok > 1 && this.worthSplitting(2 * cols * nTok) ? this.activePool() : undefined;
    if (!pool) return this.serial.convertRows(kernel, x, dst, cols, nTok);
    const b = pool.block;
    b.setCountOp(0, this.kernelIds.get(kernel)!, 3, [[0, cols * 4], [1, dstRowBytes]]);
    this.setArgs(b, 0, x, dst, cols, nTok);
    this.splitCount(pool, nTok, 1, 'convert');
  }

  rmsNorm(x: number, weight: number, out: number, cols: number, nTok: number, eps: number): void {
    const pool = nTok > 1 && this.worthSplitting(2 * cols * nTok) ? this.activePool() : undefined;
    if (!pool) return this.serial.rmsNorm(x, weight, out, cols, nTok, eps);
    const b = pool.block;
    b.setCountOp(0, this.kernelIds.get('rmsNorm')!, 4, [[0, cols * 4], [2, cols * 4]]);
    this.setArgs(b, 0, x, weight, out, cols, nTok, eps);
    this.splitCount(pool, nTok, 1, 'norm');
  }

  siluMulRows(gate: number, up: number, out: number, cols: number, nTok: number): void {
    // Split by whole rows only: the kernel's numerics depend on a value's place in its row.
    const pool = nTok > 1 && this.worthSplitting(4 * cols * nTok) ? this.activePool() : undefined;
    if (!pool) return this.serial.siluMulRows(gate, up, out, cols, nTok);
    const b = pool.block;
    b.setCountOp(0, this.kernelIds.get('siluMulRows')!, 4, [[0, cols * 4], [1, cols * 4], [2, cols * 4]]);
    this.setArgs(b, 0, gate, up, out, cols, nTok);
    this.splitCount(pool, nTok, 1, 'swiglu');
  }

  addRows(dst: number, src: number, n: number): void {
    const pool = n >= 2 * ELEMENT_ALIGN && this.worthSplitting(n) ? this.activePool() : undefined;
    if (!pool) return this.serial.addRows(dst, src, n);
    const b = pool.block;
    b.setCountOp(0, this.kernelIds.get('addRows')!, 2, [[0, 4], [1, 4]]);
    this.setArgs(b, 0, dst, src, n);
    this.splitCount(pool, n, ELEMENT_ALIGN, 'add');
  }

  /**
   * Measures every thread's speed on a real kernel (the job split evenly, a few times) so the first
   * steps already get proportional shares, and fixes the threshold below which calls stay serial.
   */
  calibrate(job: MatmulJob): void {
    const pool = this.activePool();
    if (!pool) return;
    const b = pool.block;
    const n = pool.workers + 1;
    const workSum = new Float64Array(n);
    const msSum = new Float64Array(n);
    for (let round = 0; round < 4; round++) {
      this.weights.fill(1);
      b.setRangeOp(0, this.kernelIds.get(job.kernel)!, 6);
      this.setArgs(b, 0, job.w, job.x, job.out, job.cols, job.rows, job.nTok);
      const base = b.rangeBase(0);
      partitionRange(job.rows, this.weights, n, ROW_ALIGN, b.i32, base);
      this.run(pool, 1, false);
      if (round === 0) continue; // warm-up: caches, lazy compilation
      for (let p = 0; p < n; p++) {
        workSum[p] += (b.i32[base + 2 * p + 1]! - b.i32[base + 2 * p]!) * job.cols * job.nTok;
        msSum[p] += b.elapsed(p);
      }
    }
    for (let p = 0; p < n; p++) this.throughput.set(p, workSum[p]!, msSum[p]!);
  }

  // ---- splitting and dispatch ----

  /** Arguments 0..11 of op o (unused trailing ones 0); fixed arity, so nothing is allocated per call. */
  private setArgs(b: WorkerPool['block'], o: number, a0: number, a1: number, a2: number, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0, a9 = 0, a10 = 0, a11 = 0): void {
    b.setArg(o, 0, a0);
    b.setArg(o, 1, a1);
    b.setArg(o, 2, a2);
    b.setArg(o, 3, a3);
    b.setArg(o, 4, a4);
    b.setArg(o, 5, a5);
    b.setArg(o, 6, a6);
    b.setArg(o, 7, a7);
    b.setArg(o, 8, a8);
    b.setArg(o, 9, a9);
    b.setArg(o, 10, a10);
    b.setArg(o, 11, a11);
  }

  /** Weights of participants 0..active-1 (throughput or even); the rest of the n get none. */
  private setWeights(n: number, active: number): void {
    for (let p = 0; p < n; p++) this.weights[p] = p >= active ? 0 : this.balance === 'even' ? 1 : this.throughput.speeds[p]!;
  }

  private splitCount(pool: WorkerPool, total: number, align: number, kind: CallKind): void {
    const n = pool.workers + 1;
    this.setWeights(n, n);
    partitionRange(total, this.weights, n, align, pool.block.i32, pool.block.rangeBase(0));
    this.run(pool, 1, false, kind);
  }

  private worthSplitting(work: number): boolean {
    const min = this.options.minParallelMs ?? BARRIER_MARGIN * this.barrierMs;
    return min <= 0 || this.throughput.soloMs(work) >= min;
  }

  /** The pool, or undefined while there is none (closed, or rebuilding after a failure). */
  private activePool(): WorkerPool | undefined {
    const pool = this.pool;
    if (!pool) return undefined;
    const fault = pool.block.fault();
    if (fault) {
      // A worker died between calls: nothing is lost, so rebuild and carry on alone meanwhile.
      this.takeDown(pool, new WorkerFaultError(`worker thread ${fault.participant} failed between calls: ${fault.message}`, fault.participant, fault.kind));
      return undefined;
    }
    return pool;
  }

  /**
   * Starts the ops written into the control block on every worker, runs the coordinator's share,
   * and waits for all of them. With `learn`, each participant's time updates its speed. A call of
   * `kind` (of `jobs` kernel jobs) is counted in the call statistics; calibration passes none.
   */
  private run(pool: WorkerPool, opCount: number, learn: boolean, kind?: CallKind, jobs = 1): void {
    const b = pool.block;
    const i = b.i32;
    const tWake = performance.now();
    i[L.COMMAND] = L.CMD_RUN;
    i[L.OP_COUNT] = opCount;
    Atomics.store(i, L.PENDING, pool.workers);
    Atomics.add(i, L.GENERATION, 1);
    Atomics.notify(i, L.GENERATION);
    let ownError: unknown;
    const t0 = performance.now();
    try {
      runShare(this.fns, i, b.f64, L, 0, this.args);
    } catch (e) {
      ownError = e;
    }
    const t1 = performance.now();
    b.f64[L.ELAPSED] = t1 - t0;
    // Even when our own share failed, the workers must be done writing before anyone goes on.
    const fault = this.join(pool);
    if (fault) {
      this.takeDown(pool, fault);
      throw fault;
    }
    if (ownError !== undefined) throw ownError;
    this.parallelCalls++;
    if (kind !== undefined) this.callStats.split(kind, jobs, tWake, t0, t1, performance.now(), pool.workers + 1, b.f64, L.ELAPSED);
    if (learn) {
      for (let p = 0; p <= pool.workers; p++) this.throughput.observe(p, this.work[p]!, b.elapsed(p));
    }
  }

  /** Waits until every worker finished the dispatch; returns the failure if one did not. */
  private join(pool: WorkerPool): WorkerFaultError | undefined {
    const b = pool.block;
    const i = b.i32;
    let pending = Atomics.load(i, L.PENDING);
    for (let s = 0; pending !== 0 && s < this.spinIterations; s++) pending = Atomics.load(i, L.PENDING);
    const deadline = performance.now() + this.stallTimeoutMs;
    while (pending !== 0) {
      Atomics.wait(i, L.PENDING, pending, WAIT_SLICE_MS);
      pending = Atomics.load(i, L.PENDING);
      if (pending !== 0 && performance.now() > deadline) {
        return new WorkerFaultError(`${pending} worker thread(s) did not finish a kernel call within ${this.stallTimeoutMs} ms`, 0, 'stalled');
      }
    }
    const fault = b.fault();
    if (!fault) return undefined;
    const [head = '', ...stack] = fault.message.split('\n');
    const cause = new Error(head);
    if (stack.length > 0) cause.stack = `${head}\n${stack.join('\n')}`;
    const what = fault.kind === 'threw' ? 'threw' : fault.kind === 'exited' ? 'exited' : 'is gone';
    return new WorkerFaultError(`worker thread ${fault.participant} ${what} during a kernel call: ${head}`, fault.participant, fault.kind, { cause });
  }

  /** Retires a failed pool and starts a new one in the background. */
  private takeDown(pool: WorkerPool, error: Error): void {
    if (this.pool !== pool) return;
    this.pool = undefined;
    this.faults++;
    this.lastFault = error;
    const rebuild: Promise<void> = (async () => {
      await pool.destroy();
      if (this.closed) return;
      try {
        const fresh = await this.startPool();
        if (this.closed) await fresh.close();
        else this.pool = fresh;
      } catch (e) {
        this.lastFault = e instanceof Error ? e : new Error(String(e));
      }
    })().finally(() => {
      if (this.rebuilding === rebuild) this.rebuilding = undefined;
    });
    this.rebuilding = rebuild;
  }

  /**
   * Times `rounds` empty dispatches and returns the first quartile, in milliseconds: the cost when
   * nothing else competes for the cores, which a median taken while another process runs overstates.
   */
  private measureBarrier(pool: WorkerPool, rounds = 31): number {
    const i = pool.block.i32;
    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      i[L.COMMAND] = L.CMD_NOOP;
      i[L.OP_COUNT] = 0;
      Atomics.store(i, L.PENDING, pool.workers);
      Atomics.add(i, L.GENERATION, 1);
      Atomics.notify(i, L.GENERATION);
      const fault = this.join(pool);
      if (fault) {
        this.takeDown(pool, fault);
        throw fault;
      }
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[rounds >> 2]!;
  }

  // ---- lifecycle, statistics, test hooks ----

  stats(): ExecutorStats {
    const active = this.pool ? this.pool.workers + 1 : 1;
    const shares = this.balance === 'even' ? Array.from({ length: this.threads }, () => 1 / this.threads) : this.throughput.shares();
    return {
      threads: this.threads,
      activeThreads: active,
      parallelCalls: this.parallelCalls,
      serialCalls: this.serial.stats().serialCalls,
      calls: this.callStats.snapshot(),
      barrierMs: this.barrierMs,
      shares,
      faults: this.faults,
      lastFault: this.lastFault,
    };
  }

  resetStats(options?: { readonly timeSerialCalls?: boolean }): void {
    this.parallelCalls = 0;
    this.serial.resetStats(options);
  }

  async ready(): Promise<void> {
    while (this.rebuilding) await this.rebuilding;
  }

  /** Test hook: worker `participant` fails in the given way on its next dispatch. */
  injectFault(participant: number, kind: TestFault): void {
    const pool = this.pool;
    if (!pool) throw new Error('no worker pool is running');
    if (!(participant >= 1 && participant <= pool.workers)) throw new RangeError(`participant must be 1..${pool.workers}, got ${participant}`);
    const code = kind === 'throw' ? L.TEST_THROW : kind === 'exit' ? L.TEST_EXIT : L.TEST_HANG;
    Atomics.store(pool.block.i32, L.TEST_KIND, code);
    Atomics.store(pool.block.i32, L.TEST_TARGET, participant);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    await this.ready();
    await pool?.close();
  }
}
