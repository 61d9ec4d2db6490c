// The quant format specification (src/quant/formats.ts) and the kernels' mirror (assembly/formats.ts)
// must agree on block sizes and bytes for every type the kernels know, and on the packed layouts
// (which types are packed, rows per group, bytes per group block, layout version).
import { describe, expect, it } from 'vitest';
import { PACKED_LAYOUTS, PACKED_LAYOUT_VERSION, PACK_ROWS, TYPE_TRAITS, packedMatrixBytes } from '../src/quant/formats.js';
import { createSharedMemory } from '../src/runtime/memory.js';
import { compileKernelVariant, instantiateKernels } from '../src/runtime/kernels.js';

describe('quant formats', async () => {
  const k = instantiateKernels((await compileKernelVariant('scalar'))!, createSharedMemory());

  it('TypeScript and AssemblyScript agree on block size and bytes', () => {
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

  it('TypeScript and AssemblyScript agree on the packed layouts', () => {
    expect(k.packedLayoutVersion()).toBe(PACKED_LAYOUT_VERSION);
    for (const t of TYPE_TRAITS.values()) {
      const l = PACKED_LAYOUTS.get(t.type);
      expect([t.name, k.packedRows(t.type)]).toEqual([t.name, l ? l.rows : 0]);
      expect([t.name, k.packedGroupBytes(t.type)]).toEqual([t.name, l ? l.groupBlockBytes : 0]);
      // a group block holds one block of each of its rows, plus whatever the layout pre-decodes
      // (the k-quants' 6-bit scales unpacked to bytes)
      if (l) expect(l.groupBlockBytes).toBeGreaterThanOrEqual(l.rows * t.blockBytes);
    }
    expect([...PACKED_LAYOUTS.values()].every((l) => l.rows === PACK_ROWS)).toBe(true);
    // whole groups: 9 rows take two groups
    expect(packedMatrixBytes(PACKED_LAYOUTS.keys().next().value!, 9, 64)).toBe(2 * 2 * [...PACKED_LAYOUTS.values()][0]!.groupBlockBytes);
  });
});
