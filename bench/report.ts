// Writes BENCHMARKS.md from the suite's results: the machine, the commands, the issue 5 (one thread)
// and issue 6 (two threads) targets and where each stands, end-to-end tables, reference figures of
// other runtimes, read bandwidth, kernel tables and, where a target is missed, the measurements that
// say what limits it (per-kernel time on one thread; barrier waits, per-thread kernel time, imbalance
// and bandwidth on two).
import type { KernelProfile } from '../src/bench/kernel-profile.js';
import type { MachineInfo } from '../src/bench/machine.js';
import type { ModelBenchReport, RunReport, TestResult } from '../src/bench/model-bench.js';
import { formatBytes, formatCount, formatRate, markdownTable } from '../src/bench/table.js';
import type { KernelVariant } from '../src/runtime/kernels.js';
import type { ThreadProfile } from '../src/bench/thread-profile.js';
import type { BandwidthResult, ParallelBandwidthResult } from './bandwidth.js';
import type { KernelResult } from './kernels.js';
import { GEMM_TOKENS, MATRIX_DIM } from './kernels.js';
import type { BenchModel } from './models.js';

/** Tokens/s of another runtime on one model: prefill of 64 tokens and decode of 32, one thread. */
interface Reference {
  readonly pp64: number;
  readonly tg32: number;
}

/** Issue 6's figures for two threads: our targets and the other runtimes' speeds. */
interface TwoThreadFigures {
  readonly target: Reference;
  readonly llamaCpp: Reference;
  readonly onnxruntimeWeb?: Reference;
}

/** One end-to-end case: a synthetic model, its issue 5 targets and the reference figures quoted there. */
export interface E2ECase {
  readonly shape: string;
  readonly type: string;
  readonly target: Reference;
  readonly llamaCpp: Reference;
  readonly onnxruntimeWeb?: Reference;
  readonly wllama?: Reference;
  /** Issue 6: the same model on two threads. */
  readonly twoThreads: TwoThreadFigures;
}

/** Targets and reference figures from issue 5 (single thread; llama.cpp on the same files). */
export const E2E_CASES: readonly E2ECase[] = [
  {
    shape: 'smollm2-135m', type: 'q4_0', target: { pp64: 250, tg32: 200 }, llamaCpp: { pp64: 498, tg32: 200 }, onnxruntimeWeb: { pp64: 243, tg32: 40 }, wllama: { pp64: 11, tg32: 8.5 },
    twoThreads: { target: { pp64: 440, tg32: 225 }, llamaCpp: { pp64: 879, tg32: 188 }, onnxruntimeWeb: { pp64: 306, tg32: 46 } },
  },
  {
    shape: 'smollm2-135m', type: 'q8_0', target: { pp64: 165, tg32: 127 }, llamaCpp: { pp64: 326, tg32: 127 },
    twoThreads: { target: { pp64: 285, tg32: 180 }, llamaCpp: { pp64: 569, tg32: 153 } },
  },
  {
    shape: 'tinyllama-1.1b', type: 'q4_0', target: { pp64: 34, tg32: 29 }, llamaCpp: { pp64: 67, tg32: 29 }, onnxruntimeWeb: { pp64: 29, tg32: 4.6 }, wllama: { pp64: 1.4, tg32: 1.3 },
    twoThreads: { target: { pp64: 67, tg32: 48 }, llamaCpp: { pp64: 133, tg32: 45 }, onnxruntimeWeb: { pp64: 57, tg32: 7.4 } },
  },
];

/** Issue 6: speed on two threads over speed on one, at least this (prefill, decode). */
const SCALING_TARGET = { pp64: 1.8, tg32: 1.5 } as const;
/** Issue 6's quoted read bandwidth of two threads on this machine (native code), GB/s. */
const QUOTED_TWO_THREAD_BANDWIDTH = '27–33 GB/s';

/** Issue 5: the Q4_0 GEMV on 4096×4096 should read its weights at this share of read bandwidth. */
const GEMV_BANDWIDTH_TARGET = 0.6;

/**
 * A read loop over 1 MiB per thread (inside each core's L2, so bound by the core) on each thread
 * count: its speed-up over one thread is how many cores the suite really had at that moment.
 */
export interface CoreCheck {
  readonly when: string;
  readonly results: readonly ParallelBandwidthResult[];
}

export interface ModelRun {
  readonly case: E2ECase;
  readonly file: BenchModel;
  readonly command: string;
  readonly report: ModelBenchReport;
}

