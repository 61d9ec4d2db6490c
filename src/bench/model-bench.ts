// End-to-end model benchmark in the manner of llama-bench: for each kernel build and thread count,
// load the model, then time prefills of pp random tokens from an empty context and the decode of n
// tokens one at a time, r times each after one uncounted warm-up, and report tokens per second
// (median and range), load time, memory by region and the process's resident set.
import type { Model } from '../engine/model.js';
import { loadModel } from '../engine/load.js';
import type { KVPrecision } from '../model/kv-cache.js';
import { TYPE_TRAITS } from '../quant/formats.js';
import type { WeightMemoryReport } from '../memory/report.js';
import type { KernelVariant } from '../runtime/kernels.js';
import type { KernelProfile } from './kernel-profile.js';
import { attachKernelProfiler } from './kernel-profile.js';
import type { MachineInfo } from './machine.js';
import { machineInfo } from './machine.js';
import type { MemoryReport } from './memory-sampler.js';
import { RssSampler } from './memory-sampler.js';
import type { Summary } from './stats.js';
import { summarize } from './stats.js';
import type { ThreadProfile } from './thread-profile.js';
import { threadProfile } from './thread-profile.js';

export interface ModelBenchOptions {
  readonly path: string;
  /** Prefill lengths, one pp test each (none: no prefill test). */
  readonly promptLengths: readonly number[];
  /** Tokens decoded one at a time in the tg test (0: no decode test). */
  readonly generateTokens: number;
  /** Thread counts, one model load each. */
  readonly threads: readonly number[];
  /** Kernel builds, one model load each; undefined: the engine's choice. */
  readonly kernels?: readonly KernelVariant[];
  /** Counted repetitions of each test (one uncounted warm-up precedes them). */
  readonly repetitions: number;
  /** Memory budgets in bytes, one model load each (undefined in the list: no budget). */
  readonly memoryBudgets?: readonly (number | undefined)[];
  /** Packed-weight cache directory passed to loadModel (false: no cache). */
  readonly cacheDir?: string | false;
  /** Prefill batch size passed to loadModel (undefined: the engine's default). */
  readonly batchSize?: number;
  /** KV cache precision and resident-token threshold passed to loadModel (undefined: the engine's defaults). */
  readonly kvCache?: KVPrecision;
  readonly kvResidentTokens?: number;
  /** Also time every kernel call of one pp and one tg run (slightly perturbs nothing measured above). */
  readonly profile?: boolean;
  /** Seed of the random token ids. */
  readonly seed?: number;
  /** Called with a short line as each test starts (for progress output). */
  readonly onProgress?: (line: string) => void;
}

export type TestKind = 'pp' | 'tg';

export interface TestResult {
  /** llama-bench's name: pp64, tg32. */
  readonly test: string;
  readonly kind: TestKind;
  /** Tokens each repetition processes (prefill length, or decode steps). */
  readonly tokens: number;
  /** Wall time of each counted repetition, milliseconds. */
  readonly samplesMs: readonly number[];
  readonly tokensPerSecond: Summary;
  /** Decode only: weight bytes read per second at the median rate (each step reads every weight once). */
  readonly weightBytesPerSecond: number | null;
  /** Median rate over the same test at the first thread count of this kernel build; null for that one. */
  readonly scaling: number | null;
}

export interface RunReport {
  /** The kernel build the model actually runs. */
  readonly kernels: KernelVariant;
  readonly threadsRequested: number;
  /** The memory budget of this load in bytes (null: none). */
  readonly memoryBudget: number | null;
  /** Weight bytes resident and streamed, embeddings and packed cache, as the model reports them. */
  readonly weightMemory: WeightMemoryReport;
  /** Threads the model says it uses; null when the engine does not say. */
  readonly threadsUsed: number | null;
  readonly loadMs: number;
  /** Bytes of wasm memory: the whole memory and what the arena handed out per region. */
  readonly wasm: { readonly memory: number; readonly weights: number; readonly kv: number; readonly scratch: number };
  readonly contextLength: number;
  readonly tests: readonly TestResult[];
  /**
   * Per-kernel time of one pp and one tg run, when profiling was asked for and possible; with more
   * than one thread also where the threads' time went in one more pp and tg run (executor statistics,
   * measured without the per-kernel timers).
   */
  readonly profile?: {
    readonly pp?: KernelProfile;
    readonly tg?: KernelProfile;
    readonly unavailable?: string;
    readonly threads?: { readonly pp?: ThreadProfile; readonly tg?: ThreadProfile };
  };
}

