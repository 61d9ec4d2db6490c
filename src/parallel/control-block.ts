// The control block: one SharedArrayBuffer through which the coordinator hands kernel calls to the
// worker threads and they report back, without a message per operation.
//
// Layout (all offsets fixed; `CONTROL_LAYOUT` below is the one source, and is handed to the workers in
// their workerData so the plain-JS worker never repeats a number). "Participant" p numbers the threads
// taking part in a dispatch: 0 is the coordinator itself, 1..N-1 the workers.
//
//   Int32Array i32 over the whole buffer:
//   [0]   GENERATION   bumped (Atomics.add) by the coordinator to start a dispatch; workers Atomics.wait here
//   [1]   PENDING      workers yet to finish the current dispatch; each decrements it and notifies
//   [2]   COMMAND      RUN | QUIT | NOOP (the barrier probe) for the dispatch being started
//   [3]   OP_COUNT     ops in the dispatch (0..MAX_OPS); every participant runs its share of each in order
//   [4]   FAULT        0, or the participant index of the first worker that threw or exited; stored
//                      last, after FAULT_KIND and the error text, so a reader sees a whole report
//   [5]   FAULT_KIND   FAULT_THREW | FAULT_EXITED | FAULT_LOST (set by the pool's exit handler)
//   [6]   ERROR_LENGTH bytes of the UTF-8 error text at ERROR_BYTES
//   [7]   READY_COUNT  workers that instantiated the kernels and wait for work (Atomics.waitAsync here)
//   [8]   TEST_TARGET  test hook: participant that must fail on its next dispatch (0 = none)
//   [9]   TEST_KIND    test hook: TEST_THROW | TEST_EXIT | TEST_HANG
//   [10]  FAULT_CLAIM  the first failing thread claims it (compareExchange 0 → p) before writing a report
//   [11]  SPIN_US      microseconds a worker keeps polling GENERATION after a dispatch before it sleeps
//                      in Atomics.wait (read by the workers after each dispatch; 0 = sleep at once)
//   [12]  SLEEPERS     workers asleep (or about to be) in Atomics.wait on GENERATION: the coordinator
//                      notifies only when it is not 0 (a notify costs a system call, and waking a
//                      thread under load can cost the waker its core)
//   [13]  JOIN_ASLEEP  1 while the coordinator sleeps (or is about to) on PENDING: workers notify only then
//   Either flag is raised before the Atomics.wait that checks the awaited value, and read after the
//   other side's Atomics change of that value; with sequentially consistent atomics at least one of
//   the two sees the other, so no wake-up is lost.
//   [16 + 4p + 0]  STATE of participant p: STARTING | READY | GONE
//   [16 + 4p + 1]  SLOWDOWN percent (test hook: extra spin after each job, as a share of its own time)
//   [OPS + 12o + f]  op o (o < MAX_OPS), field f:
//          0 KERNEL index into the kernel-name list the workers got at start
//          1 MODE   MODE_RANGE: args[RANGE_ARG], args[RANGE_ARG+1] = the participant's [start, end)
//                   MODE_COUNT: args[RANGE_ARG] = end - start, and each pointer arg PTRk (-1 = none)
//                               advanced by start * STRIDEk bytes (rows of tokens, runs of elements)
//          2 RANGE_ARG   3 SCRATCH_ARG (-1 = none; advanced by p * SCRATCH_STRIDE bytes)   4 SCRATCH_STRIDE
//          5 PTR0  6 STRIDE0  7 PTR1  8 STRIDE1  9 PTR2  10 STRIDE2
//          11 COUNT_SCALE  MODE_COUNT: the count written is (end - start) × this (units of several
//                          elements, e.g. one quantization block, whose bytes are no whole multiple)
//   [RANGES + 2(o * MAX_PARTICIPANTS + p) + {0,1}]  [start, end) of participant p in op o (empty: end <= start)
//
//   Float64Array f64 over the same buffer, from byte F64_BYTE_OFFSET:
//   [ARGS + 16o + a]      argument a of op o's kernel (pointers, counts and floats all fit a double)
//   [ELAPSED + p]         milliseconds participant p spent on its share of the last dispatch
//
//   Bytes ERROR_BYTES .. +ERROR_BYTES_LENGTH: the failing worker's error, "Name: message\nstack".
//
// Ordering: the coordinator writes ops and ranges with plain stores, then Atomics.store(PENDING) and
// Atomics.add(GENERATION); a worker that sees the new generation through an atomic load also sees those
// stores (sequentially consistent atomics order the plain accesses around them). Kernels' writes to
// the wasm memory are published the same way by the worker's Atomics.sub(PENDING).

