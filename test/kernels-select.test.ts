// Kernel variant selection and the plumbing of the shared memory: every variant validates, passes the
// known-answer probe on this engine, and agrees with the others on the format constants.
import { describe, expect, it } from 'vitest';
import { createSharedMemory } from '../src/runtime/memory.js';
import { compileKernelVariant, instantiateKernels, kernelSelfTest, selectKernels, KERNEL_VARIANTS } from '../src/runtime/kernels.js';

describe('kernel variants', () => {
  for (const variant of KERNEL_VARIANTS) {
    it(`${variant} build instantiates on shared memory and passes the self-test`, async () => {
      const memory = createSharedMemory();
      const module = await compileKernelVariant(variant);
      expect(module).not.toBeNull();
      const k = instantiateKernels(module!, memory);
      expect(k.kernelVariant()).toBe(KERNEL_VARIANTS.indexOf(variant));
      expect(kernelSelfTest(k, memory)).toBe(true);
    });
  }

  it('prefers relaxed when it works, and honours an explicit choice', async () => {
    const memory = createSharedMemory();
    const best = await selectKernels(memory);
    expect(best.variant).toBe('relaxed'); // tests run on Node 24, whose relaxed dot is right
    const scalar = await selectKernels(memory, 'scalar');
    expect(scalar.variant).toBe('scalar');
    expect(scalar.exports.kernelVariant()).toBe(0);
  });
});
