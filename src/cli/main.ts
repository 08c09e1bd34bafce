#!/usr/bin/env node
/**
 * The `rxnat` command-line tool: `discover`, `ip`, `status`, `map`, `unmap`, `list`, `demo`.
 * Exit codes: 0 success, 1 runtime failure, 2 usage error (also bare `rxnat`; 130: second
 * Ctrl-C during `map`).
 *
 * @packageDocumentation
 */
import { debugLogger, type Logger } from '../core/logger.js';
import { helpText, parseCliArgs, type ParsedArgs } from './args.js';
import type { CliIo } from './commands/common.js';
import type { SignalSource } from './commands/map.js';
import { reportFailure } from './format.js';

// Commands are imported when run (run.ts): help and usage errors answer without loading rxjs
// and the protocol stacks. Only args.ts (with the option tables), format.ts and errors.ts load
// before a command runs; test/cli/startup.test.ts checks that nothing else does.

/**
 * Runs one `rxnat` command line and resolves with its exit code; never rejects (failures are
 * reported on stderr as one line saying what to do).
 *
 * @example
 * ```ts
 * const code = await main(['ip', '--nat', 'pmp:127.0.0.1', '--pmp-port', '15351'], { stdout: process.stdout, stderr: process.stderr, logger: debugLogger }, signals);
 * ```
 */
async function main(argv: readonly string[], io: CliIo, signals: SignalSource): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseCliArgs(argv);
    io.logger.debug('rxnat:cli', `command ${args.command}`, { argv });
    return await run(args, io, signals);
  } catch (error) {
    return reportFailure(io, error);
  }
}

async function run(args: ParsedArgs, io: CliIo, signals: SignalSource): Promise<number> {
  switch (args.command) {
    case 'help':
      io.stdout.write(helpText(args.topic));
      return 0;
    case 'usage':
      io.stderr.write(`${helpText(undefined)}\nrxnat: give a command (see rxnat --help)\n`);
      return 2;
    case 'version':
      io.stdout.write(`${version()}\n`);
      return 0;
    default: {
      // `map`: the first request leaves now, and the gateway's answer is on its way while the
      // command loads (early-search.ts).
      const earlySearch = args.command === 'map' ? await (await import('./early-search.js')).startEarlySearch(args) : undefined;
      if (earlySearch !== undefined) io.logger.debug('rxnat:cli', 'first request sent early', { to: earlySearch.datagrams.map((d) => `${d.to.address}:${d.to.port}`) });
      // The packaged CLI resolves './run.js' to bundle-run.ts: the command's own bundle.
      return (await import('./run.js')).runCommand(args, earlySearch !== undefined ? { ...io, earlySearch } : io, signals);
    }
  }
}

/** The process's streams and {@link debugLogger} (`DEBUG=rxnat:*`). */
function processIo(logger: Logger = debugLogger): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, logger };
}

/** The process's signals; a second one exits at once. */
function processSignals(): SignalSource {
  return {
    on: (signal, listener) => process.on(signal, listener),
    off: (signal, listener) => process.off(signal, listener),
    exitNow: (code) => process.exit(code),
  };
}

/** The package's version, read from package.json (two levels up from src/cli and dist/cli). */
function version(): string {
  try {
    // node:fs through getBuiltinModule: an ES import of it costs every command a few ms.
    // (import.meta.dirname is __dirname in the CommonJS bundle: scripts/build-cli.mjs.)
    const pkg = JSON.parse(process.getBuiltinModule('node:fs').readFileSync(`${import.meta.dirname}/../../package.json`, 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Exits once stdout and stderr have flushed (pipes may still hold output). */
function exit(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

// A reader that went away (`rxnat map --json | head -1`) must not crash `map` before it deletes
// its mapping: the broken pipe is taken as a SIGTERM (a graceful stop), once.
let stdoutBroken = false;
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE' || stdoutBroken) return;
  stdoutBroken = true;
  process.kill(process.pid, 'SIGTERM');
});

main(process.argv.slice(2), processIo(), processSignals()).then(exit, (error: unknown) => {
  process.stderr.write(`rxnat: internal error: ${error instanceof Error ? error.stack : String(error)}\n`);
  exit(1);
});
