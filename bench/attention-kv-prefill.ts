// Attention over f16 and int8 KV caches, one-pass kernels (attentionKvF16 / attentionKvInt8: a score
// per visible position) against the tiled ones (attentionKvF16Tiled / attentionKvInt8Tiled: a few
// tiles of workspace): one layer's attention over a 512-token prompt on one thread, for real head
// layouts, as the engine runs it (chunks of 64 queries continuing the cache), as one call of 512
// queries, and DECODE_STEPS one-token calls at the end of the prompt. The caches are filled by the
// store kernels. Prints the median and range of 3 x RUNS timings (old and new interleaved) and the
// workspace bytes per thread. Run: npx vite-node bench/attention-kv-prefill.ts [simd|relaxed|scalar ...]
import { createSharedMemory } from '../src/runtime/memory.js';
import { compareOnePassTiled, fillRandom, heapArena, kernelBuilds, PROMPT, SHAPES } from './attention-common.js';

const RUNS = 5;
const KERNELS = {
  f16: { old: 'attentionKvF16', tiled: 'attentionKvF16Tiled' },
  int8: { old: 'attentionKvInt8', tiled: 'attentionKvInt8Tiled' },
} as const;

async function main(): Promise<void> {
  const memory = createSharedMemory(64);
  for await (const { variant, k } of kernelBuilds(memory)) {
    for (const s of SHAPES) {
      const kvStride = s.nKVHeads * s.headDim, qRow = s.nHeads * s.headDim;
      const int8Row = 4 * s.nKVHeads + kvStride, tailBytes = 4 * s.headDim * kvStride;
      const tiledWs = k.attentionKvTiledScratchBytes(s.headDim);
      const bytes = 4 * (2 * PROMPT * qRow + 2 * PROMPT * kvStride) + 2 * (2 * PROMPT * kvStride) + 2 * (tailBytes + PROMPT * int8Row) + 4 * (PROMPT + 16) + tiledWs + 8192;
      const take = heapArena(memory, k, bytes);
      const q = take(4 * PROMPT * qRow), kf = take(4 * PROMPT * kvStride), vf = take(4 * PROMPT * kvStride), out = take(4 * PROMPT * qRow);
      const kh = take(2 * PROMPT * kvStride), vh = take(2 * PROMPT * kvStride);
      const k8 = take(tailBytes + PROMPT * int8Row) + tailBytes, v8 = take(PROMPT * int8Row);
      const scratch = take(Math.max(4 * (PROMPT + 16), tiledWs));
      fillRandom(memory, [[q, PROMPT * qRow], [kf, PROMPT * kvStride], [vf, PROMPT * kvStride]]);
      k.kvStoreF16(kf, kh, kvStride, PROMPT);
      k.kvStoreF16(vf, vh, kvStride, PROMPT);
      k.kvStoreInt8Keys(kf, k8, s.nKVHeads, s.headDim, 0, PROMPT);
      k.kvStoreInt8(vf, v8, s.nKVHeads, s.headDim, PROMPT);
      const scale = Math.fround(1 / Math.sqrt(s.headDim));
      const layer = { shape: s, q, out, scratch, qRow, kvStride, scale };
      for (const precision of ['f16', 'int8'] as const) {
        const [kc, vc] = precision === 'f16' ? [kh, vh] : [k8, v8];
        compareOnePassTiled(`${variant} ${precision}`, k[KERNELS[precision].old], k[KERNELS[precision].tiled], layer, kc, vc, RUNS);
      }
      // The engine allocates one workspace per head (the most threads an attention split can use).
      const slots = (ws: (ctx: number) => number) => [512, 4096, 32768].map((ctx) => `${ctx}: ${ws(ctx)} B/thread, ${(s.nHeads * ws(ctx) / 1024).toFixed(0)} KiB`).join('; ');
      console.log(`  workspaces (${s.nHeads} slots) by context, one-pass ${slots((ctx) => 4 * (ctx + 16))}; tiled ${slots(() => tiledWs)}`);
    }
  }
}

await main();
