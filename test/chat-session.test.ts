// Chat sessions on a synthetic model carrying the real Llama 3 vocabulary and chat template (the
// tiny-llama shape widened to Llama 3's 128256 tokens, Q8_0, random weights): the prompts are checked
// against the documented Llama 3 format tokenized by the reference Hugging Face tokenizer, and the
// tokens prefilled per turn are counted, so a turn that re-ran the conversation would fail. The Qwen3
// template's prompts are checked with scripted replies (no weights).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatSession } from '../src/engine/chat.js';
import { loadModel } from '../src/engine/load.js';
import type { Completion, GeneratedPiece, GenerateOptions, Model } from '../src/engine/model.js';
import { readGGUFBytes } from '../src/gguf/reader.js';
import type { GGUFFile } from '../src/gguf/types.js';
import { memorySink, writeGGUF } from '../src/gguf/writer.js';
import { loadLenmlVocab, readLenmlTokenizerFiles } from '../src/synth/vocab-hf.js';
import { writeLlama3ChatModel } from './support/synth-model.js';
import { ChatTemplateError, chatTemplateFor } from '../src/tokenizer/chat-template.js';
import { createTokenizer } from '../src/tokenizer/index.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';

/** shared/ sits beside the repository (a real pretrained model without a chat template). */
const STORIES = join(import.meta.dirname, '..', '..', 'shared', 'models', 'stories260K.gguf');

// Published Llama 3 control and text ids.
const BOT = 128000; // <|begin_of_text|>
const SH = 128006; // <|start_header_id|>
const EH = 128007; // <|end_header_id|>
const EOT = 128009; // <|eot_id|>
const NL2 = 271; // "\n\n"
const USER = 882;
const ASSISTANT = 78191;


function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

