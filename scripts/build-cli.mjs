#!/usr/bin/env node
// Bundles the `rxnat` command (src/cli/main.ts) into dist/cli/ with esbuild, after tsc has built
// the library (npm run build). Why: loaded as tsc emits it, the CLI reads ~60 modules and rxjs's
// whole CommonJS build (the `node` condition of its exports) before its first request.
//
// Output, all CommonJS (Node's ES module loader costs several ms per file before any code runs:
// resolution, package-scope lookups, linking):
// - main.cjs, the bin: argument parsing, help, usage errors and --version (args.ts, options.ts,
//   format.ts, errors.ts), no rxjs, no backend (test/cli/startup.test.ts). For a command it
//   loads that command's bundle through src/cli/bundle-run.ts (swapped in for run.ts) and its
//   V8 code cache (src/cli/code-cache.ts).
// - <bundle>.cjs for each entry of BUNDLES: src/cli/run.ts with only that bundle's command
//   modules (the others become stubs that throw), and what they need: rxjs from its ES2015
//   build (tree-shaken), the backends. The demo's simulator is only in demo.cjs. A failure is
//   described inside the bundle that raised it (run.ts), so no error class crosses bundles.
//   node:crypto and node:zlib are required when first called (LAZY_BUILTINS).
// Whitespace and syntax are minified (not identifiers: stack traces keep their names): less
// source to read and hand to V8 on every run. default-gateway stays an import of the installed
// package: it is loaded only where /proc/net/route cannot be read (see
// src/transport/default-gateway.ts).
//
// Usage: node scripts/build-cli.mjs [--outdir DIR] [--metafile FILE]
// No source maps: the bundles hold rxjs, whose sources the package does not ship.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
const { values } = parseArgs({ options: { outdir: { type: 'string' }, metafile: { type: 'string' } } });
const outdir = values.outdir ?? join(ROOT, 'dist', 'cli');

/**
 * Bundle name -> the modules of run.ts's dynamic imports it holds. Must agree with BUNDLE_OF in
 * src/cli/bundle-run.ts (every command's bundle is exercised by test/cli/startup.test.ts).
 */
const BUNDLES = {
  discover: ['./commands/discover.js'],
  status: ['./commands/status.js'],
  list: ['./commands/list.js'],
  map: ['./commands/map.js', './commands/leave.js'],
  unmap: ['./commands/unmap.js'],
  demo: ['./demo.js'],
};
/**
 * Built-ins that a module of the bundles imports at its top but calls only later: they are
 * required when one of these functions is first called, not when the module initialises.
 * node:crypto costs ~4 ms to load, and PCP needs it for a mapping's nonce, not for the ANNOUNCE
 * that `--nat any` and `--nat pcp` send first; node:zlib is STUN's checksum. A name imported
 * from one of them that is not listed here fails the build.
 */
const LAZY_BUILTINS = { 'node:crypto': ['randomBytes'], 'node:zlib': ['crc32'] };
const RUN = join(ROOT, 'src', 'cli', 'run.ts');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const BUNDLE_RUN = join(ROOT, 'src', 'cli', 'bundle-run.ts');
const COMMAND_IMPORT = /^\.\/(commands\/[\w-]+|demo)\.js$/;

const common = {
  absWorkingDir: ROOT,
  bundle: true,
  format: 'cjs',
  target: 'node20',
  // `neutral` so that rxjs resolves through its `es2015` condition (ES modules, tree-shakable)
  // instead of the `node` one (CommonJS, all of rxjs); Node's built-ins stay requires.
  platform: 'neutral',
  conditions: ['es2015'],
  mainFields: ['es2015', 'module', 'main'],
  external: ['node:*', 'default-gateway'],
  // main.ts finds package.json, bundle-run.ts the bundles, next to the running file.
  define: { 'import.meta.dirname': '__dirname' },
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  write: false,
  metafile: true,
  logLevel: 'warning',
};

/** In a bundle's copy of run.ts, the command imports of other bundles become stubs that throw. */
function onlyCommands(name, keep) {
  return {
    name: 'rxnat-only-commands',
    setup(b) {
      b.onResolve({ filter: COMMAND_IMPORT }, (args) => {
        if (args.importer !== RUN) return undefined;
        if (!Object.values(BUNDLES).some((modules) => modules.includes(args.path))) {
          return { errors: [{ text: `run.ts imports ${args.path}, which no bundle of scripts/build-cli.mjs holds` }] };
        }
        return keep.includes(args.path) ? undefined : { path: args.path, namespace: 'rxnat-elsewhere' };
      });
      b.onLoad({ filter: /.*/, namespace: 'rxnat-elsewhere' }, (args) => ({
        contents: `throw new Error(${JSON.stringify(`rxnat: ${args.path} is not in the ${name} bundle (scripts/build-cli.mjs)`)});`,
        loader: 'js',
      }));
    },
  };
}

/** The imports of LAZY_BUILTINS become functions that require the built-in on their first call. */
const lazyBuiltins = {
  name: 'rxnat-lazy-builtins',
  setup(b) {
    const names = Object.keys(LAZY_BUILTINS);
    b.onResolve({ filter: /^node:/ }, (args) => (names.includes(args.path) && args.namespace === 'file' ? { path: args.path, namespace: 'rxnat-lazy-builtin' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'rxnat-lazy-builtin' }, (args) => ({
      contents: [
        `let loaded;`,
        ...LAZY_BUILTINS[args.path].map((name) => `export function ${name}(...args) { return (loaded ??= require(${JSON.stringify(args.path)})).${name}(...args); }`),
      ].join('\n'),
      loader: 'js',
    }));
  },
};

/** In main.cjs, './run.js' is bundle-run.ts (load the command's bundle). */
const bundledRun = {
  name: 'rxnat-bundled-run',
  setup(b) {
    b.onResolve({ filter: /^\.\/run\.js$/ }, (args) => (args.importer === MAIN ? { path: BUNDLE_RUN } : undefined));
  },
};

// tsc's per-module output of src/cli is replaced, not mixed with the bundles.
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const metafiles = [];
const hashes = {};
for (const [name, keep] of Object.entries(BUNDLES)) {
  const result = await build({ ...common, entryPoints: [RUN], outfile: join(outdir, `${name}.cjs`), plugins: [onlyCommands(name, keep), lazyBuiltins] });
  const [file] = result.outputFiles;
  writeFileSync(file.path, file.contents);
  hashes[name] = createHash('sha256').update(file.contents).digest('hex').slice(0, 16);
  metafiles.push(result.metafile);
}
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const main = await build({
  ...common,
  entryPoints: [MAIN],
  outfile: join(outdir, 'main.cjs'),
  plugins: [bundledRun],
  define: { ...common.define, RXNAT_CLI_BUILD: JSON.stringify({ version, bundles: hashes }) },
});
writeFileSync(main.outputFiles[0].path, main.outputFiles[0].contents, { mode: 0o755 });
metafiles.push(main.metafile);

if (values.metafile !== undefined) {
  const merged = { inputs: {}, outputs: {} };
  for (const metafile of metafiles) {
    Object.assign(merged.inputs, metafile.inputs);
    Object.assign(merged.outputs, metafile.outputs);
  }
  writeFileSync(values.metafile, JSON.stringify(merged));
}
