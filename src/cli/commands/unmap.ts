/**
 * `rxnat unmap`.
 *
 * @packageDocumentation
 */
import { firstValueFrom, lastValueFrom } from 'rxjs';
import type { MappingGrant, MappingProtocol } from '../../core/nat.js';
import { GatewayError } from '../../errors.js';
import type { UpnpNat } from '../../protocols/upnp/client.js';
import type { CommonArgs } from '../args.js';
import { cliLog, discoverOnce, writeJson, type CliIo } from './common.js';

/**
 * The arguments of `rxnat unmap`.
 *
 * @example
 * ```ts
 * const args = parseCliArgs(['unmap', 'tcp', '8080', '--internal-port', '80']);
 * if (args.command === 'unmap') await unmapCommand(args, io);
 * ```
 */
export interface UnmapArgs extends CommonArgs {
  readonly protocol: MappingProtocol;
  readonly externalPort: number;
  /** NAT-PMP/PCP key mappings on the internal port; default: the external port. */
  readonly internalPort: number | undefined;
}

/**
 * `rxnat unmap`: deletes a mapping by external port. UPnP: DeletePortMapping (checked first
 * with GetSpecificPortMappingEntry, so a missing mapping is reported). NAT-PMP: a lifetime-0
 * request for the internal port (`--internal-port`, default the external port), which a gateway
 * acknowledges whether or not there was a mapping. PCP: the same, but the gateway requires the
 * creating process's nonce, so another process's PCP mapping cannot be deleted (reported as
 * NOT_AUTHORIZED with an explanation). Resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await unmapCommand({ ...args, protocol: 'tcp', externalPort: 8080, internalPort: undefined }, io);
 * ```
 */
export async function unmapCommand(args: UnmapArgs, io: CliIo): Promise<number> {
  const { nat } = await discoverOnce('unmap', args, io);
  const key = `${args.protocol}/${args.externalPort}`;
  if (nat.kind === 'extip' || nat.kind === 'stun') {
    io.stderr.write(`rxnat: ${nat.kind} has no gateway: nothing to delete (ports are forwarded by hand)\n`);
    return 1;
  }
  if (nat.kind === 'upnp') {
    const entry = await firstValueFrom((nat as UpnpNat).specificMapping(args.protocol, args.externalPort));
    if (entry === null) {
      io.stderr.write(`rxnat: ${nat.name} has no ${key} mapping: nothing to delete (rxnat list --nat ${args.nat} shows the table)\n`);
      return 1;
    }
    cliLog(io, `deleting ${key} on ${nat.name}`, { internalClient: entry.internalClient, internalPort: entry.internalPort });
  }
  const internalPort = args.internalPort ?? args.externalPort;
  const grant: MappingGrant = { protocol: args.protocol, internalPort, externalPort: args.externalPort, lifetimeSeconds: 0 };
  try {
    await lastValueFrom(nat.deleteMapping(grant), { defaultValue: undefined });
  } catch (error) {
    if (nat.kind === 'pcp' && error instanceof GatewayError && error.resultCode === 2) {
      io.stderr.write(
        `rxnat: ${nat.name} refused the delete (NOT_AUTHORIZED): PCP lets only the process that created a mapping delete it (it holds the mapping's nonce). Stop that process (rxnat map deletes on exit) or let the lease run out.\n`,
      );
      return 1;
    }
    throw error;
  }
  const caveat =
    nat.kind === 'upnp'
      ? undefined
      : `${nat.kind === 'pmp' ? 'NAT-PMP' : 'PCP'} deletes by internal port ${internalPort} and confirms even when there was no such mapping`;
  if (args.json) {
    writeJson(io, { deleted: true, protocol: args.protocol, externalPort: args.externalPort, internalPort: nat.kind === 'upnp' ? null : internalPort, backend: nat.kind, gateway: nat.gateway, ...(caveat ? { note: caveat } : {}) });
  } else {
    io.stdout.write(`deleted ${key} on ${nat.name}${caveat ? ` (${caveat})` : ''}\n`);
  }
  return 0;
}
