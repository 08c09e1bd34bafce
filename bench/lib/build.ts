/**
 * The rxnat under test: the current sources compiled exactly as `npm run build` does
 * (`tsc -p tsconfig.build.json`: JavaScript, declarations, maps; then the CLI bundled by
 * `scripts/build-cli.mjs`), but into a private temp directory, so that the bench measures
 * plain compiled JavaScript (not tsx's on-the-fly output, whose `__name` wrappers add a
 * property backing store to every closure: ~3 KB per mapping and measurable CPU) and never
 * races a colleague's `dist/`.
 *
 * Layout: `<tmp>/package.json` (the repository's), README, LICENSE, CHANGELOG, `<tmp>/src/**`, `<tmp>/dist/**`,
 * `<tmp>/node_modules` -> the repository's node_modules (so `rxjs` and `default-gateway`
 * resolve). The same directory is what the footprint section packs.
 *
 * @packageDocumentation
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as RxnatSources from '../../src/index.js';
import type * as RxnatTestingSources from '../../src/testing/index.js';
import { ROOT } from './machine.js';

/** Where the compiled rxnat lives, or the sources when compiling failed. */
export interface RxnatBuild {
  readonly source: 'compiled' | 'tsx';
  /** The package directory (compiled) or the repository root (tsx). */
  readonly packageDir: string;
  /** Module specifiers (file URLs) of `rxnat` and `rxnat/testing`. */
  readonly index: string;
  readonly testing: string;
  /** The command line of the `rxnat` CLI. */
  readonly cli: readonly string[];
  /** What happened (tsc warnings, fallback reason). */
  readonly note: string;
  readonly buildMs: number;
}

/** Compiles rxnat into a temp directory; falls back to the sources under tsx when tsc emits nothing. */
export function buildRxnat(): RxnatBuild {
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'rxnat-bench-build-'));
  copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  // Everything package.json's `files` ships besides dist/, so that the footprint section's
  // tarball is the one `npm pack` makes (src/ is shipped: the maps point at it).
  for (const file of ['README.md', 'LICENSE', 'CHANGELOG.md']) if (existsSync(join(ROOT, file))) copyFileSync(join(ROOT, file), join(dir, file));
  cpSync(join(ROOT, 'src'), join(dir, 'src'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const tsc = spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')],
    { cwd: ROOT, encoding: 'utf8' },
  );
  // The CLI as the package ships it: bundled over tsc's per-module output of src/cli.
  const bundle = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-cli.mjs'), '--outdir', join(dir, 'dist', 'cli')], { cwd: ROOT, encoding: 'utf8' });
  const bundled = bundle.status === 0 ? '; CLI bundled by scripts/build-cli.mjs' : `; bundling the CLI failed (${(bundle.stdout + bundle.stderr).trim().split('\n').slice(0, 2).join(' | ')})`;
  const buildMs = performance.now() - started;
  const index = join(dir, 'dist', 'index.js');
  const cli = join(dir, 'dist', 'cli', 'main.cjs');
  if (existsSync(index) && existsSync(join(dir, 'dist', 'testing', 'index.js'))) {
    const warnings = tsc.status === 0 ? '' : `; tsc exited ${tsc.status} (type errors in the tree, JavaScript emitted anyway): ${(tsc.stdout + tsc.stderr).trim().split('\n').slice(0, 3).join(' | ')}`;
    return {
      source: 'compiled',
      packageDir: dir,
      index: pathToFileURL(index).href,
      testing: pathToFileURL(join(dir, 'dist', 'testing', 'index.js')).href,
      cli: existsSync(cli) ? [process.execPath, cli] : [process.execPath, '--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')],
      note: `compiled by tsc -p tsconfig.build.json (into a private temp outDir)${bundled}${existsSync(cli) ? '' : '; no CLI in the build, measured `node --import tsx src/cli/main.ts`'}${warnings}`,
      buildMs,
    };
  }
  rmSync(dir, { recursive: true, force: true });
  return {
    source: 'tsx',
    packageDir: ROOT,
    index: pathToFileURL(join(ROOT, 'src', 'index.ts')).href,
    testing: pathToFileURL(join(ROOT, 'src', 'testing', 'index.ts')).href,
    cli: [process.execPath, '--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')],
    note: `tsc emitted nothing (${(tsc.stdout + tsc.stderr).trim().split('\n').slice(0, 3).join(' | ')}): measured the sources under tsx, which inflates memory and CPU`,
    buildMs,
  };
}

/** Removes a build made by {@link buildRxnat} (never the repository). */
export function removeBuild(build: RxnatBuild): void {
  if (build.source === 'compiled' && build.packageDir.startsWith(tmpdir())) rmSync(build.packageDir, { recursive: true, force: true });
}

/** The environment variable through which child processes learn where rxnat is. */
export const RXNAT_MODULE_ENV = 'RXNAT_BENCH_MODULE';
export const RXNAT_TESTING_ENV = 'RXNAT_BENCH_TESTING';

export type Rxnat = typeof RxnatSources;
export type RxnatTesting = typeof RxnatTestingSources;

/** Loads rxnat as the parent chose (env), else the sources. */
export async function loadRxnat(): Promise<Rxnat> {
  const specifier = process.env[RXNAT_MODULE_ENV] ?? pathToFileURL(join(ROOT, 'src', 'index.ts')).href;
  return (await import(specifier)) as Rxnat;
}

/** Loads rxnat/testing as the parent chose (env), else the sources. */
export async function loadRxnatTesting(): Promise<RxnatTesting> {
  const specifier = process.env[RXNAT_TESTING_ENV] ?? pathToFileURL(join(ROOT, 'src', 'testing', 'index.ts')).href;
  return (await import(specifier)) as RxnatTesting;
}