export interface SuiteResults {
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly quick: boolean;
  readonly machine: MachineInfo;
  /** os.loadavg() (1, 5, 15 minutes) when the suite started and ended: how busy the machine was. */
  readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
  readonly bestVariant: KernelVariant;
  readonly variants: readonly KernelVariant[];
  readonly bandwidth: readonly BandwidthResult[];
  /** Read bandwidth on 1 and on several threads over buffers the size of each model's decode reads. */
  readonly parallelBandwidth: readonly ParallelBandwidthResult[];
  /** The in-cache read loop on each thread count, before and after the models (several counts only). */
  readonly coreChecks: readonly CoreCheck[];
  readonly kernels: readonly KernelResult[];
  readonly models: readonly ModelRun[];
}

const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;
const gb = (bytesPerSecond: number): string => `${(bytesPerSecond / 1e9).toFixed(2)} GB/s`;

/** The single-thread run of a model (the first thread count, which the suite always makes 1). */
function firstRun(r: ModelBenchReport): RunReport {
  return r.runs[0]!;
}

function test(run: RunReport, name: string): TestResult | undefined {
  return run.tests.find((t) => t.test === name);
}

function modelLabel(m: ModelRun): string {
  return `${m.case.shape} ${m.case.type.toUpperCase()}`;
}

function status(measured: number, target: number): string {
  return measured >= target ? '**met**' : `missed (${pct(measured / target)} of target)`;
}

function gemvQ4_0(s: SuiteResults): KernelResult | undefined {
  return s.kernels.find((k) => k.variant === s.bestVariant && k.type === 'Q4_0' && k.tokens === 1);
}

/** The bandwidth measured over the buffer closest in size to `bytes`. */
function bandwidthNear(s: SuiteResults, bytes: number): BandwidthResult {
  return [...s.bandwidth].sort((a, b) => Math.abs(Math.log(a.bytes / bytes)) - Math.abs(Math.log(b.bytes / bytes)))[0]!;
}

function machineSection(s: SuiteResults): string {
  const m = s.machine;
  return [
    '## Machine',
    '',
    `- CPU: ${m.cpu}, ${m.logicalCpus} logical CPUs (${m.arch}), ${formatBytes(m.totalMemoryBytes)} RAM`,
    `- OS: ${m.platform}`,
    `- Node ${m.node}, V8 ${m.v8}`,
    `- Kernel builds that run here: ${s.variants.join(', ')}; the engine picks **${s.bestVariant}**`,
    '',
  ].join('\n');
}

function commandsSection(s: SuiteResults): string {
  const lines = [
    '## Commands',
    '',
    '```sh',
    `npm run bench${s.quick ? ' -- --quick' : ''}   # this whole report (bench/run.ts); --quick: fewer runs, best build only`,
    ...s.models.map((m) => m.command.replace(m.file.path, `$TMP/pocketllm-bench-models/${m.file.path.split(/[\\/]/).pop()}`)),
    '```',
    '',
    'The models are synthetic: random weights in the exact shapes and per-tensor types of the real',
    'models (`src/synth`, the same plan `pocketllm synth --shape NAME --type TYPE --seed 0 --weights direct`',
    'writes), generated once into `os.tmpdir()/pocketllm-bench-models` and reused. Speed does not depend',
    'on the weight values. Prefill tests run random token ids from an empty context; decode tests decode',
    'one token at a time (greedy) after a one-token prompt and time only the decode steps. Each test runs',
    'once as a warm-up, then the counted repetitions.',
    '',
  ];
  return lines.join('\n');
}

function targetsSection(s: SuiteResults): string {
  const rows: string[][] = [];
  for (const m of s.models) {
    const run = firstRun(m.report);
    for (const [name, target] of [['pp64', m.case.target.pp64], ['tg32', m.case.target.tg32]] as const) {
      const t = test(run, name);
      if (!t) continue;
      rows.push([`${modelLabel(m)} ${name} (t/s)`, formatRate(t.tokensPerSecond.median), `≥ ${target}`, status(t.tokensPerSecond.median, target)]);
    }
  }
  const g = gemvQ4_0(s);
  if (g) {
    const bw = bandwidthNear(s, g.weightBytes);
    const share = g.gbPerSecond / bw.gbPerSecond;
    rows.push([
      `GEMV ${MATRIX_DIM}×${MATRIX_DIM} Q4_0 (${g.variant}), share of read bandwidth`,
      `${pct(share)} (${g.gbPerSecond.toFixed(2)} of ${bw.gbPerSecond.toFixed(1)} GB/s)`,
      `≥ ${pct(GEMV_BANDWIDTH_TARGET)}`,
      status(share, GEMV_BANDWIDTH_TARGET),
    ]);
  }
  return ['## Issue 5 targets (single thread)', '', markdownTable(['target', 'measured (median)', 'target', 'status'], rows, ['left', 'right', 'right', 'left'])].join('\n');
}

/** The run of a model on `threads` threads, if the suite measured one. */
function runWith(r: ModelBenchReport, threads: number): RunReport | undefined {
  return r.runs.find((run) => run.threadsRequested === threads);
}

