/**
 * The gateway simulator's UPnP IGD: an SSDP responder (unicast UDP, loopback by default), an
 * HTTP server with an IGDv1 or IGDv2 description and SOAP control over a shared
 * {@link MappingTable}, and faults a test sets at runtime. An IGDv2 also serves
 * WANIPv6FirewallControl:1 over its own {@link PinholeTable}; on `::1` it is an IPv6 gateway.
 * It never crashes on any input.
 *
 * @packageDocumentation
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseIpv6 } from '../core/address.js';
import type { MappingProtocol } from '../core/nat.js';
import { ProtocolError } from '../errors.js';
import { WAN_IPV6_FIREWALL_CONTROL_1 } from '../protocols/upnp/description.js';
import { encodeFirewallFault, FIREWALL_ACTIONS, readAddPinholeRequest, readPinholeIdRequest, type FirewallAction } from '../protocols/upnp/firewall-soap.js';
import { decodeSoapRequest, encodeSoapFault, encodeSoapResponse, SOAP_CONTENT_TYPE, type SoapArguments, type UpnpAction } from '../protocols/upnp/soap.js';
import { escapeXml } from '../protocols/upnp/xml.js';
import { PinholeTable } from './pinhole-table.js';
import type { MappingTable, SimulatedMapping } from './table.js';

/**
 * Options of {@link startUpnpServer}.
 *
 * @example
 * ```ts
 * const server = await startUpnpServer(table, { igdVersion: 1, requestTimeoutMs: 0 });
 * ```
 */
export interface UpnpServerOptions {
  /** Which IGD to serve: 2 (miniupnpd's default: WANIPConnection:2) or 1. Default 2. */
  readonly igdVersion?: 1 | 2;
  /** `ip` (WANIPConnection) or `ppp` (WANPPPConnection:1 only, IGDv1 layout). Default `ip`. */
  readonly connection?: 'ip' | 'ppp';
  /** Address to listen on (UDP and HTTP): `127.0.0.1` (the default) or `::1`. */
  readonly address?: string;
  /** SSDP port; 0 picks a free one. Default 0. */
  readonly ssdpPort?: number;
  /** HTTP port; 0 picks a free one. Default 0. */
  readonly httpPort?: number;
  /** Host written in SSDP LOCATION and IGDv1 URLBase (to test LOCATION rewriting). Default `address`. */
  readonly locationHost?: string;
  /** miniupnpd's secure_mode: a mapping for another internal client fails with 718. Default true. */
  readonly secureMode?: boolean;
  /** miniupnpd's default rules: internal ports below 1024 are refused with 606. Default true. */
  readonly denyPrivilegedPorts?: boolean;
  /** Delay before answering an M-SEARCH, in ms (miniupnpd waits ~53). Default 0. */
  readonly ssdpResponseDelayMs?: number;
  /** The device UUID (USN, UDN). Default a fixed test UUID. */
  readonly uuid?: string;
  /**
   * Serve WANIPv6FirewallControl:1 (IPv6 pinholes) in the WANConnectionDevice, as miniupnpd
   * with IPv6 does. Default true for IGDv2; an IGDv1 never has it.
   */
  readonly ipv6Firewall?: boolean;
  /** The pinhole table (for example one with a fake clock or a small capacity). Default a new {@link PinholeTable}. */
  readonly pinholes?: PinholeTable;
  /**
   * miniupnpd's pinhole rule: a pinhole's InternalClient must be the address the request comes
   * from, and its internal port at least 1024, else 606 (for AddPinhole and for every action on
   * an existing pinhole). Default true. Tests on loopback that send a documentation address as
   * InternalClient turn it off.
   */
  readonly pinholeSecureMode?: boolean;
  /** What GetOutboundPinholeTimeout answers, in seconds (miniupnpd 2.3.1 answers 501 instead). Default 120. */
  readonly outboundPinholeTimeoutSeconds?: number;
}

