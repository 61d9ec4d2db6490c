// Chat templates: renders a model's tokenizer.chat_template (Jinja, as Hugging Face transformers
// does) over a list of messages with @huggingface/jinja, providing the variables and functions that
// common templates expect (bos_token, eos_token, raise_exception, strftime_now, ...).
import { Environment, Interpreter, Template } from '@huggingface/jinja';
import type { GGUFFile } from '../gguf/types.js';
import { metaString, MetadataError } from '../gguf/metadata.js';
import type { Tokenizer } from './tokenizer.js';

export const CHAT_TEMPLATE_KEY = 'tokenizer.chat_template';

export interface ChatMessage {
  /** "system", "user", "assistant" (or any role the template knows, such as "tool"). */
  readonly role: string;
  readonly content: string;
}

export interface ChatTemplateRenderOptions {
  /** End with the header that opens the assistant's reply (default false). */
  addGenerationPrompt?: boolean;
  /**
   * Further template variables, e.g. { enable_thinking: false } for Qwen3 or { date_string: "..." }
   * for Llama 3.1; they override the defaults below.
   */
  variables?: Readonly<Record<string, unknown>>;
}

export interface ChatTemplateOptions {
  /** Text of the BOS and EOS tokens, as the template's bos_token / eos_token (default ""). */
  bosToken?: string;
  eosToken?: string;
  /** The clock strftime_now reads (default: the current time); tests pass a fixed date. */
  now?: () => Date;
}

export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChatTemplateError';
  }
}

/** A parsed chat template, ready to render conversations. Parsing happens once, here. */
export class ChatTemplate {
  private readonly parsed: Template;
  readonly bosToken: string;
  readonly eosToken: string;
  private readonly now: () => Date;

  constructor(readonly source: string, options: ChatTemplateOptions = {}) {
    try {
      this.parsed = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`the chat template cannot be parsed: ${(e as Error).message}`);
    }
    this.bosToken = options.bosToken ?? '';
    this.eosToken = options.eosToken ?? '';
    this.now = options.now ?? (() => new Date());
  }

  /** Renders `messages` into the prompt text the model was trained on. */
  render(messages: readonly ChatMessage[], options: ChatTemplateRenderOptions = {}): string {
    for (const [i, m] of messages.entries()) {
      if (typeof m?.role !== 'string' || typeof m.content !== 'string') {
        throw new ChatTemplateError(`message ${i} needs a string "role" and a string "content"`);
      }
    }
    const variables: Record<string, unknown> = {
      ...JINJA_CONSTANTS,
      range: pythonRange,
      raise_exception: (message: unknown): never => {
        throw new ChatTemplateError(`the chat template refused these messages: ${String(message)}`);
      },
      // Llama 3.2 and later print today's date with strftime_now("%d %b %Y").
      strftime_now: (format: unknown): string => strftime(this.now(), String(format)),
      // Plain copies: the template must not see (or be able to change) the caller's objects.
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: options.addGenerationPrompt ?? false,
      bos_token: this.bosToken,
      eos_token: this.eosToken,
      // Templates test `if tools` / `tools is not none`; left undefined, as transformers does without tools.
      tools: undefined,
      ...options.variables,
    };
    // Template.render would declare its own raise_exception and strftime_now (which uses the machine's
    // locale) and refuses a second declaration, so the globals are declared here, once each.
    const env = new Environment();
    for (const [name, value] of Object.entries(variables)) env.set(name, value);
    try {
      const result = new Interpreter(env).run(this.parsed.parsed).value;
      if (typeof result !== 'string') throw new ChatTemplateError('the chat template did not produce text');
      return result;
    } catch (e) {
      if (e instanceof ChatTemplateError) throw e;
      throw new ChatTemplateError(`the chat template failed to render: ${(e as Error).message}`);
    }
  }
}

/**
 * The chat template of a model file, or of `override` when given. Throws ChatTemplateError when the
 * file carries none and no override is given.
 */
export function chatTemplateFor(file: GGUFFile, tokenizer: Tokenizer, override?: string, now?: () => Date): ChatTemplate {
  let source = override;
  if (source === undefined) {
    try {
      source = metaString(file, CHAT_TEMPLATE_KEY);
    } catch (e) {
      if (e instanceof MetadataError) throw new ChatTemplateError(e.message);
      throw e;
    }
  }
  if (source === undefined || source.trim() === '') {
    throw new ChatTemplateError(
      `${file.source} has no chat template (metadata "${CHAT_TEMPLATE_KEY}" is missing); pass one with the \`template\` option (a Jinja string)`,
    );
  }
  const tokenText = (id: number | undefined): string => (id === undefined ? '' : tokenizer.tokenText(id));
  return new ChatTemplate(source, { bosToken: tokenText(tokenizer.bos), eosToken: tokenText(tokenizer.eos), now });
}

/** The constants @huggingface/jinja's Template.render declares (Python's spellings and Jinja's). */
const JINJA_CONSTANTS: Readonly<Record<string, unknown>> = { true: true, false: false, none: null, True: true, False: false, None: null };

/** Python's range(stop) / range(start, stop[, step]) as a list. */
function pythonRange(...args: unknown[]): number[] {
  const nums = args.map((a) => {
    if (typeof a !== 'number' || !Number.isInteger(a)) throw new ChatTemplateError(`range() needs integers, got ${String(a)}`);
    return a;
  });
  if (nums.length < 1 || nums.length > 3) throw new ChatTemplateError(`range() takes 1 to 3 arguments, got ${nums.length}`);
  const [start, stop, step] = nums.length === 1 ? [0, nums[0]!, 1] : [nums[0]!, nums[1]!, nums[2] ?? 1];
  if (step === 0) throw new ChatTemplateError('range() step must not be zero');
  const out: number[] = [];
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) out.push(i);
  return out;
}

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/**
 * Python's time.strftime in the C locale (English names, as the templates expect whatever the
 * machine's locale), for the directives templates use; others are left as written.
 */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
  return format.replace(/%[aAbBdHIjmMpSyYe%]/g, (d) => {
    switch (d) {
      case '%a':
        return WEEKDAYS[date.getDay()]!.slice(0, 3);
      case '%A':
        return WEEKDAYS[date.getDay()]!;
      case '%b':
        return MONTHS[date.getMonth()]!.slice(0, 3);
      case '%B':
        return MONTHS[date.getMonth()]!;
      case '%d':
        return pad(date.getDate());
      case '%e':
        return String(date.getDate()).padStart(2, ' ');
      case '%H':
        return pad(date.getHours());
      case '%I':
        return pad(((date.getHours() + 11) % 12) + 1);
      case '%j': {
        // Calendar days, so a daylight-saving change in between does not shift the count.
        const days = (Date.UTC(date.getFullYear(), date.getMonth(), date.getDate()) - Date.UTC(date.getFullYear(), 0, 1)) / 86_400_000;
        return pad(days + 1, 3);
      }
      case '%m':
        return pad(date.getMonth() + 1);
      case '%M':
        return pad(date.getMinutes());
      case '%p':
        return date.getHours() < 12 ? 'AM' : 'PM';
      case '%S':
        return pad(date.getSeconds());
      case '%y':
        return pad(date.getFullYear() % 100);
      case '%Y':
        return String(date.getFullYear());
      default:
        return '%';
    }
  });
}