/** The read bandwidth measured on `threads` threads over the buffer closest in size to `bytes`. */
function parallelBandwidthNear(s: SuiteResults, threads: number, bytes: number): ParallelBandwidthResult | undefined {
  const same = s.parallelBandwidth.filter((b) => b.threads === threads);
  return same.sort((a, b) => Math.abs(Math.log(a.bytes / bytes)) - Math.abs(Math.log(b.bytes / bytes)))[0];
}

function twoThreadTargetsSection(s: SuiteResults): string {
  const title = '## Issue 6 targets (2 threads)';
  const rows: string[][] = [];
  for (const m of s.models) {
    const run = runWith(m.report, 2);
    if (!run) continue;
    for (const name of ['pp64', 'tg32'] as const) {
      const t = test(run, name);
      if (!t) continue;
      const target = m.case.twoThreads.target[name];
      rows.push([`${modelLabel(m)} ${name} (t/s)`, formatRate(t.tokensPerSecond.median), `≥ ${target}`, status(t.tokensPerSecond.median, target)]);
    }
    for (const name of ['pp64', 'tg32'] as const) {
      const t = test(run, name);
      if (!t || t.scaling === null) continue;
      rows.push([`${modelLabel(m)} ${name}: 2 threads over 1`, `${t.scaling.toFixed(2)}x`, `≥ ${SCALING_TARGET[name]}x`, status(t.scaling, SCALING_TARGET[name])]);
    }
  }
  if (rows.length === 0) return [title, '', 'Not measured in this run: `npm run bench -- --threads 1,2` measures every model on 1 and 2 threads.', ''].join('\n');
  const fmt = (r: Reference | undefined) => (r ? `${r.pp64} / ${r.tg32}` : '—');
  const refRows = s.models.map((m) => {
    const run = runWith(m.report, 2);
    const pp = run && test(run, 'pp64');
    const tg = run && test(run, 'tg32');
    return [modelLabel(m), pp && tg ? `${formatRate(pp.tokensPerSecond.median)} / ${formatRate(tg.tokensPerSecond.median)}` : '—', fmt(m.case.twoThreads.target), fmt(m.case.twoThreads.llamaCpp), fmt(m.case.twoThreads.onnxruntimeWeb)];
  });
  return [
    title,
    '',
    markdownTable(['target', 'measured (median)', 'target', 'status'], rows, ['left', 'right', 'right', 'left']),
    'Two-thread figures quoted from issue 6 (pp64 / tg32 tokens per second; llama.cpp native with AVX-512 on the same files, onnxruntime-web wasm on its q8 export), beside ours from this run:',
    '',
    markdownTable(['model', 'pocketllm, 2 threads', 'target', 'llama.cpp, 2 threads', 'onnxruntime-web (q8), 2 threads'], refRows),
  ].join('\n');
}

function endToEndSection(s: SuiteResults): string {
  const rows: string[][] = [];
  const scaled = s.models.some((m) => m.report.settings.threads.length > 1);
  for (const m of s.models) {
    const r = m.report;
    for (const run of r.runs) {
      for (const t of run.tests) {
        const ref = t.test === 'pp64' ? m.case.llamaCpp.pp64 : t.test === 'tg32' ? m.case.llamaCpp.tg32 : undefined;
        const tps = t.tokensPerSecond;
        rows.push([
          modelLabel(m),
          formatBytes(r.model.sizeBytes),
          formatCount(r.model.parameters),
          run.kernels,
          run.threadsUsed === null || run.threadsUsed === run.threadsRequested ? String(run.threadsRequested) : `${run.threadsRequested} (ran ${run.threadsUsed})`,
          t.test,
          formatRate(tps.median),
          `${formatRate(tps.min)}–${formatRate(tps.max)}`,
          ...(scaled ? [t.scaling === null ? '' : `${t.scaling.toFixed(2)}x`] : []),
          ref === undefined ? '' : String(ref),
          ref === undefined ? '' : pct(tps.median / ref),
        ]);
      }
    }
  }
  const memRows = s.models.map((m) => {
    const run = firstRun(m.report);
    const tg = test(run, 'tg32');
    return [
      modelLabel(m),
      `${(run.loadMs / 1000).toFixed(2)} s`,
      formatBytes(run.wasm.memory),
      formatBytes(run.wasm.weights),
      `${formatBytes(run.wasm.kv)} (ctx ${run.contextLength})`,
      formatBytes(run.wasm.scratch),
      formatBytes(m.report.memory.peakRssBytes),
      tg?.weightBytesPerSecond ? gb(tg.weightBytesPerSecond) : '',
    ];
  });
  const reps = [...new Set(s.models.map((m) => m.report.settings.repetitions))].join(' or ') + ' runs';
  return [
    '## End to end: `pocketllm bench`',
    '',
    `Tokens per second, median of ${reps} and the range (min–max)${scaled ? '; "vs first" is the speed over the first thread count\'s' : ''}; llama.cpp figures from issue 5 (1 thread, same files).`,
    '',
    markdownTable(
      ['model', 'size', 'params', 'kernels', 'threads', 'test', 't/s (median)', 'min–max', ...(scaled ? ['vs first'] : []), 'llama.cpp', 'of llama.cpp'],
      rows,
      ['left', 'right', 'right', 'left', 'right', 'left', 'right', 'right', ...(scaled ? ['right' as const] : []), 'right', 'right'],
    ),
    'Load time, wasm memory by region, the process\'s peak resident set (getrusage, one process per model) and the rate at which decoding reads the weights (weight bytes × decode t/s):',
    '',
    markdownTable(['model', 'load', 'wasm memory', 'weights', 'KV cache', 'scratch', 'peak RSS', 'decode weight reads'], memRows),
  ].join('\n');
}