/**
 * A fault the next matching request(s) meet instead of the normal answer.
 *
 * - `error`: a `UPnPError` fault with `code` (HTTP 500, or `httpStatus`);
 * - `delay`: answers normally after `ms`;
 * - `silent`: never answers (the connection stays open until the client gives up);
 * - `malformed`: HTTP 200 with broken XML; `empty`: HTTP 200 with an empty body;
 * - `reset`: sends headers and part of the body, then resets the connection;
 * - `oversize`: HTTP 200 with a `bytes`-long body;
 * - `applied`: the action takes effect at once (the table changes as the request arrives), then
 *   the answer meets the `answer` fault: a router that did the work but whose answer is late (`delay`),
 *   lost (`silent`), undecodable (`malformed`, `empty`, `oversize`, `reset`) or a lie (`error`).
 *   Without it, `delay` performs the action only when it answers (and not at all once the client
 *   has hung up), and `silent`, `malformed`, `empty`, `oversize` and `error` never perform it;
 *   `reset` always does.
 *
 * @example
 * ```ts
 * server.faults.inject({ kind: 'error', code: 606 }, { action: 'AddPortMapping', times: 2 });
 * // The add is made, but its answer comes after the client's deadline:
 * server.faults.inject({ kind: 'applied', answer: { kind: 'delay', ms: 5000 } }, { action: 'AddPortMapping' });
 * ```
 */
export type UpnpFault = UpnpAnswerFault | { readonly kind: 'applied'; readonly answer: UpnpAnswerFault };

/**
 * The faults of {@link UpnpFault} that change only the answer (what `applied` wraps).
 *
 * @example
 * ```ts
 * const late: UpnpAnswerFault = { kind: 'delay', ms: 5000 };
 * ```
 */
export type UpnpAnswerFault =
  | { readonly kind: 'error'; readonly code: number; readonly description?: string; readonly httpStatus?: number }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'silent' }
  | { readonly kind: 'malformed' }
  | { readonly kind: 'empty' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'oversize'; readonly bytes: number };

/**
 * What a fault applies to: a SOAP action (of the WAN connection or of the IPv6 firewall), or
 * `description` (GET of the device description).
 *
 * @example
 * ```ts
 * const target: UpnpFaultTarget = 'description';
 * server.faults.inject({ kind: 'error', code: 701 }, { action: 'AddPinhole' });
 * ```
 */
export type UpnpFaultTarget = UpnpAction | FirewallAction | 'description';

interface FaultRule {
  readonly fault: UpnpFault;
  readonly target: UpnpFaultTarget | undefined;
  remaining: number;
}

/**
 * The faults of a running {@link UpnpServer}, changed by tests at runtime.
 *
 * @example
 * ```ts
 * server.faults.permanentLeasesOnly = true;     // 725 on any non-zero lease
 * server.faults.conflictingPorts.add(8080);     // 718 for AddPortMapping on 8080
 * server.faults.inject({ kind: 'delay', ms: 500 }, { action: 'GetExternalIPAddress' });
 * ```
 */
export class UpnpFaults {
  /** AddPortMapping/AddAnyPortMapping with a non-zero lease fail with 725 OnlyPermanentLeasesSupported. */
  permanentLeasesOnly = false;
  /** External ports held by "another client" (any protocol): AddPortMapping fails with 718. */
  readonly conflictingPorts = new Set<number>();
  /** The SSDP responder ignores every M-SEARCH. */
  ssdpSilent = false;
  /** The IPv6 firewall is off: GetFirewallStatus says so, the pinhole actions answer 702 FirewallDisabled. */
  firewallDisabled = false;
  /** Inbound pinholes are not allowed: GetFirewallStatus says so, the pinhole actions answer 703 InboundPinholeNotAllowed. */
  inboundPinholeNotAllowed = false;
  private rules: FaultRule[] = [];

  /** Applies `fault` to the next `times` requests (default 1; `Infinity` for all), of `action` only when given. */
  inject(fault: UpnpFault, options: { readonly action?: UpnpFaultTarget; readonly times?: number } = {}): void {
    this.rules.push({ fault, target: options.action, remaining: options.times ?? 1 });
  }

  /** Removes every fault, including `permanentLeasesOnly`, `conflictingPorts`, `ssdpSilent`, `firewallDisabled` and `inboundPinholeNotAllowed`. */
  clear(): void {
    this.rules = [];
    this.permanentLeasesOnly = false;
    this.conflictingPorts.clear();
    this.ssdpSilent = false;
    this.firewallDisabled = false;
    this.inboundPinholeNotAllowed = false;
  }

