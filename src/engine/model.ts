// The public model object: loadModel() wires storage → GGUF → weights in wasm memory → transformer,
// and Model offers tokenize/detokenize/evaluate/generate/complete over one KV cache, reusing the cached
// prefix when a new prompt starts with tokens already processed.
import { readGGUF } from '../gguf/reader.js';
import type { GGUFFile } from '../gguf/types.js';
import type { HParams } from '../model/hparams.js';
import { readHParams } from '../model/hparams.js';
import { KVCache, parseKVPrecision } from '../model/kv-cache.js';
import type { KVPrecision } from '../model/kv-cache.js';
import { Transformer, createRunState } from '../model/transformer.js';
import type { LogitsWanted } from '../model/transformer.js';
import { loadWeights } from '../model/weights.js';
import type { KernelVariant } from '../runtime/kernels.js';
import { selectKernels } from '../runtime/kernels.js';
import { Arena, createSharedMemory } from '../runtime/memory.js';
import { createExecutor, defaultThreadCount } from '../parallel/executor.js';
import type { Executor, ParallelOptions } from '../parallel/executor.js';
import { Sampler } from '../sampler/sampler.js';
import type { SamplerOptions } from '../sampler/sampler.js';
import { openFileStorage } from '../storage/node.js';
import type { Storage } from '../storage/storage.js';
import { chatTemplateFor } from '../tokenizer/chat-template.js';
import type { ChatTemplate } from '../tokenizer/chat-template.js';
import { createTokenizer } from '../tokenizer/index.js';
import type { EncodeOptions, Tokenizer } from '../tokenizer/tokenizer.js';
import { ChatSession } from './chat.js';
import type { ChatOptions } from './chat.js';
import { StopStringMatcher } from './stop-strings.js';

export interface LoadProgressEvent {
  readonly phase: 'weights';
  readonly loadedBytes: number;
  readonly totalBytes: number;
}

export interface LoadModelOptions {
  /** Tokens the KV cache holds (default: min(the model's training context, 4096)). */
  contextLength?: number;
  /**
   * Threads running the kernels, this one included (default: os.availableParallelism()); 1 starts
   * no worker at all. Logits are bit-identical for every thread count.
   */
  threads?: number;
  /** Load balancing, thresholds and test hooks of the worker threads. */
  parallel?: ParallelOptions;
  /** Tokens processed per prefill batch (default 64). */
  batchSize?: number;
  /**
   * Storage of the KV cache (CLI --kv-cache): 'f32' (default); 'f16', half the memory; 'int8', keys and
   * values quantized per token and head with an f32 scale, (headDim + 4) / (2 headDim) of f16. Attention
   * math and softmax stay f32.
   */
  kvCache?: KVPrecision;
  /**
   * Keep at most this many positions of the KV cache in wasm memory (CLI --kv-resident): older blocks
   * move to a temporary file and are read back, a layer ahead, for attention. Output is bit-identical
   * with the all-resident cache. Default: all resident.
   */
  kvResidentTokens?: number;
  /** Folder of the KV spill file (default: the OS temporary folder); it is deleted on close and on exit. */
  kvSpillDir?: string;
  /** Force a kernel build instead of the best one this engine runs correctly. */
  kernels?: KernelVariant;
  onProgress?: (event: LoadProgressEvent) => void;
}