function referenceSection(): string {
  const fmt = (r: Reference | undefined) => (r ? `${r.pp64} / ${r.tg32}` : '—');
  const rows = E2E_CASES.map((c) => [`${c.shape} ${c.type.toUpperCase()}`, `${c.target.pp64} / ${c.target.tg32}`, fmt(c.llamaCpp), fmt(c.onnxruntimeWeb), fmt(c.wllama)]);
  return [
    '## Reference figures (quoted from issue 5, not measured on this machine)',
    '',
    'pp64 / tg32 tokens per second, one thread. onnxruntime-web runs its own q8 export of each model, so its figures sit in the Q4_0 rows only for lack of a better place.',
    '',
    markdownTable(['model', 'pocketllm target', 'llama.cpp', 'onnxruntime-web (q8)', 'wllama'], rows),
  ].join('\n');
}

function bandwidthSection(s: SuiteResults): string {
  const rows = s.bandwidth.map((b) => [formatBytes(b.bytes), b.gbPerSecond.toFixed(2), `${b.minGBps.toFixed(2)}–${b.maxGBps.toFixed(2)}`, String(b.samples)]);
  const out = [
    '## Read bandwidth (wasm SIMD)',
    '',
    'A separate probe (`bench/wasm/bandwidth.ts`, built by the suite with asc, not shipped) sums a buffer with 16-byte loads into four accumulators. Single thread: the first buffer is the size of the Q4_0 matrix below, read again and again as the GEMV benchmark reads it (so from cache where the cache holds it); the second is larger than the caches.',
    '',
    markdownTable(['buffer', 'GB/s (median)', 'min–max', 'runs'], rows),
  ];
  const sizes = [...new Set(s.parallelBandwidth.map((b) => b.bytes))].sort((a, b) => a - b);
  const counts = [...new Set(s.parallelBandwidth.map((b) => b.threads))].sort((a, b) => a - b);
  if (sizes.length && counts.length > 1) {
    const prow = sizes.map((bytes) => {
      const at = (t: number) => s.parallelBandwidth.find((b) => b.bytes === bytes && b.threads === t);
      const one = at(counts[0]!);
      return [
        formatBytes(bytes),
        ...counts.map((t) => {
          const b = at(t);
          return b ? `${b.gbPerSecond.toFixed(2)} (${b.minGBps.toFixed(1)}–${b.maxGBps.toFixed(1)})` : '—';
        }),
        ...counts.slice(1).map((t) => {
          const b = at(t);
          return b && one ? `${(b.gbPerSecond / one.gbPerSecond).toFixed(2)}x` : '—';
        }),
      ];
    });
    out.push(
      'Several threads at once, each reading its own part of one buffer the size of a model\'s decode reads (the calling thread and workers on one shared memory, joined after every pass as the executor joins its calls; the rate is the whole buffer over the slowest thread\'s time), GB/s median and range:',
      '',
      markdownTable(['buffer', ...counts.map((t) => `${t} thread${t > 1 ? 's' : ''}`), ...counts.slice(1).map((t) => `${t} over ${counts[0]}`)], prow),
    );
  }
  return out.join('\n');
}

