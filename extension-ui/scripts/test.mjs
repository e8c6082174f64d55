// Unit tests: bundle each test/*.test.ts for node with esbuild, then run node's own test runner.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from './build.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'node_modules', '.cache', 'assistant-tests');
// bundle.test.ts checks the real bundle, so build it first (esbuild: well under a second).
await bundle();
await rm(out, { recursive: true, force: true });
const tests = (await readdir(path.join(root, 'test'))).filter((f) => f.endsWith('.test.ts')).sort();
await build({
  entryPoints: tests.map((f) => path.join(root, 'test', f)),
  outdir: out,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  jsx: 'automatic',
  loader: { '.css': 'text' },
  packages: 'external',
  logLevel: 'warning',
});
const files = tests.map((f) => path.join(out, f.replace(/\.ts$/, '.mjs')));
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