export const MAX_PARTICIPANTS = 64;
export const MAX_OPS = 4;
export const MAX_ARGS = 16;

const OPS = 16 + 4 * MAX_PARTICIPANTS;
const OP_INTS = 12;
const RANGES = OPS + OP_INTS * MAX_OPS;
const INT_COUNT = RANGES + 2 * MAX_OPS * MAX_PARTICIPANTS;
const F64_BYTE_OFFSET = Math.ceil((INT_COUNT * 4) / 8) * 8;
const F64_COUNT = MAX_OPS * MAX_ARGS + MAX_PARTICIPANTS;
const ERROR_BYTES = F64_BYTE_OFFSET + F64_COUNT * 8;
const ERROR_BYTES_LENGTH = 2048;

/** Every index and code of the control block, as plain numbers (structured-cloneable for workers). */
export const CONTROL_LAYOUT = {
  GENERATION: 0,
  PENDING: 1,
  COMMAND: 2,
  OP_COUNT: 3,
  FAULT: 4,
  FAULT_KIND: 5,
  ERROR_LENGTH: 6,
  READY_COUNT: 7,
  TEST_TARGET: 8,
  TEST_KIND: 9,
  FAULT_CLAIM: 10,
  SPIN_US: 11,
  SLEEPERS: 12,
  JOIN_ASLEEP: 13,

  PARTICIPANTS: 16,
  PARTICIPANT_INTS: 4,
  P_STATE: 0,
  P_SLOWDOWN: 1,

  OPS,
  OP_INTS,
  OP_KERNEL: 0,
  OP_MODE: 1,
  OP_RANGE_ARG: 2,
  OP_SCRATCH_ARG: 3,
  OP_SCRATCH_STRIDE: 4,
  OP_PTR0: 5, // PTRk at OP_PTR0 + 2k, STRIDEk at OP_PTR0 + 2k + 1
  OP_PTR_COUNT: 3,
  OP_COUNT_SCALE: 11,

  RANGES,
  MAX_PARTICIPANTS,
  MAX_OPS,
  MAX_ARGS,

  F64_BYTE_OFFSET,
  ARGS: 0,
  ELAPSED: MAX_OPS * MAX_ARGS,
  ERROR_BYTES,
  ERROR_BYTES_LENGTH,
  BYTE_LENGTH: ERROR_BYTES + ERROR_BYTES_LENGTH,

  CMD_RUN: 1,
  CMD_QUIT: 2,
  CMD_NOOP: 3,

  MODE_RANGE: 0,
  MODE_COUNT: 1,

  STATE_STARTING: 0,
  STATE_READY: 1,
  STATE_GONE: 2,

  FAULT_THREW: 1,
  FAULT_EXITED: 2,
  FAULT_LOST: 3,

  TEST_THROW: 1,
  TEST_EXIT: 2,
  TEST_HANG: 3,
} as const;

export type ControlLayout = typeof CONTROL_LAYOUT;
const L = CONTROL_LAYOUT;

/** How a failed worker failed. */
export type FaultKind = 'threw' | 'exited' | 'lost';

/** Typed views over one control block, with the coordinator-side writes. */
export class ControlBlock {
  readonly buffer: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  private readonly errorBytes: Uint8Array;

  constructor() {
    this.buffer = new SharedArrayBuffer(L.BYTE_LENGTH);
    this.i32 = new Int32Array(this.buffer, 0, L.F64_BYTE_OFFSET / 4);
    this.f64 = new Float64Array(this.buffer, L.F64_BYTE_OFFSET, F64_COUNT);
    this.errorBytes = new Uint8Array(this.buffer, L.ERROR_BYTES, L.ERROR_BYTES_LENGTH);
  }

