/**
 * Runs one parsed `rxnat` command (main.ts answers help, usage and `--version` itself) and
 * describes its failure. Each command's module is imported when run.
 *
 * The packaged CLI (scripts/build-cli.mjs) builds this module once per command group, each
 * bundle holding only that group's command modules; main.ts then loads the bundle its command
 * needs (bundle-run.ts). A failure is described here, inside the bundle that raised it, so that
 * `describeFailure`'s `instanceof` checks see the error classes of the same bundle.
 *
 * @packageDocumentation
 */
import type { ParsedArgs } from './args.js';
import type { CliIo } from './commands/common.js';
import type { SignalSource } from './commands/map.js';
import { reportFailure } from './format.js';

/**
 * A parsed command line that runs a command (not help, usage or `--version`).
 *
 * @example
 * ```ts
 * const args = parseCliArgs(['ip', '--nat', 'pmp']);
 * if (args.command !== 'help' && args.command !== 'usage' && args.command !== 'version') await runCommand(args, io, signals);
 * ```
 */
export type CommandArgs = Exclude<ParsedArgs, { readonly command: 'help' | 'usage' | 'version' }>;

/**
 * Runs the command `args` names and resolves with its exit code; never rejects (a failure is
 * one line on stderr saying what to do, exit code 1, or 2 for a usage error).
 *
 * @example
 * ```ts
 * const code = await runCommand(parsedIpArgs, { stdout: process.stdout, stderr: process.stderr, logger: debugLogger }, signals);
 * ```
 */
export async function runCommand(args: CommandArgs, io: CliIo, signals: SignalSource): Promise<number> {
  try {
    return await dispatch(args, io, signals);
  } catch (error) {
    return reportFailure(io, error);
  }
}

// Each import names its module literally: scripts/build-cli.mjs sorts them into bundles.
async function dispatch(args: CommandArgs, io: CliIo, signals: SignalSource): Promise<number> {
  switch (args.command) {
    case 'discover':
      return (await import('./commands/discover.js')).discoverCommand(args, io);
    case 'ip':
      return (await import('./commands/discover.js')).ipCommand(args, io);
    case 'status':
      return (await import('./commands/status.js')).statusCommand(args, io);
    case 'list':
      return (await import('./commands/list.js')).listCommand(args, io);
    case 'map':
      if (args.leave) return (await import('./commands/leave.js')).leaveCommand(args, io);
      return (await import('./commands/map.js')).mapCommand(args, io, signals);
    case 'unmap':
      return (await import('./commands/unmap.js')).unmapCommand(args, io);
    case 'demo':
      return (await import('./demo.js')).runDemo(io);
  }
}