export interface GenerateOptions extends Partial<SamplerOptions> {
  /** Stop after this many generated tokens (default 128). */
  maxTokens?: number;
  /** Stop when the text contains one of these; the stop string is not returned. */
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Add BOS to a text prompt (default: the vocabulary's setting). */
  addBos?: boolean;
  /** Parse control tokens written in the prompt text (default false). */
  parseSpecial?: boolean;
}

export interface GeneratedPiece {
  /** Text that became final with this token (may be empty while a character or stop string is pending). */
  readonly text: string;
  readonly token: number;
}

export type StopReason = 'eog' | 'maxTokens' | 'stop' | 'contextFull';

export interface GenerationStats {
  promptTokens: number;
  /** Prompt tokens that were actually run (the rest came from the cached prefix). */
  prefilledTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  stopReason: StopReason;
}

export interface Completion {
  readonly text: string;
  readonly tokens: number[];
  readonly stats: GenerationStats;
}

export class AbortError extends Error {
  constructor(message = 'generation aborted') {
    super(message);
    this.name = 'AbortError';
  }
}

function now(): number {
  return performance.now();
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

export class Model {
  private closed = false;
  private busy = false;
  /** The file's chat template, parsed on first use. */
  private fileChatTemplate: ChatTemplate | undefined;
  /** Statistics of the most recent generate() run. */
  lastStats: GenerationStats | undefined;

  constructor(
    readonly file: GGUFFile,
    readonly hparams: HParams,
    readonly tokenizer: Tokenizer,
    readonly kernelVariant: KernelVariant,
    private readonly storage: Storage,
    private readonly transformer: Transformer,
    private readonly arena: Arena,
  ) {}

  get contextLength(): number {
    return this.transformer.kv.contextLength;
  }

  /** Token ids currently held in the KV cache. */
  get cachedTokens(): readonly number[] {
    return this.transformer.kv.tokens;
  }

  /** Bytes of wasm memory by use. */
  memoryUsage(): { weights: number; kv: number; scratch: number; wasmMemory: number } {
    const u = this.arena.usage();
    return { weights: u.weights, kv: u.kv, scratch: u.scratch, wasmMemory: this.arena.memoryBytes };
  }

  tokenize(text: string, options: EncodeOptions = {}): number[] {
    return this.tokenizer.encode(text, options);
  }

  detokenize(ids: readonly number[]): string {
    return this.tokenizer.decode(ids);
  }

  /**
   * Runs `tokens` from an empty context and returns the logits of the last position, or of every
   * position (row after row of vocabSize floats) with { all: true }.
   */
  evaluate(tokens: readonly number[], options: { all?: boolean } = {}): Float32Array {
    this.checkUsable();
    if (tokens.length === 0) throw new RangeError('evaluate needs at least one token');
    this.transformer.kv.truncate(0);
    return this.transformer.forward(tokens, options.all ? 'all' : 'last')!;
  }

  /**
   * Runs `tokens` after the longest prefix already in the KV cache and returns the last logits and
   * how many tokens were actually computed. At least the last token is always run.
   */
  private prefill(tokens: readonly number[], want: LogitsWanted): { logits: Float32Array; computed: number } {
    const kv = this.transformer.kv;
    let common = 0;
    const held = kv.tokens;
    while (common < held.length && common < tokens.length && held[common] === tokens[common]) common++;
    if (common === tokens.length) common--;
    kv.truncate(common);
    const rest = tokens.slice(common);
    return { logits: this.transformer.forward(rest, want)!, computed: rest.length };
  }

  /** Streams the continuation of `prompt` (text, or token ids used as they are). */
  async *generate(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<GeneratedPiece, Completion> {
    this.checkUsable();
    if (this.busy) throw new Error('this model is already generating; wait for it or abort it first');
    this.busy = true;
    try {
      return yield* this.run(prompt, options);
    } finally {
      this.busy = false;
    }
  }

  private async *run(prompt: string | readonly number[], options: GenerateOptions): AsyncGenerator<GeneratedPiece, Completion> {
    const { signal } = options;
    const maxTokens = options.maxTokens ?? 128;
    const ids =
      typeof prompt === 'string'
        ? this.tokenizer.encode(prompt, { addBos: options.addBos, parseSpecial: options.parseSpecial ?? false })
        : [...prompt];
    if (ids.length === 0) throw new RangeError('the prompt is empty (no tokens, and this vocabulary adds no BOS)');
    if (ids.length >= this.contextLength) {
      throw new RangeError(`the prompt has ${ids.length} tokens, which does not fit in the context of ${this.contextLength} tokens (raise contextLength / --ctx)`);
    }
    if (signal?.aborted) throw new AbortError();

    const sampler = new Sampler(options);
    for (const t of ids) sampler.accept(t);
    const decoder = this.tokenizer.streamingDecoder();
    const stopper = new StopStringMatcher(options.stop ?? []);
    const generated: number[] = [];
    let text = '';
    let stopReason: StopReason = 'maxTokens';

    const t0 = now();
    const { logits: first, computed } = this.prefill(ids, 'last');
    const t1 = now();
    let logits = first;
    let decodeMs = 0;

    while (generated.length < maxTokens) {
      await yieldToEventLoop();
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new AbortError();
      const token = sampler.sample(logits);
      sampler.accept(token);
      if (this.tokenizer.eog.has(token)) {
        stopReason = 'eog';
        break;
      }
      generated.push(token);
      const { emit, stopped } = stopper.push(decoder.push(token));
      text += emit;
      if (stopped) {
        stopReason = 'stop';
        if (emit) yield { text: emit, token };
        break;
      }
      yield { text: emit, token };
      if (generated.length >= maxTokens) break;
      if (this.transformer.kv.length >= this.contextLength) {
        stopReason = 'contextFull';
        break;
      }
      const s = now();
      logits = this.transformer.forward([token], 'last')!;
      decodeMs += now() - s;
    }
    if (stopReason !== 'stop') {
      const rest = stopper.push(decoder.flush()).emit + stopper.flush();
      if (rest) {
        text += rest;
        yield { text: rest, token: -1 };
      }
    }
    const prefillMs = t1 - t0;
    const decodeSteps = Math.max(0, generated.length - 1);
    const stats: GenerationStats = {
      promptTokens: ids.length,
      prefilledTokens: computed,
      generatedTokens: generated.length,
      prefillMs,
      decodeMs,
      prefillTokensPerSecond: prefillMs > 0 ? (computed * 1000) / prefillMs : 0,
      decodeTokensPerSecond: decodeMs > 0 ? (decodeSteps * 1000) / decodeMs : 0,
      stopReason,
    };
    this.lastStats = stats;
    return { text, tokens: generated, stats };
  }

  /** Generates to the end and returns the whole text, the tokens and timing statistics. */
  async complete(prompt: string | readonly number[], options: GenerateOptions = {}): Promise<Completion> {
    const it = this.generate(prompt, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /**
   * The chat template of this model (tokenizer.chat_template, parsed once), or `override` parsed.
   * Throws ChatTemplateError when the file has none and no override is given.
   */
  chatTemplate(override?: string): ChatTemplate {
    if (override !== undefined) return chatTemplateFor(this.file, this.tokenizer, override);
    this.fileChatTemplate ??= chatTemplateFor(this.file, this.tokenizer);
    return this.fileChatTemplate;
  }

  /**
   * Starts a conversation: `system` opens it, `template` replaces the file's chat template, and the
   * other options are the generation defaults of every reply. Turns reuse the KV cache of the
   * conversation so far.
   */
  chat(options: ChatOptions = {}): ChatSession {
    this.checkUsable();
    return new ChatSession(this, this.chatTemplate(options.template), options);
  }

  /** The thread pool running the kernels (threads, statistics). */
  get executor(): Executor {
    return this.transformer.executor;
  }

  /** Threads running the kernels, this one included. */
  get threads(): number {
    return this.transformer.executor.threads;
  }

  /** Ends the worker threads and releases the file handle; the model cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.transformer.executor.close();
    } finally {
      this.transformer.kv.close();
      await this.storage.close();
    }
  }

  private checkUsable(): void {
    if (this.closed) throw new Error('the model is closed');
  }
}

/** Loads a GGUF model from a path (Node) or any Storage. */
export async function loadModel(source: string | Storage, options: LoadModelOptions = {}): Promise<Model> {
  const storage = typeof source === 'string' ? await openFileStorage(source) : source;
  let executor: Executor | undefined;
  let kv: KVCache | undefined;
  try {
    const file = await readGGUF(storage);
    const hp = readHParams(file);
    const tokenizer = createTokenizer(file);
    if (tokenizer.vocabSize !== hp.vocabSize) {
      throw new RangeError(`${file.source}: the tokenizer has ${tokenizer.vocabSize} tokens but the model expects ${hp.vocabSize}`);
    }
    const contextLength = options.contextLength ?? Math.min(hp.trainContextLength, 4096);
    if (!Number.isInteger(contextLength) || contextLength < 1) throw new RangeError(`contextLength must be a positive integer, got ${contextLength}`);
    const memory = createSharedMemory();
    const kernels = await selectKernels(memory, options.kernels);
    const arena = new Arena(memory, kernels.exports.heapBase() + 256);
    const weights = await loadWeights(file, storage, arena, kernels.exports, hp, (p) =>
      options.onProgress?.({ phase: 'weights', loadedBytes: p.loadedBytes, totalBytes: p.totalBytes }),
    );
    const maxBatch = Math.max(1, Math.min(options.batchSize ?? 64, contextLength));
    kv = new KVCache(arena, kernels.exports, {
      layerCount: hp.blockCount, contextLength, headCountKV: hp.headCountKV, headDim: hp.headDim, maxBatch,
      precision: parseKVPrecision(options.kvCache ?? 'f32'), residentTokens: options.kvResidentTokens, spillDir: options.kvSpillDir,
    });
    const state = createRunState(arena, hp, maxBatch, contextLength);
    executor = await createExecutor(kernels, memory, options.threads ?? (await defaultThreadCount()), options.parallel);
    const transformer = new Transformer(hp, weights, kernels.exports, arena, kv, state, executor);
    executor.calibrate(transformer.calibrationJob());
    return new Model(file, hp, tokenizer, kernels.variant, storage, transformer, arena);
  } catch (e) {
    await executor?.close().catch(() => undefined);
    kv?.close();
    await storage.close().catch(() => undefined);
    throw e;
  }
}