  /** @internal The fault the next request to `target` meets, consumed. */
  take(target: UpnpFaultTarget): UpnpFault | undefined {
    const rule = this.rules.find((r) => r.remaining > 0 && (r.target === undefined || r.target === target));
    if (!rule) return undefined;
    rule.remaining -= 1;
    this.rules = this.rules.filter((r) => r.remaining > 0);
    return rule.fault;
  }
}

/**
 * One SOAP request the server received.
 *
 * @example
 * ```ts
 * server.requests.filter((r) => r.action === 'AddPortMapping').map((r) => r.args.NewLeaseDuration);
 * ```
 */
export interface RecordedUpnpRequest {
  readonly action: string;
  readonly args: Readonly<Record<string, string>>;
  readonly remoteAddress: string;
}

/**
 * A running simulated IGD.
 *
 * @example
 * ```ts
 * const server = await startUpnpServer(new MappingTable());
 * const nat$ = upnp({ descriptionUrl: server.descriptionUrl });
 * await server.close();
 * ```
 */
export interface UpnpServer {
  readonly table: MappingTable;
  /** The IPv6 pinholes (WANIPv6FirewallControl:1), apart from the port mappings. */
  readonly pinholes: PinholeTable;
  readonly igdVersion: 1 | 2;
  /** `http://<locationHost>:<httpPort>/rootDesc.xml` (changes after a reboot that moves the port). */
  readonly descriptionUrl: string;
  /** The WAN connection service's control URL. */
  readonly controlUrl: string;
  /** The service type controlled. */
  readonly serviceType: string;
  /** The WANIPv6FirewallControl:1 control URL; `undefined` when the service is not served. */
  readonly firewallControlUrl: string | undefined;
  readonly ssdpPort: number;
  readonly httpPort: number;
  readonly faults: UpnpFaults;
  /** Requests by action (SOAP action names, plus `description` and `M-SEARCH`). */
  readonly counters: Readonly<Record<string, number>>;
  /** Every SOAP request, in order. */
  readonly requests: readonly RecordedUpnpRequest[];
  /** Emits `request` (action name) on each request and `connection-closed` when an HTTP connection closes. */
  readonly events: EventEmitter;
  /** HTTP connections currently open. */
  readonly openConnections: number;
  /** GetStatusInfo's `NewConnectionStatus`. Default `Connected`. */
  connectionStatus: string;
  /**
   * Simulates a router reboot: the mapping table and the pinholes are wiped (unless `keepMappings`), and with
   * `moveControlPort` the HTTP server moves to a new port and the old one is closed (refuses).
   */
  reboot(options?: { readonly moveControlPort?: boolean; readonly keepMappings?: boolean }): Promise<void>;
  /** Stops both servers and drops open connections. */
  close(): Promise<void>;
}

const DESCRIPTION_PATH = '/rootDesc.xml';
const FIREWALL_CONTROL_PATH = '/ctl/IP6FCtl';
const MAX_REQUEST_BYTES = 64 * 1024;
const IGD2_MAX_LEASE_SECONDS = 604_800;

/**
 * Starts a simulated IGD on loopback over `table` (shared with the NAT-PMP/PCP simulator).
 *
 * @example
 * ```ts
 * const table = new MappingTable();
 * const server = await startUpnpServer(table, { igdVersion: 2 });
 * console.log(server.descriptionUrl, server.ssdpPort);
 * server.faults.inject({ kind: 'error', code: 718 }, { action: 'AddPortMapping' });
 * await server.close();
 * ```
 */
export async function startUpnpServer(table: MappingTable, options: UpnpServerOptions = {}): Promise<UpnpServer> {
  const server = new SimulatedIgd(table, options);
  await server.start(options.ssdpPort ?? 0, options.httpPort ?? 0);
  return server;
}

