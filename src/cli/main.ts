// The `pocketllm` command line: dispatches to one module per command (src/cli/<command>.ts).

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  info: { summary: 'print what a GGUF file holds', load: async () => (await import('./info.js')).infoCommand },
  run: { summary: 'generate text from a prompt', load: async () => (await import('./run.js')).runCommand },
  chat: { summary: 'chat with a model interactively', load: async () => (await import('./chat.js')).chatCommand },
  quantize: { summary: 'convert a model to another weight type', load: async () => (await import('./quantize.js')).quantizeCommand },
  synth: { summary: 'write a random-weight model of a real shape', load: async () => (await import('./synth.js')).synthCommand },
  bench: { summary: 'measure prefill and decode speed', load: async () => (await import('./bench.js')).benchCommand },
};

function usage(): string {
  const lines = ['usage: pocketllm <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `pocketllm <command> --help` for the options of a command.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage() + '\n');
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`pocketllm: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  return (await command.load())(rest);
}
