#!/usr/bin/env node
// Bundles the `rxnat` command (src/cli/main.ts) into dist/cli/ with esbuild, after tsc has built
// the library (npm run build). Why: loaded as tsc emits it, the CLI reads ~60 modules and rxjs's
// whole CommonJS build (the `node` condition of its exports) before its first request; bundled,
// it reads main.js, then only the chunks of the command it runs, and the parts of rxjs it uses
// (from rxjs's ES2015 build, tree-shaken). Commands stay separate chunks, loaded when run, so
// `--help` and usage errors still load neither rxjs nor a backend (test/cli/startup.test.ts).
// default-gateway stays an import of the installed package: it is loaded only where
// /proc/net/route cannot be read (see src/transport/default-gateway.ts).
//
// Usage: node scripts/build-cli.mjs [--outdir DIR] [--metafile FILE]
// No source maps: the bundle holds rxjs, whose sources the package does not ship.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' }, metafile: { type: 'string' } } });
const outdir = values.outdir ?? join(ROOT, 'dist', 'cli');

// tsc's per-module output of src/cli is replaced, not mixed with the bundle.
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: { main: 'src/cli/main.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  target: 'node20',
  // `neutral` so that rxjs resolves through its `es2015` condition (ES modules, tree-shakable)
  // instead of the `node` one (CommonJS, all of rxjs); Node's built-ins stay imports.
  platform: 'neutral',
  conditions: ['es2015'],
  mainFields: ['es2015', 'module', 'main'],
  external: ['node:*', 'default-gateway'],
  chunkNames: 'chunks/[name]-[hash]',
  legalComments: 'none',
  metafile: values.metafile !== undefined,
  logLevel: 'warning',
});
if (values.metafile !== undefined) {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(values.metafile, JSON.stringify(result.metafile));
}