export interface ModelFacts {
  readonly path: string;
  readonly name: string | null;
  readonly architecture: string;
  /** The type most matrix weights have (Q4_0 for a Q4_0 file, whose output may be Q6_K). */
  readonly type: string;
  readonly sizeBytes: number;
  readonly parameters: number;
  readonly vocabSize: number;
  readonly layers: number;
  readonly embeddingLength: number;
  /**
   * Bytes of weights one decode step reads: every tensor but the token embeddings, of which it reads
   * one row (unless they double as the output matrix, then they are read whole).
   */
  readonly decodeReadBytes: number;
}

export interface ModelBenchReport {
  readonly model: ModelFacts;
  readonly machine: MachineInfo;
  readonly settings: {
    readonly promptLengths: readonly number[];
    readonly generateTokens: number;
    readonly repetitions: number;
    readonly threads: readonly number[];
    readonly memoryBudgets: readonly (number | null)[];
    readonly kernels: readonly KernelVariant[] | 'auto';
    readonly batchSize: number | null;
    /** KV cache storage, and the resident-token threshold past which it spills (null: all resident). */
    readonly kvCache: KVPrecision;
    readonly kvResidentTokens: number | null;
  };
  readonly runs: readonly RunReport[];
  readonly memory: MemoryReport;
}

/** Decode tests start after a prompt of this many tokens (llama-bench decodes from an empty context). */
const TG_PROMPT_TOKENS = 1;

/** Deterministic token ids spread over the vocabulary (xorshift32; the values do not matter). */
export function benchTokens(count: number, vocabSize: number, seed: number): number[] {
  let s = (seed >>> 0) || 0x9e3779b9;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out.push(s % vocabSize);
  }
  return out;
}

function modelFacts(model: Model, path: string): ModelFacts {
  const f = model.file;
  let sizeBytes = 0;
  let parameters = 0;
  const matrixBytesByType = new Map<number, number>();
  for (const t of f.tensors) {
    sizeBytes += t.byteSize;
    parameters += t.elementCount;
    if (t.shape.length >= 2) matrixBytesByType.set(t.type, (matrixBytesByType.get(t.type) ?? 0) + t.elementCount);
  }
  let type = 'unknown';
  let most = -1;
  for (const [t, n] of matrixBytesByType) {
    if (n > most) {
      most = n;
      type = TYPE_TRAITS.get(t)?.name ?? `type ${t}`;
    }
  }
  const tied = !f.tensorsByName.has('output.weight');
  const embedding = f.tensorsByName.get('token_embd.weight');
  const decodeReadBytes = sizeBytes - (embedding && !tied ? embedding.byteSize : 0);
  const hp = model.hparams;
  return {
    path,
    name: hp.name ?? null,
    architecture: hp.architecture,
    type,
    sizeBytes,
    parameters,
    vocabSize: hp.vocabSize,
    layers: hp.blockCount,
    embeddingLength: hp.embeddingLength,
    decodeReadBytes,
  };
}

/** The threads the engine says it runs (its executor's active threads), if it says. */
function reportedThreads(model: Model): number | null {
  const ex = (model as unknown as { executor?: { threads?: unknown; stats?: () => { activeThreads?: unknown } } }).executor;
  if (!ex) return null;
  const active = typeof ex.stats === 'function' ? ex.stats().activeThreads : undefined;
  const t = typeof active === 'number' ? active : ex.threads;
  return typeof t === 'number' && Number.isInteger(t) && t > 0 ? t : null;
}

/** Weight bytes one decode step reads: resident ones and the streamed layers. */
function weightBytes(model: Model): number {
  const w = model.weightMemory();
  return w.residentWeightBytes + w.streamedWeightBytes;
}

