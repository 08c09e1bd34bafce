/**
 * The external address learned by STUN (RFC 8489 Binding), as a {@link Nat} whose mapping calls
 * do nothing: go-ethereum's `stun` NAT spec. For hosts that are reachable on the address a STUN
 * server sees (a public address, a 1:1 NAT, ports forwarded by hand) but should not have to be
 * told it, as with `extip:<IP>`.
 *
 * @packageDocumentation
 */
import { catchError, defer, EMPTY, map, type Observable, throwError } from 'rxjs';
import { debugLogger, type Logger } from '../../core/logger.js';
import type { Nat } from '../../core/nat.js';
import { InvalidOptionError, NoGatewayError, ProtocolError, type BackendFailure } from '../../errors.js';
import { createTransport, nodeTransport, type Transport } from '../../transport/transport.js';
import { exponentialBackoff } from '../../transport/udp.js';
import { decodeStunBindingResponse, encodeStunBindingRequest, isStunAnswerTo, STUN_DEFAULT_PORT, STUN_TRANSACTION_ID_LENGTH } from './codec.js';

/**
 * Public STUN servers asked when none is given (a few long-lived, widely used ones; go-ethereum
 * embeds a longer list). Each lookup asks up to {@link StunOptions.attempts} of them in turn, in
 * a random order.
 */
export const DEFAULT_STUN_SERVERS: readonly string[] = Object.freeze([
  'stun.l.google.com:19302',
  'stun1.l.google.com:19302',
  'stun.cloudflare.com:3478',
  'stun.nextcloud.com:3478',
]);

/**
 * Options of {@link stun}.
 *
 * @example
 * ```ts
 * stun('127.0.0.1:3478', { timeoutMs: 500 });
 * ```
 */
export interface StunOptions {
  /** Servers to choose from when no server is given. Default {@link DEFAULT_STUN_SERVERS}. */
  readonly servers?: readonly string[];
  /** How many servers one lookup asks, one after the other, before it fails. Default 3 (as go-ethereum). */
  readonly attempts?: number;
  /** How long one server is given, retransmissions included (500 ms, then doubling), in ms. Default 3000. */
  readonly timeoutMs?: number;
  /** Local address to send from. Default: any. */
  readonly localAddress?: string;
  /** The I/O (UDP exchange, scheduler). Default: the real sockets. */
  readonly transport?: Partial<Transport>;
  /** Where each request and failure is logged (namespace `rxnat:stun`). Default: the `DEBUG=rxnat:*` logger. */
  readonly logger?: Logger;
  /** Random source of the server order and the transaction IDs. Default `Math.random`. */
  readonly random?: () => number;
}

/**
 * A STUN server as {@link parseStunServer} reads it.
 *
 * @example
 * ```ts
 * const server: StunServer = { host: 'stun.example.net', port: 3478, text: 'stun.example.net:3478' };
 * ```
 */
export interface StunServer {
  /** Host name, IPv4 or IPv6 address (without brackets). */
  readonly host: string;
  readonly port: number;
  /** `host:port`, IPv6 in brackets: how logs and errors name it. */
  readonly text: string;
}

/**
 * Parses `host[:port]`, `[v6]:port` or a bare IPv6 address; `null` when it is none of them.
 *
 * @example
 * ```ts
 * parseStunServer('[::1]:3478'); // { host: '::1', port: 3478, text: '[::1]:3478' }
 * ```
 */