class SimulatedIgd implements UpnpServer {
  readonly igdVersion: 1 | 2;
  readonly faults = new UpnpFaults();
  readonly events = new EventEmitter();
  readonly requests: RecordedUpnpRequest[] = [];
  readonly counters: Record<string, number> = Object.create(null) as Record<string, number>;
  readonly serviceType: string;
  readonly pinholes: PinholeTable;
  connectionStatus = 'Connected';
  ssdpPort = 0;
  httpPort = 0;
  private readonly address: string;
  private readonly locationHost: string;
  private readonly uuid: string;
  private readonly controlPath: string;
  private readonly searchTargets: readonly string[];
  private readonly firewall: boolean;
  private udp: UdpSocket | undefined;
  private httpServer: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(
    readonly table: MappingTable,
    private readonly options: UpnpServerOptions,
  ) {
    const ppp = options.connection === 'ppp';
    this.igdVersion = ppp ? 1 : (options.igdVersion ?? 2);
    this.address = options.address ?? '127.0.0.1';
    this.locationHost = urlHost(options.locationHost ?? this.address);
    this.firewall = this.igdVersion === 2 && (options.ipv6Firewall ?? true);
    this.pinholes = options.pinholes ?? new PinholeTable();
    this.uuid = options.uuid ?? 'b7a2c2d4-5f43-4b1e-9a6e-00000000cafe';
    this.controlPath = ppp ? '/ctl/PPPConn' : '/ctl/IPConn';
    this.serviceType = ppp
      ? 'urn:schemas-upnp-org:service:WANPPPConnection:1'
      : `urn:schemas-upnp-org:service:WANIPConnection:${this.igdVersion}`;
    const igd = (v: number): string => `urn:schemas-upnp-org:device:InternetGatewayDevice:${v}`;
    this.searchTargets =
      this.igdVersion === 2
        ? [
            igd(1),
            igd(2),
            'urn:schemas-upnp-org:service:WANIPConnection:1',
            'urn:schemas-upnp-org:service:WANIPConnection:2',
            ...(this.firewall ? [WAN_IPV6_FIREWALL_CONTROL_1] : []),
          ]
        : [igd(1), this.serviceType];
    // The `events` emitter must never throw for want of an 'error' listener.
    this.events.on('error', () => undefined);
  }

  get descriptionUrl(): string {
    return `http://${this.locationHost}:${this.httpPort}${DESCRIPTION_PATH}`;
  }

  get controlUrl(): string {
    return `http://${this.locationHost}:${this.httpPort}${this.controlPath}`;
  }

  get firewallControlUrl(): string | undefined {
    return this.firewall ? `http://${this.locationHost}:${this.httpPort}${FIREWALL_CONTROL_PATH}` : undefined;
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  async start(ssdpPort: number, httpPort: number): Promise<void> {
    await this.listenHttp(httpPort);
    this.udp = createSocket(this.address.includes(':') ? 'udp6' : 'udp4');
    this.udp.on('error', () => undefined);
    this.udp.on('message', (msg, rinfo) => {
      try {
        this.onSearch(msg, rinfo.address, rinfo.port);
      } catch {
        // never crash on a datagram
      }
    });
    const udp = this.udp;
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port: ssdpPort, address: this.address, exclusive: true }, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    this.ssdpPort = udp.address().port;
  }

