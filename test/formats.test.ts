// The quant format specification (src/quant/formats.ts) and the kernels' mirror (assembly/formats.ts)
// must agree on block sizes and bytes for every type the kernels know.
import { describe, expect, it } from 'vitest';
import { TYPE_TRAITS } from '../src/quant/formats.js';
import { createSharedMemory } from '../src/runtime/memory.js';
import { compileKernelVariant, instantiateKernels } from '../src/runtime/kernels.js';

describe('quant formats', () => {
  it('TypeScript and AssemblyScript agree on block size and bytes', async () => {
    const k = instantiateKernels((await compileKernelVariant('scalar'))!, createSharedMemory());
    let checked = 0;
    for (const t of TYPE_TRAITS.values()) {
      if (!t.supported) {
        expect(k.blockSize(t.type)).toBe(0);
        continue;
      }
      expect([t.name, k.blockSize(t.type)]).toEqual([t.name, t.blockSize]);
      expect([t.name, k.blockBytes(t.type)]).toEqual([t.name, t.blockBytes]);
      checked++;
    }
    expect(checked).toBe(15);
  });
});
