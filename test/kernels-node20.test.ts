// On the machine's own Node 20, whose relaxed SIMD (behind --experimental-wasm-relaxed-simd) validates
// but computes a wrong relaxed dot, start-up must pass over the relaxed build and pick SIMD128. Runs the
// compiled package (dist/, built by npm's prepare step) in a Node 20 child process.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..');
const SYSTEM_NODE = ['/usr/bin/node', '/usr/local/bin/node'].find((p) => existsSync(p));

function nodeVersion(bin: string): string {
  return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
}

const node20 = SYSTEM_NODE && nodeVersion(SYSTEM_NODE).startsWith('v20.') ? SYSTEM_NODE : undefined;

describe.skipIf(!node20)('kernel choice on Node 20', () => {
  const probe = `
    const { selectKernels } = await import(${JSON.stringify(join(ROOT, 'dist', 'runtime', 'kernels.js'))});
    const { createSharedMemory } = await import(${JSON.stringify(join(ROOT, 'dist', 'runtime', 'memory.js'))});
    const k = await selectKernels(createSharedMemory());
    console.log(JSON.stringify({ variant: k.variant, rejected: k.rejected }));`;

  it('with the relaxed-SIMD flag: relaxed validates but fails the self-test, SIMD128 is used', () => {
    const out = JSON.parse(execFileSync(node20!, ['--experimental-wasm-relaxed-simd', '--input-type=module', '-e', probe], { encoding: 'utf8' }));
    expect(out.variant).toBe('simd');
    expect(out.rejected).toEqual(['relaxed: failed the known-answer self-test']);
  });

  it('without the flag: relaxed does not validate, SIMD128 is used', () => {
    const out = JSON.parse(execFileSync(node20!, ['--input-type=module', '-e', probe], { encoding: 'utf8' }));
    expect(out.variant).toBe('simd');
    expect(out.rejected).toEqual(['relaxed: this engine does not validate it']);
  });
});