  async reboot(options: { readonly moveControlPort?: boolean; readonly keepMappings?: boolean } = {}): Promise<void> {
    if (!options.keepMappings) {
      this.table.reboot();
      this.pinholes.clear();
    }
    if (options.moveControlPort) {
      const old = this.httpServer;
      const oldSockets = [...this.sockets];
      await this.listenHttp(0);
      oldSockets.forEach((s) => s.destroy());
      if (old) await closeServer(old);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timers.forEach(clearTimeout);
    this.timers.clear();
    this.sockets.forEach((s) => s.destroy());
    const udp = this.udp;
    if (udp) await new Promise<void>((resolve) => {
      try {
        udp.close(() => resolve());
      } catch {
        resolve();
      }
    });
    if (this.httpServer) await closeServer(this.httpServer);
  }

  private count(name: string): void {
    this.counters[name] = (this.counters[name] ?? 0) + 1;
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      try {
        fn();
      } catch {
        // never crash
      }
    }, ms);
    this.timers.add(timer);
  }

  // --- SSDP ------------------------------------------------------------------------------------

  private onSearch(msg: Buffer, address: string, port: number): void {
    if (this.faults.ssdpSilent || msg.length > 8192) return;
    const lines = msg.toString('latin1').split(/\r?\n/);
    if (!/^M-SEARCH \* HTTP\/1\.1$/i.test((lines[0] ?? '').trim())) return;
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if ((headers.get('man') ?? '').replace(/"/g, '') !== 'ssdp:discover') return;
    const st = headers.get('st') ?? '';
    const answered =
      st === 'ssdp:all' || st === 'upnp:rootdevice'
        ? `urn:schemas-upnp-org:device:InternetGatewayDevice:${this.igdVersion}`
        : this.searchTargets.includes(st) || st === `uuid:${this.uuid}`
          ? st
          : undefined;
    if (answered === undefined) return;
    this.count('M-SEARCH');
    const answer = Buffer.from(
      'HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n' +
        `ST: ${answered}\r\nUSN: uuid:${this.uuid}${answered.startsWith('uuid:') ? '' : `::${answered}`}\r\nEXT:\r\n` +
        'SERVER: Linux UPnP/1.1 rxnat-simulator/1.0\r\n' +
        `LOCATION: ${this.descriptionUrl}\r\n\r\n`,
      'latin1',
    );
    const send = (): void => {
      if (!this.closed) this.udp?.send(answer, port, address, () => undefined);
    };
    const delay = this.options.ssdpResponseDelayMs ?? 0;
    if (delay > 0) this.later(delay, send);
    else send();
  }

  // --- HTTP ------------------------------------------------------------------------------------

  private async listenHttp(port: number): Promise<void> {
    const server = createServer((req, res) => {
      try {
        this.onRequest(req, res);
      } catch {
        res.destroy();
      }
    });
    server.on('clientError', (_error, socket) => socket.destroy());
    server.on('error', () => undefined);
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        this.sockets.delete(socket);
        this.events.emit('connection-closed');
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: this.address, exclusive: true }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.httpServer = server;
    this.httpPort = (server.address() as AddressInfo).port;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_REQUEST_BYTES) {
        if (!tooLarge) {
          tooLarge = true;
          send(res, 413, 'text/plain', 'request too large');
        }
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) return;
      try {
        this.dispatch(req, res, Buffer.concat(chunks).toString('utf8'));
      } catch {
        if (!res.headersSent) send(res, 500, 'text/plain', 'internal error');
        else res.destroy();
      }
    });
  }

  private dispatch(req: IncomingMessage, res: ServerResponse, body: string): void {
    const path = (req.url ?? '/').split('?')[0];
    if (path === DESCRIPTION_PATH) {
      if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed');
      this.count('description');
      this.events.emit('request', 'description');
      return this.respond(res, 'description', () => ({ status: 200, body: this.description() }));
    }
    const firewall = this.firewall && path === FIREWALL_CONTROL_PATH;
    if (path !== this.controlPath && !firewall) return send(res, 404, 'text/plain', 'not found');
    if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed');
    const soapAction = req.headers['soapaction'];
    const decoded = decodeSoapRequest(body, typeof soapAction === 'string' ? soapAction : undefined);
    if (decoded instanceof ProtocolError) return send(res, 500, SOAP_CONTENT_TYPE, encodeSoapFault(401, 'Invalid Action'));
    const remoteAddress = clientAddress(req);
    this.count(decoded.action);
    this.requests.push({ action: decoded.action, args: Object.fromEntries(decoded.args), remoteAddress });
    this.events.emit('request', decoded.action);
    this.respond(res, decoded.action as UpnpFaultTarget, () =>
      firewall ? this.performFirewall(decoded.action, decoded.args, remoteAddress) : this.perform(decoded.action, decoded.args, remoteAddress),
    );
  }

  /** Sends the normal answer produced by `answer`, or the fault injected for `target`. */
  private respond(res: ServerResponse, target: UpnpFaultTarget, answer: () => { status: number; body: string }): void {
    const taken = this.faults.take(target);
    let perform = answer;
    let fault: UpnpAnswerFault | undefined;
    if (taken?.kind === 'applied') {
      // The action takes effect now, whatever the answer becomes.
      const result = answer();
      perform = () => result;
      fault = taken.answer;
    } else {
      fault = taken;
    }
    const normal = (): void => {
      if (res.destroyed) return;
      const { status, body } = perform();
      send(res, status, target === 'description' ? 'text/xml; charset="utf-8"' : SOAP_CONTENT_TYPE, body);
    };
    if (!fault) return normal();
    switch (fault.kind) {
      case 'error':
        return send(res, fault.httpStatus ?? 500, SOAP_CONTENT_TYPE, encodeSoapFault(fault.code, fault.description));
      case 'delay':
        return this.later(fault.ms, normal);
      case 'silent':
        return; // the connection stays open until the client gives up or the server closes
      case 'malformed':
        return send(res, 200, SOAP_CONTENT_TYPE, '<?xml version="1.0"?><s:Envelope><s:Body><u:Oops></s:Body>');
      case 'empty':
        return send(res, 200, SOAP_CONTENT_TYPE, '');
      case 'reset': {
        const full = perform().body;
        res.writeHead(200, { 'Content-Type': SOAP_CONTENT_TYPE, 'Content-Length': String(Buffer.byteLength(full) + 100) });
        res.write(full.slice(0, Math.floor(full.length / 2)), () => res.socket?.destroy());
        return;
      }
      case 'oversize':
        return send(res, 200, SOAP_CONTENT_TYPE, `<!--${'x'.repeat(Math.max(0, fault.bytes - 7))}-->`);
    }
  }

  // --- SOAP actions ----------------------------------------------------------------------------

  private perform(action: string, args: ReadonlyMap<string, string>, remoteAddress: string): { status: number; body: string } {
    const ok = (values: SoapArguments): { status: number; body: string } => ({ status: 200, body: encodeSoapResponse(this.serviceType, action, values) });
    const fault = (code: number): { status: number; body: string } => ({ status: 500, body: encodeSoapFault(code) });
    switch (action) {
      case 'GetStatusInfo':
        return ok([
          ['NewConnectionStatus', this.connectionStatus],
          ['NewLastConnectionError', 'ERROR_NONE'],
          ['NewUptime', this.table.epochSeconds()],
        ]);
      case 'GetExternalIPAddress':
        // A WAN link that is down has no address: miniupnpd answers 0.0.0.0 then.
        return ok([['NewExternalIPAddress', this.connectionStatus === 'Connected' ? this.table.externalIp : '0.0.0.0']]);
      case 'AddPortMapping':
      case 'AddAnyPortMapping': {
        if (action === 'AddAnyPortMapping' && this.igdVersion !== 2) return fault(401);
        const parsed = parseMappingArgs(args);
        if (typeof parsed === 'number') return fault(parsed);
        if (parsed.remoteHost !== '') return fault(726);
        if (parsed.externalPort === 0) return fault(716);
        if ((this.options.denyPrivilegedPorts ?? true) && parsed.internalPort < 1024) return fault(606);
        if ((this.options.secureMode ?? true) && parsed.internalClient !== remoteAddress) return fault(718);
        if (this.faults.permanentLeasesOnly && parsed.lease !== 0) return fault(725);
        const lifetimeSeconds =
          this.igdVersion === 2 ? (parsed.lease === 0 ? IGD2_MAX_LEASE_SECONDS : Math.min(parsed.lease, IGD2_MAX_LEASE_SECONDS)) : parsed.lease;
        const any = action === 'AddAnyPortMapping';
        const conflicting = this.faults.conflictingPorts.has(parsed.externalPort);
        if (conflicting && !any) return fault(718);
        const result = this.table.add({
          protocol: parsed.protocol,
          internalClient: parsed.internalClient,
          internalPort: parsed.internalPort,
          externalPort: conflicting ? 0 : parsed.externalPort,
          description: parsed.description,
          lifetimeSeconds,
          via: 'upnp',
          exactPort: !any,
        });
        if (!result.ok) return fault(result.reason === 'conflict' ? 718 : 728);
        return any ? ok([['NewReservedPort', result.mapping.externalPort]]) : ok([]);
      }
      case 'DeletePortMapping': {
        const key = parseKey(args);
        if (typeof key === 'number') return fault(key);
        const mapping = this.table.get(key.protocol, key.externalPort);
        if (!mapping) return fault(714);
        if ((this.options.secureMode ?? true) && mapping.internalClient !== remoteAddress) return fault(606);
        this.table.delete(key.protocol, key.externalPort);
        return ok([]);
      }
      case 'GetSpecificPortMappingEntry': {
        const key = parseKey(args);
        if (typeof key === 'number') return fault(key);
        const mapping = this.table.get(key.protocol, key.externalPort);
        return mapping ? ok(this.entryValues(mapping).slice(3)) : fault(714);
      }
      case 'GetGenericPortMappingEntry': {
        const index = args.get('NewPortMappingIndex') ?? '';
        if (!/^\d{1,5}$/.test(index)) return fault(402);
        const mapping = this.table.list()[Number(index)];
        return mapping ? ok(this.entryValues(mapping)) : fault(713);
      }
      default:
        return fault(401);
    }
  }

  /** WANIPv6FirewallControl:1, as miniupnpd 2.3.1 answers it (checks in its order). */
  private performFirewall(action: string, args: ReadonlyMap<string, string>, remoteAddress: string): { status: number; body: string } {
    const ok = (values: SoapArguments): { status: number; body: string } => ({
      status: 200,
      body: encodeSoapResponse(WAN_IPV6_FIREWALL_CONTROL_1, action, values),
    });
    const fault = (code: number): { status: number; body: string } => ({ status: 500, body: encodeFirewallFault(code) });
    if (!FIREWALL_ACTIONS.includes(action as FirewallAction)) return fault(401);
    const faults = this.faults;
    if (action === 'GetFirewallStatus') {
      return ok([
        ['FirewallEnabled', faults.firewallDisabled ? 0 : 1],
        ['InboundPinholeAllowed', faults.inboundPinholeNotAllowed ? 0 : 1],
      ]);
    }
    if (faults.firewallDisabled) return fault(702);
    if (action === 'GetOutboundPinholeTimeout') {
      if (args.get('InternalPort') === undefined || args.get('RemotePort') === undefined || args.get('Protocol') === undefined) return fault(402);
      return ok([['OutboundPinholeTimeout', this.options.outboundPinholeTimeoutSeconds ?? 120]]);
    }
    if (faults.inboundPinholeNotAllowed) return fault(703);
    const secure = this.options.pinholeSecureMode ?? true;
    const authorized = (internalClient: string, internalPort: number): boolean =>
      !secure || (sameAddress(internalClient, remoteAddress) && internalPort >= 1024);
    if (action === 'AddPinhole') {
      const parsed = readAddPinholeRequest(args);
      if (typeof parsed === 'number') return fault(parsed);
      if (!authorized(parsed.internalClient, parsed.internalPort)) return fault(606);
      const added = this.pinholes.add(parsed);
      return added.ok ? ok([['UniqueID', added.pinhole.uniqueId]]) : fault(701);
    }
    const request = readPinholeIdRequest(args, action === 'UpdatePinhole');
    if (typeof request === 'number') return fault(request);
    const pinhole = this.pinholes.get(request.uniqueId);
    if (!pinhole) return fault(704);
    if (!authorized(pinhole.internalClient, pinhole.internalPort)) return fault(606);
    switch (action as Exclude<FirewallAction, 'GetFirewallStatus' | 'GetOutboundPinholeTimeout' | 'AddPinhole'>) {
      case 'UpdatePinhole':
        this.pinholes.update(request.uniqueId, request.leaseTimeSeconds!);
        return ok([]);
      case 'DeletePinhole':
        this.pinholes.delete(request.uniqueId);
        return ok([]);
      case 'GetPinholePackets':
        return ok([['PinholePackets', pinhole.packets]]);
      case 'CheckPinholeWorking':
        return pinhole.packets === 0 ? fault(709) : ok([['IsWorking', 1]]);
    }
  }

  private entryValues(mapping: SimulatedMapping): SoapArguments {
    return [
      ['NewRemoteHost', ''],
      ['NewExternalPort', mapping.externalPort],
      ['NewProtocol', mapping.protocol.toUpperCase()],
      ['NewInternalPort', mapping.internalPort],
      ['NewInternalClient', mapping.internalClient],
      ['NewEnabled', 1],
      ['NewPortMappingDescription', mapping.description],
      ['NewLeaseDuration', this.table.remainingSeconds(mapping)],
    ];
  }

  // --- Description -----------------------------------------------------------------------------

  private description(): string {
    const v = this.igdVersion;
    const ppp = this.options.connection === 'ppp';
    const service = (type: string, id: string, path: string): string =>
      `<service><serviceType>${type}</serviceType><serviceId>${id}</serviceId>` +
      `<SCPDURL>/${path}.xml</SCPDURL><controlURL>/ctl/${path}</controlURL><eventSubURL>/evt/${path}</eventSubURL></service>`;
    const device = (type: string, name: string, udnSuffix: string, services: string, devices = ''): string =>
      `<device><deviceType>urn:schemas-upnp-org:device:${type}</deviceType><friendlyName>${name}</friendlyName>` +
      `<manufacturer>rxnat</manufacturer><modelName>rxnat simulated IGD</modelName>` +
      `<UDN>uuid:${this.uuid.slice(0, -2)}${udnSuffix}</UDN><serviceList>${services}</serviceList>` +
      (devices ? `<deviceList>${devices}</deviceList>` : '') +
      `</device>`;
    const connection =
      (ppp
        ? service('urn:schemas-upnp-org:service:WANPPPConnection:1', 'urn:upnp-org:serviceId:WANPPPConn1', 'PPPConn')
        : service(this.serviceType, 'urn:upnp-org:serviceId:WANIPConn1', 'IPConn')) +
      // miniupnpd lists it after WANIPConnection, with these ids and paths.
      (this.firewall ? service(WAN_IPV6_FIREWALL_CONTROL_1, 'urn:upnp-org:serviceId:WANIPv6Firewall1', 'IP6FCtl') : '');
    const wanConnectionDevice = device(`WANConnectionDevice:${v}`, 'WANConnectionDevice', '03', connection);
    const wanDevice = device(
      `WANDevice:${v}`,
      'WANDevice',
      '02',
      service('urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1', 'urn:upnp-org:serviceId:WANCommonIFC1', 'CmnIfCfg'),
      wanConnectionDevice,
    );
    const root = device(
      `InternetGatewayDevice:${v}`,
      'rxnat simulated router',
      this.uuid.slice(-2),
      service('urn:schemas-upnp-org:service:Layer3Forwarding:1', 'urn:upnp-org:serviceId:Layer3Forwarding1', 'L3F'),
      wanDevice,
    );
    const urlBase = v === 1 ? `<URLBase>${escapeXml(`http://${this.locationHost}:${this.httpPort}/`)}</URLBase>` : '';
    return (
      `<?xml version="1.0"?>\r\n<root xmlns="urn:schemas-upnp-org:device-1-0">` +
      `<specVersion><major>1</major><minor>${v === 2 ? 1 : 0}</minor></specVersion>${urlBase}${root}</root>\r\n`
    );
  }
}