  /** Writes op `o`: a kernel run over per-participant [start, end) written as two arguments. */
  setRangeOp(o: number, kernel: number, rangeArg: number, scratchArg = -1, scratchStride = 0): void {
    const b = L.OPS + o * L.OP_INTS;
    const i = this.i32;
    i[b + L.OP_KERNEL] = kernel;
    i[b + L.OP_MODE] = L.MODE_RANGE;
    i[b + L.OP_RANGE_ARG] = rangeArg;
    i[b + L.OP_SCRATCH_ARG] = scratchArg;
    i[b + L.OP_SCRATCH_STRIDE] = scratchStride;
    for (let k = 0; k < L.OP_PTR_COUNT; k++) i[b + L.OP_PTR0 + 2 * k] = -1;
  }

  /**
   * Writes op `o`: a kernel run over per-participant [start, end) given as a count (at countArg) and
   * pointers advanced by start × stride bytes. `ptrs` holds up to three [argIndex, strideBytes] pairs;
   * the count written is (end - start) × countScale.
   */
  setCountOp(o: number, kernel: number, countArg: number, ptrs: readonly (readonly [number, number])[], countScale = 1): void {
    const b = L.OPS + o * L.OP_INTS;
    const i = this.i32;
    i[b + L.OP_KERNEL] = kernel;
    i[b + L.OP_MODE] = L.MODE_COUNT;
    i[b + L.OP_RANGE_ARG] = countArg;
    i[b + L.OP_SCRATCH_ARG] = -1;
    i[b + L.OP_SCRATCH_STRIDE] = 0;
    i[b + L.OP_COUNT_SCALE] = countScale;
    for (let k = 0; k < L.OP_PTR_COUNT; k++) {
      const p = ptrs[k];
      i[b + L.OP_PTR0 + 2 * k] = p ? p[0] : -1;
      i[b + L.OP_PTR0 + 2 * k + 1] = p ? p[1] : 0;
    }
  }

  /** Argument `a` of op `o`. */
  setArg(o: number, a: number, value: number): void {
    this.f64[L.ARGS + o * L.MAX_ARGS + a] = value;
  }

  /** Int32 offset of op o's range pairs (participant p at + 2p). */
  rangeBase(o: number): number {
    return L.RANGES + 2 * o * L.MAX_PARTICIPANTS;
  }

  elapsed(p: number): number {
    return this.f64[L.ELAPSED + p]!;
  }

  participantState(p: number): number {
    return Atomics.load(this.i32, L.PARTICIPANTS + p * L.PARTICIPANT_INTS + L.P_STATE);
  }

  /** How long workers poll for the next dispatch before sleeping, in microseconds. */
  setSpinMicros(us: number): void {
    Atomics.store(this.i32, L.SPIN_US, us);
  }

  setSlowdownPercent(p: number, percent: number): void {
    Atomics.store(this.i32, L.PARTICIPANTS + p * L.PARTICIPANT_INTS + L.P_SLOWDOWN, percent);
  }

  /** The first fault recorded, or undefined. */
  fault(): { participant: number; kind: FaultKind; message: string } | undefined {
    const p = Atomics.load(this.i32, L.FAULT);
    if (p === 0) return undefined;
    const k = Atomics.load(this.i32, L.FAULT_KIND);
    const kind: FaultKind = k === L.FAULT_THREW ? 'threw' : k === L.FAULT_EXITED ? 'exited' : 'lost';
    const n = Math.min(Atomics.load(this.i32, L.ERROR_LENGTH), L.ERROR_BYTES_LENGTH);
    // TextDecoder refuses views of shared memory; copy first.
    const message = new TextDecoder().decode(this.errorBytes.slice(0, n));
    return { participant: p, kind, message };
  }

  /**
   * Records that a worker is gone from outside it (the pool's exit or error handler), unless a fault
   * is already recorded; wakes a coordinator waiting on PENDING.
   */
  markLost(p: number, message: string): void {
    Atomics.store(this.i32, L.PARTICIPANTS + p * L.PARTICIPANT_INTS + L.P_STATE, L.STATE_GONE);
    if (Atomics.compareExchange(this.i32, L.FAULT_CLAIM, 0, p) === 0) {
      const bytes = new TextEncoder().encode(message).subarray(0, L.ERROR_BYTES_LENGTH);
      this.errorBytes.set(bytes);
      Atomics.store(this.i32, L.ERROR_LENGTH, bytes.length);
      Atomics.store(this.i32, L.FAULT_KIND, L.FAULT_LOST);
      Atomics.store(this.i32, L.FAULT, p);
    }
    Atomics.notify(this.i32, L.PENDING);
  }
}
