// The one implementation of "run participant p's share of a dispatch", shared by the worker threads
// (kernel-worker.js) and the coordinator (parallel-executor.ts). Plain JavaScript with no imports, so
// that piscina can load it in a worker as it is, from src/ and from dist/ alike, and a browser worker
// can too.

/**
 * Runs participant p's share of every op of the current dispatch: reads each op's arguments from the
 * control block, puts p's range into them (as a [start, end) pair, or as a count with pointers moved
 * to the start), and calls the kernel. `args` is a scratch Float64Array of layout.MAX_ARGS.
 */
export function runShare(fns, i32, f64, L, p, args) {
  const opCount = i32[L.OP_COUNT];
  for (let o = 0; o < opCount; o++) {
    const r = L.RANGES + 2 * (o * L.MAX_PARTICIPANTS + p);
    const start = i32[r];
    const end = i32[r + 1];
    if (end <= start) continue;
    const ob = L.OPS + o * L.OP_INTS;
    const ab = L.ARGS + o * L.MAX_ARGS;
    for (let a = 0; a < L.MAX_ARGS; a++) args[a] = f64[ab + a];
    const at = i32[ob + L.OP_RANGE_ARG];
    if (i32[ob + L.OP_MODE] === L.MODE_RANGE) {
      args[at] = start;
      args[at + 1] = end;
      const sa = i32[ob + L.OP_SCRATCH_ARG];
      if (sa >= 0) args[sa] += p * i32[ob + L.OP_SCRATCH_STRIDE];
    } else {
      args[at] = (end - start) * i32[ob + L.OP_COUNT_SCALE];
      for (let k = 0; k < L.OP_PTR_COUNT; k++) {
        const pa = i32[ob + L.OP_PTR0 + 2 * k];
        if (pa >= 0) args[pa] += start * i32[ob + L.OP_PTR0 + 2 * k + 1];
      }
    }
    // Wasm functions ignore arguments past their own.
    fns[i32[ob + L.OP_KERNEL]](args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9], args[10], args[11], args[12], args[13], args[14], args[15]);
  }
}

/** The kernel functions named in `names`, in that order; throws naming a missing one. */
export function kernelFunctions(exports, names) {
  return names.map((name) => {
    const fn = exports[name];
    if (typeof fn !== 'function') throw new Error(`the kernel module has no export "${name}"`);
    return fn;
  });
}

/** spinPoll results: the value changed, the time ran out, or the thread was descheduled meanwhile. */
export const SPIN_CHANGED = 0;
export const SPIN_TIMEOUT = 1;
export const SPIN_PREEMPTED = 2;
/** Clock gap between two polls (ms) that means the thread lost its core meanwhile. */
const PREEMPTED_GAP_MS = 0.05;

/**
 * Polls i32[index] while it equals `value`, for at most `ms` milliseconds; reads the clock every 64
 * loads. Returns SPIN_CHANGED, SPIN_TIMEOUT, or SPIN_PREEMPTED when two clock reads lie further apart
 * than a run of 64 loads can take on a core of its own.
 */
export function spinPoll(i32, index, value, ms) {
  if (!(ms > 0)) return Atomics.load(i32, index) === value ? SPIN_TIMEOUT : SPIN_CHANGED;
  let last = performance.now();
  const until = last + ms;
  for (let s = 1; ; s++) {
    if (Atomics.load(i32, index) !== value) return SPIN_CHANGED;
    if ((s & 63) === 0) {
      const now = performance.now();
      if (now - last > PREEMPTED_GAP_MS) return SPIN_PREEMPTED;
      if (now >= until) return SPIN_TIMEOUT;
      last = now;
    }
  }
}