export function parseStunServer(text: string): StunServer | null {
  if (typeof text !== 'string') return null;
  const trimmed = text.trim();
  let host: string;
  let portText: string | undefined;
  const bracket = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracket) {
    host = bracket[1]!;
    portText = bracket[2];
  } else if ((trimmed.match(/:/g) ?? []).length > 1) {
    if (!/^[0-9a-fA-F:.]+$/.test(trimmed)) return null;
    host = trimmed; // a bare IPv6 address
  } else {
    const colon = trimmed.indexOf(':');
    host = colon < 0 ? trimmed : trimmed.slice(0, colon);
    portText = colon < 0 ? undefined : trimmed.slice(colon + 1);
  }
  if (host === '' || !/^[0-9A-Za-z.:_-]+$/.test(host)) return null;
  if (portText !== undefined && !/^\d{1,5}$/.test(portText)) return null;
  const port = portText === undefined ? STUN_DEFAULT_PORT : Number(portText);
  if (port < 1 || port > 65535) return null;
  return { host, port, text: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}` };
}

/**
 * A NAT source that asks STUN servers for this host's external address. It emits one
 * {@link Nat} (kind `stun`) once a server answered, and errors with a {@link NoGatewayError}
 * listing each server's failure when none did. The Nat's mappings cost nothing and grant the
 * port asked for (as `extip`); its `externalIp()` asks again each time it is called.
 *
 * @param server `host[:port]` (default port 3478); default: up to three of `options.servers`.
 *
 * @example
 * ```ts
 * mapPort(stun('203.0.113.1:3478'), { protocol: 'udp', internalPort: 30303 }).subscribe((s) => console.log(s.externalIp));
 * ```
 */
export function stun(server?: string, options: StunOptions = {}): Observable<Nat> {
  return defer(() => {
    const settings = resolve(server, options);
    return lookup(settings).pipe(
      map((ip): Nat => {
        let known = ip;
        return {
          name: server === undefined ? 'stun' : `stun(${settings.servers[0]!.text})`,
          kind: 'stun',
          gateway: null,
          maxConcurrentRequests: Infinity,
          addMapping: (request) =>
            defer(() => [
              {
                protocol: request.protocol,
                internalPort: request.internalPort,
                externalPort: request.externalPort,
                lifetimeSeconds: request.lifetimeSeconds,
                externalIp: known,
              },
            ]),
          deleteMapping: () => EMPTY,
          externalIp: () =>
            lookup(settings).pipe(
              map((next) => {
                known = next;
                return next;
              }),
            ),
        };
      }),
    );
  });
}

interface Settings {
  readonly servers: readonly StunServer[];
  readonly attempts: number;
  readonly timeoutMs: number;
  readonly localAddress: string | undefined;
  readonly transport: Transport;
  readonly logger: Logger;
  readonly random: () => number;
}

function resolve(server: string | undefined, options: StunOptions): Settings {
  const texts = server !== undefined ? [server] : (options.servers ?? DEFAULT_STUN_SERVERS);
  if (!Array.isArray(texts) || texts.length === 0) throw new InvalidOptionError('servers', 'servers must be a non-empty list of host[:port]');
  const servers = texts.map((text) => {
    const parsed = parseStunServer(text);
    if (parsed === null) throw new InvalidOptionError('servers', `${JSON.stringify(text)} is not a STUN server (host[:port])`);
    return parsed;
  });
  const attempts = options.attempts ?? 3;
  if (!Number.isInteger(attempts) || attempts < 1) throw new InvalidOptionError('attempts', 'attempts must be a whole number ≥ 1');
  const timeoutMs = options.timeoutMs ?? 3000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new InvalidOptionError('timeoutMs', 'timeoutMs must be a positive number of ms');
  return {
    servers,
    attempts: Math.min(attempts, servers.length),
    timeoutMs,
    localAddress: options.localAddress,
    transport: options.transport ? createTransport(options.transport) : nodeTransport,
    logger: options.logger ?? debugLogger,
    random: options.random ?? Math.random,
  };
}

/** Asks up to `attempts` servers, in a random order, one after the other; the first address wins. */
function lookup(settings: Settings): Observable<string> {
  return defer(() => {
    const order = shuffled(settings.servers, settings.random).slice(0, settings.attempts);
    const failures: BackendFailure[] = [];
    const next = (index: number): Observable<string> => {
      if (index >= order.length) return throwError(() => new NoGatewayError(failures));
      const server = order[index]!;
      return ask(server, settings).pipe(
        catchError((error: unknown) => {
          const failure = error instanceof Error ? error : new Error(String(error));
          settings.logger.debug('rxnat:stun', `${server.text} failed: ${failure.message}`);
          failures.push({ backend: `stun(${server.text})`, error: failure });
          return next(index + 1);
        }),
      );
    };
    return next(0);
  });
}

/** One Binding transaction with one server. */
function ask(server: StunServer, settings: Settings): Observable<string> {
  return defer(() => {
    const id = new Uint8Array(STUN_TRANSACTION_ID_LENGTH);
    for (let i = 0; i < id.length; i++) id[i] = Math.floor(settings.random() * 256) & 0xff;
    let answer: ReturnType<typeof decodeStunBindingResponse> | undefined;
    settings.logger.debug('rxnat:stun', `Binding request to ${server.text}`);
    return settings.transport
      .udpExchange({
        protocol: 'stun',
        host: server.host,
        port: server.port,
        message: encodeStunBindingRequest(id),
        // Datagrams of other transactions are dropped; a malformed answer to ours is kept to be reported.
        accept: (message) => {
          if (!isStunAnswerTo(message, id)) return false;
          answer = decodeStunBindingResponse(message, id, server.text);
          return true;
        },
        timeoutMs: settings.timeoutMs,
        retransmit: exponentialBackoff({ initialMs: 500 }),
        scheduler: settings.transport.scheduler,
        ...(settings.localAddress !== undefined ? { localAddress: settings.localAddress } : {}),
      })
      .pipe(
        map(() => {
          const decoded = answer!;
          if (decoded instanceof ProtocolError) throw decoded;
          if (decoded.kind === 'error') {
            throw new ProtocolError('stun', 'refused', `refused the Binding request: ${decoded.code} ${decoded.reason}`, server.text);
          }
          return decoded.address;
        }),
      );
  });
}

/** A copy of `items` in a random order (Fisher-Yates). */
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
