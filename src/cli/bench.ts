// `pocketllm bench`: prefill (pp) and decode (tg) speed of a model as llama-bench measures them,
// with load time and memory, as a text table or JSON.
import type { KernelProfile } from '../bench/kernel-profile.js';
import type { ModelBenchReport } from '../bench/model-bench.js';
import { runModelBench } from '../bench/model-bench.js';
import { formatBytes, formatCount, formatRate, markdownTable } from '../bench/table.js';
import { formatThreadProfile } from '../bench/thread-profile.js';
import type { KernelVariant } from '../runtime/kernels.js';
import { KERNEL_VARIANTS } from '../runtime/kernels.js';
import { CliUsageError, numberOption, runCliCommand } from './args.js';
import { byteSizeOption, memoryOptions } from './memory-options.js';
import { KV_HELP, KV_PARSE_OPTIONS, kvOptions } from './kv-options.js';
import { formatByteSize } from '../memory/byte-size.js';
import { formatWeightMemory } from '../memory/report.js';

const HELP = `usage: pocketllm bench -m model.gguf [options]

  -m, --model FILE          GGUF model to measure
  -p, --n-prompt N[,N...]   prefill tests: N random tokens from an empty context (default 64; 0 = none)
  -n, --n-gen N             decode test: N tokens one at a time (default 32; 0 = none)
  -t, --threads N[,N...]    thread counts, each measured and compared with the first (default 1)
  -r, --repetitions N       counted runs of each test, after one warm-up (default 5)
  -b, --batch-size N        prefill batch size (default: the engine's)
      --memory-budget S[,S...]  memory budgets (e.g. 1GB,2GB), each measured and compared with the first;
                            "none" in the list measures without a budget
      --cache-dir DIR       packed-weight cache directory; --no-cache: none
${KV_HELP}      --kernels K[,K...]    kernel builds: ${KERNEL_VARIANTS.join(', ')} (default: the best that works)
      --profile             also time each kernel over one pp and one tg run; with several
                            threads, also where each thread's time goes (barrier waits, imbalance)
      --json                print one JSON object instead of tables
`;

/** "64,128" → [64, 128], each a whole number >= min. */
function intList(value: string | undefined, flag: string, fallback: number[], min: number): number[] {
  if (value === undefined) return fallback;
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => p === '')) throw new CliUsageError(`${flag} needs a comma-separated list of numbers, got "${value}"`);
  return parts.map((p) => numberOption(p, flag, { integer: true, min })!);
}

function kernelList(value: string | undefined): KernelVariant[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((s) => {
    const k = s.trim();
    if (!(KERNEL_VARIANTS as readonly string[]).includes(k)) throw new CliUsageError(`--kernels takes ${KERNEL_VARIANTS.join(', ')}; got "${k}"`);
    return k as KernelVariant;
  });
}

/** "1GB,none,2GB" → [1e9, undefined, 2e9]. */
function budgetList(value: string | undefined): (number | undefined)[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').map((s) => (s.trim() === 'none' ? undefined : byteSizeOption(s.trim(), '--memory-budget')));
}

