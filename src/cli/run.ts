// `pocketllm run`: load a model, generate from a prompt, stream the text to stdout and the timing
// statistics to stderr.
import { readFile } from 'node:fs/promises';
import { CliUsageError, SAMPLING_HELP, SAMPLING_PARSE_OPTIONS, numberOption, runCliCommand, samplingOptions } from './args.js';
import { LOAD_HELP, LOAD_PARSE_OPTIONS, loadModelWithProgress, loadOptions } from './load-options.js';
import { formatByteSize } from '../memory/byte-size.js';
import { formatWeightMemory } from '../memory/report.js';

const HELP = `usage: pocketllm run -m model.gguf (-p "prompt" | -f prompt.txt) [options]

  -m, --model FILE        GGUF model to run
  -p, --prompt TEXT       prompt text
  -f, --file FILE         read the prompt from a file
  -n, --n-predict N       tokens to generate (default 128)
${SAMPLING_HELP}      --stop TEXT         stop when TEXT appears (repeatable)
${LOAD_HELP}      --special           parse control tokens written in the prompt
`;

export async function runCommand(argv: string[]): Promise<number> {
  const config = {
    options: {
      model: { type: 'string', short: 'm' },
      prompt: { type: 'string', short: 'p' },
      file: { type: 'string', short: 'f' },
      'n-predict': { type: 'string', short: 'n' },
      ...SAMPLING_PARSE_OPTIONS,
      stop: { type: 'string', multiple: true },
      ...LOAD_PARSE_OPTIONS,
      special: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  } as const;
  return runCliCommand({ name: 'run', help: HELP, config }, argv, async ({ values: args }) => {
    if (!args.model) throw new CliUsageError('missing -m model.gguf');
    if (args.prompt === undefined && args.file === undefined) throw new CliUsageError('missing -p "prompt" or -f prompt.txt');
    // Every option is checked before the model is loaded, so a typo fails at once.
    const load = loadOptions(args);
    const options = {
      maxTokens: numberOption(args['n-predict'], '-n', { integer: true, min: 0 }) ?? 128,
      ...samplingOptions(args),
      stop: args.stop,
      parseSpecial: args.special ?? false,
    };
    const prompt = args.file !== undefined ? await readFile(args.file, 'utf8') : args.prompt!;
    const startMs = performance.now();
    const model = await loadModelWithProgress(args.model, load);
    const loadMs = performance.now() - startMs;
    let firstTokenMs: number | undefined;
    try {
      const it = model.generate(prompt, options);
      for (;;) {
        const r = await it.next();
        firstTokenMs ??= performance.now() - startMs;
        if (r.done) {
          const s = r.value.stats;
          process.stdout.write('\n');
          process.stderr.write(
            `\nprompt: ${s.promptTokens} tokens, ${s.prefillTokensPerSecond.toFixed(1)} tokens/s | ` +
              `generated: ${s.generatedTokens} tokens, ${s.decodeTokensPerSecond.toFixed(1)} tokens/s | ` +
              `stop: ${s.stopReason} | kernels: ${model.kernelVariant} | ` +
              `load ${(loadMs / 1000).toFixed(2)} s, first token ${((firstTokenMs ?? 0) / 1000).toFixed(2)} s after start\n` +
              `memory: ${formatWeightMemory(model.weightMemory())} | peak RSS ${formatByteSize(process.resourceUsage().maxRSS * 1024)}\n`,
          );
          break;
        }
        if (r.value.text) process.stdout.write(r.value.text);
      }
    } finally {
      await model.close();
    }
    return 0;
  });
}
