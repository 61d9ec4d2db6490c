// Memory read bandwidth as a wasm kernel sees it: compiles bench/wasm/bandwidth.ts with asc into a
// temporary folder (it is not one of the shipped kernels) and times whole-buffer SIMD reads on one
// thread over a buffer the size of a benchmarked matrix (wherever the cache keeps it) and over a
// buffer far larger than any cache; and on several threads at once, each reading its own part of one
// large buffer (the calling thread plus worker threads on the same shared memory, as the executor runs).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Bench } from 'tinybench';

const ROOT = join(import.meta.dirname, '..');

export interface BandwidthResult {
  readonly bytes: number;
  /** Median GB/s (10^9 bytes per second). */
  readonly gbPerSecond: number;
  readonly minGBps: number;
  readonly maxGBps: number;
  readonly samples: number;
}

interface BandwidthExports {
  readSumI32(ptr: number, bytes: number): number;
  heapBase(): number;
}

function buildProbe(): WebAssembly.Module {
  const require = createRequire(import.meta.url);
  const asc = join(dirname(require.resolve('assemblyscript/package.json')), 'bin', 'asc.js');
  const outDir = join(os.tmpdir(), 'pocketllm-bench-build');
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `bandwidth-${process.pid}.wasm`);
  execFileSync(
    process.execPath,
    [asc, 'bench/wasm/bandwidth.ts', '--runtime', 'stub', '--importMemory', '--sharedMemory', '--noExportMemory', '--initialMemory', '1', '--maximumMemory', '65536', '--enable', 'threads', '--enable', 'simd', '--use', 'abort=', '-O3', '--noAssert', '-o', out],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const bytes = readFileSync(out);
  rmSync(out, { force: true });
  return new WebAssembly.Module(bytes);
}

/** One shared memory of at least `bytes` past the probe's static data, every page written. */
function probeMemory(module: WebAssembly.Module, bytes: number): { memory: WebAssembly.Memory; probe: BandwidthExports; base: number } {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
  const probe = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as BandwidthExports;
  const base = Math.ceil((probe.heapBase() + 64) / 4096) * 4096;
  const need = base + bytes;
  if (need > memory.buffer.byteLength) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
  // Touch every page with non-zero bytes so no read hits a never-written (shared zero) page.
  new Uint8Array(memory.buffer, base, bytes).fill(1);
  return { memory, probe, base };
}

/** Read bandwidth over buffers of each size in `sizes` (bytes, rounded up to 64). */
export async function measureReadBandwidth(sizes: readonly number[], timeMs: number): Promise<BandwidthResult[]> {
  const module = buildProbe();
  const largest = Math.max(...sizes.map((s) => Math.ceil(s / 64) * 64));
  const { probe, base } = probeMemory(module, largest);

  const results: BandwidthResult[] = [];
  for (const size of sizes) {
    const bytes = Math.ceil(size / 64) * 64;
    const bench = new Bench({ time: timeMs, iterations: 5, warmupIterations: 2, warmupTime: 0 });
    let sink = 0;
    bench.add(`read ${bytes}`, () => {
      sink ^= probe.readSumI32(base, bytes);
    });
    await bench.run();
    const r = bench.tasks[0]!.result;
    if (r.state !== 'completed') throw new Error(`bandwidth probe did not complete (${r.state})`);
    if (sink === 0.5) console.log(sink); // keeps `sink` alive
    results.push({
      bytes,
      gbPerSecond: bytes / (r.latency.p50 * 1e6),
      minGBps: bytes / (r.latency.max * 1e6),
      maxGBps: bytes / (r.latency.min * 1e6),
      samples: r.latency.samplesCount,
    });
  }
  return results;
}

export interface ParallelBandwidthResult extends BandwidthResult {
  /** Threads reading at once (the calling thread and threads - 1 workers), each a disjoint part. */
  readonly threads: number;
}

