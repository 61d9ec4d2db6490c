// Kernel micro-benchmarks: the matmul of each weight type on a 4096×4096 matrix of valid random
// data, per kernel build, for one token (GEMV, the decode case: reported in GB/s of weight bytes read
// and GFLOP/s) and for 64 tokens (GEMM, the prefill case: GOP/s). Activations are converted to the
// type's activation format once, outside the timed call, so the figures are the matmul alone.
import { Bench } from 'tinybench';
import { f32ToF16 } from '../src/quant/f16.js';
import { GGMLType, TYPE_TRAITS, rowBytes } from '../src/quant/formats.js';
import { matmulKernelFor } from '../src/runtime/kernel-table.js';
import type { KernelVariant } from '../src/runtime/kernels.js';
import { selectKernels } from '../src/runtime/kernels.js';
import { Arena, createSharedMemory } from '../src/runtime/memory.js';
import { DIRECT_BLOCK_TYPES, fillRandomBlocks } from '../src/synth/blocks.js';
import { Rng } from '../src/synth/random.js';

export const MATRIX_DIM = 4096;
export const GEMM_TOKENS = 64;
export const BENCH_TYPES: readonly GGMLType[] = [
  GGMLType.Q4_0, GGMLType.Q4_1, GGMLType.Q8_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K, GGMLType.F16, GGMLType.F32,
];

export interface KernelResult {
  readonly variant: KernelVariant;
  readonly type: string;
  /** 1 (GEMV) or GEMM_TOKENS. */
  readonly tokens: number;
  readonly weightBytes: number;
  /** Median milliseconds per call, and the range. */
  readonly ms: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly samples: number;
  /** Weight bytes per second at the median, 10^9. */
  readonly gbPerSecond: number;
  /** 2·rows·cols·tokens operations per second at the median, 10^9. */
  readonly gopPerSecond: number;
}

export interface KernelBenchOptions {
  readonly variants: readonly KernelVariant[];
  /** Variants whose 64-token GEMM is measured (the scalar one takes seconds per call). */
  readonly gemmVariants: readonly KernelVariant[];
  /** tinybench time budget per task, ms. */
  readonly timeMs: number;
  readonly onProgress?: (line: string) => void;
}

/** Random valid bytes of a MATRIX_DIM² matrix of `type` (weights of standard deviation 0.02). */
function randomMatrix(type: GGMLType, rng: Rng): Uint8Array {
  const bytes = new Uint8Array(rowBytes(type, MATRIX_DIM) * MATRIX_DIM);
  if (DIRECT_BLOCK_TYPES.has(type)) {
    fillRandomBlocks(type, rng, bytes, 0.02);
    return bytes;
  }
  const values = new Float32Array(MATRIX_DIM * MATRIX_DIM);
  rng.fillNormal(values, 0, 0.02);
  if (type === GGMLType.F32) return new Uint8Array(values.buffer);
  if (type !== GGMLType.F16) throw new Error(`no random data for ${GGMLType[type]}`);
  const halves = new Uint16Array(bytes.buffer);
  for (let i = 0; i < values.length; i++) halves[i] = f32ToF16(values[i]!);
  return bytes;
}

export async function runKernelBench(options: KernelBenchOptions): Promise<KernelResult[]> {
  const rng = new Rng(42);
  const matrices = new Map(BENCH_TYPES.map((t) => [t, randomMatrix(t, rng)]));
  const x = new Float32Array(GEMM_TOKENS * MATRIX_DIM);
  rng.fillNormal(x, 0, 1);
  const results: KernelResult[] = [];

  for (const variant of options.variants) {
    // One memory per build: instances of different builds must not share static data.
    const memory = createSharedMemory();
    const { exports: k } = await selectKernels(memory, variant);
    const arena = new Arena(memory, k.heapBase() + 256);
    const xPtr = arena.alloc('io', x.byteLength);
    arena.f32(xPtr, x.length).set(x);
    // The widest activation row is F16's 2 bytes per value.
    const actPtr = arena.alloc('io', GEMM_TOKENS * MATRIX_DIM * 2 + 64);
    const outPtr = arena.alloc('io', GEMM_TOKENS * MATRIX_DIM * 4);
    // Weights in the layout each matmul reads: types with a packed layout are repacked as the loader
    // does (file bytes through a scratch copy), the others stay as in the file.
    const weightPtrs = new Map<GGMLType, number>();
    for (const [type, bytes] of matrices) {
      const entry = matmulKernelFor(type);
      const ptr = arena.alloc('weights', entry.matrixBytes(MATRIX_DIM, MATRIX_DIM));
      if (entry.layout) {
        const mark = arena.mark();
        const src = arena.alloc('scratch', bytes.length);
        arena.u8(src, bytes.length).set(bytes);
        entry.repack(k, src, ptr, MATRIX_DIM, MATRIX_DIM);
        arena.release(mark);
      } else {
        arena.u8(ptr, bytes.length).set(bytes);
      }
      weightPtrs.set(type, ptr);
    }

    for (const type of BENCH_TYPES) {
      const entry = matmulKernelFor(type);
      const act = entry.activationType === GGMLType.F32 ? xPtr : actPtr;
      if (entry.activationType !== GGMLType.F32) entry.convert(k)(xPtr, actPtr, MATRIX_DIM, GEMM_TOKENS);
      const matmul = entry.matmul(k);
      const w = weightPtrs.get(type)!;
      const weightBytes = matrices.get(type)!.length;
      const name = TYPE_TRAITS.get(type)!.name;
      const shapes = options.gemmVariants.includes(variant) ? [1, GEMM_TOKENS] : [1];
      for (const tokens of shapes) {
        options.onProgress?.(`${variant} ${name} ${tokens === 1 ? 'GEMV' : `GEMM ${tokens}`}`);
        const bench = new Bench({ time: options.timeMs, iterations: tokens === 1 ? 10 : 3, warmupIterations: tokens === 1 ? 2 : 1, warmupTime: 0 });
        bench.add(name, () => matmul(w, act, outPtr, MATRIX_DIM, MATRIX_DIM, tokens, 0, MATRIX_DIM));
        await bench.run();
        const r = bench.tasks[0]!.result;
        if (r.state !== 'completed') throw new Error(`${variant} ${name} matmul did not complete (${r.state})`);
        const ms = r.latency.p50;
        results.push({
          variant,
          type: name,
          tokens,
          weightBytes,
          ms,
          minMs: r.latency.min,
          maxMs: r.latency.max,
          samples: r.latency.samplesCount,
          gbPerSecond: weightBytes / (ms * 1e6),
          gopPerSecond: (2 * MATRIX_DIM * MATRIX_DIM * tokens) / (ms * 1e6),
        });
      }
    }
  }
  return results;
}
