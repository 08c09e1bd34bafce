/**
 * `rxnat status`: every protocol probed on its own, like the port-mapping line of
 * `tailscale netcheck`.
 *
 * @packageDocumentation
 */
import { firstValueFrom, take, throwError, timeout, type Observable } from 'rxjs';
import { isDoubleNat } from '../../core/address.js';
import type { Nat } from '../../core/nat.js';
import { GatewayError, GatewayTimeoutError, GatewayUnreachableError, type GatewayProtocol } from '../../errors.js';
import { pcp } from '../../protocols/pcp/client.js';
import { pmp, resolveGateway } from '../../protocols/pmp/client.js';
import { upnp, type UpnpNat } from '../../protocols/upnp/client.js';
import type { CommonArgs } from '../args.js';
import { errorJson, progress } from '../format.js';
import { cliLog, natSourceOptions, writeJson, type CliIo } from './common.js';

/** What one protocol answered. */
interface ProbeReport {
  readonly protocol: GatewayProtocol;
  /** `found`: a gateway speaks it; `error`: refused or unreachable; `silent`: no answer in time. */
  readonly status: 'found' | 'error' | 'silent';
  readonly name: string | null;
  readonly gateway: string | null;
  /** UPnP: the IGD version and WAN connection service. */
  readonly detail: string | null;
  readonly externalIp: string | null;
  /** Why a found gateway did not tell its external address. */
  readonly externalIpError: Error | null;
  readonly elapsedMs: number;
  readonly error: Error | null;
}

const PROTOCOL_NAMES: Record<GatewayProtocol, string> = { pcp: 'PCP', pmp: 'NAT-PMP', upnp: 'UPnP', stun: 'STUN' };

/** Default deadline of each probe, in ms (as discovery's race). */
const PROBE_DEADLINE_MS = 3000;

/**
 * `rxnat status`: probes PCP (without its NAT-PMP fallback), NAT-PMP and UPnP at once, each on
 * its own, and prints what each answered (found, error with its code, silent), the protocols
 * that can map, the external address and whether it shows a double NAT. Resolves 0 when at
 * least one protocol found a gateway, else 1 (after the report).
 *
 * @example
 * ```ts
 * process.exitCode = await statusCommand({ ...args, gateway: '127.0.0.1', pmpPort: 15351 }, io);
 * ```
 */
export async function statusCommand(args: CommonArgs, io: CliIo): Promise<number> {
  const deadlineMs = args.timeoutMs ?? PROBE_DEADLINE_MS;
  const options = natSourceOptions({ ...args, ipv6: false }, io.logger);
  const udp = { probeTimeoutMs: deadlineMs };
  // A backstop above each backend's own deadlines: UPnP fetches the description after SSDP.
  const backstopMs = deadlineMs + (args.requestTimeoutMs ?? 3000) + 1000;
  const done = progress(io.stderr, 'probing PCP, NAT-PMP and UPnP');
  let gateway: string | null = null;
  let gatewayError: Error | null = null;
  let reports: ProbeReport[];
  let ipv6Found: ProbeReport | null = null;
  try {
    try {
      gateway = await firstValueFrom(resolveGateway(args.gateway));
    } catch (error) {
      gatewayError = error instanceof Error ? error : new Error(String(error));
    }
    const started = performance.now();
    const noGateway = (protocol: GatewayProtocol): Promise<ProbeReport> =>
      Promise.resolve({ protocol, status: 'error', name: null, gateway: null, detail: null, externalIp: null, externalIpError: null, elapsedMs: Math.round(performance.now() - started), error: gatewayError });
    cliLog(io, 'probing every protocol', { gateway, deadlineMs });
    // --ipv6: who opens the IPv6 firewall (a race, as discovery), next to the three probes.
    const ipv6Report =
      args.ipv6 === true
        ? (async (): Promise<ProbeReport> => {
            const { discoverNat } = await import('../../discover.js');
            const ipv6 = natSourceOptions(args, io.logger);
            return probe('pcp', 'ipv6', discoverNat({ ...ipv6, timeoutMs: deadlineMs }), backstopMs, false);
          })()
        : Promise.resolve(null);
    [reports, ipv6Found] = await Promise.all([
      Promise.all([
      gateway !== null ? probe('pcp', gateway, pcp(gateway, { ...options.pcp, ...udp, fallbackToPmp: false }), backstopMs) : noGateway('pcp'),
      gateway !== null ? probe('pmp', gateway, pmp(gateway, { ...options.pmp, ...udp }), backstopMs) : noGateway('pmp'),
      probe('upnp', 'ssdp', upnp({ ...options.upnp, timeoutMs: deadlineMs }), backstopMs),
      ]),
      ipv6Report,
    ]);
  } finally {
    done();
  }

  const found = reports.filter((r) => r.status === 'found');
  const addresses = [...new Set(found.flatMap((r) => (r.externalIp !== null ? [r.externalIp] : [])))];
  const externalIp = addresses[0] ?? null;
  const doubleNat = externalIp !== null && isDoubleNat(externalIp);
  if (args.json) {
    writeJson(io, {
      gateway,
      gatewayError: gatewayError ? errorJson(gatewayError) : null,
      protocols: Object.fromEntries(reports.map((r) => [r.protocol, reportJson(r)])),
      portMapping: found.map((r) => r.protocol),
      externalIp,
      externalIps: addresses,
      doubleNat,
      ...(ipv6Found !== null ? { ipv6: ipv6Json(ipv6Found) } : {}),
    });
  } else {
    const rows: [string, string][] = [['gateway', gateway ?? `(none: ${gatewayError?.message ?? 'unknown'})`]];
    for (const r of reports) rows.push([PROTOCOL_NAMES[r.protocol], reportLine(r)]);
    rows.push(['port mapping', found.length > 0 ? found.map((r) => PROTOCOL_NAMES[r.protocol]).join(', ') : 'none']);
    rows.push(['external IP', externalIp === null ? '(unknown)' : addresses.length > 1 ? `${addresses.join(', ')} (the protocols disagree)` : externalIp]);
    rows.push([
      'double NAT',
      externalIp === null ? '(unknown)' : doubleNat ? `yes: ${externalIp} is not public, another NAT sits upstream; mapped ports are not reachable from the internet` : 'no',
    ]);
    if (ipv6Found !== null) rows.push(['IPv6', ipv6Line(ipv6Found)]);
    io.stdout.write(rows.map(([k, v]) => `${k.padEnd(13)} ${v}`).join('\n') + '\n');
  }
  if (found.length === 0 && ipv6Found?.status !== 'found') {
    io.stderr.write(
      'rxnat: no protocol found a gateway. Is UPnP or NAT-PMP/PCP enabled on the router? Try --gateway <router IP> or a longer --timeout; DEBUG=rxnat:* shows every request\n',
    );
    return 1;
  }
  return 0;
}