function kernelSection(s: SuiteResults): string {
  const variants = [...new Set(s.kernels.map((k) => k.variant))];
  const types = [...new Set(s.kernels.map((k) => k.type))];
  const find = (v: string, t: string, tokens: number) => s.kernels.find((k) => k.variant === v && k.type === t && k.tokens === tokens);
  const gemvRows = types.map((t) => {
    const any = find(variants[0]!, t, 1)!;
    const cells = [t, formatBytes(any.weightBytes)];
    for (const v of variants) {
      const k = find(v, t, 1);
      cells.push(k ? `${k.ms.toFixed(2)} ms · ${k.gbPerSecond.toFixed(2)} GB/s · ${k.gopPerSecond.toFixed(1)} GFLOP/s` : '—');
    }
    const best = find(s.bestVariant, t, 1);
    cells.push(best ? pct(best.gbPerSecond / bandwidthNear(s, best.weightBytes).gbPerSecond) : '—');
    return cells;
  });
  const gemmVariants = variants.filter((v) => s.kernels.some((k) => k.variant === v && k.tokens === GEMM_TOKENS));
  const gemmRows = types.map((t) => {
    const cells = [t];
    for (const v of gemmVariants) {
      const k = find(v, t, GEMM_TOKENS);
      const one = find(v, t, 1);
      cells.push(k ? `${k.ms.toFixed(1)} ms · ${k.gopPerSecond.toFixed(1)} GOP/s${one ? ` (${(k.gopPerSecond / one.gopPerSecond).toFixed(1)}x GEMV)` : ''}` : '—');
    }
    return cells;
  });
  return [
    `## Kernels: ${MATRIX_DIM}×${MATRIX_DIM} matmul (tinybench, single thread)`,
    '',
    `GEMV (1 token, the decode case): median time per call, weight bytes read per second, and 2·${MATRIX_DIM}² FLOP per call. The last column compares the ${s.bestVariant} build with the read bandwidth over a buffer of about the same size. Activations are converted to the type's activation format (Q8_0, Q8_1, Q8_K, F16) outside the timed call.`,
    '',
    markdownTable(['type', 'weights', ...variants, `${s.bestVariant}: of bandwidth`], gemvRows, ['left', 'right', ...variants.map(() => 'right' as const), 'right']),
    gemmVariants.length
      ? [
          `GEMM (${GEMM_TOKENS} tokens, the prefill case): median time per call and GOP/s (2·${MATRIX_DIM}²·${GEMM_TOKENS} operations; the integer dot products count as operations), with the gain over ${GEMM_TOKENS} GEMV calls.`,
          '',
          markdownTable(['type', ...gemmVariants], gemmRows),
        ].join('\n')
      : '',
  ].join('\n');
}

function profileTable(p: KernelProfile, top: number): string {
  const rows = p.kernels.slice(0, top).map((k) => [k.kernel, String(k.calls), k.ms.toFixed(1), pct(k.share)]);
  const rest = p.kernels.slice(top).reduce((a, k) => a + k.ms, 0);
  if (p.kernels.length > top) rows.push(['(other kernels)', '', rest.toFixed(1), pct(rest / p.wallMs)]);
  rows.push(['(outside kernels: JavaScript)', '', (p.wallMs - p.kernelMs).toFixed(1), pct((p.wallMs - p.kernelMs) / p.wallMs)]);
  return markdownTable(['kernel', 'calls', 'ms', 'share'], rows);
}

function matmulShare(p: KernelProfile): number {
  return p.kernels.filter((k) => k.kernel.startsWith('matmul')).reduce((a, k) => a + k.ms, 0) / p.wallMs;
}

const ms2 = (ms: number): string => ms.toFixed(2);
const shareOf = (ms: number, of: number): string => pct(ms / Math.max(of, 1e-9));

/** One row per phase: where the step's time went on the threads. */
function threadProfileRow(label: string, p: ThreadProfile): string[] {
  const per = Math.max(p.forwardPasses, 1);
  return [
    label,
    `${ms2(p.wallMs / per)} ms`,
    shareOf(p.splitMs, p.wallMs),
    shareOf(p.waitMs, p.wallMs),
    shareOf(p.serialMs, p.wallMs),
    shareOf(p.outsideMs, p.wallMs),
    p.threadBusyMs.map((ms) => ms2(ms / per)).join(' / '),
    pct(p.imbalance),
    `${ms2(p.barrierOverheadMs / per)} ms (${shareOf(p.barrierOverheadMs, p.wallMs)})`,
  ];
}

function kindTable(p: ThreadProfile): string {
  const per = Math.max(p.forwardPasses, 1);
  const rows = p.kinds.map((k) => [
    k.kind,
    (k.calls / per).toFixed(0),
    (k.splitCalls / per).toFixed(0),
    ms2(k.ms / per),
    shareOf(k.ms, p.wallMs),
    ms2(k.waitMs / per),
    k.threadMs.map((ms) => ms2(ms / per)).join(' / '),
    k.splitCalls > 0 ? pct(k.imbalance) : '',
  ]);
  return markdownTable(['call', 'calls', 'split', 'ms', 'of step', 'barrier wait ms', 'kernel ms per thread', 'imbalance'], rows);
}

