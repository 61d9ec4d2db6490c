// The parallel executor: the coordinating thread splits each kernel call into per-thread ranges (rows of
// a matmul, heads of attention, tokens of a norm or conversion, aligned runs of elements), writes them
// into the control block, wakes the workers with one notify, runs its own share, and joins them at a
// barrier. Shares follow each thread's measured throughput; calls too small to repay the barrier run on
// the coordinator alone, judged by the coordinator's own speed on that kind of call and the barrier
// cost as split calls keep measuring it. Between dispatches workers poll for a while before sleeping,
// so the calls of one forward pass do not each pay a wake-up. A worker that throws, exits or stalls
// fails the call with the cause, and the pool is rebuilt in the background while calls run on the
// coordinator alone meanwhile.
//
// The coordinator blocks in Atomics.wait, which Node allows on its main thread and browsers allow in
// workers (where the browser port runs the engine); nothing here needs to be the process's main thread.
import type { SelectedKernels } from '../runtime/kernels.js';
import { BARRIER_MIN_MS, BarrierCost } from './barrier-cost.js';
import { CALL_KINDS, CallStats, KIND_INDEX } from './call-stats.js';
import type { CallKind } from './call-stats.js';
import { CONTROL_LAYOUT as L, MAX_OPS, MAX_PARTICIPANTS } from './control-block.js';
import type { AttentionJob, ConverterKernelName, Executor, ExecutorStats, MatmulJob, MatmulKernelName, NormConverterKernelName, ParallelOptions } from './executor.js';
import { SerialExecutor } from './executor.js';
import { kernelFunctions, runShare, spinPoll, SPIN_CHANGED, SPIN_PREEMPTED } from './run-share.js';
import type { KernelFunction } from './run-share.js';
import { ELEMENT_ALIGN, ROW_ALIGN, partitionRange } from './partition.js';
import { WorkerPool } from './pool.js';
import { KindSpeeds, ThroughputModel } from './throughput.js';

const MATMUL_KERNELS: readonly MatmulKernelName[] = [
  'matmulF32', 'matmulF16', 'matmulBF16', 'matmulQ4_0', 'matmulQ4_1', 'matmulQ5_0', 'matmulQ5_1',
  'matmulQ8_0', 'matmulQ2_K', 'matmulQ3_K', 'matmulQ4_K', 'matmulQ5_K', 'matmulQ6_K',
];
const CONVERTER_KERNELS: readonly ConverterKernelName[] = ['quantizeRowsQ8_0', 'quantizeRowsQ8_1', 'quantizeRowsQ8_K', 'convertRowsF16', 'convertRowsBF16'];
const NORM_CONVERTER_KERNELS: readonly NormConverterKernelName[] = ['rmsNormToQ8_0', 'rmsNormToQ8_1', 'rmsNormToQ8_K', 'rmsNormToF16', 'rmsNormToBF16'];
/** The exports a dispatch can name; a kernel's id in the control block is its index here. */
const DISPATCH_KERNELS: readonly string[] = [
  ...MATMUL_KERNELS, ...CONVERTER_KERNELS, 'rmsNorm', 'attention', 'siluMulRows', 'addRows', 'attentionKvF16', 'attentionKvInt8',
  ...NORM_CONVERTER_KERNELS,
  'attentionTiled',
  'attentionKvF16Tiled', 'attentionKvInt8Tiled',
];

/** How long one Atomics.wait of the coordinator lasts before it looks at the clock again. */
const WAIT_SLICE_MS = 50;
const DEFAULT_STALL_TIMEOUT_MS = 60_000;
/**
 * How long a waiting thread polls before it sleeps: longer than the gaps between the kernel calls of
 * one forward pass (the coordinator's unsplit calls and JavaScript between them, tens to hundreds of
 * µs), short enough that workers sleep soon after generation stops.
 */
const DEFAULT_SPIN_MICROS = 1000;
/** The join's poll budget grows back from a preemption by at least this much (ms) per join not preempted. */
const MIN_JOIN_BUDGET_MS = 0.02;
/** A split must be expected to save this many barrier costs. */
const BARRIER_MARGIN = 3;
/**
 * Of the calls judged too small only because of the current barrier estimate, every this-many-th is
 * split anyway, so that an estimate inflated by a bad spell keeps getting measurements to come down.
 */