describe('chat session on a synthetic Llama 3 model', () => {
  let dir: string;
  let model: Model;
  let hf: HFTokenizer;
  /** The reference tokenization of plain text (no specials added). */
  const ref = (text: string): number[] => hf.encode(text, { add_special_tokens: false }).ids;
  /** <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>, as documented. */
  const turn = (roleId: number, content: string): number[] => [SH, roleId, EH, NL2, ...ref(content), EOT];
  const assistantHeader = [SH, ASSISTANT, EH, NL2];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pocketllm-chat-'));
    const [path, files] = await Promise.all([writeLlama3ChatModel(dir, 7), readLenmlTokenizerFiles('llama3')]);
    hf = new HFTokenizer(files.tokenizerJson, files.tokenizerConfig);
    model = await loadModel(path, { contextLength: 256 });
  }, 60_000);

  afterAll(async () => {
    await model?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prefills only the new user message and the template glue on the second turn', async () => {
    const chat = model.chat({ system: 'You are terse.', temperature: 0, maxTokens: 8 });
    const c1 = await chat.reply('Hello there!');
    const prompt1 = [BOT, SH, ref('system')[0]!, EH, NL2, ...ref('You are terse.'), EOT, ...turn(USER, 'Hello there!'), ...assistantHeader];
    expect(c1.stats.promptTokens).toBe(prompt1.length);
    expect(chat.tokens).toEqual([...prompt1, ...c1.tokens]);
    expect(c1.tokens.length).toBeGreaterThan(0);

    const cached = [...model.cachedTokens];
    // The KV cache holds the whole first turn (but the last sampled token when maxTokens cut the reply).
    expect(cached).toEqual(chat.tokens.slice(0, chat.tokens.length - (c1.stats.stopReason === 'maxTokens' ? 1 : 0)));

    const c2 = await chat.reply('What is 2+2?');
    const glue = [EOT, ...turn(USER, 'What is 2+2?'), ...assistantHeader];
    const prompt2 = [...prompt1, ...c1.tokens, ...glue];
    expect(chat.tokens).toEqual([...prompt2, ...c2.tokens]);
    expect(c2.stats.promptTokens).toBe(prompt2.length);
    // Exactly the part of the rendered second turn that is not in the cache was run.
    expect(commonPrefixLength(cached, prompt2)).toBe(cached.length);
    expect(c2.stats.prefilledTokens).toBe(prompt2.length - cached.length);
    expect(c2.stats.prefilledTokens).toBe(glue.length + (c1.stats.stopReason === 'maxTokens' ? 1 : 0));

    expect(chat.history).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hello there!' },
      { role: 'assistant', content: c1.text },
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: c2.text },
    ]);

    // A third turn again runs only its own tokens.
    const before3 = [...model.cachedTokens];
    const c3 = await chat.reply('Thanks');
    const glue3 = [EOT, ...turn(USER, 'Thanks'), ...assistantHeader];
    expect(c3.stats.prefilledTokens).toBe(c3.stats.promptTokens - before3.length);
    expect(c3.stats.prefilledTokens).toBe(glue3.length + (c2.stats.stopReason === 'maxTokens' ? 1 : 0));
  });

  it('gives the same greedy replies every time, and the same as a run from an empty cache', async () => {
    const a = model.chat({ system: 'Be brief.', temperature: 0, maxTokens: 6 });
    const a1 = await a.reply('Name a colour.');
    const a2 = await a.reply('Another one.');
    const b = model.chat({ system: 'Be brief.', temperature: 0, maxTokens: 6 });
    const b1 = await b.reply('Name a colour.');
    const b2 = await b.reply('Another one.');
    expect(b1.tokens).toEqual(a1.tokens);
    expect(b2.tokens).toEqual(a2.tokens);
    expect(b.tokens).toEqual(a.tokens);

    // The second turn, computed without any cached prefix, gives the same reply.
    const prompt2 = a.tokens.slice(0, a.tokens.length - a2.tokens.length);
    model.evaluate([BOT]);
    const fresh = await model.complete(prompt2, { temperature: 0, maxTokens: 6 });
    expect(model.lastStats!.prefilledTokens).toBe(prompt2.length - 1);
    expect(fresh.tokens).toEqual(a2.tokens);
  });

  it('reset() forgets the turns but keeps the system message, and the cache still serves it', async () => {
    const chat = model.chat({ system: 'You are terse.', temperature: 0, maxTokens: 5 });
    const first = await chat.reply('Hello there!');
    await chat.reply('More.');
    chat.reset();
    expect(chat.history).toEqual([{ role: 'system', content: 'You are terse.' }]);
    expect(chat.tokens).toEqual([]);
    const again = await chat.reply('Hello there!');
    expect(again.tokens).toEqual(first.tokens);
    // The new first prompt is a prefix of what the cache holds: only its last token is run.
    expect(again.stats.prefilledTokens).toBe(1);
    expect(chat.history).toHaveLength(3);
  });

  it('an abort mid-reply keeps the partial reply and leaves the session usable', async () => {
    const chat = model.chat({ temperature: 0 });
    const controller = new AbortController();
    const pieces: number[] = [];
    let error: unknown;
    try {
      for await (const piece of chat.send('Tell me a long story.', { maxTokens: 40, signal: controller.signal })) {
        pieces.push(piece.token);
        if (pieces.length === 3) controller.abort();
      }
    } catch (e) {
      error = e;
    }
    expect((error as Error | undefined)?.name).toBe('AbortError');
    expect(pieces).toHaveLength(3);
    const history = chat.history;
    expect(history).toHaveLength(2);
    expect(history[1]).toEqual({ role: 'assistant', content: model.detokenize(pieces) });
    expect(chat.tokens.slice(-3)).toEqual(pieces);
    // The three streamed tokens are in the cache: the next turn runs only its own tokens.
    expect(model.cachedTokens).toEqual(chat.tokens);

    const next = await chat.reply('Go on.', { maxTokens: 4 });
    const glue = [EOT, ...turn(USER, 'Go on.'), ...assistantHeader];
    expect(next.stats.prefilledTokens).toBe(glue.length);
    expect(chat.history).toHaveLength(4);
  });

  it('leaving the stream early keeps what was streamed and frees the model', async () => {
    const chat = model.chat({ temperature: 0 });
    let n = 0;
    for await (const _piece of chat.send('Count to ten.', { maxTokens: 20 })) {
      if (++n === 2) break;
    }
    expect(chat.history).toHaveLength(2);
    const next = await chat.reply('Again.', { maxTokens: 2 });
    expect(next.tokens).toHaveLength(2);
  });

  it('refuses a conversation that outgrows the context, naming the way out, and keeps the history', async () => {
    const chat = model.chat({ temperature: 0, maxTokens: 2 });
    await chat.reply('Hi');
    const long = 'word '.repeat(300);
    await expect(chat.reply(long)).rejects.toThrow(/does not fit in the context of 256 tokens; reset the chat or raise contextLength/);
    expect(chat.history).toHaveLength(2);
    await expect(chat.reply('Short.')).resolves.toBeDefined();
  });

  it('refuses a second message while replying', async () => {
    const chat = model.chat({ temperature: 0, maxTokens: 3 });
    const first = chat.send('One');
    await first.next();
    await expect(chat.send('Two').next()).rejects.toThrow(/already replying/);
    await first.return(undefined as never);
    await expect(chat.reply('Three')).resolves.toBeDefined();
  });

  it('stops replies at the template end-of-turn token', () => {
    expect(model.tokenizer.eog.has(EOT)).toBe(true);
  });
});