function multicoreLimitsSection(s: SuiteResults): string {
  const measured = s.models.filter((m) => runWith(m.report, 2));
  if (measured.length === 0) return '';
  const out = [
    '## What limits multicore',
    '',
    'From one more pp64 and tg32 run per model on 2 threads with the executor\'s call counters on (`pocketllm bench --profile`, `executor.stats()`; no per-kernel timers in that run). A split call wakes the worker, runs the coordinator\'s share, then waits at the barrier for the worker; calls too small to repay a barrier (norms, SwiGLU and conversions of a single token) run on thread 0 alone while thread 1 idles. All times per forward pass (one decode step; the 64-token prefill is one pass).',
    '',
  ];
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const m of measured) {
    const run = runWith(m.report, 2)!;
    const th = run.profile?.threads;
    if (th?.pp) rows.push(threadProfileRow(`${modelLabel(m)} pp64`, th.pp));
    if (th?.tg) rows.push(threadProfileRow(`${modelLabel(m)} tg32`, th.tg));
    const facts: string[] = [];
    const tg = test(run, 'tg32');
    const pp = test(run, 'pp64');
    const readBytes = m.report.model.decodeReadBytes;
    const bw2 = readBytes ? parallelBandwidthNear(s, 2, readBytes) : undefined;
    const bw1 = readBytes ? parallelBandwidthNear(s, 1, readBytes) : undefined;
    if (tg && readBytes) {
      const achieved = (readBytes * tg.tokensPerSecond.median) / 1e9;
      let line = `decode reads ${formatBytes(readBytes)} of weights per token, at ${achieved.toFixed(2)} GB/s over the whole step`;
      if (th?.tg) {
        const matmulMs = th.tg.kinds.find((k) => k.kind === 'matmul')?.ms ?? 0;
        const perStep = matmulMs / Math.max(th.tg.forwardPasses, 1);
        if (perStep > 0) line += ` and ${(readBytes / (perStep * 1e6)).toFixed(2)} GB/s while in the matmuls`;
      }
      if (bw2) {
        line += `; 2 threads read a buffer of ${formatBytes(bw2.bytes)} at ${bw2.gbPerSecond.toFixed(1)} GB/s here (1 thread: ${bw1 ? bw1.gbPerSecond.toFixed(1) : '?'} GB/s), so decode could reach ${formatRate((bw2.gbPerSecond * 1e9) / readBytes)} t/s if it only read weights (${pct(achieved / bw2.gbPerSecond)} of that bandwidth used)`;
      }
      facts.push(line);
    }
    if (th?.tg && tg) {
      const p = th.tg;
      const per = Math.max(p.forwardPasses, 1);
      const splits = p.kinds.reduce((a, k) => a + k.splitCalls, 0) / per;
      facts.push(
        `a decode step makes ${splits.toFixed(0)} split calls; thread 0 waits ${ms2(p.waitMs / per)} ms at their barriers (${shareOf(p.waitMs, p.wallMs)} of the step) and runs ${ms2(p.serialMs / per)} ms of calls alone (${shareOf(p.serialMs, p.wallMs)}); ` +
          `kernel time per thread ${p.threadBusyMs.map((ms) => `${ms2(ms / per)} ms`).join(' / ')}, split imbalance ${pct(p.imbalance)}; the barriers cost ${ms2(p.barrierOverheadMs / per)} ms past the slowest thread; ` +
          `the barrier estimate ended at ${(p.barrierMs * 1000).toFixed(1)} µs, so only calls the coordinator would need ${(3 * p.barrierMs).toFixed(2)} ms or more for are split${unsplit(p)}`,
      );
    }
    if (th?.pp && pp) {
      const p = th.pp;
      facts.push(`prefill: ${shareOf(p.splitMs, p.wallMs)} of the pass in split calls, ${shareOf(p.waitMs, p.wallMs)} waiting at barriers, imbalance ${pct(p.imbalance)}, ${shareOf(p.serialMs + p.outsideMs, p.wallMs)} on thread 0 alone (calls not split and JavaScript between calls)${unsplit(p)}`);
    }
    const misses: string[] = [];
    for (const name of ['pp64', 'tg32'] as const) {
      const t = test(run, name);
      if (t && t.tokensPerSecond.median < m.case.twoThreads.target[name]) misses.push(`${name} ${formatRate(t.tokensPerSecond.median)} < ${m.case.twoThreads.target[name]}`);
      if (t?.scaling != null && t.scaling < SCALING_TARGET[name]) misses.push(`${name} scaling ${t.scaling.toFixed(2)}x < ${SCALING_TARGET[name]}x`);
    }
    const verdict = limitVerdict(th?.tg, tg, readBytes, bw2, coreScaling(s));
    notes.push(`- **${modelLabel(m)}**${misses.length ? ` (missed: ${misses.join(', ')})` : ' (all 2-thread targets met)'}: ${facts.join('; ')}.${verdict ? ` ${verdict}` : ''}`);
  }
  if (rows.length) {
    out.push(
      markdownTable(
        ['run', 'wall per pass', 'in split calls', 'thread 0 at barrier', 'thread 0 alone', 'outside calls', 'kernel ms per thread (0 / 1)', 'imbalance', 'barrier overhead'],
        rows,
      ),
    );
  }
  out.push(...notes, '');
  const checks = s.coreChecks.flatMap((c) => {
    const one = c.results.find((r) => r.threads === 1);
    const two = c.results.find((r) => r.threads === 2);
    return one && two ? [`${(two.gbPerSecond / one.gbPerSecond).toFixed(2)}x at the ${c.when} of the suite`] : [];
  });
  if (checks.length) {
    out.push(
      `How many cores the suite really had: a read loop over 1 MiB per thread (inside each core's L2, so bound by the core, not by memory) ran ${checks.join(' and ')} on 2 threads over 1. 2x means both cores were free; less means other processes held one part of the time, and no model scaling above could exceed that factor.`,
      '',
    );
  }
  out.push(
    `Issue 6 quotes ${QUOTED_TWO_THREAD_BANDWIDTH} for two threads' read bandwidth (native code); the wasm probe above is what a wasm kernel can get on this machine, over buffers the size of each model's decode reads (the 260 MiB L3 holds the smollm2 files, not the 1.1B one).`,
    '',
  );
  for (const m of measured) {
    const th = runWith(m.report, 2)!.profile?.threads;
    if (th?.tg) out.push(`Calls of one decode step on 2 threads, ${modelLabel(m)} (per step, over ${th.tg.forwardPasses} steps):`, '', kindTable(th.tg));
    if (th?.pp) out.push(`Calls of the pp64 pass on 2 threads, ${modelLabel(m)}:`, '', kindTable(th.pp));
  }
  return out.join('\n');
}