const PROBE_EVERY = 64;
/** Units of a single-row conversion split: one block of the activation format (16 f32 for F16/BF16). */
const CONVERT_BLOCK: Readonly<Record<ConverterKernelName, number>> = {
  quantizeRowsQ8_0: 32, quantizeRowsQ8_1: 32, quantizeRowsQ8_K: 256, convertRowsF16: 16, convertRowsBF16: 16,
};

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
  /** The coordinator's own speed per kind of call, for the decision to split. */
  private readonly kindSpeeds = new KindSpeeds(CALL_KINDS.length);
  private barrier = new BarrierCost(0);
  private probeCountdown = PROBE_EVERY;
  /** Per-participant weights of the split being written, and the work units each got. */
  private readonly weights: Float64Array;
  private readonly work: Float64Array;
  private readonly args = new Float64Array(L.MAX_ARGS);
  private readonly balance: 'throughput' | 'even';
  private readonly stallTimeoutMs: number;
  private readonly spinMicros: number;
  /** How long the next join polls before sleeping (ms): up to spinMicros, halved on preemption. */
  private joinBudgetMs: number;
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
    if (options.spinMicros !== undefined && !(Number.isInteger(options.spinMicros) && options.spinMicros >= 0 && options.spinMicros <= 1_000_000)) {
      throw new RangeError(`parallel.spinMicros must be an integer from 0 to 1000000, got ${options.spinMicros}`);
    }
    this.balance = options.balance ?? 'throughput';
    this.stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.spinMicros = options.spinMicros ?? DEFAULT_SPIN_MICROS;
    this.joinBudgetMs = this.spinMicros / 1000;
  }

  /** Starts threads - 1 workers and measures the barrier. */
  static async start(kernels: SelectedKernels, memory: WebAssembly.Memory, threads: number, options: ParallelOptions = {}): Promise<ParallelExecutor> {
    if (!Number.isInteger(threads) || threads < 2 || threads > MAX_PARTICIPANTS) {
      throw new RangeError(`a parallel executor takes 2 to ${MAX_PARTICIPANTS} threads, got ${threads}`);
    }
    const ex = new ParallelExecutor(kernels, memory, threads, options);
    ex.pool = await ex.startPool();
    try {
      ex.barrier = new BarrierCost(ex.measureBarrier(ex.pool));
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
      spinMicros: this.spinMicros,
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
    const pool = jobs.length <= MAX_OPS && this.worthSplitting('matmul', total) ? this.activePool() : undefined;
    if (!pool) {
      const t0 = performance.now();
      this.serial.matmuls(jobs);
      return this.timedAlone('matmul', total, t0);
    }
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
    const pool = j.nHeads > 1 && j.scratchSlots > 1 && this.worthSplitting('attention', work) ? this.activePool() : undefined;
    if (!pool) {
      const t0 = performance.now();
      this.serial.attention(j);
      return this.timedAlone('attention', work, t0);
    }
    const b = pool.block;
    const n = pool.workers + 1;
    // Each participant needs its own scratch slot, so at most scratchSlots of them take part.
    this.setWeights(n, Math.min(n, j.scratchSlots, j.nHeads));
    b.setRangeOp(0, this.kernelIds.get(j.kernel ?? 'attention')!, 12, 11, j.scratchStride);
    this.setArgs(b, 0, j.q, j.k, j.v, j.out, j.nTok, j.nHeads, j.nKVHeads, j.headDim, j.kvStride, j.pos0, j.scale, j.scratch);
    partitionRange(j.nHeads, this.weights, n, 1, b.i32, b.rangeBase(0));
    this.work.fill(0);
    this.work[0] = (work * (b.i32[b.rangeBase(0) + 1]! - b.i32[b.rangeBase(0)]!)) / j.nHeads;
    this.run(pool, 1, false, 'attention');
  }

  convertRows(kernel: ConverterKernelName, x: number, dst: number, cols: number, nTok: number, dstRowBytes: number): void {
    const work = 2 * cols * nTok;
    // One token is split by blocks of its activation format (each block is quantized on its own).
    const block = CONVERT_BLOCK[kernel];
    const blocks = cols / block;
    const blockBytes = dstRowBytes / blocks;
    const splittable = nTok > 1 || (Number.isInteger(blocks) && blocks >= 2 && Number.isInteger(blockBytes));
    const pool = splittable && this.worthSplitting('convert', work) ? this.activePool() : undefined;
    if (!pool) {
      const t0 = performance.now();
      this.serial.convertRows(kernel, x, dst, cols, nTok);
      return this.timedAlone('convert', work, t0);
    }
    const b = pool.block;
    this.setArgs(b, 0, x, dst, cols, nTok);
    if (nTok > 1) {
      b.setCountOp(0, this.kernelIds.get(kernel)!, 3, [[0, cols * 4], [1, dstRowBytes]]);
      this.splitCount(pool, nTok, 1, 'convert', 2 * cols);
    } else {
      b.setCountOp(0, this.kernelIds.get(kernel)!, 2, [[0, block * 4], [1, blockBytes]], block);
      this.splitCount(pool, blocks, 1, 'convert', 2 * block);
    }
  }

  rmsNorm(x: number, weight: number, out: number, cols: number, nTok: number, eps: number): void {
    const work = 2 * cols * nTok;
    const pool = nTok > 1 && this.worthSplitting('norm', work) ? this.activePool() : undefined;
    if (!pool) {
      const t0 = performance.now();
      this.serial.rmsNorm(x, weight, out, cols, nTok, eps);
      return this.timedAlone('norm', work, t0);
    }
    const b = pool.block;
    b.setCountOp(0, this.kernelIds.get('rmsNorm')!, 4, [[0, cols * 4], [2, cols * 4]]);
    this.setArgs(b, 0, x, weight, out, cols, nTok, eps);
    this.splitCount(pool, nTok, 1, 'norm', 2 * cols);
  }

  rmsNormConvert(kernel: NormConverterKernelName, x: number, weight: number, out: number, dst: number, cols: number, nTok: number, eps: number, dstRowBytes: number): void {
    // Split by tokens only, as rmsNorm: a row's scale needs the whole row. Counted as a norm, its work
    // the norm's and the conversion's together.
    const work = 4 * cols * nTok;
    const pool = nTok > 1 && this.worthSplitting('norm', work) ? this.activePool() : undefined;
    if (!pool) {
      const t0 = performance.now();
      this.serial.rmsNormConvert(kernel, x, weight, out, dst, cols, nTok, eps);
      return this.timedAlone('norm', work, t0);
    }
    const b = pool.block;
    b.setCountOp(0, this.kernelIds.get(kernel)!, 5, [[0, cols * 4], [2, cols * 4], [3, dstRowBytes]]);
    this.setArgs(b, 0, x, weight, out, dst, cols, nTok, eps);
    this.splitCount(pool, nTok, 1, 'norm', 4 * cols);
  }

  siluMulRows(gate: number, up: number, out: number, cols: number, nTok: number): void {
    // Several tokens split by rows; one token by runs of ELEMENT_ALIGN values, which the kernel's
    // vector body computes exactly as in the whole row (only the row's last cols % 16 values take its
    // scalar tail, and they stay in the last run).
    const work = 4 * cols * nTok;
    const pool = (nTok > 1 || cols >= 2 * ELEMENT_ALIGN) && this.worthSplitting('swiglu', work) ? this.activePool() : undefined;
    if (!pool) {
      const t0 = performance.now();
      this.serial.siluMulRows(gate, up, out, cols, nTok);
      return this.timedAlone('swiglu', work, t0);
    }
    const b = pool.block;
    this.setArgs(b, 0, gate, up, out, cols, nTok);
    if (nTok > 1) {
      b.setCountOp(0, this.kernelIds.get('siluMulRows')!, 4, [[0, cols * 4], [1, cols * 4], [2, cols * 4]]);
      this.splitCount(pool, nTok, 1, 'swiglu', 4 * cols);
    } else {
      b.setCountOp(0, this.kernelIds.get('siluMulRows')!, 3, [[0, 4], [1, 4], [2, 4]]);
      this.splitCount(pool, cols, ELEMENT_ALIGN, 'swiglu', 4);
    }
  }

  addRows(dst: number, src: number, n: number): void {
    const pool = n >= 2 * ELEMENT_ALIGN && this.worthSplitting('add', n) ? this.activePool() : undefined;
    if (!pool) {
      const t0 = performance.now();
      this.serial.addRows(dst, src, n);
      return this.timedAlone('add', n, t0);
    }
    const b = pool.block;
    b.setCountOp(0, this.kernelIds.get('addRows')!, 2, [[0, 4], [1, 4]]);
    this.setArgs(b, 0, dst, src, n);
    this.splitCount(pool, n, ELEMENT_ALIGN, 'add', 1);
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
    this.kindSpeeds.observe(KIND_INDEX.matmul, workSum[0]!, msSum[0]!);
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

  /** Splits op 0 over `total` units of `unitWork` work each and runs it. */
  private splitCount(pool: WorkerPool, total: number, align: number, kind: CallKind, unitWork: number): void {
    const n = pool.workers + 1;
    const b = pool.block;
    this.setWeights(n, n);
    partitionRange(total, this.weights, n, align, b.i32, b.rangeBase(0));
    this.work.fill(0);
    this.work[0] = (b.i32[b.rangeBase(0) + 1]! - b.i32[b.rangeBase(0)]!) * unitWork;
    this.run(pool, 1, false, kind);
  }

  /** Whether a call of `kind` and `work` units is expected to finish sooner split than alone. */
  private worthSplitting(kind: CallKind, work: number): boolean {
    const fixed = this.options.minParallelMs;
    if (fixed !== undefined) return fixed <= 0 || this.throughput.soloMs(work) >= fixed;
    const solo = this.kindSpeeds.soloMs(KIND_INDEX[kind], work, this.throughput);
    if (solo >= BARRIER_MARGIN * this.barrier.ms) return true;
    // Too small for the current estimate, but worth it were the barrier at its floor: now and then
    // split anyway, to measure the barrier again.
    if (solo >= BARRIER_MARGIN * BARRIER_MIN_MS && --this.probeCountdown <= 0) {
      this.probeCountdown = PROBE_EVERY;
      return true;
    }
    return false;
  }

  /** A call of `kind` ran on the coordinator alone from t0: its time teaches that kind's speed. */
  private timedAlone(kind: CallKind, work: number, t0: number): void {
    this.kindSpeeds.observe(KIND_INDEX[kind], work, performance.now() - t0);
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
    if (Atomics.load(i, L.SLEEPERS) !== 0) Atomics.notify(i, L.GENERATION);
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
    if (kind !== undefined) {
      const t2 = performance.now();
      this.callStats.split(kind, jobs, tWake, t0, t1, t2, pool.workers + 1, b.f64, L.ELAPSED);
      let slowest = 0;
      for (let p = 0; p <= pool.workers; p++) slowest = Math.max(slowest, b.elapsed(p));
      this.barrier.observe(t2 - tWake - slowest);
      this.kindSpeeds.observe(KIND_INDEX[kind], this.work[0]!, t1 - t0);
    }
    if (learn) {
      for (let p = 0; p <= pool.workers; p++) this.throughput.observe(p, this.work[p]!, b.elapsed(p));
    }
  }

  /** Waits until every worker finished the dispatch; returns the failure if one did not. */
  private join(pool: WorkerPool): WorkerFaultError | undefined {
    const b = pool.block;
    const i = b.i32;
    let pending = Atomics.load(i, L.PENDING);
    if (pending !== 0) {
      // Poll (the workers usually finish within microseconds of us), unless that proved to steal
      // the core from them: then sleep at once and poll less next time, as the workers do.
      const limit = this.spinMicros / 1000;
      const until = performance.now() + Math.min(this.joinBudgetMs, limit);
      let r: number = SPIN_CHANGED;
      while (pending !== 0 && r === SPIN_CHANGED) {
        r = spinPoll(i, L.PENDING, pending, until - performance.now());
        pending = Atomics.load(i, L.PENDING);
      }
      const b = this.joinBudgetMs;
      this.joinBudgetMs = r === SPIN_PREEMPTED ? b / 2 : Math.min(limit, pending === 0 ? b * 2 + MIN_JOIN_BUDGET_MS : b + MIN_JOIN_BUDGET_MS);
    }
    const deadline = performance.now() + this.stallTimeoutMs;
    while (pending !== 0) {
      Atomics.store(i, L.JOIN_ASLEEP, 1);
      Atomics.wait(i, L.PENDING, pending, WAIT_SLICE_MS);
      Atomics.store(i, L.JOIN_ASLEEP, 0);
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
      barrierMs: this.barrier.ms,
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
