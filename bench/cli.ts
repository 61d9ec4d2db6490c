// Runs the pocketllm command line from source (the bench suite spawns it, one process per model, so
// that each model's peak resident set is its own). Run: npx vite-node bench/cli.ts -- bench -m ...
import { main } from '../src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`pocketllm: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
