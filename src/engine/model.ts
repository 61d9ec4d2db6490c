// The public model object: Model offers tokenize/detokenize/evaluate/generate/complete and chat over
// one KV cache, reusing the cached prefix when a new prompt starts with tokens already processed.
// load.ts builds it.
import type { GGUFFile } from '../gguf/types.js';
import type { HParams } from '../model/hparams.js';
import { Transformer } from '../model/transformer.js';
import type { LogitsWanted } from '../model/transformer.js';
import type { WeightMemoryReport } from '../memory/report.js';
import type { KernelVariant } from '../runtime/kernels.js';
import { Arena } from '../runtime/memory.js';
import type { Executor } from '../parallel/executor.js';
import { Sampler } from '../sampler/sampler.js';
import type { SamplerOptions } from '../sampler/sampler.js';
import type { Storage } from '../storage/storage.js';
import { chatTemplateFor } from '../tokenizer/chat-template.js';
import type { ChatTemplate } from '../tokenizer/chat-template.js';
import type { EncodeOptions, Tokenizer } from '../tokenizer/tokenizer.js';
import { ChatSession } from './chat.js';
import type { ChatOptions } from './chat.js';
import { StopStringMatcher } from './stop-strings.js';

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
    private readonly weightReport: WeightMemoryReport,
    private readonly onClose: () => Promise<void> = async () => undefined,
  ) {}

  /** Weight bytes resident and streamed, where embedding rows come from, and the packed cache. */
  weightMemory(): WeightMemoryReport {
    return this.weightReport;
  }

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
   * evaluate() through the asynchronous path: streamed layers are read ahead of use and embedding
   * rows in one batch; the same logits, bit for bit. The way to run a model whose storage has no
   * synchronous reads (browsers).
   */
  async evaluateAsync(tokens: readonly number[], options: { all?: boolean } = {}): Promise<Float32Array> {
    this.checkUsable();
    if (tokens.length === 0) throw new RangeError('evaluate needs at least one token');
    if (this.busy) throw new Error('this model is already generating; wait for it or abort it first');
    this.busy = true;
    try {
      this.transformer.kv.truncate(0);
      return (await this.transformer.forwardAsync(tokens, options.all ? 'all' : 'last'))!;
    } finally {
      this.busy = false;
    }
  }

  /** One forward pass: synchronous when every weight is resident, else reading ahead of use. */
  private async step(tokens: readonly number[], want: LogitsWanted): Promise<Float32Array> {
    return (this.transformer.streams ? await this.transformer.forwardAsync(tokens, want) : this.transformer.forward(tokens, want))!;
  }

  /**
   * Runs `tokens` after the longest prefix already in the KV cache and returns the last logits and
   * how many tokens were actually computed. At least the last token is always run.
   */
  private async prefill(tokens: readonly number[], want: LogitsWanted): Promise<{ logits: Float32Array; computed: number }> {
    const kv = this.transformer.kv;
    let common = 0;
    const held = kv.tokens;
    while (common < held.length && common < tokens.length && held[common] === tokens[common]) common++;
    if (common === tokens.length) common--;
    kv.truncate(common);
    const rest = tokens.slice(common);
    return { logits: await this.step(rest, want), computed: rest.length };
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
    const { logits: first, computed } = await this.prefill(ids, 'last');
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
      logits = await this.step([token], 'last');
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
      await this.onClose().catch(() => undefined);
      await this.storage.close();
    }
  }

  private checkUsable(): void {
    if (this.closed) throw new Error('the model is closed');
  }
}
