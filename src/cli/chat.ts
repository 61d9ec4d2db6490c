// `pocketllm chat`: a conversation with a model on the terminal, or over a pipe (one user message per
// input line, one reply per output line). Ctrl-C stops the reply being written; at the prompt it quits.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Interface } from 'node:readline';
import type { ChatSession } from '../engine/chat.js';
import type { Model } from '../engine/model.js';
import { CHAT_TEMPLATE_KEY } from '../tokenizer/chat-template.js';
import { CliUsageError, SAMPLING_HELP, SAMPLING_PARSE_OPTIONS, describeError, numberOption, runCliCommand, samplingOptions } from './args.js';
import { LOAD_HELP, LOAD_PARSE_OPTIONS, loadModelWithProgress, loadOptions } from './load-options.js';

const HELP = `usage: pocketllm chat -m model.gguf [options]

  -m, --model FILE        GGUF model to chat with (it must carry a chat template, or give --template)
      --system TEXT       system message opening the conversation
      --template FILE     Jinja chat template to use instead of the model's
  -n, --n-predict N       most tokens per reply (default 512)
${SAMPLING_HELP}${LOAD_HELP}
On a terminal: type a message after "> ". /reset starts over (the system message stays), /exit or
Ctrl-D quits, Ctrl-C stops a reply (and quits at the prompt). With standard input from a pipe, each
line is one message and each reply is printed on its own line.
`;

const COMMANDS_HINT = '/reset starts over, /exit or Ctrl-D quits, Ctrl-C stops a reply';

/** Lines from a readline interface, handed out one at a time as the conversation asks for them. */
class LineQueue {
  private readonly lines: string[] = [];
  private closed = false;
  private waiting: ((line: string | undefined) => void) | undefined;

  constructor(rl: Interface) {
    rl.on('line', (line) => this.push(line));
    rl.on('close', () => this.close());
  }

  /** The next line, or undefined once the input has ended. */
  next(): Promise<string | undefined> {
    const line = this.lines.shift();
    if (line !== undefined || this.closed) return Promise.resolve(line);
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  private push(line: string): void {
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve(line);
    } else {
      this.lines.push(line);
    }
  }

  private close(): void {
    this.closed = true;
    const resolve = this.waiting;
    this.waiting = undefined;
    resolve?.(undefined);
  }
}

export async function chatCommand(argv: string[]): Promise<number> {
  const config = {
    options: {
      model: { type: 'string', short: 'm' },
      system: { type: 'string' },
      template: { type: 'string' },
      'n-predict': { type: 'string', short: 'n' },
      ...SAMPLING_PARSE_OPTIONS,
      ...LOAD_PARSE_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  } as const;
  return runCliCommand({ name: 'chat', help: HELP, config }, argv, async ({ values: args }) => {
    let model: Model | undefined;
    try {
      if (!args.model) throw new CliUsageError('missing -m model.gguf');
      const replyOptions = {
        maxTokens: numberOption(args['n-predict'], '-n', { integer: true, min: 1 }) ?? 512,
        ...samplingOptions(args),
      };
      const load = loadOptions(args);
      const template = args.template !== undefined ? await readFile(args.template, 'utf8') : undefined;

      model = await loadModelWithProgress(args.model, load);
      if (template === undefined && !model.file.metadata.has(CHAT_TEMPLATE_KEY)) {
        throw new Error(`${args.model} has no chat template (metadata "${CHAT_TEMPLATE_KEY}"); give one with --template FILE (a Jinja chat template)`);
      }
      const chat = model.chat({ system: args.system, template, ...replyOptions });
      return await converse(chat, model);
    } finally {
      await model?.close();
    }
  });
}

/** The read-reply loop. Returns the exit code. */
async function converse(chat: ChatSession, model: Model): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive });
  const lines = new LineQueue(rl);
  let replying: AbortController | undefined;
  // On a terminal readline reads Ctrl-C itself and reports it on the interface; over a pipe it
  // arrives as the process's SIGINT. Either way: stop the reply, or quit at the prompt.
  const onInterrupt = (): void => {
    if (replying) replying.abort();
    else rl.close();
  };
  rl.on('SIGINT', onInterrupt);
  process.on('SIGINT', onInterrupt);
  if (interactive) {
    const name = model.file.metadata.get('general.name')?.value;
    process.stderr.write(`chatting with ${typeof name === 'string' ? name : 'the model'} (${COMMANDS_HINT})\n`);
    rl.setPrompt('> ');
  }
  try {
    for (;;) {
      if (interactive) rl.prompt();
      const line = await lines.next();
      if (line === undefined) break;
      const text = line.trim();
      if (text === '') continue;
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') {
        chat.reset();
        if (interactive) process.stderr.write('(conversation cleared)\n');
        continue;
      }
      replying = new AbortController();
      try {
        for await (const piece of chat.send(text, { signal: replying.signal })) {
          if (piece.text) process.stdout.write(piece.text);
        }
        process.stdout.write('\n');
      } catch (e) {
        if (replying.signal.aborted) {
          process.stdout.write('\n');
          if (interactive) process.stderr.write('(reply stopped)\n');
          continue;
        }
        process.stdout.write('\n');
        process.stderr.write(`pocketllm: ${describeError(e)}\n`);
        // At a terminal the user can /reset and go on; a script gets the failure.
        if (!interactive) return 1;
      } finally {
        replying = undefined;
      }
    }
    if (interactive) process.stdout.write('\n');
    return 0;
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
  }
}
