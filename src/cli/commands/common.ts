/**
 * What the `rxnat` commands share: the output streams, the NAT source built from `--nat` and
 * the testing options, and a discovery with progress.
 *
 * @packageDocumentation
 */
import { firstValueFrom, of, take, type Observable } from 'rxjs';
import { extIp } from '../../core/ext-ip.js';
import type { Logger } from '../../core/logger.js';
import type { Nat } from '../../core/nat.js';
import type { DiscoverNatOptions } from '../../discover.js';
import { NatSpecError } from '../../errors.js';
import { parseNatSpec, type NatSpec } from '../../nat-spec.js';
import type { PcpOptions } from '../../protocols/pcp/client.js';
import type { PmpOptions } from '../../protocols/pmp/client.js';
import type { UpnpOptions } from '../../protocols/upnp/client.js';
import type { UpnpPinholeOptions } from '../../protocols/upnp/firewall-client.js';
import type { EarlyDatagrams } from '../../transport/early-datagrams.js';
import { nodeTransportAdopting } from '../../transport/transport.js';
import { UsageError, type CommandName, type NatOptions } from '../args.js';
import { progress, type Output } from '../format.js';

/**
 * Where a command writes, and what it logs to.
 *
 * @example
 * ```ts
 * const io: CliIo = { stdout: process.stdout, stderr: process.stderr, logger: debugLogger };
 * ```
 */
export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  /** The library's logger and the CLI's own `rxnat:cli` namespace. */
  readonly logger: Logger;
  /** `map`: the first request main.ts sent before the command loaded (early-search.ts). */
  readonly earlySearch?: EarlyDatagrams;
}

/**
 * Logs a CLI step under `rxnat:cli`.
 *
 * @example
 * ```ts
 * cliLog(io, 'discovering', { spec: 'any' });
 * ```
 */
export function cliLog(io: CliIo, message: string, data?: Record<string, unknown>): void {
  io.logger.debug('rxnat:cli', message, data);
}

/**
 * The backend options that `--timeout`, `--request-timeout`, the ports, SSDP targets and local
 * address stand for, as `parseNat` takes them.
 *
 * @example
 * ```ts
 * parseNat('pmp:127.0.0.1', natSourceOptions({ ...args, pmpPort: 15351 }, debugLogger));
 * ```
 */
