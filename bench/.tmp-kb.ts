import { runKernelBench } from './kernels.js';
const res = await runKernelBench({ variants: ['relaxed'], gemmVariants: ['relaxed'], timeMs: 300 });
for (const r of res) console.log(r.variant, r.type, r.tokens, r.ms.toFixed(2) + ' ms', r.gbPerSecond.toFixed(2) + ' GB/s', r.gopPerSecond.toFixed(1) + ' GOP/s');
