// `npm run bench`: the whole benchmark suite. Measures single-thread read bandwidth, the matmul
// kernels of every weight type and kernel build (tinybench), and `pocketllm bench` on synthetic models
// of real shapes (each in its own process, so peak RSS is per model), then, with several thread
// counts, the read bandwidth of that many threads over buffers the size of each model's decode reads;
// writes BENCHMARKS.md.
//
//   npm run bench                  full run (a few minutes)
//   npm run bench -- --quick       fewer repetitions, best kernel build only, no profiles (about a minute)
//   npm run bench -- --threads 1,2 also measure the models with 2 threads (scaling factors)
//   npm run bench -- --out FILE    write the report elsewhere; --json FILE also saves the raw results
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { machineInfo } from '../src/bench/machine.js';
import type { ModelBenchReport } from '../src/bench/model-bench.js';
import type { KernelVariant } from '../src/runtime/kernels.js';
import { KERNEL_VARIANTS, selectKernels } from '../src/runtime/kernels.js';
import { createSharedMemory } from '../src/runtime/memory.js';
import { GGMLType, rowBytes } from '../src/quant/formats.js';
import type { ParallelBandwidthResult } from './bandwidth.js';
import { measureParallelReadBandwidth, measureReadBandwidth } from './bandwidth.js';
import { MATRIX_DIM, runKernelBench } from './kernels.js';
import { ensureBenchModel } from './models.js';
import type { CoreCheck, ModelRun, SuiteResults } from './report.js';
import { E2E_CASES, formatBenchmarksMarkdown } from './report.js';

const ROOT = join(import.meta.dirname, '..');
const VITE_NODE = join(ROOT, 'node_modules', 'vite-node', 'vite-node.mjs');
/** One model's benchmark must finish in this time (the 1.1B shape takes about 1.5 minutes). */
const MODEL_TIMEOUT_MS = 15 * 60_000;
/** Bytes each thread reads in the in-cache loop: inside one core's 2 MiB L2 on this machine. */
const IN_CACHE_BYTES_PER_THREAD = 1 << 20;
/** Models larger than this get fewer repetitions. */
const HEAVY_MODEL_BYTES = 300 << 20;

