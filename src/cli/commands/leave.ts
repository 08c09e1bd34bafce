/**
 * `rxnat map --leave`: adds the mappings and exits without deleting them (like `upnpc -a`).
 *
 * A mapping stream (`mapPort`) deletes its mapping when it ends, which is what `rxnat map`
 * wants and `--leave` does not; so `--leave` does not use one. It discovers the gateway once
 * and calls the backend's own `addMapping` for each mapping, which sends the add, emits the
 * grant and completes, and holds nothing that would delete it when the process exits.
 *
 * @packageDocumentation
 */
import { catchError, defer, firstValueFrom, from, lastValueFrom, map, mergeMap, of, take, throwIfEmpty, toArray, type Observable } from 'rxjs';
import { isDoubleNat } from '../../core/address.js';
import type { MappingGrant, Nat } from '../../core/nat.js';
import { resolveMappingRequest, type ResolvedMappingRequest } from '../../core/validate.js';
import { LEAVE_LIFETIME_SECONDS } from '../options.js';
import { describeFailure, errorJson, leaseEnd, unmapCommandFor } from '../format.js';
import { cliLog, discoverOnce, writeJson, type CliIo } from './common.js';
import type { MapArgs } from './map.js';

/** One add: its grant and when it was answered, or why it failed. */
type Outcome =
  | { readonly request: ResolvedMappingRequest; readonly grant: MappingGrant; readonly answeredAtMs: number }
  | { readonly request: ResolvedMappingRequest; readonly error: Error };

/**
 * `rxnat map --leave`: discovers the gateway, adds every mapping through the backend (at most
 * as many at once as the gateway takes), and for each prints the lease it leaves (external
 * address and port, lifetime, when it ends as an ISO time) and how to remove it: the `rxnat
 * unmap` command with the flags that reach the gateway, or, for PCP, that no other process can
 * remove it and when it expires. Nothing is deleted on exit. Resolves 0 when every add was
 * granted, else 1 (each failure on one line of stderr; the mappings granted stay, as printed).
 * The lease asked for is `--lifetime`, else {@link LEAVE_LIFETIME_SECONDS}.
 *
 * @example
 * ```ts
 * process.exitCode = await leaveCommand({ ...args, leave: true }, io);
 * ```
 */
