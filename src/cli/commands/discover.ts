/**
 * `rxnat discover` and `rxnat ip`.
 *
 * @packageDocumentation
 */
import { firstValueFrom } from 'rxjs';
import { classifyIpv4 } from '../../core/address.js';
import type { CommonArgs } from '../args.js';
import { cliLog, discoverOnce, writeJson, type CliIo } from './common.js';

/**
 * `rxnat discover`: finds the gateway and prints the winning backend, the gateway's address,
 * the external IP and how long discovery took. Resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await discoverCommand({ ...args, nat: 'pmp:127.0.0.1' }, io);
 * ```
 */
export async function discoverCommand(args: CommonArgs, io: CliIo): Promise<number> {
  const { nat, elapsedMs } = await discoverOnce('discover', args, io);
  cliLog(io, `asking ${nat.name} for its external address`);
  const externalIp = await firstValueFrom(nat.externalIp());
  const doubleNat = classifyIpv4(externalIp) !== 'public';
  if (args.json) {
    writeJson(io, { backend: nat.kind, name: nat.name, gateway: nat.gateway, externalIp, doubleNat, elapsedMs });
    return 0;
  }
  const rows: [string, string][] = [
    ['backend', `${nat.kind} (${nat.name})`],
    ['gateway', nat.gateway ?? '(none: extip)'],
    ['external IP', `${externalIp}${doubleNat ? '  (not public: double NAT, mapped ports are not reachable from the internet)' : ''}`],
    ['found in', `${elapsedMs} ms`],
  ];
  io.stdout.write(rows.map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n') + '\n');
  return 0;
}

/**
 * `rxnat ip`: prints the gateway's external IP. Resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await ipCommand(args, io);
 * ```
 */
export async function ipCommand(args: CommonArgs, io: CliIo): Promise<number> {
  const { nat } = await discoverOnce('ip', args, io);
  const externalIp = await firstValueFrom(nat.externalIp());
  if (args.json) {
    writeJson(io, { externalIp, backend: nat.kind, gateway: nat.gateway, doubleNat: classifyIpv4(externalIp) !== 'public' });
  } else {
    io.stdout.write(`${externalIp}\n`);
  }
  return 0;
}
