/**
 * What './run.js' is in the packaged CLI (scripts/build-cli.mjs swaps this module in when it
 * bundles main.ts): {@link runCommand} loads the CommonJS bundle that holds the command, next
 * to main.cjs, through the V8 code cache of code-cache.ts, and runs it there. Never run from the
 * sources (`RXNAT_CLI_BUILD` exists only in the bundle).
 *
 * @packageDocumentation
 */
import { codeCacheDir, loadBundle } from './code-cache.js';
import type { CommandArgs, runCommand as RunCommand } from './run.js';
import type { CliIo } from './commands/common.js';
import type { SignalSource } from './commands/map.js';

/** Filled in by scripts/build-cli.mjs: rxnat's version and each bundle's content hash. */
declare const RXNAT_CLI_BUILD: { readonly version: string; readonly bundles: Readonly<Record<string, string>> };

/**
 * The bundle (`<name>.cjs`) of each command: scripts/build-cli.mjs makes one per name, holding
 * the command modules run.ts imports for it (`map` holds `map --leave` too).
 */
const BUNDLE_OF: Readonly<Record<CommandArgs['command'], string>> = {
  discover: 'discover',
  ip: 'discover',
  status: 'status',
  list: 'list',
  map: 'map',
  unmap: 'unmap',
  demo: 'demo',
};

/**
 * run.ts's `runCommand`, from the bundle of `args.command`.
 *
 * @example
 * ```ts
 * const code = await runCommand(args, io, signals);
 * ```
 */
export async function runCommand(args: CommandArgs, io: CliIo, signals: SignalSource): Promise<number> {
  const name = BUNDLE_OF[args.command];
  const hash = RXNAT_CLI_BUILD.bundles[name] ?? 'unknown';
  const cache = { dir: codeCacheDir(process.env), key: `${RXNAT_CLI_BUILD.version} ${hash}`, logger: io.logger };
  const bundle = loadBundle(`${import.meta.dirname}/${name}.cjs`, cache) as { readonly runCommand: typeof RunCommand };
  return bundle.runCommand(args, io, signals);
}