describe('chat on a model without a chat template (stories260K)', () => {
  let model: Model;

  beforeAll(async () => {
    model = await loadModel(STORIES);
  });

  afterAll(async () => {
    await model?.close();
  });

  it('says to pass a template', () => {
    expect(() => model.chat()).toThrow(ChatTemplateError);
    expect(() => model.chat()).toThrow(/has no chat template.*`template` option/);
  });

  it('chats with a given template, adding the SentencePiece BOS the template does not write', async () => {
    const template = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
    const chat = model.chat({ template, temperature: 0, maxTokens: 6 });
    const c1 = await chat.reply('Once upon a time');
    const bos = model.tokenizer.bos!;
    expect(chat.tokens[0]).toBe(bos);
    expect(chat.tokens.filter((t) => t === bos)).toHaveLength(1);
    expect(c1.stats.promptTokens).toBe(model.tokenize('user: Once upon a time\nassistant:').length);
    const cached = [...model.cachedTokens];
    const c2 = await chat.reply('there was');
    expect(c2.stats.prefilledTokens).toBe(c2.stats.promptTokens - cached.length);
    expect(chat.history.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  });
});

/**
 * The parts of Model a ChatSession uses, with a generate() that records each prompt and "replies" with
 * given token ids: the prompts a session builds, checked without running weights.
 */
class ScriptedModel {
  readonly prompts: number[][] = [];
  readonly contextLength = 4096;
  constructor(readonly tokenizer: Tokenizer, private readonly replies: number[][]) {}

  tokenize(text: string, options: { addBos?: boolean; parseSpecial?: boolean }): number[] {
    return this.tokenizer.encode(text, options);
  }

  async *generate(prompt: readonly number[], _options: GenerateOptions): AsyncGenerator<GeneratedPiece, Completion> {
    this.prompts.push([...prompt]);
    const tokens = this.replies.shift()!;
    for (const token of tokens) yield { text: this.tokenizer.decode([token]), token };
    const stats = { promptTokens: prompt.length, prefilledTokens: prompt.length, generatedTokens: tokens.length, prefillMs: 0, decodeMs: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0, stopReason: 'eog' as const };
    return { text: this.tokenizer.decode(tokens), tokens, stats };
  }
}

describe('chat prompts with the Qwen3 template (scripted replies)', () => {
  let file: GGUFFile;
  let tokenizer: Tokenizer;
  let hf: HFTokenizer;
  const ref = (text: string): number[] => hf.encode(text, { add_special_tokens: false }).ids;

  beforeAll(async () => {
    const sink = memorySink();
    await writeGGUF(sink, await loadLenmlVocab('qwen3'), []);
    file = readGGUFBytes(sink.bytes(), 'qwen3 vocab');
    tokenizer = createTokenizer(file);
    const files = await readLenmlTokenizerFiles('qwen3');
    hf = new HFTokenizer(files.tokenizerJson, files.tokenizerConfig);
  });

  it('keeps the reply tokens the template would rewrite, and appends only ChatML glue', async () => {
    // A reply with a reasoning block: the Qwen3 template drops it from earlier turns, so re-rendering
    // the history would change the tokens the model has already seen.
    const reply1 = ref('<think>\nThe user greets.\n</think>\n\nHello!');
    const reply2 = ref('Bye!');
    const scripted = new ScriptedModel(tokenizer, [reply1, reply2]);
    const template = chatTemplateFor(file, tokenizer);
    const chat = new ChatSession(scripted as unknown as Model, template, { system: 'Be kind.' });

    const c1 = await chat.reply('Hi');
    expect(c1.text).toBe('<think>\nThe user greets.\n</think>\n\nHello!');
    const prompt1 = ref('<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
    expect(scripted.prompts[0]).toEqual(prompt1);

    await chat.reply('Bye');
    expect(scripted.prompts[1]).toEqual([...prompt1, ...reply1, ...ref('<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n')]);
    expect(chat.tokens).toEqual([...scripted.prompts[1]!, ...reply2]);
    expect(chat.history.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
  });
});
