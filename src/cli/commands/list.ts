/**
 * `rxnat list`.
 *
 * @packageDocumentation
 */
import { firstValueFrom } from 'rxjs';
import type { PortMappingEntry } from '../../core/nat.js';
import type { CommonArgs } from '../args.js';
import { formatTable } from '../format.js';
import { cliLog, discoverOnce, writeJson, type CliIo } from './common.js';

/** What NAT-PMP and PCP can list: nothing but this process's own mappings. */
const PROCESS_ONLY_NOTE =
  'NAT-PMP and PCP cannot list a gateway\'s table: this shows only the mappings this process holds (none for a fresh rxnat). Use --nat upnp to list the router\'s table.';

/**
 * `rxnat list`: the gateway's mapping table (UPnP), or the mappings this process holds
 * (NAT-PMP/PCP: usually none, and said so). Resolves with the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await listCommand({ ...args, nat: 'upnp:http://127.0.0.1:5000/rootDesc.xml' }, io);
 * ```
 */
export async function listCommand(args: CommonArgs, io: CliIo): Promise<number> {
  const { nat } = await discoverOnce('list', args, io);
  const complete = nat.kind === 'upnp';
  let mappings: readonly PortMappingEntry[] = [];
  if (nat.listMappings) {
    cliLog(io, `listing the mappings of ${nat.name}`);
    mappings = await firstValueFrom(nat.listMappings(), { defaultValue: [] });
  }
  const note = complete ? null : nat.kind === 'extip' ? 'extip: there is no gateway to ask; ports are forwarded by hand.' : PROCESS_ONLY_NOTE;
  if (args.json) {
    writeJson(io, { backend: nat.kind, gateway: nat.gateway, complete, note, mappings });
    return 0;
  }
  if (note) io.stderr.write(`rxnat: ${note}\n`);
  io.stdout.write(formatTable(mappings));
  return 0;
}
