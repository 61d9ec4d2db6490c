// Single-thread memory read bandwidth as a wasm kernel sees it: compiles bench/wasm/bandwidth.ts with
// asc into a temporary folder (it is not one of the shipped kernels) and times whole-buffer SIMD
// reads over a buffer the size of a benchmarked matrix (wherever the cache keeps it) and over a
// buffer far larger than any cache.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
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

/** Read bandwidth over buffers of each size in `sizes` (bytes, rounded up to 64). */
export async function measureReadBandwidth(sizes: readonly number[], timeMs: number): Promise<BandwidthResult[]> {
  const module = buildProbe();
  const largest = Math.max(...sizes.map((s) => Math.ceil(s / 64) * 64));
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
  const probe = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as BandwidthExports;
  const base = Math.ceil((probe.heapBase() + 64) / 4096) * 4096;
  const need = base + largest;
  if (need > memory.buffer.byteLength) memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
  // Touch every page with non-zero bytes so no read hits a never-written (shared zero) page.
  new Uint8Array(memory.buffer, base, largest).fill(1);

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
