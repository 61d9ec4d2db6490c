#!/usr/bin/env node
// Entry point of the `pocketllm` command: hands the arguments to the compiled CLI.
import { main } from '../dist/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => {
    process.stderr.write(`pocketllm: ${err && err.message ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
