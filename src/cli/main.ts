#!/usr/bin/env node
/** The `synack` executable (package.json `bin`). */
import { nodeIO } from './io.js';
import { runCli } from './program.js';

// A reader that goes away (`synack demo | head -1`) is not an error of ours: stop quietly, as cat does.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

process.exitCode = await runCli(process.argv.slice(2), nodeIO());