/** The kinds of calls that ran on thread 0 alone for at least 2% of the phase: ", alone: swiglu 4%". */
function unsplit(p: ThreadProfile): string {
  const alone = p.calls;
  const parts = p.kinds.flatMap((k) => {
    const ms = alone[k.kind].serialMs ?? 0;
    return ms / p.wallMs >= 0.02 ? [`${k.kind} ${shareOf(ms, p.wallMs)}`] : [];
  });
  return parts.length ? ` (run alone: ${parts.join(', ')} of the time)` : '';
}

/** The lowest 2-over-1 speed-up of the in-cache read loop (how many cores the suite had), if measured. */
function coreScaling(s: SuiteResults): number | undefined {
  const factors = s.coreChecks.flatMap((c) => {
    const one = c.results.find((r) => r.threads === 1);
    const two = c.results.find((r) => r.threads === 2);
    return one && two ? [two.gbPerSecond / one.gbPerSecond] : [];
  });
  return factors.length ? Math.min(...factors) : undefined;
}

/** One sentence naming the main limit of decode on 2 threads, from the measurements. */
function limitVerdict(p: ThreadProfile | undefined, tg: TestResult | undefined, readBytes: number, bw2: ParallelBandwidthResult | undefined, cores: number | undefined): string {
  if (!p || !tg) return '';
  if (cores !== undefined && cores < 1.6) {
    return `In this run the machine itself is the limit: the in-cache loop ran only ${cores.toFixed(2)}x on 2 threads over 1, so the second thread often had no core, and barrier waits and imbalance above measure that as much as the executor. Rerun on an idle machine before reading them as the executor's costs.`;
  }
  const used = bw2 && readBytes ? (readBytes * tg.tokensPerSecond.median) / 1e9 / bw2.gbPerSecond : 0;
  const sync = (p.waitMs + p.serialMs + p.outsideMs + p.wakeMs) / p.wallMs;
  if (used >= 0.7) return `Decode is limited by memory bandwidth (${pct(used)} of what two threads can read).`;
  if (sync >= 0.3) return `Decode is limited by synchronisation and serial work: ${pct(sync)} of the step is thread 0 waiting at barriers, waking the worker, running calls alone or running JavaScript.`;
  return `Decode is limited by kernel speed: the threads spend ${pct(1 - sync)} of the step in their shares, and use ${pct(used)} of the bandwidth.`;
}