function log(line: string): void {
  process.stderr.write(`[bench ${(performance.now() / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
}

/** The kernel builds this engine can run (validated and self-tested), best last. */
async function usableVariants(): Promise<KernelVariant[]> {
  const ok: KernelVariant[] = [];
  for (const v of KERNEL_VARIANTS) {
    try {
      await selectKernels(createSharedMemory(), v);
      ok.push(v);
    } catch (e) {
      log(`kernel build ${v} unusable here: ${(e as Error).message}`);
    }
  }
  return ok;
}

/** Runs `pocketllm bench ... --json` from source in a child process and parses its report. */
function benchInChild(cliArgs: readonly string[]): Promise<ModelBenchReport> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [VITE_NODE, join(ROOT, 'bench', 'cli.ts'), '--', ...cliArgs],
      { cwd: ROOT, maxBuffer: 64 << 20, timeout: MODEL_TIMEOUT_MS },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`pocketllm ${cliArgs.join(' ')} failed: ${stderr.trim().split('\n').pop() ?? err.message}`));
          return;
        }
        try {
          resolve(JSON.parse(stdout) as ModelBenchReport);
        } catch {
          reject(new Error(`pocketllm ${cliArgs.join(' ')} printed no JSON report`));
        }
      },
    );
  });
}

async function main(): Promise<number> {
  const { values: args } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      threads: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'string' },
    },
    allowPositionals: false,
  });
  const quick = args.quick ?? false;
  const threads = args.threads ?? '1';
  if (!/^\d+(,\d+)*$/.test(threads)) throw new Error(`--threads needs a list like 1,2; got "${threads}"`);
  const out = args.out ?? join(ROOT, 'BENCHMARKS.md');
  const started = new Date();
  const loadAtStart = os.loadavg();
  const t0 = performance.now();

  const variants = await usableVariants();
  if (variants.length === 0) throw new Error('no kernel build runs on this engine');
  const best = variants[variants.length - 1]!;

  // Bandwidth over a buffer the size of the Q4_0 matrix (as the GEMV sees it) and over one larger
  // than any cache (main memory).
  const q4Bytes = rowBytes(GGMLType.Q4_0, MATRIX_DIM) * MATRIX_DIM;
  log('read bandwidth');
  const bandwidth = await measureReadBandwidth([q4Bytes, quick ? 256 << 20 : 1 << 30], quick ? 200 : 500);

  // How much of the machine several threads get right now: a read loop inside each core's L2 is bound
  // by the core alone, so N threads should run it N times as fast unless other processes hold cores.
  const threadCounts = [...new Set(threads.split(',').map(Number))].sort((a, b) => a - b);
  const coreCheck = async (when: string): Promise<CoreCheck> => {
    log(`in-cache read loop on ${threadCounts.join(', ')} threads (${when})`);
    const results: ParallelBandwidthResult[] = [];
    // 64 reads of 1 MiB per round (a few ms) so that waking a sleeping worker does not dominate.
    for (const t of threadCounts) results.push(await measureParallelReadBandwidth(IN_CACHE_BYTES_PER_THREAD * t, t, quick ? 200 : 400, 64));
    return { when, results };
  };
  const coreChecks: CoreCheck[] = threadCounts.length > 1 ? [await coreCheck('start')] : [];

  log(`kernels: ${quick ? best : variants.join(', ')}`);
  const kernelVariants = quick ? [best] : variants;
  const kernels = await runKernelBench({
    variants: kernelVariants,
    gemmVariants: kernelVariants.filter((v) => v !== 'scalar'),
    timeMs: quick ? 150 : 300,
    onProgress: (line) => log(`  ${line}`),
  });

  const models: ModelRun[] = [];
  for (const c of E2E_CASES) {
    const model = await ensureBenchModel(c.shape, c.type);
    log(`${c.shape} ${c.type}: ${model.written ? `wrote ${relative(ROOT, model.path)} in ${model.writeSeconds.toFixed(1)} s` : `reusing ${model.path}`}`);
    // A 1B model takes seconds per run: fewer repetitions keep the suite within a few minutes.
    const heavy = model.bytes > HEAVY_MODEL_BYTES;
    const reps = quick ? (heavy ? 1 : 2) : heavy ? 3 : 5;
    const cliArgs = ['bench', '-m', model.path, '-p', '64', '-n', '32', '-r', String(reps), '-t', threads, ...(quick ? [] : ['--profile']), '--json'];
    log(`  pocketllm ${cliArgs.join(' ')}`);
    models.push({ case: c, file: model, command: `pocketllm ${cliArgs.join(' ')}`, report: await benchInChild(cliArgs) });
  }

  // After the models, so the probe's buffers do not share the machine with a model's run.
  const parallelBandwidth: ParallelBandwidthResult[] = [];
  if (threadCounts.length > 1) {
    for (const bytes of [...new Set(models.map((m) => m.report.model.decodeReadBytes))]) {
      for (const t of threadCounts) {
        log(`read bandwidth, ${t} thread${t > 1 ? 's' : ''}, ${(bytes / 2 ** 20).toFixed(0)} MiB`);
        parallelBandwidth.push(await measureParallelReadBandwidth(bytes, t, quick ? 300 : 800));
      }
    }
    coreChecks.push(await coreCheck('end'));
  }

  const results: SuiteResults = {
    startedAt: started.toISOString(),
    durationSeconds: (performance.now() - t0) / 1000,
    quick,
    machine: machineInfo(),
    loadAverage: { start: loadAtStart, end: os.loadavg() },
    bestVariant: best,
    variants,
    bandwidth,
    parallelBandwidth,
    coreChecks,
    kernels,
    models,
  };
  await writeFile(out, formatBenchmarksMarkdown(results) + (await handMeasuredSections(out)));
  log(`wrote ${out}`);
  if (args.json) {
    await writeFile(args.json, JSON.stringify(results, null, 2) + '\n');
    log(`wrote ${args.json}`);
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);

/** Sections measured by hand (from the marker line to the end of the old file), kept across reruns. */
async function handMeasuredSections(path: string): Promise<string> {
  const marker = '<!-- sections below are measured by hand and kept by npm run bench -->';
  const old = await readFile(path, 'utf8').catch(() => '');
  const at = old.indexOf(marker);
  return at < 0 ? '' : '\n' + old.slice(at);
}
