// The worker thread's side of the pool (the piscina task): instantiate the kernel module on the shared
// memory once, then wait on the control block's generation counter and run this thread's share of each
// dispatch, until QUIT. Plain JavaScript, loaded as it is by piscina both from src/ (tests) and from
// dist/ (copied by the build): it knows no layout numbers of its own, they all come from
// workerData.layout (control-block.ts).
import { workerData } from 'node:worker_threads';
import { kernelFunctions, runShare, spinPoll, SPIN_CHANGED, SPIN_PREEMPTED } from './run-share.js';

/** The poll budget grows back from a preemption by at least this much (ms) per poll not preempted. */
const MIN_BUDGET_MS = 0.02;

/**
 * piscina's task: serve dispatches as participant `task.participant` until QUIT (resolves "quit").
 * A job that throws is reported in the control block and then rethrown, so piscina rejects this task
 * with the cause; process.exit() inside the worker is reported by the exit handler.
 */
export default function serve(task) {
  const { module, memory, control, layout: L, kernelNames } = workerData;
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
    if (Atomics.load(i32, L.JOIN_ASLEEP) !== 0) Atomics.notify(i32, L.PENDING);
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
  let budget = Atomics.load(i32, L.SPIN_US) / 1000;
  Atomics.store(i32, stateAt, L.STATE_READY);
  Atomics.add(i32, L.READY_COUNT, 1);
  Atomics.notify(i32, L.READY_COUNT);

  try {
    for (;;) {
      // Poll for a while first: during a forward pass the next dispatch follows within microseconds
      // to a few hundred (the coordinator's own small calls, JavaScript between kernels), and waking
      // from Atomics.wait costs 50-200 µs. The poll is bounded by time, not by a count of loads whose
      // speed varies, and after it the worker sleeps, so an idle model burns no core. When the clock
      // jumps between two polls the thread was descheduled: the cores are oversubscribed, and
      // polling would only take time from the coordinator, so it sleeps at once and polls less next
      // time (spinPoll).
      let g = Atomics.load(i32, L.GENERATION);
      if (g === seen) {
        const limit = Atomics.load(i32, L.SPIN_US) / 1000;
        const r = spinPoll(i32, L.GENERATION, seen, Math.min(budget, limit));
        g = Atomics.load(i32, L.GENERATION);
        // Halve on a preemption; grow back fast when a dispatch was caught, slowly when the core
        // stayed ours for the whole poll, so the budget recovers once the other load is gone.
        budget = r === SPIN_PREEMPTED ? budget / 2 : Math.min(limit, r === SPIN_CHANGED ? budget * 2 + MIN_BUDGET_MS : budget + MIN_BUDGET_MS);
      }
      while (g === seen) {
        Atomics.add(i32, L.SLEEPERS, 1);
        Atomics.wait(i32, L.GENERATION, seen);
        Atomics.sub(i32, L.SLEEPERS, 1);
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
