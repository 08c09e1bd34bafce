/**
 * SSDP (UPnP Device Architecture §1.3) codec: M-SEARCH requests and the unicast
 * `HTTP/1.1 200 OK` answers to them. Pure: no sockets.
 *
 * @packageDocumentation
 */
import { ProtocolError } from '../../errors.js';

/**
 * The SSDP multicast group.
 *
 * @example
 * ```ts
 * socket.send(encodeMSearch({ searchTarget: 'ssdp:all' }), SSDP_PORT, SSDP_MULTICAST_ADDRESS);
 * ```
 */
export const SSDP_MULTICAST_ADDRESS = '239.255.255.250';
/**
 * The SSDP port.
 *
 * @example
 * ```ts
 * const target = { address: '192.168.1.1', port: SSDP_PORT };
 * ```
 */
export const SSDP_PORT = 1900;
/**
 * Longest SSDP datagram decoded; real answers are under 1 KiB.
 *
 * @example
 * ```ts
 * if (datagram.length > SSDP_MAX_MESSAGE_BYTES) return;
 * ```
 */
export const SSDP_MAX_MESSAGE_BYTES = 8192;

/**
 * The search targets (ST) rxnat sends, IGDv2 first.
 *
 * @example
 * ```ts
 * encodeMSearch({ searchTarget: IGD_SEARCH_TARGETS[0] });
 * ```
 */
export const IGD_SEARCH_TARGETS: readonly string[] = [
  'urn:schemas-upnp-org:device:InternetGatewayDevice:2',
  'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1',
];

/**
 * The search sent first, alone, to the router on the default route (unicast): IGD:1. Every
 * IGD answers it, an IGDv2 too (UPnP Device Architecture 1.1 §1.3.2: a device answers searches
 * for every version it supports, so IGD:2 devices answer IGD:1 searches; miniupnpc searches
 * IGD:1 first for the same reason), and the description then tells the version. One M-SEARCH
 * instead of ten: a router answers each in turn, and a mapping request waits behind them.
 *
 * @example
 * ```ts
 * encodeMSearch({ searchTarget: IGD_LEAD_SEARCH_TARGETS[0] });
 * ```
 */
export const IGD_LEAD_SEARCH_TARGETS: readonly string[] = ['urn:schemas-upnp-org:device:InternetGatewayDevice:1'];

/**
 * What an M-SEARCH asks.
 *
 * @example
 * ```ts
 * const search: MSearch = { searchTarget: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2', mxSeconds: 1 };
 * ```
 */
export interface MSearch {
  /** The ST header: a device or service type, `upnp:rootdevice` or `ssdp:all`. */
  readonly searchTarget: string;
  /** The MX header: the longest random delay a device may wait before answering, in seconds (1-5). Default 1. */
  readonly mxSeconds?: number;
  /** The HOST header. Default `239.255.255.250:1900`. */
  readonly host?: string;
}

/**
 * Encodes an M-SEARCH request.
 *
 * @example
 * ```ts
 * socket.send(encodeMSearch({ searchTarget: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1' }), 1900, '127.0.0.1');
 * ```
 */
export function encodeMSearch(search: MSearch): Buffer {
  const mx = Math.min(5, Math.max(1, Math.round(search.mxSeconds ?? 1)));
  // Header values keep printable ASCII only: latin1 keeps a character's low byte, so U+010D
  // would otherwise become a CR and inject a header line.
  const st = search.searchTarget.replace(/[^\x20-\x7e]/g, '');
  const host = (search.host ?? `${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}`).replace(/[^\x20-\x7e]/g, '');
  return Buffer.from(
    `M-SEARCH * HTTP/1.1\r\nHOST: ${host}\r\nMAN: "ssdp:discover"\r\nMX: ${mx}\r\nST: ${st}\r\n\r\n`,
    'latin1',
  );
}

/**
 * A decoded answer to an M-SEARCH.
 *
 * @example
 * ```ts
 * const answer = decodeSsdpResponse(datagram);
 * if (!(answer instanceof ProtocolError)) console.log(answer.location, answer.st);
 * ```
 */
export interface SsdpResponse {
  /** LOCATION: the device description URL, as sent (not yet checked). */
  readonly location: string;
  /** ST: the search target answered. */
  readonly st: string;
  /** USN: unique service name (`uuid:...::urn:...`); empty when absent. */
  readonly usn: string;
  /** SERVER, where given. */
  readonly server: string | undefined;
  /** Every header, names lower-cased (last one wins). */
  readonly headers: ReadonlyMap<string, string>;
}

/**
 * Decodes an SSDP answer (`HTTP/1.1 200 OK` and headers, names case-insensitive). Returns a
 * {@link ProtocolError} (protocol `ssdp`) with reason `too-large`, `status`, `malformed`,
 * `no-location` or `no-st`; never throws.
 *
 * @example
 * ```ts
 * decodeSsdpResponse('HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nLOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n');
 * ```
 */
export function decodeSsdpResponse(message: Uint8Array | string, from?: string): SsdpResponse | ProtocolError {
  const fail = (reason: string, text: string): ProtocolError => new ProtocolError('ssdp', reason, text, from);
  if (message.length > SSDP_MAX_MESSAGE_BYTES) return fail('too-large', `answer longer than ${SSDP_MAX_MESSAGE_BYTES} bytes`);
  const text = typeof message === 'string' ? message : Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const head = end === -1 ? text : text.slice(0, end);
  const lines = head.split(/\r?\n/);
  const status = /^HTTP\/1\.[01] +(\d{3})(?: .*)?$/i.exec((lines[0] ?? '').trim());
  if (!status) return fail('malformed', 'not an HTTP response');
  if (status[1] !== '200') return fail('status', `status ${status[1]}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    if (line.trim() === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return fail('malformed', 'header line without a name');
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) return fail('malformed', 'invalid header name');
    headers.set(name, line.slice(colon + 1).trim());
  }
  const location = headers.get('location');
  if (!location) return fail('no-location', 'answer without LOCATION');
  const st = headers.get('st');
  if (!st) return fail('no-st', 'answer without ST');
  return { location, st, usn: headers.get('usn') ?? '', server: headers.get('server'), headers };
}

/**
 * The device part of a USN (`uuid:...`), used to recognise one device answering several STs.
 *
 * @example
 * ```ts
 * usnDevice('uuid:abc::urn:schemas-upnp-org:device:InternetGatewayDevice:2'); // 'uuid:abc'
 * ```
 */
export function usnDevice(usn: string): string {
  const sep = usn.indexOf('::');
  return (sep === -1 ? usn : usn.slice(0, sep)).trim().toLowerCase();
}
