// The worker thread's side of the pool: instantiate the kernel module on the shared memory once, then
// wait on the control block's generation counter and run this thread's share of each dispatch, until
// QUIT. Plain JavaScript, loaded as it is by piscina both from src/ (tests) and from dist/ (copied by
// the build): it knows no layout numbers of its own, they all come from workerData.layout
// (control-block.ts). `runShare` is also what the coordinator runs for its own share.
import { workerData } from 'node:worker_threads';

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
      args[at] = end - start;
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

/**
 * piscina's task: serve dispatches as participant `task.participant` until QUIT (resolves "quit").
 * A job that throws is reported in the control block and then rethrown, so piscina rejects this task
 * with the cause; process.exit() inside the worker is reported by the exit handler.
 */
export default function serve(task) {
  const { module, memory, control, layout: L, kernelNames, spinIterations } = workerData;
  const p = task.participant;
  const i32 = new Int32Array(control, 0, L.F64_BYTE_OFFSET / 4);
  const f64 = new Float64Array(control, L.F64_BYTE_OFFSET, L.MAX_OPS * L.MAX_ARGS + L.MAX_PARTICIPANTS);
  const errorBytes = new Uint8Array(control, L.ERROR_BYTES, L.ERROR_BYTES_LENGTH);
  const stateAt = L.PARTICIPANTS + p * L.PARTICIPANT_INTS + L.P_STATE;
  const slowdownAt = L.PARTICIPANTS + p * L.PARTICIPANT_INTS + L.P_SLOWDOWN;
  let inJob = false;
  let quitting = false;

  const report = (kind, text) => {
    if (Atomics.compareExchange(i32, L.FAULT_CLAIM, 0, p) !== 0) return;
    const bytes = new TextEncoder().encode(text).subarray(0, L.ERROR_BYTES_LENGTH);
    errorBytes.set(bytes);
    Atomics.store(i32, L.ERROR_LENGTH, bytes.length);
    Atomics.store(i32, L.FAULT_KIND, kind);
    Atomics.store(i32, L.FAULT, p);
  };
  const finishJob = () => {
    inJob = false;
    Atomics.sub(i32, L.PENDING, 1);
    Atomics.notify(i32, L.PENDING);
  };
  const onExit = (code) => {
    if (quitting) return;
    report(L.FAULT_EXITED, `worker thread ${p} exited with code ${code}`);
    Atomics.store(i32, stateAt, L.STATE_GONE);
    if (inJob) finishJob();
    else Atomics.notify(i32, L.PENDING);
  };
  process.on('exit', onExit);

  const fns = kernelFunctions(new WebAssembly.Instance(module, { env: { memory } }).exports, kernelNames);
  const args = new Float64Array(L.MAX_ARGS);
  let seen = Atomics.load(i32, L.GENERATION);
  Atomics.store(i32, stateAt, L.STATE_READY);
  Atomics.add(i32, L.READY_COUNT, 1);
  Atomics.notify(i32, L.READY_COUNT);

  try {
    for (;;) {
      // Spin a little first: the next dispatch usually follows within microseconds during a step.
      let g = Atomics.load(i32, L.GENERATION);
      for (let s = 0; g === seen && s < spinIterations; s++) g = Atomics.load(i32, L.GENERATION);
      while (g === seen) {
        Atomics.wait(i32, L.GENERATION, seen);
        g = Atomics.load(i32, L.GENERATION);
      }
      seen = g;
      const command = Atomics.load(i32, L.COMMAND);
      if (command === L.CMD_QUIT) {
        quitting = true;
        Atomics.store(i32, stateAt, L.STATE_GONE);
        finishJob();
        return 'quit';
      }
      inJob = true;
      const t0 = performance.now();
      try {
        if (Atomics.load(i32, L.TEST_TARGET) === p) failForTest(i32, L);
        if (command === L.CMD_RUN) runShare(fns, i32, f64, L, p, args);
        const slowdown = Atomics.load(i32, slowdownAt);
        if (slowdown > 0) {
          const until = performance.now() + ((performance.now() - t0) * slowdown) / 100;
          while (performance.now() < until);
        }
        f64[L.ELAPSED + p] = performance.now() - t0;
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        report(L.FAULT_THREW, `${err.name}: ${err.message}${err.stack ? `\n${err.stack}` : ''}`);
        Atomics.store(i32, stateAt, L.STATE_GONE);
        finishJob();
        throw err;
      }
      finishJob();
    }
  } finally {
    if (!inJob) process.off('exit', onExit);
  }
}

/** Test hooks: fail in the way TEST_KIND asks, once. */
function failForTest(i32, L) {
  const kind = Atomics.load(i32, L.TEST_KIND);
  Atomics.store(i32, L.TEST_TARGET, 0);
  if (kind === L.TEST_THROW) throw new Error('test hook: this worker was told to throw');
  if (kind === L.TEST_EXIT) process.exit(3);
  if (kind === L.TEST_HANG) for (;;) Atomics.wait(i32, L.TEST_KIND, kind);
}
