// Shared helpers of the CLI commands: the parse / --help / error-to-exit-code frame every command
// runs in, checked numeric options, and one-line error descriptions.
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';

export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

/** Parses an optional numeric option, or throws a CliUsageError naming the flag. */
export function numberOption(
  value: string | undefined,
  flag: string,
  limits: { integer?: boolean; min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new CliUsageError(`${flag} needs a number, got "${value}"`);
  if (limits.integer && !Number.isInteger(n)) throw new CliUsageError(`${flag} needs a whole number, got "${value}"`);
  if (limits.min !== undefined && n < limits.min) throw new CliUsageError(`${flag} must be at least ${limits.min}, got ${value}`);
  if (limits.max !== undefined && n > limits.max) throw new CliUsageError(`${flag} must be at most ${limits.max}, got ${value}`);
  return n;
}

/** The one line a user sees for an error: the message, without a stack trace. */
export function describeError(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** What a command parses: its parseArgs config (which must declare `help`) and its --help text. */
export interface CommandSpec<T extends ParseArgsConfig> {
  /** The command's name, as typed after `pocketllm`. */
  readonly name: string;
  readonly help: string;
  readonly config: T;
  /** Errors, besides CliUsageError, that mean the user asked for something invalid (exit 2). */
  readonly usageErrors?: readonly (abstract new (...args: never[]) => Error)[];
}

/**
 * Runs a command the way every `pocketllm` command runs: parses argv (an unknown or malformed flag is
 * one line on stderr and exit 2), prints the help for -h/--help (exit 0), then runs `body`; an error
 * it throws becomes one line on stderr and exit 2 for a usage error, 1 for anything else.
 */
export async function runCliCommand<T extends ParseArgsConfig>(
  spec: CommandSpec<T>,
  argv: string[],
  body: (parsed: ReturnType<typeof parseArgs<T>>) => Promise<number>,
): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<T>>;
  try {
    parsed = parseArgs<T>({ ...spec.config, args: argv });
  } catch (e) {
    process.stderr.write(`pocketllm ${spec.name}: ${firstLine(e)} (see pocketllm ${spec.name} --help)\n`);
    return 2;
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(spec.help);
    return 0;
  }
  try {
    return await body(parsed);
  } catch (e) {
    process.stderr.write(`pocketllm: ${firstLine(e)}\n`);
    const usage = e instanceof CliUsageError || (spec.usageErrors ?? []).some((c) => e instanceof c);
    return usage ? 2 : 1;
  }
}

function firstLine(e: unknown): string {
  return describeError(e).split('\n')[0]!;
}

/** The help lines of the sampling flags. */
export const SAMPLING_HELP =
  `      --temp T            temperature; 0 = greedy (default 0.8)\n` +
  `      --top-k K           keep the K most likely tokens (default 40; 0 = off)\n` +
  `      --top-p P           nucleus sampling threshold (default 0.95; 1 = off)\n` +
  `      --min-p P           drop tokens below P x the top probability (default 0.05; 0 = off)\n` +
  `      --repeat-penalty R  penalty for repeating recent tokens (default 1.0 = off)\n` +
  `      --repeat-last-n N   how many recent tokens the penalty looks at (default 64)\n` +
  `      --seed S            random seed (default: random)\n`;

/** The sampling flags `run` and `chat` share, in node:util parseArgs form. */
export const SAMPLING_PARSE_OPTIONS = {
  temp: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repeat-penalty': { type: 'string' },
  'repeat-last-n': { type: 'string' },
  seed: { type: 'string' },
} as const;

type SamplingArgs = { [K in keyof typeof SAMPLING_PARSE_OPTIONS]?: string };

/** Checked sampler options from the shared sampling flags (undefined = the sampler's default). */
export function samplingOptions(args: SamplingArgs): {
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  penaltyLastN?: number;
  seed?: number;
} {
  return {
    temperature: numberOption(args.temp, '--temp', { min: 0 }),
    topK: numberOption(args['top-k'], '--top-k', { integer: true, min: 0 }),
    topP: numberOption(args['top-p'], '--top-p', { min: 0, max: 1 }),
    minP: numberOption(args['min-p'], '--min-p', { min: 0, max: 1 }),
    repeatPenalty: numberOption(args['repeat-penalty'], '--repeat-penalty', { min: 0 }),
    penaltyLastN: numberOption(args['repeat-last-n'], '--repeat-last-n', { integer: true, min: 0 }),
    seed: numberOption(args.seed, '--seed', { integer: true }),
  };
}
