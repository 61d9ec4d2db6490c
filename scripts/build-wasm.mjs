// Builds the three kernel variants from the same AssemblyScript sources: scalar (the reference
// twins), simd (SIMD128) and relaxed (SIMD128 + relaxed SIMD). Each imports one shared memory.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const asc = join(dirname(require.resolve('assemblyscript/package.json')), 'bin', 'asc.js');

const common = [
  'assembly/index.ts',
  '--runtime', 'stub',
  '--importMemory', '--sharedMemory', '--noExportMemory',
  '--initialMemory', '1', '--maximumMemory', '65536',
  '--enable', 'threads',
  '--use', 'abort=',
  '-O3', '--noAssert',
];
const variants = {
  scalar: [],
  simd: ['--enable', 'simd'],
  relaxed: ['--enable', 'simd', '--enable', 'relaxed-simd'],
};
mkdirSync(join(root, 'wasm'), { recursive: true });
for (const [name, flags] of Object.entries(variants)) {
  const out = join('wasm', `kernels-${name}.wasm`);
  execFileSync(process.execPath, [asc, ...common, ...flags, '-o', out], { cwd: root, stdio: 'inherit' });
  console.log(`built ${out}`);
}