export function natSourceOptions(options: NatOptions, logger: Logger): DiscoverNatOptions {
  const local = options.localAddress !== undefined ? { localAddress: options.localAddress } : {};
  const udp = (port: number | undefined): PmpOptions => ({
    ...local,
    ...(port !== undefined ? { port } : {}),
    ...(options.timeoutMs !== undefined ? { probeTimeoutMs: options.timeoutMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { timeoutMs: options.requestTimeoutMs } : {}),
    ...(options.announcements === false ? { announcements: false as const } : {}),
  });
  const upnp: UpnpOptions = {
    ...local,
    ...(options.ssdpTargets.length > 0 ? { ssdpTargets: options.ssdpTargets } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  };
  const pcp: PcpOptions = udp(options.pcpPort);
  const common: DiscoverNatOptions = {
    pmp: udp(options.pmpPort),
    pcp,
    upnp,
    logger,
    ...(options.gateway !== undefined ? { gateway: options.gateway } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  };
  return options.ipv6 === true ? ipv6SourceOptions(options, common) : common;
}

/**
 * `--ipv6`: discovery of IPv6 openings. A local address binds the sockets of its own family
 * only (PCP over IPv6 and the pinholes, or the IPv4 IGD search); the SSDP targets are split the
 * same way, and once any target is given, IPv6 SSDP goes to the IPv6 ones only (none: no IPv6
 * search), as the IPv4 search goes to its targets instead of multicast.
 */
function ipv6SourceOptions(options: NatOptions, common: DiscoverNatOptions): DiscoverNatOptions {
  const v6 = (address: string | undefined): boolean => address?.includes(':') === true;
  const local6 = v6(options.localAddress) ? { localAddress: options.localAddress! } : {};
  const { localAddress: _local, ...upnpRest } = common.upnp ?? {};
  const { localAddress: _pcpLocal, ...pcpRest } = common.pcp ?? {};
  const targets6 = options.ssdpTargets.filter((t) => v6(t.address));
  const targets4 = options.ssdpTargets.filter((t) => !v6(t.address));
  const pinhole: UpnpPinholeOptions = {
    ...local6,
    ...(options.controlHost !== undefined ? { controlHost: options.controlHost } : {}),
    ...(options.ssdpTargets.length > 0 ? { ssdpTargets: targets6 } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.requestTimeoutMs !== undefined ? { requestTimeoutMs: options.requestTimeoutMs } : {}),
  };
  // The IPv6 router: --gateway6, else --gateway when it is IPv6, else the IPv6 default router.
  const { gateway: _gateway, ...rest } = common;
  const gateway = options.gateway6 ?? (v6(options.gateway) ? options.gateway : undefined);
  return {
    ...rest,
    ...(gateway !== undefined ? { gateway } : {}),
    family: 'ipv6',
    pcp: { ...pcpRest, ...local6 },
    upnp: {
      ...upnpRest,
      ...(options.localAddress !== undefined && !v6(options.localAddress) ? { localAddress: options.localAddress } : {}),
      ...(options.ssdpTargets.length > 0 ? { ssdpTargets: targets4 } : {}),
    },
    pinhole,
  };
}

/**
 * The NAT source for `--nat` and the testing options, as `parseNat` would make it, once the
 * module of the backend the spec names is loaded, and only that one (`--nat pmp:GW` never
 * loads the UPnP stack and node:http, nor PCP and node:crypto). Commands await it before
 * starting any clock. `none`/`off` and unknown specs are usage errors.
 *
 * @example
 * ```ts
 * const nat$ = await loadNatSource('discover', args, io);
 * ```
 */
export async function loadNatSource(command: CommandName, options: NatOptions, io: CliIo): Promise<Observable<Nat>> {
  let spec: NatSpec;
  try {
    spec = parseNatSpec(options.nat);
  } catch (error) {
    if (error instanceof NatSpecError) throw new UsageError(error.message, command);
    throw error;
  }
  if (spec.mechanism === 'none') {
    throw new UsageError(`--nat ${options.nat} turns NAT traversal off; give a mechanism such as any, upnp, pmp or pcp`, command);
  }
  cliLog(io, `NAT source for ${command}`, { spec: options.nat });
  if (options.ipv6 === true) spec = ipv6Spec(spec, options.nat, command);
  // `map` runs until stopped: it follows the network (a new route or address rediscovers).
  const natOptions = natSourceOptions(options, io.logger);
  // The backend that sends first takes over the socket of the request sent early, instead of sending it again.
  const base = io.earlySearch !== undefined ? withEarlySearch(natOptions, io.earlySearch) : natOptions;
  return backendOf(spec, command === 'map' ? { ...base, followNetwork: true } : base);
}

/**
 * Every backend's options with the transport that takes over `early`'s socket (one transport:
 * whichever backend opens the first IPv4 socket takes it; early-search.ts sends what that one
 * sends first).
 */
function withEarlySearch(options: DiscoverNatOptions, early: EarlyDatagrams): DiscoverNatOptions {
  const transport = nodeTransportAdopting(early);
  return { ...options, pcp: { ...options.pcp, transport }, pmp: { ...options.pmp, transport }, upnp: { ...options.upnp, transport } };
}

/** The IPv6 form of a spec under `--ipv6`: any and pcp over IPv6, upnp as pinholes; the rest have none. */
function ipv6Spec(spec: Exclude<NatSpec, { mechanism: 'none' }>, text: string, command: CommandName): Exclude<NatSpec, { mechanism: 'none' }> {
  switch (spec.mechanism) {
    case 'any':
    case 'pcp':
      if (spec.gateway !== undefined && !spec.gateway.includes(':')) {
        throw new UsageError(`--nat ${text} names an IPv4 router: with --ipv6, give its IPv6 address (as in --nat pcp:[fe80::1%eth0]) or none`, command);
      }
      return { ...spec, family: 'ipv6' };
    case 'upnp':
      if (spec.gateway !== undefined) throw new UsageError(`--nat ${text}: with --ipv6, UPnP pinholes take a description URL (--nat pinhole:<URL>) or nothing`, command);
      return spec.descriptionUrl === undefined ? { mechanism: 'pinhole' } : { mechanism: 'pinhole', descriptionUrl: spec.descriptionUrl };
    case 'pinhole':
      return spec;
    default:
      throw new UsageError(`--nat ${text} has no IPv6 form: with --ipv6 use any, pcp, upnp or pinhole (NAT-PMP is IPv4 only)`, command);
  }
}

/** Imports the module of the backend `spec` names and builds its NAT source. */
async function backendOf(spec: Exclude<NatSpec, { mechanism: 'none' }>, options: DiscoverNatOptions): Promise<Observable<Nat>> {
  switch (spec.mechanism) {
    case 'any':
      return (await import('../../discover.js')).discoverNat({
        ...options,
        ...(spec.gateway !== undefined ? { gateway: spec.gateway } : {}),
        ...(spec.family !== undefined ? { family: spec.family } : {}),
      });
    case 'pinhole': {
      if (spec.descriptionUrl !== undefined) return (await import('../../protocols/upnp/firewall-client.js')).upnpPinhole({ ...options.pinhole, descriptionUrl: spec.descriptionUrl });
      return (await import('../../discover.js')).discoverNat({ ...options, family: 'ipv6', backends: ['upnp'] });
    }
    case 'extip':
      return of(extIp(spec.ip));
    case 'upnp': {
      const { upnp } = await import('../../protocols/upnp/client.js');
      if (spec.gateway !== undefined) return upnp({ ...options.upnp, gateway: spec.gateway });
      return upnp(spec.descriptionUrl === undefined ? options.upnp : { ...options.upnp, descriptionUrl: spec.descriptionUrl });
    }
    case 'stun':
      return (await import('../../protocols/stun/client.js')).stun(spec.server, options.stun);
    case 'pmp':
      return (await import('../../protocols/pmp/client.js')).pmp(spec.gateway ?? options.gateway, options.pmp);
    case 'pcp': {
      const { pcp } = await import('../../protocols/pcp/client.js');
      if (spec.family !== 'ipv6') return pcp(spec.gateway ?? options.gateway, options.pcp);
      return pcp(spec.gateway ?? (options.gateway?.includes(':') ? options.gateway : undefined), { ...options.pcp, family: 'ipv6' });
    }
  }
}

/**
 * Discovers the gateway once, with a progress line on a terminal; resolves with the NAT and
 * how long discovery took.
 *
 * @example
 * ```ts
 * const { nat, elapsedMs } = await discoverOnce('ip', args, io);
 * ```
 */
export async function discoverOnce(command: CommandName, options: NatOptions, io: CliIo): Promise<{ nat: Nat; elapsedMs: number }> {
  const nat$ = await loadNatSource(command, options, io);
  const started = performance.now();
  const done = progress(io.stderr, `looking for a gateway (${options.nat})`);
  try {
    const nat = await firstValueFrom(nat$.pipe(take(1)));
    const elapsedMs = Math.round(performance.now() - started);
    cliLog(io, `found ${nat.name} in ${elapsedMs} ms`, { gateway: nat.gateway });
    return { nat, elapsedMs };
  } finally {
    done();
  }
}

/**
 * Writes one JSON value as a line on stdout.
 *
 * @example
 * ```ts
 * writeJson(io, { externalIp: '203.0.113.1' });
 * ```
 */
export function writeJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value)}\n`);
}