function limitsSection(s: SuiteResults): string {
  const out = ['## What limits speed now', ''];
  const g = gemvQ4_0(s);
  const cacheBw = g ? bandwidthNear(s, g.weightBytes) : undefined;
  const bigBw = s.bandwidth.reduce((a, b) => (b.bytes > a.bytes ? b : a), s.bandwidth[0]!);
  if (g && cacheBw) {
    const share = g.gbPerSecond / cacheBw.gbPerSecond;
    const facts = `The Q4_0 GEMV reads its ${formatBytes(g.weightBytes)} at ${g.gbPerSecond.toFixed(2)} GB/s, ${pct(share)} of the ${cacheBw.gbPerSecond.toFixed(1)} GB/s a plain SIMD read loop reaches over the same bytes (and ${pct(g.gbPerSecond / bigBw.gbPerSecond)} of the ${bigBw.gbPerSecond.toFixed(1)} GB/s from main memory).`;
    out.push(
      share < GEMV_BANDWIDTH_TARGET
        ? `- **The quantized matmuls are compute-bound, far below memory speed.** ${facts} The target is ${pct(GEMV_BANDWIDTH_TARGET)}: the kernel spends its time unpacking and multiplying, not waiting for memory, so a faster inner loop is worth more than any memory layout change.`
        : `- **The Q4_0 matmul runs near memory speed.** ${facts} Past this point decode speed follows bandwidth: fewer bytes per weight or more threads.`,
    );
  }
  for (const m of s.models) {
    const run = firstRun(m.report);
    const tg = test(run, 'tg32');
    const pp = test(run, 'pp64');
    const parts: string[] = [];
    if (tg) {
      const stepMs = 1000 / tg.tokensPerSecond.median;
      const needMs = 1000 / m.case.target.tg32;
      parts.push(`a decode step takes ${stepMs.toFixed(1)} ms (the target needs ${needMs.toFixed(1)} ms) and reads the weights at ${gb(tg.weightBytesPerSecond ?? 0)}`);
    }
    const prof = run.profile;
    if (prof?.tg) {
      const top = prof.tg.kernels.slice(0, 2).map((k) => `${k.kernel} ${pct(k.share)}`).join(', ');
      parts.push(`matmuls take ${pct(matmulShare(prof.tg))} of decode time (${top})`);
    }
    if (pp && prof?.pp) parts.push(`and ${pct(matmulShare(prof.pp))} of prefill time`);
    if (parts.length) out.push(`- **${modelLabel(m)}**: ${parts.join('; ')}.`);
  }
  const outputShares = s.models.flatMap((m) => {
    const p = firstRun(m.report).profile?.tg;
    const q8 = p?.kernels.find((k) => k.kernel === 'matmulQ8_0' && k.calls === (m.report.settings.generateTokens + 1));
    return q8 && m.case.type === 'q4_0' ? [`${modelLabel(m)}: ${pct(q8.share)}`] : [];
  });
  if (outputShares.length) {
    out.push(
      `- In the Q4_0 files the output projection (token embeddings reused as output, stored as Q8_0 by llama.cpp's rules) is one matmul per token over the whole vocabulary; its share of decode time: ${outputShares.join('; ')}.`,
    );
  }
  out.push(
    '- Prefill runs the same kernels on 64 tokens at once; GEMM throughput over GEMV (kernel tables below) shows how much the kernels reuse each weight block across tokens.',
    '',
  );
  for (const m of s.models) {
    const prof = firstRun(m.report).profile;
    if (!prof || prof.unavailable) continue;
    if (prof.tg) out.push(`Kernel time of one tg32 run, ${modelLabel(m)} (${firstRun(m.report).kernels}), ${prof.tg.wallMs.toFixed(0)} ms:`, '', profileTable(prof.tg, 5));
    if (prof.pp) out.push(`Kernel time of one pp64 run, ${modelLabel(m)}, ${prof.pp.wallMs.toFixed(0)} ms:`, '', profileTable(prof.pp, 5));
  }
  if (s.quick) out.push('(`--quick` runs no profiles; run the full suite for the per-kernel breakdown.)', '');
  return out.join('\n');
}

export function formatBenchmarksMarkdown(s: SuiteResults): string {
  return [
    '# Benchmarks',
    '',
    `Generated by \`npm run bench\` (bench/run.ts) on ${s.startedAt.slice(0, 10)} in ${Math.round(s.durationSeconds)} s${s.quick ? ' with `--quick`' : ''}. Do not edit by hand; rerun the suite.`,
    '',
    'The machine is shared with other engineers\' test runs, so single runs are noisy: every figure is a median over repeated runs, with the range beside it where it matters. Compare medians, and distrust differences of a few percent.',
    `During this run the 1-minute load average went from ${s.loadAverage.start[0]!.toFixed(2)} to ${s.loadAverage.end[0]!.toFixed(2)} on ${s.machine.logicalCpus} logical CPUs${s.loadAverage.end[0]! > 1.5 || s.loadAverage.start[0]! > 1.5 ? ': other processes competed for the CPU, so these figures are lower than an idle machine gives' : ''}.`,
    '',
    machineSection(s),
    commandsSection(s),
    targetsSection(s),
    twoThreadTargetsSection(s),
    endToEndSection(s),
    referenceSection(),
    limitsSection(s),
    multicoreLimitsSection(s),
    bandwidthSection(s),
    kernelSection(s),
  ].join('\n');
}
