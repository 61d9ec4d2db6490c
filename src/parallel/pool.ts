// The worker pool's lifecycle: piscina starts the worker threads (each given the compiled kernel
// module, the shared wasm memory and the control block once, through workerData), runs one endless
// `serve` task on each, reports their deaths into the control block, and terminates them. The hot
// path never goes through piscina: dispatches travel through the control block only.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { CONTROL_LAYOUT as L, ControlBlock } from './control-block.js';

/** How long the workers may take to instantiate the kernels before start() gives up. */
const START_TIMEOUT_MS = 60_000;

export interface WorkerPoolOptions {
  /** Worker threads (the coordinator is not one of them). */
  readonly workers: number;
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
  /** Kernel exports the dispatches may name, by index. */
  readonly kernelNames: readonly string[];
  /** Microseconds a worker polls for the next dispatch before it sleeps in Atomics.wait. */
  readonly spinMicros: number;
}

export class WorkerPool {
  /** The first error a worker's task failed with, if any. */
  failure: Error | undefined;
  private destroyed: Promise<void> | undefined;

  private constructor(
    readonly block: ControlBlock,
    readonly workers: number,
    private readonly piscina: Piscina,
  ) {}

  /** Starts the workers and resolves once every one of them waits for work. */
  static async start(options: WorkerPoolOptions): Promise<WorkerPool> {
    const block = new ControlBlock();
    block.setSpinMicros(options.spinMicros);
    const piscina = new Piscina({
      filename: fileURLToPath(new URL('./kernel-worker.js', import.meta.url)),
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      atomics: 'disabled',
      workerData: {
        module: options.module,
        memory: options.memory,
        control: block.buffer,
        layout: L,
        kernelNames: options.kernelNames,
      },
    });
    const pool = new WorkerPool(block, options.workers, piscina);
    // A worker that dies with no task of ours running would otherwise be an unhandled 'error' event.
    piscina.on('error', (e: Error) => {
      pool.failure ??= e;
    });
    for (let p = 1; p <= options.workers; p++) {
      piscina.run({ participant: p }).then(
        () => undefined,
        (e: unknown) => {
          const err = e instanceof Error ? e : new Error(String(e));
          pool.failure ??= err;
          // The worker usually reported itself already; this covers the deaths it could not see.
          block.markLost(p, `worker thread ${p} is gone: ${err.message}`);
        },
      );
    }
    try {
      await pool.whenReady();
    } catch (e) {
      await pool.destroy();
      throw e;
    }
    return pool;
  }

  /** Number of workers waiting for work or working. */
  get readyCount(): number {
    return Atomics.load(this.block.i32, L.READY_COUNT);
  }

  private async whenReady(): Promise<void> {
    const i32 = this.block.i32;
    const deadline = performance.now() + START_TIMEOUT_MS;
    for (;;) {
      const fault = this.block.fault();
      if (fault || this.failure) {
        const why = fault?.message ?? this.failure!.message;
        throw new Error(`a worker thread failed while starting: ${why}`, { cause: this.failure });
      }
      const ready = Atomics.load(i32, L.READY_COUNT);
      if (ready >= this.workers) return;
      if (performance.now() > deadline) throw new Error(`worker threads did not start within ${START_TIMEOUT_MS} ms (${ready} of ${this.workers} ready)`);
      await waitForChange(i32, L.READY_COUNT, ready, 20);
    }
  }

  /** Asks the workers to return from their serve loops, then terminates them. */
  async close(): Promise<void> {
    const i32 = this.block.i32;
    Atomics.store(i32, L.COMMAND, L.CMD_QUIT);
    Atomics.store(i32, L.PENDING, this.workers);
    Atomics.add(i32, L.GENERATION, 1);
    Atomics.notify(i32, L.GENERATION);
    await this.destroy();
  }

  /** Terminates every worker, whatever it is doing (idempotent). */
  destroy(): Promise<void> {
    this.destroyed ??= this.piscina.destroy().catch(() => undefined);
    return this.destroyed;
  }
}

/** Resolves when i32[index] may have changed from `value`, or after `timeoutMs`, without blocking. */
function waitForChange(i32: Int32Array, index: number, value: number, timeoutMs: number): Promise<unknown> {
  const waitAsync = (Atomics as unknown as { waitAsync?: (a: Int32Array, i: number, v: number, t: number) => { async: boolean; value: unknown } }).waitAsync;
  if (waitAsync) {
    const r = waitAsync(i32, index, value, timeoutMs);
    return r.async ? (r.value as Promise<unknown>) : Promise.resolve(r.value);
  }
  return new Promise((resolve) => setTimeout(resolve, Math.min(timeoutMs, 2)));
}