export async function benchCommand(argv: string[]): Promise<number> {
  const config = {
    options: {
      model: { type: 'string', short: 'm' },
      'n-prompt': { type: 'string', short: 'p' },
      'n-gen': { type: 'string', short: 'n' },
      threads: { type: 'string', short: 't' },
      repetitions: { type: 'string', short: 'r' },
      'batch-size': { type: 'string', short: 'b' },
      kernels: { type: 'string' },
      'memory-budget': { type: 'string' },
      ...KV_PARSE_OPTIONS,
      'cache-dir': { type: 'string' },
      'no-cache': { type: 'boolean' },
      profile: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  } as const;
  return runCliCommand({ name: 'bench', help: HELP, config }, argv, async ({ values: args }) => {
    if (!args.model) throw new CliUsageError('missing -m model.gguf');
    const promptLengths = intList(args['n-prompt'], '-p', [64], 0).filter((p) => p > 0);
    const generateTokens = numberOption(args['n-gen'], '-n', { integer: true, min: 0 }) ?? 32;
    const threads = intList(args.threads, '-t', [1], 1);
    const repetitions = numberOption(args.repetitions, '-r', { integer: true, min: 1 }) ?? 5;
    const batchSize = numberOption(args['batch-size'], '-b', { integer: true, min: 1 });
    const kernels = kernelList(args.kernels);
    const memoryBudgets = budgetList(args['memory-budget']);
    const { cacheDir } = memoryOptions(undefined, args['cache-dir'], args['no-cache']);
    const kv = kvOptions(args['kv-cache'], args['kv-resident']);
    if (promptLengths.length === 0 && generateTokens === 0) throw new CliUsageError('nothing to measure: -p and -n are both 0');

    const report = await runModelBench({
      path: args.model,
      promptLengths: [...new Set(promptLengths)],
      generateTokens,
      threads: [...new Set(threads)],
      kernels,
      memoryBudgets,
      ...kv,
      ...(cacheDir !== undefined ? { cacheDir } : {}),
      repetitions,
      batchSize,
      profile: args.profile ?? false,
      onProgress: process.stderr.isTTY && !args.json ? (line) => process.stderr.write(`\rmeasuring ${line}...\x1b[K`) : undefined,
    });
    if (process.stderr.isTTY && !args.json) process.stderr.write('\r\x1b[K');
    process.stdout.write(args.json ? JSON.stringify(report, null, 2) + '\n' : formatBenchReport(report));
    return 0;
  });
}

/** The text form: llama-bench's table, then load, memory and machine lines (and profiles). */
export function formatBenchReport(report: ModelBenchReport): string {
  const { model: m, machine } = report;
  const name = m.name ? `${m.name} (${m.architecture})` : m.architecture;
  const rows: string[][] = [];
  // The scaling column only means something when several thread counts or budgets were measured.
  const budgets = report.settings.memoryBudgets ?? [null];
  const multi = report.settings.threads.length > 1 || budgets.length > 1;
  const budgetColumn = budgets.some((b) => b !== null);
  for (const run of report.runs) {
    const threads = run.threadsUsed === null || run.threadsUsed === run.threadsRequested ? String(run.threadsRequested) : `${run.threadsRequested} (ran ${run.threadsUsed})`;
    for (const t of run.tests) {
      const s = t.tokensPerSecond;
      const row = [name, formatBytes(m.sizeBytes), formatCount(m.parameters), m.type, run.kernels, threads, t.test, formatRate(s.median), `${formatRate(s.min)}–${formatRate(s.max)}`];
      if (budgetColumn) row.splice(6, 0, run.memoryBudget === null ? 'none' : formatByteSize(run.memoryBudget));
      if (multi) row.push(t.scaling === null ? '' : `${t.scaling.toFixed(2)}x`);
      rows.push(row);
    }
  }
  const headers = ['model', 'size', 'params', 'type', 'kernels', 'threads', 'test', 't/s (median)', 'min–max'];
  if (budgetColumn) headers.splice(6, 0, 'budget');
  if (multi) headers.push('vs first');
  const left = new Set(['model', 'type', 'kernels', 'test']);
  const lines = [markdownTable(headers, rows, headers.map((h) => (left.has(h) ? 'left' : 'right')))];
  for (const run of report.runs) {
    const w = run.wasm;
    const tg = run.tests.find((t) => t.kind === 'tg');
    lines.push(
      `load ${(run.loadMs / 1000).toFixed(2)} s (${run.kernels}, ${run.threadsRequested} thread${run.threadsRequested > 1 ? 's' : ''}` +
        `${run.threadsUsed === null ? '' : `, engine reports ${run.threadsUsed}`}) | wasm memory ${formatBytes(w.memory)}: ` +
        `weights ${formatBytes(w.weights)}, kv ${formatBytes(w.kv)} (ctx ${run.contextLength}, ${report.settings.kvCache}${report.settings.kvResidentTokens === null ? '' : `, ${report.settings.kvResidentTokens} resident`}), scratch ${formatBytes(w.scratch)}` +
        (tg?.weightBytesPerSecond ? ` | decode reads weights at ${(tg.weightBytesPerSecond / 1e9).toFixed(2)} GB/s` : '') +
        '\n' +
        (run.weightMemory ? `  memory: ${formatWeightMemory(run.weightMemory)}\n` : ''),
    );
  }
  const mem = report.memory;
  lines.push(`peak RSS ${formatBytes(mem.peakRssBytes)} (largest sampled ${formatBytes(mem.sampledPeakRssBytes)})\n`);
  lines.push(
    `${machine.cpu}, ${machine.logicalCpus} logical CPUs, ${formatBytes(machine.totalMemoryBytes)} RAM | Node ${machine.node} (V8 ${machine.v8}) | ` +
      `${report.settings.repetitions} runs per test after 1 warm-up\n`,
  );
  for (const run of report.runs) {
    if (!run.profile) continue;
    if (run.profile.unavailable) lines.push(`\nprofile (${run.kernels}): ${run.profile.unavailable}\n`);
    if (run.profile.pp) lines.push(`\n${formatProfile(`pp${report.settings.promptLengths[0]} (${run.kernels}, t=${run.threadsRequested})`, run.profile.pp)}`);
    if (run.profile.tg) lines.push(`\n${formatProfile(`tg${report.settings.generateTokens} (${run.kernels}, t=${run.threadsRequested})`, run.profile.tg)}`);
    const th = run.profile.threads;
    if (th?.pp) lines.push(`\n${formatThreadProfile(`pp${report.settings.promptLengths[0]} (${run.kernels}, t=${run.threadsRequested})`, th.pp)}`);
    if (th?.tg) lines.push(`\n${formatThreadProfile(`tg${report.settings.generateTokens} (${run.kernels}, t=${run.threadsRequested})`, th.tg)}`);
  }
  return lines.join('');
}

function formatProfile(title: string, p: KernelProfile): string {
  const rows = p.kernels.map((k) => [k.kernel, String(k.calls), k.ms.toFixed(2), `${(k.share * 100).toFixed(1)}%`]);
  const other = p.wallMs - p.kernelMs;
  rows.push(['(outside kernels)', '', other.toFixed(2), `${((other / Math.max(p.wallMs, 1e-9)) * 100).toFixed(1)}%`]);
  return `kernel time, ${title}, ${p.wallMs.toFixed(1)} ms:\n` + markdownTable(['kernel', 'calls', 'ms', 'share'], rows);
}