/** Times one prefill of `tokens` from an empty context; returns milliseconds. */
async function timePrefill(model: Model, tokens: readonly number[]): Promise<number> {
  const t0 = performance.now();
  // The async path: streamed layers are read ahead of use, as generate() does.
  await model.evaluateAsync(tokens);
  return performance.now() - t0;
}

/**
 * Decodes `steps` tokens one at a time (greedy) after a short prompt; returns the milliseconds of the
 * decode steps alone and how many ran (fewer if the model picked an end-of-generation token).
 */
async function timeDecode(model: Model, prompt: readonly number[], steps: number): Promise<{ ms: number; steps: number; promptMs: number }> {
  // The engine times its own forward calls; the first generated token comes from the prompt's logits.
  const { stats } = await model.complete(prompt, { maxTokens: steps + 1, temperature: 0 });
  return { ms: stats.decodeMs, steps: Math.max(0, stats.generatedTokens - 1), promptMs: stats.prefillMs };
}

export async function runModelBench(options: ModelBenchOptions): Promise<ModelBenchReport> {
  const { promptLengths, generateTokens: n, repetitions: reps } = options;
  const seed = options.seed ?? 1234;
  const rss = new RssSampler();
  rss.sample('start');
  const kernelChoices: readonly (KernelVariant | undefined)[] = options.kernels?.length ? options.kernels : [undefined];
  const contextLength = Math.max(16, ...promptLengths, TG_PROMPT_TOKENS + n + 1);
  const runs: RunReport[] = [];
  let facts: ModelFacts | undefined;

  for (const kernels of kernelChoices) {
    const base = new Map<string, number>();
    for (const threads of options.threads) {
     for (const memoryBudget of options.memoryBudgets?.length ? options.memoryBudgets : [undefined]) {
      const t0 = performance.now();
      const model = await loadModel(options.path, {
        contextLength, threads, kernels, batchSize: options.batchSize, memoryBudget, kvCache: options.kvCache, kvResidentTokens: options.kvResidentTokens,
        ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
      });
      const loadMs = performance.now() - t0;
      try {
        rss.sample(`loaded (${model.kernelVariant}, ${threads} thread${threads > 1 ? 's' : ''})`);
        facts ??= modelFacts(model, options.path);
        const vocab = model.hparams.vocabSize;
        const tests: TestResult[] = [];
        const label = `${model.kernelVariant}, t=${threads}${memoryBudget === undefined ? '' : `, budget ${memoryBudget}`}`;
        const result = (test: string, kind: TestKind, tokens: number, samplesMs: number[]): TestResult => {
          const tokensPerSecond = summarize(samplesMs.map((ms) => (tokens * 1000) / ms));
          const first = base.get(test);
          if (first === undefined) base.set(test, tokensPerSecond.median);
          return {
            test,
            kind,
            tokens,
            samplesMs,
            tokensPerSecond,
            weightBytesPerSecond: kind === 'tg' ? tokensPerSecond.median * weightBytes(model) : null,
            scaling: first === undefined ? null : tokensPerSecond.median / first,
          };
        };

        for (const pp of promptLengths) {
          options.onProgress?.(`pp${pp} (${label})`);
          const tokens = benchTokens(pp, vocab, seed + pp);
          await timePrefill(model, tokens); // warm-up
          const samples: number[] = [];
          for (let r = 0; r < reps; r++) {
            samples.push(await timePrefill(model, tokens));
            rss.touch();
          }
          rss.sample(`after pp${pp} (${label})`);
          tests.push(result(`pp${pp}`, 'pp', pp, samples));
        }

        if (n > 0) {
          options.onProgress?.(`tg${n} (${label})`);
          const prompt = benchTokens(TG_PROMPT_TOKENS, vocab, seed);
          await timeDecode(model, prompt, n); // warm-up
          const samples: number[] = [];
          for (let r = 0; r < reps; r++) {
            const d = await timeDecode(model, prompt, n);
            if (d.steps === 0) throw new Error(`the model ended generation at once (end-of-generation token); cannot time decoding`);
            // An early end-of-generation token shortens a run: scale it to n steps so rates compare.
            samples.push((d.ms * n) / d.steps);
            rss.touch();
          }
          rss.sample(`after tg${n} (${label})`);
          tests.push(result(`tg${n}`, 'tg', n, samples));
        }

        const usage = model.memoryUsage();
        runs.push({
          kernels: model.kernelVariant,
          threadsRequested: threads,
          memoryBudget: memoryBudget ?? null,
          weightMemory: model.weightMemory(),
          threadsUsed: reportedThreads(model),
          loadMs,
          wasm: { memory: usage.wasmMemory, weights: usage.weights, kv: usage.kv, scratch: usage.scratch },
          contextLength: model.contextLength,
          tests,
          ...(options.profile ? { profile: await profileModel(model, promptLengths[0], n, seed) } : {}),
        });
      } finally {
        await model.close();
      }
     }
    }
  }
  return {
    model: facts!,
    machine: machineInfo(),
    settings: {
      promptLengths: [...promptLengths],
      generateTokens: n,
      repetitions: reps,
      threads: [...options.threads],
      memoryBudgets: options.memoryBudgets?.length ? options.memoryBudgets.map((b) => b ?? null) : [null],
      kernels: options.kernels?.length ? [...options.kernels] : 'auto',
      batchSize: options.batchSize ?? null,
      kvCache: options.kvCache ?? 'f32',
      kvResidentTokens: options.kvResidentTokens ?? null,
    },
    runs,
    memory: rss.report(),
  };
}

