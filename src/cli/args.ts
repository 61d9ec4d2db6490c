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