/** Finds the gateway through one protocol and asks its external address; never rejects. */
async function probe(protocol: GatewayProtocol, where: string, nat$: Observable<Nat>, backstopMs: number, askAddress = true): Promise<ProbeReport> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  let nat: Nat;
  try {
    nat = await firstValueFrom(nat$.pipe(take(1), timeout({ first: backstopMs, with: () => throwError(() => new GatewayTimeoutError(protocol, where, backstopMs)) })));
  } catch (caught) {
    const error = caught instanceof Error ? caught : new Error(String(caught));
    const status = error instanceof GatewayTimeoutError ? 'silent' : 'error';
    return { protocol, status, name: null, gateway: null, detail: null, externalIp: null, externalIpError: null, elapsedMs: elapsed(), error };
  }
  const elapsedMs = elapsed();
  let externalIp: string | null = null;
  let externalIpError: Error | null = null;
  try {
    if (askAddress) externalIp = await firstValueFrom(nat.externalIp().pipe(timeout({ first: backstopMs })));
  } catch (error) {
    externalIpError = error instanceof Error ? error : new Error(String(error));
  }
  const detail = nat.kind === 'upnp' ? upnpDetail(nat as UpnpNat) : null;
  return { protocol, status: 'found', name: nat.name, gateway: nat.gateway, detail, externalIp, externalIpError, elapsedMs, error: null };
}

function upnpDetail(nat: UpnpNat): string {
  const service = nat.service.serviceType.replace(/^urn:schemas-upnp-org:service:/, '');
  return `${nat.description.igdVersion !== undefined ? `IGDv${nat.description.igdVersion} ` : ''}${service}`;
}

/** The code a person looks up: the protocol's result code, the socket error, or rxnat's code. */
function errorCode(error: Error): string {
  if (error instanceof GatewayError) return `${error.resultCode} ${error.resultName}`;
  if (error instanceof GatewayUnreachableError && error.socketCode !== undefined) return error.socketCode;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : error.name;
}

function reportLine(r: ProbeReport): string {
  const time = `in ${r.elapsedMs} ms`;
  switch (r.status) {
    case 'found': {
      const where = r.detail !== null ? `: ${r.detail} at ${r.gateway}` : '';
      const ip = r.externalIp !== null ? `external IP ${r.externalIp}` : `external IP unknown (${r.externalIpError?.message ?? 'no answer'})`;
      return `${'found'.padEnd(7)} ${r.name}${where}, ${ip}, ${time}`;
    }
    case 'silent':
      return `${'silent'.padEnd(7)} no answer (${r.error?.message ?? 'timeout'})`;
    case 'error':
      return `${'error'.padEnd(7)} ${r.error ? `${errorCode(r.error)}: ${r.error.message}` : 'unknown'}, ${time}`;
  }
}

/** The IPv6 line: who opens the IPv6 firewall (there is no external address: each opening is the host's own). */
function ipv6Line(r: ProbeReport): string {
  if (r.status !== 'found') return reportLine(r);
  const how = r.name?.startsWith('pcp') ? 'PCP over IPv6' : 'UPnP pinholes';
  return `${'found'.padEnd(7)} ${r.name} (${how}), in ${r.elapsedMs} ms`;
}

function ipv6Json(r: ProbeReport): Record<string, unknown> {
  const { status, name, gateway, elapsedMs, error } = reportJson(r);
  return { status, name, backend: r.name === null ? null : r.name.startsWith('pcp') ? 'pcp' : 'upnp-pinhole', gateway, elapsedMs, error };
}

function reportJson(r: ProbeReport): Record<string, unknown> {
  const error = r.error === null ? null : { ...errorJson(r.error), ...codeFields(r.error) };
  return {
    status: r.status,
    name: r.name,
    gateway: r.gateway,
    detail: r.detail,
    externalIp: r.externalIp,
    externalIpError: r.externalIpError ? errorJson(r.externalIpError) : null,
    elapsedMs: r.elapsedMs,
    error,
  };
}

function codeFields(error: Error): Record<string, unknown> {
  if (error instanceof GatewayError) return { resultCode: error.resultCode, resultName: error.resultName };
  if (error instanceof GatewayUnreachableError) return { socketCode: error.socketCode ?? null };
  return {};
}