export async function leaveCommand(args: MapArgs, io: CliIo): Promise<number> {
  const { nat } = await discoverOnce('map', args, io);
  if (nat.kind === 'extip' || nat.kind === 'stun') {
    io.stderr.write(`rxnat: ${nat.name} has no gateway: nothing to add (ports are forwarded by hand)\n`);
    return 1;
  }
  const requests = args.mappings.map((spec) =>
    resolveMappingRequest({
      protocol: spec.protocol,
      internalPort: spec.internalPort,
      ...(spec.externalPort !== undefined ? { externalPort: spec.externalPort } : {}),
      lifetimeSeconds: args.lifetimeSeconds ?? LEAVE_LIFETIME_SECONDS,
      ...(args.description !== undefined ? { description: args.description } : {}),
      ...(args.ipv6 === true ? { family: 'ipv6' as const } : {}),
      ...(args.internalAddress !== undefined ? { internalAddress: args.internalAddress } : {}),
    }),
  );
  const concurrency = Math.max(1, nat.maxConcurrentRequests ?? 1);
  const outcomes = await lastValueFrom(from(requests).pipe(mergeMap((request) => add(nat, request, io), concurrency), toArray()));
  // Back in the order given (the adds may answer in any order).
  outcomes.sort((a, b) => requests.indexOf(a.request) - requests.indexOf(b.request));

  // PCP's answer carries the external address; the others are asked once.
  let externalIp: string | null = null;
  let externalIpError: Error | null = null;
  const granted = outcomes.filter((o): o is Extract<Outcome, { grant: MappingGrant }> => 'grant' in o);
  if (granted.some((o) => o.grant.externalIp === undefined)) {
    try {
      externalIp = await firstValueFrom(nat.externalIp());
    } catch (error) {
      externalIpError = error instanceof Error ? error : new Error(String(error));
      cliLog(io, 'no external address', { error: externalIpError });
    }
  }

  let code = 0;
  for (const outcome of outcomes) {
    const { request } = outcome;
    const label = `${request.protocol} ${request.internalPort}`;
    if (!('grant' in outcome)) {
      code = 1;
      if (args.json) {
        writeJson(io, { event: 'failed', protocol: request.protocol, internalPort: request.internalPort, externalPort: request.externalPort, backend: nat.name, gateway: nat.gateway, error: errorJson(outcome.error) });
      }
      io.stderr.write(`rxnat: ${label} was not mapped: ${describeFailure(outcome.error).message}\n`);
      continue;
    }
    const { grant, answeredAtMs } = outcome;
    const ip = grant.externalIp ?? externalIp;
    const endsAtMs = grant.lifetimeSeconds === 0 ? null : answeredAtMs + grant.lifetimeSeconds * 1000;
    const endsAt = endsAtMs === null ? null : leaseEnd(endsAtMs);
    const unmap = unmapCommandFor({ protocol: grant.protocol, internalPort: grant.internalPort, externalPort: grant.externalPort, gateway: nat.name }, args);
    const note =
      nat.kind === 'pcp'
        ? `PCP lets only the process that made a mapping delete it: this one cannot be removed by another process and will expire at ${endsAt ?? 'the end of its lease'} (for a mapping you can remove, use --nat pmp or --nat upnp)`
        : null;
    if (args.json) {
      writeJson(io, {
        event: 'left',
        protocol: grant.protocol,
        internalPort: grant.internalPort,
        externalPort: grant.externalPort,
        externalIp: ip,
        lifetimeSeconds: grant.lifetimeSeconds,
        leaseEndsAtMs: endsAtMs,
        leaseEndsAt: endsAt,
        backend: nat.name,
        gateway: nat.gateway,
        doubleNat: ip !== null && isDoubleNat(ip),
        unmap,
        note,
        error: null,
      });
      continue;
    }
    const lease = endsAtMs === null ? 'permanent lease (it stays until removed)' : `lease ${grant.lifetimeSeconds} s, ends ${endsAt}`;
    const moved = grant.externalPort !== request.externalPort ? ` (asked for ${request.externalPort})` : '';
    const double = ip !== null && isDoubleNat(ip) ? ' [double NAT: the external IP is not public, the port is not reachable from the internet]' : '';
    io.stdout.write(`${'left'.padEnd(10)} ${grant.protocol} ${ip ?? '?'}:${grant.externalPort}${moved} -> local :${grant.internalPort}, ${lease}, via ${nat.name}${double}\n`);
    io.stdout.write(`${' '.repeat(10)} ${unmap !== null ? `remove it with: ${unmap}` : note}\n`);
  }
  if (externalIpError !== null && granted.length > 0) {
    io.stderr.write(`rxnat: the mappings were made, but ${nat.name} did not tell its external address: ${describeFailure(externalIpError).message}\n`);
  }
  return code;
}

/** One add through the backend, its failure caught (the others go on). */
function add(nat: Nat, request: ResolvedMappingRequest, io: CliIo): Observable<Outcome> {
  return defer(() => {
    cliLog(io, `adding ${request.protocol}/${request.internalPort} on ${nat.name} (left on exit)`, { ...request });
    return nat.addMapping(request).pipe(
      take(1),
      throwIfEmpty(() => new Error(`${nat.name} answered the add of ${request.protocol} ${request.internalPort} without a grant`)),
      map((grant): Outcome => ({ request, grant, answeredAtMs: Date.now() })),
      catchError((error: unknown) => of<Outcome>({ request, error: error instanceof Error ? error : new Error(String(error)) })),
    );
  });
}