/**
 * With more than one thread: one pp and one tg run with the executor's call statistics reset before
 * each (calls run alone timed too) and read after.
 */
async function profileThreads(model: Model, pp: number | undefined, n: number, seed: number): Promise<{ pp?: ThreadProfile; tg?: ThreadProfile } | undefined> {
  const ex = model.executor;
  if (ex.threads < 2 || typeof ex.resetStats !== 'function') return undefined;
  const out: { pp?: ThreadProfile; tg?: ThreadProfile } = {};
  const vocab = model.hparams.vocabSize;
  if (pp !== undefined && pp > 0) {
    const tokens = benchTokens(pp, vocab, seed + pp);
    ex.resetStats({ timeSerialCalls: true });
    const ms = await timePrefill(model, tokens);
    out.pp = threadProfile(ex.stats(), ms, model.hparams.blockCount);
  }
  if (n > 0) {
    ex.resetStats({ timeSerialCalls: true });
    const d = await timeDecode(model, benchTokens(TG_PROMPT_TOKENS, vocab, seed), n);
    // complete() also runs the one-token prompt: the counters cover its forward pass as well.
    out.tg = threadProfile(ex.stats(), d.ms + d.promptMs, model.hparams.blockCount);
  }
  ex.resetStats();
  return out;
}

/** One pp and one tg run with every kernel call timed (and, on several threads, their statistics). */
async function profileModel(model: Model, pp: number | undefined, n: number, seed: number): Promise<NonNullable<RunReport['profile']>> {
  const threads = await profileThreads(model, pp, n, seed);
  const attached = attachKernelProfiler(model);
  if (!attached) return { unavailable: 'this engine does not expose its kernel table to the profiler', ...(threads ? { threads } : {}) };
  const { profiler, detach } = attached;
  try {
    const out: { pp?: KernelProfile; tg?: KernelProfile; threads?: { pp?: ThreadProfile; tg?: ThreadProfile } } = threads ? { threads } : {};
    const vocab = model.hparams.vocabSize;
    if (pp !== undefined && pp > 0) {
      profiler.reset();
      const ms = await timePrefill(model, benchTokens(pp, vocab, seed + pp));
      out.pp = profiler.report(ms);
    }
    if (n > 0) {
      profiler.reset();
      const d = await timeDecode(model, benchTokens(TG_PROMPT_TOKENS, vocab, seed), n);
      // complete() also runs the one-token prompt: the counters cover its forward pass as well.
      out.tg = profiler.report(d.ms + d.promptMs);
    }
    return out;
  } finally {
    detach();
  }
}