// Control words of the parallel probe (Int32Array over a SharedArrayBuffer).
const GENERATION = 0; // bumped to start a round; QUIT_GENERATION ends the workers
const PENDING = 1; // workers still reading this round
const SINK = 2; // the workers' sums go here so their loads cannot be dropped
const REPEATS = 3; // how many times each thread reads its part per round
const PART = 4; // worker w reads [i32[PART + 2w], + i32[PART + 2w + 1]) bytes
const QUIT = -1;

/** The worker side: plain JavaScript, run with eval so that no file has to be built for it. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { module, memory, control, w } = workerData;
const i = new Int32Array(control);
const probe = new WebAssembly.Instance(module, { env: { memory } }).exports;
let seen = 0;
for (;;) {
  let g = Atomics.load(i, ${GENERATION});
  while (g === seen) { Atomics.wait(i, ${GENERATION}, seen); g = Atomics.load(i, ${GENERATION}); }
  seen = g;
  if (g === ${QUIT}) break;
  for (let r = i[${REPEATS}]; r > 0; r--) Atomics.add(i, ${SINK}, probe.readSumI32(i[${PART} + 2 * w], i[${PART} + 2 * w + 1]));
  Atomics.sub(i, ${PENDING}, 1);
  Atomics.notify(i, ${PENDING});
}
`;

/**
 * Read bandwidth of `threads` threads reading disjoint parts of one buffer of `bytes` at once: each
 * round wakes the workers, reads the calling thread's part `repeats` times and waits for the others;
 * the rate is the bytes read over the round's wall time (so the slowest thread sets it, as at the
 * executor's barrier). Small buffers want many repeats, or waking a sleeping worker dominates a round.
 */
export async function measureParallelReadBandwidth(bytes: number, threads: number, timeMs: number, repeats = 1): Promise<ParallelBandwidthResult> {
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const module = buildProbe();
  const part = Math.floor(bytes / threads / 64) * 64;
  if (part * threads > 0x7fffffff) throw new RangeError(`a parallel bandwidth buffer must stay under 2 GiB, got ${part * threads} bytes`);
  const total = part * threads;
  const { memory, probe, base } = probeMemory(module, total);
  const control = new SharedArrayBuffer(64 + 8 * threads);
  const i = new Int32Array(control);
  i[REPEATS] = repeats;
  const workers: Worker[] = [];
  try {
    for (let w = 1; w < threads; w++) {
      i[PART + 2 * w] = base + w * part;
      i[PART + 2 * w + 1] = part;
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, memory, control, w } });
      worker.on('error', () => undefined);
      workers.push(worker);
      await new Promise<void>((resolve, reject) => {
        worker.once('online', resolve);
        worker.once('error', reject);
      });
    }
    let sink = 0;
    const round = (): number => {
      const t0 = performance.now();
      Atomics.store(i, PENDING, threads - 1);
      Atomics.add(i, GENERATION, 1);
      Atomics.notify(i, GENERATION);
      for (let r = 0; r < repeats; r++) sink ^= probe.readSumI32(base, part);
      let pending = Atomics.load(i, PENDING);
      while (pending !== 0) {
        Atomics.wait(i, PENDING, pending, 1000);
        pending = Atomics.load(i, PENDING);
        if (performance.now() - t0 > 60_000) throw new Error('a bandwidth worker thread did not finish its read within 60 s');
      }
      return performance.now() - t0;
    };
    round(); // warm-up: worker start-up, page tables
    const times: number[] = [];
    const start = performance.now();
    while (times.length < 5 || performance.now() - start < timeMs) times.push(round());
    if (sink === 0.5) console.log(sink); // keeps `sink` alive
    times.sort((a, b) => a - b);
    const median = times[times.length >> 1]!;
    const read = total * repeats;
    return {
      threads,
      bytes: total,
      gbPerSecond: read / (median * 1e6),
      minGBps: read / (times[times.length - 1]! * 1e6),
      maxGBps: read / (times[0]! * 1e6),
      samples: times.length,
    };
  } finally {
    Atomics.store(i, GENERATION, QUIT);
    Atomics.notify(i, GENERATION);
    // Each ends its loop on QUIT; terminate() also covers one that failed to start.
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
