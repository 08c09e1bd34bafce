/**
 * What the `rxnat` command-line tool prints: mapping states (for people and as JSON lines),
 * mapping tables, error messages with what to do, and progress on a terminal.
 *
 * @packageDocumentation
 */
import type { MappingState } from '../core/map-port.js';
import type { PortMappingEntry } from '../core/nat.js';
import {
  DefaultGatewayError,
  GatewayError,
  GatewayLostError,
  GatewayTimeoutError,
  GatewayUnreachableError,
  InvalidMappingRequestError,
  NatSpecError,
  NoGatewayError,
  ProtocolError,
  UnconfirmedDeleteError,
  type UnconfirmedDelete,
} from '../errors.js';
import type { Logger } from '../core/logger.js';
import { UsageError, type NatOptions } from './args.js';

/**
 * A stream the CLI writes to: `process.stdout`/`process.stderr`, or a test double.
 *
 * @example
 * ```ts
 * const out: Output = process.stdout;
 * out.write('hello\n');
 * ```
 */
export interface Output {
  write(text: string): unknown;
  /** True on a terminal. */
  readonly isTTY?: boolean;
  /** Terminal width, on a terminal. */
  readonly columns?: number;
}

/**
 * What happened between two mapping states, as the CLI names it.
 *
 * @example
 * ```ts
 * const event: MappingEvent = 'renewed';
 * ```
 */
export type MappingEvent = 'mapping' | 'mapped' | 'renewed' | 'external-ip-changed' | 'port-changed' | 'degraded' | 'unmapped';

/**
 * Names the change from `previous` to `state`: a renewal, a new external IP or port, or the status.
 *
 * @example
 * ```ts
 * mappingEvent({ ...mapped, renewals: 1 }, mapped); // 'renewed'
 * ```
 */
export function mappingEvent(state: MappingState, previous: MappingState | undefined): MappingEvent {
  if (state.status === 'mapped' && previous !== undefined && (previous.status === 'mapped' || previous.status === 'degraded')) {
    if (previous.externalIp !== null && state.externalIp !== previous.externalIp) return 'external-ip-changed';
    if (previous.externalPort !== 0 && state.externalPort !== previous.externalPort) return 'port-changed';
    if (state.renewals > previous.renewals) return 'renewed';
  }
  return state.status;
}

/**
 * One mapping state as a JSON object (one line of `rxnat map --json`).
 *
 * @example
 * ```ts
 * console.log(JSON.stringify(stateJson(state, 'mapped', new Date())));
 * ```
 */
export function stateJson(state: MappingState, event: MappingEvent, time: Date): Record<string, unknown> {
  return {
    time: time.toISOString(),
    event,
    status: state.status,
    protocol: state.protocol,
    internalPort: state.internalPort,
    externalPort: state.externalPort,
    externalIp: state.externalIp,
    lifetimeSeconds: state.lifetimeSeconds,
    backend: state.backend,
    doubleNat: state.doubleNat,
    renewals: state.renewals,
    error: state.error ? errorJson(state.error) : null,
  };
}

/**
 * An error as JSON: name, code (`null` when it has none) and message; an
 * {@link UnconfirmedDeleteError} also lists its `deletes`, each with its fields, the lease end
 * both as `leaseEndsAtMs` (ms since the epoch, `null`: permanent) and as `leaseEndsAt` (ISO
 * time, `null`: permanent), and its own error.
 *
 * @example
 * ```ts
 * errorJson(new UnconfirmedDeleteError([entry])).deletes; // [{ protocol: 'tcp', externalPort: 8080, ... }]
 * ```
 */
export function errorJson(error: Error): Record<string, unknown> {
  const json: Record<string, unknown> = { name: error.name, code: (error as { code?: unknown }).code ?? null, message: error.message };
  if (error instanceof UnconfirmedDeleteError) {
    json.deletes = error.deletes.map((d) => ({
      protocol: d.protocol,
      internalPort: d.internalPort,
      externalPort: d.externalPort,
      gateway: d.gateway,
      leaseEndsAtMs: d.leaseEndsAtMs,
      leaseEndsAt: d.leaseEndsAtMs === null ? null : leaseEnd(d.leaseEndsAtMs),
      error: errorJson(d.error),
    }));
  }
  return json;
}

