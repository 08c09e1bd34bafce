/**
 * `rxnat list`.
 *
 * @packageDocumentation
 */
import { firstValueFrom, take } from 'rxjs';
import type { Nat, PortMappingEntry } from '../../core/nat.js';
import { upnp } from '../../protocols/upnp/client.js';
import type { UpnpPinholeNat } from '../../protocols/upnp/firewall-client.js';
import type { FirewallStatus } from '../../protocols/upnp/firewall-soap.js';
import type { CommonArgs } from '../args.js';
import { formatTable, progress } from '../format.js';
import { cliLog, discoverOnce, natSourceOptions, writeJson, type CliIo } from './common.js';

const PROTOCOL_NAMES: Record<string, string> = { pcp: 'PCP', pmp: 'NAT-PMP' };

/** The specs that race the backends: their winner is not the user's choice. */
const RACE_SPECS = new Set(['any', 'auto', 'on']);

/**
 * `rxnat list`: the router's mapping table, read through UPnP, and where it came from (on
 * stderr; `source` in JSON). The winner of discovery is asked when it is UPnP. When PCP or
 * NAT-PMP won a `--nat any` race (neither can list a table: they know only this process's
 * mappings), the table is read through UPnP instead; when no UPnP gateway answers, or with
 * `--nat pmp`/`pcp`, it shows the mappings this process holds (none for a fresh rxnat) and says
 * so. Resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await listCommand({ ...args, nat: 'upnp:http://127.0.0.1:5000/rootDesc.xml' }, io);
 * ```
 */
export async function listCommand(args: CommonArgs & { readonly pinholes?: boolean }, io: CliIo): Promise<number> {
  if (args.pinholes === true) return listPinholes(args, io);
  const { nat: winner } = await discoverOnce('list', args, io);
  let from: Nat = winner;
  let note: string | null = null;
  if (winner.kind === 'extip' || winner.kind === 'stun') {
    note = `${winner.kind}: there is no gateway to ask; ports are forwarded by hand.`;
  } else if (winner.kind !== 'upnp') {
    const protocol = PROTOCOL_NAMES[winner.kind] ?? winner.kind;
    if (RACE_SPECS.has(args.nat.trim().toLowerCase())) {
      cliLog(io, `${winner.name} cannot list a table: asking UPnP`);
      const done = progress(io.stderr, 'looking for a UPnP gateway to read the table from');
      try {
        from = await firstValueFrom(upnp(natSourceOptions(args, io.logger).upnp).pipe(take(1)));
        note = `the router's table, read through UPnP at ${from.name}: ${winner.name} won discovery, but ${protocol} cannot list a gateway's table.`;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        cliLog(io, 'no UPnP gateway to list', { error });
        note = `${protocol} cannot list a gateway's table and no UPnP gateway answered (${reason}): this shows only the mappings this process holds (none for a fresh rxnat).`;
      } finally {
        done();
      }
    } else {
      note = `${protocol} cannot list a gateway's table: this shows only the mappings this process holds (none for a fresh rxnat). Use --nat upnp (or --nat any) to list the router's table.`;
    }
  }
  const source = from.kind === 'upnp' ? 'router' : 'process';
  if (note === null) note = `the router's table, read through UPnP at ${from.name}.`;
  let mappings: readonly PortMappingEntry[] = [];
  if (from.listMappings) {
    cliLog(io, `listing the mappings of ${from.name}`);
    mappings = await firstValueFrom(from.listMappings(), { defaultValue: [] });
  }
  if (args.json) {
    writeJson(io, {
      source,
      backend: from.kind,
      gateway: from.gateway,
      discovered: { backend: winner.kind, name: winner.name, gateway: winner.gateway },
      complete: source === 'router',
      note,
      mappings,
    });
    return 0;
  }
  io.stderr.write(`rxnat: ${note}\n`);
  io.stdout.write(formatTable(mappings));
  return 0;
}

/** What `list --pinholes` says about the firewall service's missing list action. */
export const PINHOLE_LIST_NOTE =
  "WANIPv6FirewallControl has no action that lists pinholes, so the router's pinholes cannot be shown through it: this shows the ones this process holds (none for a fresh rxnat).";

/**
 * `rxnat list --pinholes`: the IPv6 firewall service found by `--nat` (with `--ipv6`), its
 * GetFirewallStatus, and the pinholes this process holds: the service cannot list the router's
 * (there is no such action), so that is all anyone can show through it. Resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await listCommand({ ...args, pinholes: true, ipv6: true }, io);
 * ```
 */
async function listPinholes(args: CommonArgs, io: CliIo): Promise<number> {
  const { nat } = await discoverOnce('list', { ...args, ipv6: true, nat: pinholeSpec(args.nat) }, io);
  let firewallStatus: FirewallStatus | null = null;
  let statusError: string | null = null;
  if (nat.kind === 'upnp-pinhole') {
    const pinholeNat = nat as UpnpPinholeNat;
    try {
      firewallStatus = await firstValueFrom(pinholeNat.getFirewallStatus());
    } catch (error) {
      statusError = error instanceof Error ? error.message : String(error);
      firewallStatus = pinholeNat.firewallStatus;
    }
  }
  const note = nat.kind === 'upnp-pinhole' ? PINHOLE_LIST_NOTE : `${nat.name} is not a UPnP firewall service: only UPnP has pinholes (PCP over IPv6 openings are listed by no request either).`;
  if (args.json) {
    writeJson(io, { source: 'process', backend: nat.kind, gateway: nat.gateway, name: nat.name, firewallStatus, ...(statusError !== null ? { statusError } : {}), complete: false, note, pinholes: [] });
    return 0;
  }
  io.stderr.write(`rxnat: ${note}\n`);
  const status =
    firewallStatus === null
      ? `unknown${statusError !== null ? ` (${statusError})` : ''}`
      : `${firewallStatus.firewallEnabled ? 'on' : 'off'}, inbound pinholes ${firewallStatus.inboundPinholeAllowed ? 'allowed' : 'not allowed'}`;
  io.stdout.write(`firewall ${nat.name}: ${status}\npinholes held by this process: none\n`);
  return 0;
}

/** `--nat` for `list --pinholes`: a race spec asks the UPnP firewall service alone. */
function pinholeSpec(nat: string): string {
  return RACE_SPECS.has(nat.trim().toLowerCase()) || nat.trim().toLowerCase() === 'any6' ? 'pinhole' : nat;
}
