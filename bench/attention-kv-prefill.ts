// Attention over f16 and int8 KV caches, one-pass kernels (attentionKvF16 / attentionKvInt8: a score
// per visible position) against the tiled ones (attentionKvF16Tiled / attentionKvInt8Tiled: a few
// tiles of workspace): one layer's attention over a 512-token prompt on one thread, for real head
// layouts, as the engine runs it (chunks of 64 queries continuing the cache), as one call of 512
// queries, and DECODE_STEPS one-token calls at the end of the prompt. The caches are filled by the
// store kernels. Prints the median and range of 3 x RUNS timings (old and new interleaved) and the
// workspace bytes per thread. Run: npx vite-node bench/attention-kv-prefill.ts [simd|relaxed|scalar ...]
import { compileKernelVariant, instantiateKernels, KERNEL_VARIANTS } from '../src/runtime/kernels.js';
import type { KernelVariant } from '../src/runtime/kernels.js';
import { createSharedMemory } from '../src/runtime/memory.js';

const PROMPT = 512;
const CHUNK = 64;
const RUNS = 5;
const DECODE_STEPS = 32;
const SHAPES = [
  { name: 'qwen2.5-0.5b', nHeads: 14, nKVHeads: 2, headDim: 64 },
  { name: 'llama-3.2-1b', nHeads: 32, nKVHeads: 8, headDim: 64 },
  { name: 'head dim 128, GQA 4', nHeads: 16, nKVHeads: 4, headDim: 128 },
] as const;
const KERNELS = {
  f16: { old: 'attentionKvF16', tiled: 'attentionKvF16Tiled' },
  int8: { old: 'attentionKvInt8', tiled: 'attentionKvInt8Tiled' },
} as const;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const asked = process.argv.slice(2).filter((a): a is KernelVariant => (KERNEL_VARIANTS as readonly string[]).includes(a));
  const variants: readonly KernelVariant[] = asked.length ? asked : ['simd'];
  const memory = createSharedMemory(64);
  for (const variant of variants) {
    const module = await compileKernelVariant(variant);
    if (!module) throw new Error(`the ${variant} build does not validate on this engine`);
    const k = instantiateKernels(module, memory);
    for (const s of SHAPES) {
      const kvStride = s.nKVHeads * s.headDim, qRow = s.nHeads * s.headDim;
      const int8Row = 4 * s.nKVHeads + kvStride, tailBytes = 4 * s.headDim * kvStride;
      const tiledWs = k.attentionKvTiledScratchBytes(s.headDim);
      const bytes = 4 * (2 * PROMPT * qRow + 2 * PROMPT * kvStride) + 2 * (2 * PROMPT * kvStride) + 2 * (tailBytes + PROMPT * int8Row) + 4 * (PROMPT + 16) + tiledWs + 8192;
      const base = Math.ceil(k.heapBase() / 64) * 64;
      const need = base + bytes - memory.buffer.byteLength;
      if (need > 0) memory.grow(Math.ceil(need / 65536));
      let p = base;
      const take = (n: number) => ((p += Math.ceil(n / 64) * 64), p - Math.ceil(n / 64) * 64);
      const q = take(4 * PROMPT * qRow), kf = take(4 * PROMPT * kvStride), vf = take(4 * PROMPT * kvStride), out = take(4 * PROMPT * qRow);
      const kh = take(2 * PROMPT * kvStride), vh = take(2 * PROMPT * kvStride);
      const k8 = take(tailBytes + PROMPT * int8Row) + tailBytes, v8 = take(PROMPT * int8Row);
      const scratch = take(Math.max(4 * (PROMPT + 16), tiledWs));
      const f = new Float32Array(memory.buffer);
      let seed = 1;
      const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed / 2 ** 32 - 0.5);
      for (const [ptr, n] of [[q, PROMPT * qRow], [kf, PROMPT * kvStride], [vf, PROMPT * kvStride]] as const) {
        for (let i = 0; i < n; i++) f[ptr / 4 + i] = rand() * 3;
      }
      k.kvStoreF16(kf, kh, kvStride, PROMPT);
      k.kvStoreF16(vf, vh, kvStride, PROMPT);
      k.kvStoreInt8Keys(kf, k8, s.nKVHeads, s.headDim, 0, PROMPT);
      k.kvStoreInt8(vf, v8, s.nKVHeads, s.headDim, PROMPT);
      const scale = Math.fround(1 / Math.sqrt(s.headDim));
      for (const precision of ['f16', 'int8'] as const) {
        const [kc, vc] = precision === 'f16' ? [kh, vh] : [k8, v8];
        // chunk = 1: DECODE_STEPS decode steps at the end of the prompt (one query seeing ~PROMPT keys).
        const time = (kernel: string, chunk: number): number[] => {
          const run = k[kernel as 'attentionKvF16'];
          const ms: number[] = [];
          const from = chunk === 1 ? PROMPT - DECODE_STEPS : 0;
          for (let r = 0; r < RUNS + 2; r++) {
            const t0 = performance.now();
            for (let t = from; t < PROMPT; t += chunk) {
              run(q + 4 * t * qRow, kc, vc, out + 4 * t * qRow, chunk, s.nHeads, s.nKVHeads, s.headDim, kvStride, t, scale, scratch, 0, s.nHeads);
            }
            if (r >= 2) ms.push(performance.now() - t0); // two warm-up runs
          }
          return ms;
        };
        for (const chunk of [CHUNK, PROMPT, 1]) {
          // Interleaved, so that a burst of load from elsewhere hits both kernels alike.
          const old: number[] = [], tiled: number[] = [];
          for (let rep = 0; rep < 3; rep++) {
            old.push(...time(KERNELS[precision].old, chunk));
            tiled.push(...time(KERNELS[precision].tiled, chunk));
          }
          const fmt = (xs: number[]) => `${median(xs).toFixed(2)} ms (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`;
          const what = chunk === 1 ? `${DECODE_STEPS} decode steps after ${PROMPT - DECODE_STEPS} tokens` : `${PROMPT} tokens in calls of ${chunk}`;
          console.log(
            `${variant} ${precision} ${s.name} (${s.nHeads}/${s.nKVHeads} heads, dim ${s.headDim}), ${what}: ` +
              `one-pass ${fmt(old)}, tiled ${fmt(tiled)}, ratio ${(median(tiled) / median(old)).toFixed(2)}`,
          );
        }
      }
      // The engine allocates one workspace per head (the most threads an attention split can use).
      const slots = (ws: (ctx: number) => number) => [512, 4096, 32768].map((ctx) => `${ctx}: ${ws(ctx)} B/thread, ${(s.nHeads * ws(ctx) / 1024).toFixed(0)} KiB`).join('; ');
      console.log(`  workspaces (${s.nHeads} slots) by context, one-pass ${slots((ctx) => 4 * (ctx + 16))}; tiled ${slots(() => tiledWs)}`);
    }
  }
}

await main();