interface MappingArgs {
  readonly remoteHost: string;
  readonly externalPort: number;
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly internalClient: string;
  readonly description: string;
  readonly lease: number;
}

function parseKey(args: ReadonlyMap<string, string>): { protocol: MappingProtocol; externalPort: number } | number {
  const protocol = (args.get('NewProtocol') ?? '').toUpperCase();
  const externalPort = parsePort(args.get('NewExternalPort'));
  if ((protocol !== 'TCP' && protocol !== 'UDP') || externalPort === undefined || externalPort === 0) return 402;
  return { protocol: protocol === 'UDP' ? 'udp' : 'tcp', externalPort };
}

function parseMappingArgs(args: ReadonlyMap<string, string>): MappingArgs | number {
  const protocol = (args.get('NewProtocol') ?? '').toUpperCase();
  const externalPort = parsePort(args.get('NewExternalPort'));
  const internalPort = parsePort(args.get('NewInternalPort'));
  const lease = args.get('NewLeaseDuration') ?? '';
  const internalClient = args.get('NewInternalClient') ?? '';
  if ((protocol !== 'TCP' && protocol !== 'UDP') || externalPort === undefined || internalPort === undefined || internalPort === 0) return 402;
  if (!/^\d{1,10}$/.test(lease) || Number(lease) > 0xffffffff || internalClient === '') return 402;
  return {
    remoteHost: args.get('NewRemoteHost') ?? '',
    externalPort,
    protocol: protocol === 'UDP' ? 'udp' : 'tcp',
    internalPort,
    internalClient,
    description: args.get('NewPortMappingDescription') ?? '',
    lease: Number(lease),
  };
}

function parsePort(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

function clientAddress(req: IncomingMessage): string {
  return (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
}

/** An address as a URL's host: an IPv6 one in brackets. */
function urlHost(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

/** The same address, whatever the IPv6 spelling (`::1` and `0:0:0:0:0:0:0:1`). */
function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  const x = parseIpv6(a);
  const y = parseIpv6(b);
  return x !== undefined && y !== undefined && x.every((g, i) => g === y[i]);
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': String(bytes.length), Connection: 'close' });
  res.end(bytes);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}
