/** A worker thread of `synack drill`: runs the scripts it is sent, one at a time (Node only). */
import { readFileSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { runDrillFile } from '../drill/file.js';

parentPort?.on('message', (m: { i: number; file: string }) => {
  let result;
  try {
    result = runDrillFile(m.file, readFileSync(m.file, 'utf8'));
  } catch (e) {
    result = { file: m.file, ok: false, error: `cannot run: ${(e as Error).message}`, warnings: [], durationMs: 0 };
  }
  parentPort?.postMessage({ i: m.i, result });
});
