// Chat sessions: a conversation kept both as messages and as the exact token ids the model has seen,
// so that each turn appends only the new user message and the template's glue, and Model.prefill finds
// the whole earlier conversation in the KV cache.
//
// Why tokens and not a re-rendering: rendering the history through the template and tokenizing it
// again need not reproduce the tokens the model generated (a reply may tokenize differently than it
// was sampled, and templates trim or drop parts of earlier replies: Llama 3 trims, Qwen3 removes
// <think> blocks). Any such difference would invalidate the cache from that point on. So the session
// keeps the ids as they were prefilled and sampled, and asks the template only for what follows the
// last reply: the conversation is rendered with that reply replaced by a marker, and the text after
// the marker (end-of-turn tokens, the new user message, the assistant header) is tokenized and
// appended, as llama.cpp's interactive chat mode does. The price: the model keeps seeing its
// replies exactly as written, including anything a template would strip from later turns.
import type { ChatMessage, ChatTemplate, ChatTemplateRenderOptions } from '../tokenizer/chat-template.js';
import type { Completion, GeneratedPiece, GenerateOptions, Model } from './model.js';

/** Generation options of one reply (the prompt is always token ids, so addBos/parseSpecial do not apply). */
export type ChatGenerateOptions = Omit<GenerateOptions, 'addBos' | 'parseSpecial'>;

export interface ChatOptions extends ChatGenerateOptions {
  /** A system message opening the conversation (kept by reset()). */
  system?: string;
  /** A Jinja chat template to use instead of the model's tokenizer.chat_template. */
  template?: string;
  /** Extra template variables, e.g. { enable_thinking: false } for Qwen3. */
  templateVariables?: ChatTemplateRenderOptions['variables'];
}

/**
 * Stands in for the content of the last assistant reply while the template renders what follows it.
 * Private-use characters without surrounding spaces: no template trims, splits or escapes them, and no
 * real reply contains them.
 */
const REPLY_MARKER = '\uF8FFpocketllm-reply\uF8FF';

export class ChatSession {
  private readonly system: string | undefined;
  private readonly defaults: ChatGenerateOptions;
  private readonly templateVariables: ChatTemplateRenderOptions['variables'];
  /** The conversation so far, system message first. */
  private messages: ChatMessage[];
  /**
   * Every token id of the conversation so far, as prefilled and generated: the last turn's prompt
   * followed by the ids of its reply. Empty before the first turn (and after reset()).
   */
  private conversation: number[] = [];
  private replying = false;

  constructor(
    private readonly model: Model,
    readonly template: ChatTemplate,
    options: ChatOptions = {},
  ) {
    const { system, template: _template, templateVariables, ...defaults } = options;
    this.system = system;
    this.defaults = defaults;
    this.templateVariables = templateVariables;
    this.messages = this.initialMessages();
  }

  /** The messages so far, system message first (copies). */
  get history(): ChatMessage[] {
    return this.messages.map((m) => ({ ...m }));
  }

  /** The token ids of the conversation so far, as the model has seen them. */
  get tokens(): readonly number[] {
    return this.conversation;
  }

  /** Forgets every turn; the system message stays. */
  reset(): void {
    if (this.replying) throw new Error('cannot reset the chat while it is replying; abort the reply first');
    this.messages = this.initialMessages();
    this.conversation = [];
  }

  /**
   * Sends a user message and streams the reply (the same pieces and final Completion as
   * Model.generate). The turn enters the history when the reply ends; a reply aborted through
   * `signal` or left early is kept as far as it went, and any other failure leaves the history as it
   * was. The reply's tokens stay in the conversation as generated (a stop string that ended it
   * included), since that is what the model has seen.
   */
  async *send(text: string, options: ChatGenerateOptions = {}): AsyncGenerator<GeneratedPiece, Completion> {
    if (typeof text !== 'string') throw new TypeError('send() needs the user message as a string');
    if (this.replying) throw new Error('this chat is already replying; wait for the reply or abort it first');
    this.replying = true;
    try {
      const opts: ChatGenerateOptions = { ...this.defaults, ...options };
      const user: ChatMessage = { role: 'user', content: text };
      const prompt = this.promptFor(user);
      if (prompt.length >= this.model.contextLength) {
        throw new RangeError(
          `the conversation has ${prompt.length} tokens, which does not fit in the context of ${this.model.contextLength} tokens; reset the chat or raise contextLength (--ctx)`,
        );
      }
      const generated: number[] = [];
      let reply = '';
      let outcome: 'running' | 'done' | 'failed' = 'running';
      const it = this.model.generate(prompt, opts);
      try {
        for (;;) {
          const r = await it.next();
          if (r.done) {
            outcome = 'done';
            this.commit(user, r.value.text, prompt, r.value.tokens);
            return r.value;
          }
          if (r.value.token >= 0) generated.push(r.value.token);
          reply += r.value.text;
          yield r.value;
        }
      } catch (e) {
        outcome = 'failed';
        // An abort stops the reply, not the conversation: the model did say this much.
        if (opts.signal?.aborted) this.commit(user, reply, prompt, generated);
        throw e;
      } finally {
        if (outcome === 'running') {
          // The consumer stopped iterating (break, return()): release the model and keep what was
          // streamed, as for an abort.
          await it.return(undefined as unknown as Completion);
          this.commit(user, reply, prompt, generated);
        }
      }
    } finally {
      this.replying = false;
    }
  }

  /** Sends a user message and waits for the whole reply. */
  async reply(text: string, options: ChatGenerateOptions = {}): Promise<Completion> {
    const it = this.send(text, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  private initialMessages(): ChatMessage[] {
    return this.system === undefined ? [] : [{ role: 'system', content: this.system }];
  }

  /** The token ids of the whole conversation with `user` appended and the assistant's turn opened. */
  private promptFor(user: ChatMessage): number[] {
    const last = this.messages[this.messages.length - 1];
    if (this.conversation.length > 0 && last?.role === 'assistant') {
      const withMarker = [...this.messages.slice(0, -1), { role: 'assistant', content: REPLY_MARKER }, user];
      const rendered = this.render(withMarker);
      const at = rendered.indexOf(REPLY_MARKER);
      if (at >= 0 && rendered.indexOf(REPLY_MARKER, at + 1) < 0) {
        const glue = rendered.slice(at + REPLY_MARKER.length);
        return [...this.conversation, ...this.model.tokenize(glue, { addBos: false, parseSpecial: true })];
      }
      // A template that does not reproduce the reply verbatim: render everything; prefill still reuses
      // the longest common prefix.
    }
    const rendered = this.render([...this.messages, user]);
    const bos = this.model.tokenizer.bos;
    // Templates that write bos_token themselves must not get a second BOS from the tokenizer.
    const writesBos = bos !== undefined && rendered.startsWith(this.model.tokenizer.tokenText(bos));
    return this.model.tokenize(rendered, { addBos: writesBos ? false : undefined, parseSpecial: true });
  }

  private render(messages: readonly ChatMessage[]): string {
    return this.template.render(messages, { addGenerationPrompt: true, variables: this.templateVariables });
  }

  private commit(user: ChatMessage, reply: string, prompt: readonly number[], generated: readonly number[]): void {
    this.messages.push(user, { role: 'assistant', content: reply });
    this.conversation = [...prompt, ...generated];
  }
}
