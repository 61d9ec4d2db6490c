// Shared helpers of the CLI commands: checked numeric options and one-line error descriptions.

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