/**
 * A lease end as an ISO time to the second, rounded up (the router drops the mapping by then).
 *
 * @example
 * ```ts
 * leaseEnd(Date.UTC(2026, 11, 1, 20, 31, 4, 200)); // '2026-12-01T20:31:05Z'
 * ```
 */
export function leaseEnd(ms: number): string {
  return new Date(Math.ceil(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * One line per delete the gateway did not confirm (for stderr, without the `rxnat: ` prefix):
 * the mapping, when it ends by itself at the latest, and the `rxnat unmap` command that removes
 * it (the gateway is named as `options` found it; PCP gets none: only the process that made a
 * PCP mapping can delete it).
 *
 * @example
 * ```ts
 * unconfirmedDeleteLines(error, args);
 * // ['could not confirm the delete of tcp 8080 → 8080 on pmp(192.168.1.1): it may stay mapped until 2026-12-01T20:31:05Z; remove it sooner with: rxnat unmap tcp 8080 --nat pmp:192.168.1.1']
 * ```
 */
export function unconfirmedDeleteLines(error: UnconfirmedDeleteError, options: NatOptions): string[] {
  return error.deletes.map((d) => {
    const what = `could not confirm the delete of ${d.protocol} ${d.externalPort} → ${d.internalPort} on ${d.gateway}`;
    const until = d.leaseEndsAtMs === null ? 'permanently' : `until ${leaseEnd(d.leaseEndsAtMs)}`;
    const unmap = unmapCommandFor(d, options);
    const remedy =
      unmap === null
        ? d.gateway.startsWith('pcp(')
          ? ' (PCP lets only the process that made a mapping delete it)'
          : ''
        : `; remove it${d.leaseEndsAtMs === null ? '' : ' sooner'} with: ${unmap}`;
    return `${what}: it may stay mapped ${until}${remedy}`;
  });
}

/**
 * The `rxnat unmap` command line that deletes mapping `d` on its gateway (named as in
 * `pmp(192.168.1.1)`), with the flags that reach that gateway as `options` did, or `null` where
 * rxnat cannot (PCP: only the process that made the mapping can; extip: nothing to delete).
 *
 * @example
 * ```ts
 * unmapCommandFor({ protocol: 'udp', internalPort: 4001, externalPort: 14001, gateway: 'pmp(192.168.1.1)' }, args);
 * // 'rxnat unmap udp 14001 --internal-port 4001 --nat pmp:192.168.1.1'
 * ```
 */
export function unmapCommandFor(d: Pick<UnconfirmedDelete, 'protocol' | 'internalPort' | 'externalPort' | 'gateway'>, options: NatOptions): string | null {
  const named = /^(upnp|pmp|pcp|extip)\((.*)\)$/.exec(d.gateway);
  const kind = named?.[1];
  const host = named?.[2] ?? '';
  const given = options.nat.trim();
  const givenMechanism = given.split(':')[0]!.toLowerCase();
  const words = ['rxnat', 'unmap', d.protocol, String(d.externalPort)];
  if (kind === 'pmp') {
    if (d.internalPort !== d.externalPort) words.push('--internal-port', String(d.internalPort));
    words.push('--nat', ['pmp', 'natpmp', 'nat-pmp'].includes(givenMechanism) && given.includes(':') ? given : `pmp:${host}`);
    if (options.pmpPort !== undefined) words.push('--pmp-port', String(options.pmpPort));
  } else if (kind === 'upnp') {
    const spec = givenMechanism === 'upnp' ? given : 'upnp';
    words.push('--nat', spec);
    if (spec === 'upnp') for (const t of options.ssdpTargets) words.push('--ssdp-target', `${t.address}:${t.port}`);
  } else {
    return null;
  }
  if (options.localAddress !== undefined) words.push('--local-address', options.localAddress);
  return words.join(' ');
}

/**
 * One mapping state as a line for people, without a timestamp.
 *
 * @example
 * ```ts
 * stateLine(state, 'mapped'); // 'mapped     tcp 203.0.113.1:8080 -> local :8080, lease 60 s, via pmp(192.168.1.1)'
 * ```
 */
export function stateLine(state: MappingState, event: MappingEvent): string {
  const label = EVENT_LABELS[event].padEnd(10);
  const what = `${state.protocol} ${hostOf(state.externalIp)}:${state.externalPort || '?'} -> local :${state.internalPort}`;
  const via = state.backend ? `via ${state.backend}` : 'looking for a gateway';
  switch (state.status) {
    case 'mapping':
      return `${label} ${state.protocol} local :${state.internalPort}, ${via}`;
    case 'mapped': {
      const lease = state.lifetimeSeconds === 0 ? 'permanent lease' : `lease ${state.lifetimeSeconds} s`;
      const renewals = state.renewals > 0 ? `, renewed ${state.renewals}x` : '';
      const double = state.doubleNat ? ' [double NAT: the external IP is not public, the port is not reachable from the internet]' : '';
      return `${label} ${what}, ${lease}${renewals}, ${via}${double}`;
    }
    case 'degraded':
      return `${label} ${what}, renewal failing (${state.error?.message ?? 'unknown error'}); the port works until the lease ends`;
    case 'unmapped':
      return `${label} ${state.protocol} local :${state.internalPort}${state.backend ? `, ${via}` : ''}${state.error ? `: ${state.error.message}` : ''}`;
  }
}

/** Short names of events for people (JSON keeps the full names). */
const EVENT_LABELS: Record<MappingEvent, string> = {
  mapping: 'mapping',
  mapped: 'mapped',
  renewed: 'renewed',
  'external-ip-changed': 'new IP',
  'port-changed': 'new port',
  degraded: 'degraded',
  unmapped: 'unmapped',
};

/**
 * The line for the last state of a stopped mapping: what was deleted.
 *
 * @example
 * ```ts
 * deletedLine(lastMappedState); // 'unmapped   deleted tcp 203.0.113.1:8080 on pmp(192.168.1.1)'
 * ```
 */
export function deletedLine(lastMapped: MappingState): string {
  return `${'unmapped'.padEnd(10)} deleted ${lastMapped.protocol} ${hostOf(lastMapped.externalIp)}:${lastMapped.externalPort} on ${lastMapped.backend ?? 'the gateway'}`;
}

/**
 * The line for the last state of a stopped mapping whose delete the gateway did not confirm.
 *
 * @example
 * ```ts
 * unconfirmedDeleteLine(lastMappedState); // 'unmapped   delete not confirmed: tcp 203.0.113.1:8080 on pmp(192.168.1.1) may still be mapped'
 * ```
 */
export function unconfirmedDeleteLine(lastMapped: MappingState): string {
  return `${'unmapped'.padEnd(10)} delete not confirmed: ${lastMapped.protocol} ${hostOf(lastMapped.externalIp)}:${lastMapped.externalPort} on ${lastMapped.backend ?? 'the gateway'} may still be mapped`;
}

/**
 * `HH:MM:SS` of a time, local.
 *
 * @example
 * ```ts
 * clock(new Date()); // '14:03:07'
 * ```
 */
export function clock(time: Date): string {
  return time.toTimeString().slice(0, 8);
}

/**
 * A mapping table as aligned text, one row per entry (a header even when empty).
 *
 * @example
 * ```ts
 * process.stdout.write(formatTable(entries));
 * ```
 */
export function formatTable(entries: readonly PortMappingEntry[]): string {
  const rows = [
    ['PROTO', 'EXTERNAL', 'INTERNAL', 'LEASE', 'DESCRIPTION'],
    ...entries.map((e) => [
      e.protocol,
      String(e.externalPort),
      `${e.internalClient}:${e.internalPort}`,
      e.lifetimeSeconds === 0 ? 'permanent' : `${e.lifetimeSeconds} s`,
      `${e.description}${e.enabled ? '' : ' (disabled)'}`,
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/**
 * Reports a failure the CLI's way: logged under `rxnat:cli`, one line `rxnat: …` on stderr
 * ({@link describeFailure}); returns the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = reportFailure({ stderr: process.stderr, logger: debugLogger }, error);
 * ```
 */
export function reportFailure(io: { readonly stderr: { write(text: string): unknown }; readonly logger: Logger }, error: unknown): 1 | 2 {
  const { message, exitCode } = describeFailure(error);
  io.logger.debug('rxnat:cli', 'failed', { error });
  io.stderr.write(`rxnat: ${message}\n`);
  return exitCode;
}

/**
 * A failure as the CLI reports it: one line saying what went wrong and what to do, and the exit
 * code (2 for usage errors, 1 for everything else).
 *
 * @example
 * ```ts
 * const { message, exitCode } = describeFailure(error);
 * process.stderr.write(`rxnat: ${message}\n`);
 * process.exitCode = exitCode;
 * ```
 */
export function describeFailure(error: unknown): { readonly message: string; readonly exitCode: 1 | 2 } {
  if (error instanceof UsageError) {
    return { message: `${error.message} (see rxnat ${error.command ? `${error.command} ` : ''}--help)`, exitCode: 2 };
  }
  if (error instanceof NatSpecError) return { message: `${error.message} (see rxnat --help)`, exitCode: 2 };
  if (error instanceof InvalidMappingRequestError) return { message: `${error.message} (see rxnat map --help)`, exitCode: 2 };
  return { message: runtimeMessage(error), exitCode: 1 };
}

function runtimeMessage(error: unknown): string {
  const debug = 'DEBUG=rxnat:* shows every request';
  if (error instanceof GatewayLostError && error.cause !== undefined) return runtimeMessage(error.cause);
  if (error instanceof NoGatewayError) {
    return `${error.message}. Is UPnP or NAT-PMP/PCP enabled on the router? Try --nat pmp:<router IP> or --nat upnp:<description URL>, or a longer --timeout; ${debug}`;
  }
  if (error instanceof DefaultGatewayError) {
    return `${error.message}; for example --nat pmp:192.168.1.1 or --nat upnp:http://192.168.1.1:5000/rootDesc.xml`;
  }
  if (error instanceof GatewayUnreachableError) {
    return `${error.message}: ${protocolName(error.protocol)} is not served there. Check the address and port, or try another --nat (any, upnp, pmp, pcp)`;
  }
  if (error instanceof GatewayTimeoutError) {
    return `${error.message}. Check the address, that ${protocolName(error.protocol)} is enabled on the router, or raise --timeout; ${debug}`;
  }
  if (error instanceof GatewayError) return `${error.message}. ${refusalHint(error)}`;
  if (error instanceof ProtocolError) return `${error.message}. The gateway answered something rxnat cannot use; ${debug}`;
  if (error instanceof Error) return `${error.message}; ${debug}`;
  return String(error);
}

function protocolName(protocol: string): string {
  return protocol === 'pmp' ? 'NAT-PMP' : protocol.toUpperCase();
}

function refusalHint(error: GatewayError): string {
  const known: Record<string, Record<number, string>> = {
    upnp: {
      606: 'The router refused the action: internal ports below 1024, or a mapping for another host, are often denied',
      714: 'There is no such mapping',
      718: 'That external port is taken: ask another with --external-port',
      725: 'The router accepts only permanent leases: use --lifetime 0',
      501: 'The router cannot map right now (its external address may be private): check its WAN connection',
    },
    pmp: {
      2: 'The router does not allow this client to map ports: check its NAT-PMP access rules',
      3: 'The router cannot map (no external address, or its uplink is down)',
      4: 'The router has no resources left: delete unused mappings',
    },
    pcp: {
      2: 'PCP is off for this client on the router (try --nat pmp or --nat upnp), or the mapping belongs to another process (PCP lets only the one that created it, by its nonce, change or delete it)',
      8: 'The router cannot map (no external address, or its uplink is down)',
      11: 'The port or router has no resources left: try another --external-port',
    },
  };
  return known[error.protocol]?.[error.resultCode] ?? 'Check the router\'s UPnP/NAT-PMP/PCP settings';
}

/**
 * A spinner with elapsed time on stderr while something long runs, only on a terminal.
 * Returns the function that erases it.
 *
 * @example
 * ```ts
 * const done = progress(process.stderr, 'looking for a gateway');
 * // ... later
 * done();
 * ```
 */
export function progress(stream: Output, label: string): () => void {
  if (!stream.isTTY) return () => undefined;
  const frames = ['|', '/', '-', '\\'];
  const started = Date.now();
  let frame = 0;
  const draw = (): void => {
    stream.write(`\r\x1b[K${frames[frame++ % frames.length]} ${label}... ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };
  draw();
  const timer = setInterval(draw, 100);
  timer.unref();
  return () => {
    clearInterval(timer);
    stream.write('\r\x1b[K');
  };
}

/**
 * An address as the host part of `host:port`: an IPv6 address in brackets, `?` when unknown.
 *
 * @example
 * ```ts
 * hostOf('2001:db8::10'); // '[2001:db8::10]'
 * ```
 */
export function hostOf(ip: string | null | undefined): string {
  if (ip === null || ip === undefined) return '?';
  return ip.includes(':') ? `[${ip}]` : ip;
}
