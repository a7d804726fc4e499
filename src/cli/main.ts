#!/usr/bin/env node
/** The `synack` executable (package.json `bin`). */
import { nodeIO } from './io.js';
import { runCli } from './program.js';

process.exitCode = await runCli(process.argv.slice(2), nodeIO());
