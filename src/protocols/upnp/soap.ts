/**
 * SOAP codec for the IGD WAN connection actions (WANIPConnection:1/2, WANPPPConnection:1):
 * requests, responses and `UPnPError` faults, both directions (the simulator uses the server
 * side). Pure.
 *
 * @packageDocumentation
 */
import { isIpv4 } from '../../core/address.js';
import type { MappingProtocol, PortMappingEntry } from '../../core/nat.js';
import { GatewayError, ProtocolError } from '../../errors.js';
import { attribute, child, escapeXml, parseXml, type XmlElement } from './xml.js';
import { externalAddressError } from '../answer-check.js';

/**
 * The SOAP 1.1 envelope namespace.
 *
 * @example
 * ```ts
 * `<s:Envelope xmlns:s="${SOAP_ENVELOPE_NS}">`;
 * ```
 */
export const SOAP_ENVELOPE_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
/**
 * The SOAP 1.1 encoding style UPnP requires.
 *
 * @example
 * ```ts
 * `<s:Envelope xmlns:s="${SOAP_ENVELOPE_NS}" s:encodingStyle="${SOAP_ENCODING_STYLE}">`;
 * ```
 */
export const SOAP_ENCODING_STYLE = 'http://schemas.xmlsoap.org/soap/encoding/';
/**
 * The `Content-Type` of SOAP requests and responses.
 *
 * @example
 * ```ts
 * res.writeHead(200, { 'Content-Type': SOAP_CONTENT_TYPE });
 * ```
 */
export const SOAP_CONTENT_TYPE = 'text/xml; charset="utf-8"';

/**
 * The actions rxnat sends.
 *
 * @example
 * ```ts
 * const action: UpnpAction = 'AddPortMapping';
 * ```
 */
export type UpnpAction =
  | 'AddPortMapping'
  | 'AddAnyPortMapping'
  | 'DeletePortMapping'
  | 'GetExternalIPAddress'
  | 'GetSpecificPortMappingEntry'
  | 'GetGenericPortMappingEntry'
  | 'GetStatusInfo';

/**
 * UPnP error codes met on IGDs and their names (UDA §3.2.2, WANIPConnection:2 §2.5).
 *
 * @example
 * ```ts
 * UPNP_ERROR_NAMES[718]; // 'ConflictInMappingEntry'
 * ```
 */
export const UPNP_ERROR_NAMES: Readonly<Record<number, string>> = Object.freeze({
  401: 'InvalidAction',
  402: 'InvalidArgs',
  501: 'ActionFailed',
  600: 'ArgumentValueInvalid',
  601: 'ArgumentValueOutOfRange',
  606: 'ActionNotAuthorized',
  713: 'SpecifiedArrayIndexInvalid',
  714: 'NoSuchEntryInArray',
  715: 'WildCardNotPermittedInSrcIP',
  716: 'WildCardNotPermittedInExtPort',
  718: 'ConflictInMappingEntry',
  724: 'SamePortValuesRequired',
  725: 'OnlyPermanentLeasesSupported',
  726: 'RemoteHostOnlySupportsWildcard',
  727: 'ExternalPortOnlySupportsWildcard',
  728: 'NoPortMapsAvailable',
  729: 'ConflictWithOtherMechanisms',
  732: 'WildCardNotPermittedInIntPort',
});

/**
 * The name of a UPnP error code (`UPnPError<code>` when unknown).
 *
 * @example
 * ```ts
 * upnpErrorName(725); // 'OnlyPermanentLeasesSupported'
 * ```
 */
export function upnpErrorName(code: number): string {
  return Object.prototype.hasOwnProperty.call(UPNP_ERROR_NAMES, code) ? (UPNP_ERROR_NAMES[code] as string) : `UPnPError${code}`;
}

/**
 * An encoded SOAP request: POST `body` with `headers` to the service's control URL.
 *
 * @example
 * ```ts
 * const request = encodeGetExternalIPAddress('urn:schemas-upnp-org:service:WANIPConnection:2');
 * console.log(request.headers.SOAPAction); // "urn:schemas-upnp-org:service:WANIPConnection:2#GetExternalIPAddress"
 * ```
 */
export interface SoapRequest {
  readonly action: string;
  readonly serviceType: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * Arguments in the order the action's SCPD lists them.
 *
 * @example
 * ```ts
 * const args: SoapArguments = [['NewPortMappingIndex', 0]];
 * ```
 */
export type SoapArguments = ReadonlyArray<readonly [name: string, value: string | number]>;

/**
 * Encodes any SOAP action request; arguments are XML-escaped.
 *
 * @example
 * ```ts
 * encodeSoapRequest('urn:schemas-upnp-org:service:WANIPConnection:1', 'GetStatusInfo', []);
 * ```
 */
export function encodeSoapRequest(serviceType: string, action: string, args: SoapArguments): SoapRequest {
  const inner = args.map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`).join('');
  const body =
    `<?xml version="1.0" encoding="utf-8"?>\r\n` +
    `<s:Envelope xmlns:s="${SOAP_ENVELOPE_NS}" s:encodingStyle="${SOAP_ENCODING_STYLE}">` +
    `<s:Body><u:${action} xmlns:u="${escapeXml(serviceType)}">${inner}</u:${action}></s:Body></s:Envelope>\r\n`;
  return {
    action,
    serviceType,
    headers: { 'Content-Type': SOAP_CONTENT_TYPE, SOAPAction: `"${serviceType}#${action}"` },
    body,
  };
}

/**
 * The arguments of AddPortMapping and AddAnyPortMapping.
 *
 * @example
 * ```ts
 * const args: PortMappingArguments = { externalPort: 8080, protocol: 'tcp', internalPort: 8080,
 *   internalClient: '192.168.1.10', description: 'rxnat', leaseDurationSeconds: 60 };
 * ```
 */
export interface PortMappingArguments {
  /** `NewRemoteHost`; empty (the default) is the wildcard. */
  readonly remoteHost?: string;
  readonly externalPort: number;
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly internalClient: string;
  /** `NewEnabled`. Default true. */
  readonly enabled?: boolean;
  readonly description: string;
  /** `NewLeaseDuration` in seconds; 0 asks for a permanent (IGDv1) or maximal (IGDv2) lease. */
  readonly leaseDurationSeconds: number;
}

/**
 * Identifies one mapping: DeletePortMapping and GetSpecificPortMappingEntry arguments.
 *
 * @example
 * ```ts
 * encodeDeletePortMapping(serviceType, { externalPort: 8080, protocol: 'tcp' });
 * ```
 */
export interface PortMappingKey {
  readonly remoteHost?: string;
  readonly externalPort: number;
  readonly protocol: MappingProtocol;
}

const wireProtocol = (protocol: MappingProtocol): string => (protocol === 'udp' ? 'UDP' : 'TCP');

function mappingArgs(args: PortMappingArguments): SoapArguments {
  return [
    ['NewRemoteHost', args.remoteHost ?? ''],
    ['NewExternalPort', args.externalPort],
    ['NewProtocol', wireProtocol(args.protocol)],
    ['NewInternalPort', args.internalPort],
    ['NewInternalClient', args.internalClient],
    ['NewEnabled', args.enabled === false ? 0 : 1],
    ['NewPortMappingDescription', args.description],
    ['NewLeaseDuration', args.leaseDurationSeconds],
  ];
}

const keyArgs = (key: PortMappingKey): SoapArguments => [
  ['NewRemoteHost', key.remoteHost ?? ''],
  ['NewExternalPort', key.externalPort],
  ['NewProtocol', wireProtocol(key.protocol)],
];

/**
 * Encodes AddPortMapping.
 *
 * @example
 * ```ts
 * encodeAddPortMapping(serviceType, { externalPort: 8080, protocol: 'tcp', internalPort: 8080,
 *   internalClient: '192.168.1.10', description: 'rxnat', leaseDurationSeconds: 60 });
 * ```
 */
export function encodeAddPortMapping(serviceType: string, args: PortMappingArguments): SoapRequest {
  return encodeSoapRequest(serviceType, 'AddPortMapping', mappingArgs(args));
}

/**
 * Encodes AddAnyPortMapping (WANIPConnection:2): the gateway picks a free external port if the
 * suggested one is taken, and answers it in `NewReservedPort`.
 *
 * @example
 * ```ts
 * encodeAddAnyPortMapping(serviceType, { externalPort: 8080, protocol: 'udp', internalPort: 8080,
 *   internalClient: '192.168.1.10', description: 'rxnat', leaseDurationSeconds: 60 });
 * ```
 */
export function encodeAddAnyPortMapping(serviceType: string, args: PortMappingArguments): SoapRequest {
  return encodeSoapRequest(serviceType, 'AddAnyPortMapping', mappingArgs(args));
}

/**
 * Encodes DeletePortMapping.
 *
 * @example
 * ```ts
 * encodeDeletePortMapping(serviceType, { externalPort: 8080, protocol: 'tcp' });
 * ```
 */
export function encodeDeletePortMapping(serviceType: string, key: PortMappingKey): SoapRequest {
  return encodeSoapRequest(serviceType, 'DeletePortMapping', keyArgs(key));
}

/**
 * Encodes GetExternalIPAddress.
 *
 * @example
 * ```ts
 * encodeGetExternalIPAddress(serviceType);
 * ```
 */
export function encodeGetExternalIPAddress(serviceType: string): SoapRequest {
  return encodeSoapRequest(serviceType, 'GetExternalIPAddress', []);
}

/**
 * Encodes GetSpecificPortMappingEntry.
 *
 * @example
 * ```ts
 * encodeGetSpecificPortMappingEntry(serviceType, { externalPort: 8080, protocol: 'udp' });
 * ```
 */
export function encodeGetSpecificPortMappingEntry(serviceType: string, key: PortMappingKey): SoapRequest {
  return encodeSoapRequest(serviceType, 'GetSpecificPortMappingEntry', keyArgs(key));
}

/**
 * Encodes GetGenericPortMappingEntry (the table's entry at `index`, from 0).
 *
 * @example
 * ```ts
 * encodeGetGenericPortMappingEntry(serviceType, 0);
 * ```
 */
export function encodeGetGenericPortMappingEntry(serviceType: string, index: number): SoapRequest {
  return encodeSoapRequest(serviceType, 'GetGenericPortMappingEntry', [['NewPortMappingIndex', index]]);
}

/**
 * Encodes GetStatusInfo.
 *
 * @example
 * ```ts
 * encodeGetStatusInfo(serviceType);
 * ```
 */
export function encodeGetStatusInfo(serviceType: string): SoapRequest {
  return encodeSoapRequest(serviceType, 'GetStatusInfo', []);
}

/**
 * A successful action response: the output arguments by local name (text trimmed).
 *
 * @example
 * ```ts
 * if (decoded.kind === 'response') console.log(decoded.values.get('NewExternalIPAddress'));
 * ```
 */
export interface SoapResponse {
  readonly kind: 'response';
  readonly action: string;
  readonly values: ReadonlyMap<string, string>;
}

/**
 * A `UPnPError` fault.
 *
 * @example
 * ```ts
 * if (decoded.kind === 'fault' && decoded.errorCode === 718) console.log('port taken');
 * ```
 */
export interface SoapFault {
  readonly kind: 'fault';
  readonly errorCode: number;
  readonly errorDescription: string;
  readonly faultString: string;
}

/**
 * Options of {@link decodeSoapResponse}.
 *
 * @example
 * ```ts
 * decodeSoapResponse(body, 'GetStatusInfo', { status: 500, gateway: controlUrl });
 * ```
 */
export interface DecodeSoapOptions {
  /** HTTP status, only used in error messages: faults are decoded under 200 and 500 alike. */
  readonly status?: number;
  /** The control URL, named in errors. */
  readonly gateway?: string;
  /** Largest body accepted. Default 1 MiB. */
  readonly maxBytes?: number;
}

/**
 * Decodes a SOAP answer to `action`, whatever the HTTP status: the action's response, a
 * `UPnPError` fault, or a {@link ProtocolError} with reason `empty`, `not-soap`, `bad-fault`,
 * `unexpected-response` or one of the XML reader's. Never throws.
 *
 * @example
 * ```ts
 * const decoded = decodeSoapResponse(body, 'GetExternalIPAddress', { status: 200 });
 * ```
 */
export function decodeSoapResponse(body: string, action: string, options: DecodeSoapOptions = {}): SoapResponse | SoapFault | ProtocolError {
  const gateway = options.gateway;
  const status = options.status !== undefined ? ` (HTTP ${options.status})` : '';
  if (body.trim() === '') return new ProtocolError('upnp', 'empty', `empty SOAP answer to ${action}${status}`, gateway);
  const root = parseXml(body, { ...(gateway !== undefined ? { gateway } : {}), ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}) });
  if (root instanceof ProtocolError) return root;
  const soapBody = root.name === 'Envelope' ? child(root, 'Body') : undefined;
  if (!soapBody) return new ProtocolError('upnp', 'not-soap', `answer to ${action} is not a SOAP envelope${status}`, gateway);
  const fault = child(soapBody, 'Fault');
  if (fault) return decodeFault(fault, action, gateway);
  const response = child(soapBody, `${action}Response`);
  if (!response) {
    const got = soapBody.children[0]?.qname ?? 'nothing';
    return new ProtocolError('upnp', 'unexpected-response', `expected ${action}Response, got ${got}${status}`, gateway);
  }
  return { kind: 'response', action, values: valuesOf(response) };
}

function decodeFault(fault: XmlElement, action: string, gateway: string | undefined): SoapFault | ProtocolError {
  const faultString = child(fault, 'faultstring')?.text.trim() ?? '';
  const detail = child(fault, 'detail');
  const upnpError = detail ? child(detail, 'UPnPError') : undefined;
  const codeText = upnpError ? child(upnpError, 'errorCode')?.text.trim() : undefined;
  if (codeText === undefined || !/^\d{1,4}$/.test(codeText)) {
    return new ProtocolError('upnp', 'bad-fault', `fault without a UPnP errorCode in answer to ${action}${faultString ? `: ${faultString}` : ''}`, gateway);
  }
  return {
    kind: 'fault',
    errorCode: Number(codeText),
    errorDescription: (upnpError && child(upnpError, 'errorDescription')?.text.trim()) ?? '',
    faultString,
  };
}

function valuesOf(element: XmlElement): ReadonlyMap<string, string> {
  const values = new Map<string, string>();
  for (const c of element.children) values.set(c.name, c.text.trim());
  return values;
}

/**
 * Turns a fault into the typed {@link GatewayError} (protocol `upnp`, the UPnP code and name,
 * the control URL as gateway).
 *
 * @example
 * ```ts
 * if (decoded.kind === 'fault') throw faultToError(decoded, controlUrl);
 * ```
 */
export function faultToError(fault: SoapFault, gateway: string, message?: string): GatewayError {
  const detail = message ?? (fault.errorDescription && fault.errorDescription !== upnpErrorName(fault.errorCode) ? fault.errorDescription : undefined);
  return new GatewayError({
    protocol: 'upnp',
    resultCode: fault.errorCode,
    resultName: upnpErrorName(fault.errorCode),
    gateway,
    ...(detail ? { message: detail } : {}),
  });
}

/**
 * Reads GetExternalIPAddress's `NewExternalIPAddress`: a usable IPv4 address, or a
 * {@link ProtocolError} with reason `external-address` when it is missing, empty, not a
 * dotted quad, or cannot be an external address (`0.0.0.0`, which IGDs answer when not
 * connected; loopback, link-local, multicast, reserved: see `externalAddressProblem` in
 * `src/core/address.ts`).
 *
 * @example
 * ```ts
 * readExternalIp(response.values); // '203.0.113.7'
 * ```
 */
export function readExternalIp(values: ReadonlyMap<string, string>, gateway?: string): string | ProtocolError {
  const ip = values.get('NewExternalIPAddress') ?? '';
  if (!isIpv4(ip)) return new ProtocolError('upnp', 'external-address', `GetExternalIPAddress gave no IPv4 address (${JSON.stringify(ip)})`, gateway);
  return externalAddressError('upnp', ip, gateway, 'GetExternalIPAddress') ?? ip;
}

/**
 * Reads AddAnyPortMapping's `NewReservedPort` (1-65535), or a {@link ProtocolError} with reason
 * `external-port` when it is missing, 0 or not a port number.
 *
 * @example
 * ```ts
 * readReservedPort(response.values); // 10001
 * ```
 */
export function readReservedPort(values: ReadonlyMap<string, string>, gateway?: string): number | ProtocolError {
  const port = readPort(values.get('NewReservedPort'));
  return port ?? new ProtocolError('upnp', 'external-port', `AddAnyPortMapping answered no valid NewReservedPort (${JSON.stringify(values.get('NewReservedPort') ?? null)})`, gateway);
}

/**
 * GetStatusInfo's answer.
 *
 * @example
 * ```ts
 * if (readStatusInfo(response.values).connectionStatus === 'Connected') console.log('up');
 * ```
 */
export interface StatusInfo {
  /** `Connected`, `Disconnected`, `Connecting`, `Unconfigured`, ... */
  readonly connectionStatus: string;
  readonly lastConnectionError: string;
  readonly uptimeSeconds: number | undefined;
}

/**
 * Reads GetStatusInfo's output arguments.
 *
 * @example
 * ```ts
 * readStatusInfo(new Map([['NewConnectionStatus', 'Connected']])).connectionStatus; // 'Connected'
 * ```
 */
export function readStatusInfo(values: ReadonlyMap<string, string>): StatusInfo {
  const uptime = values.get('NewUptime');
  return {
    connectionStatus: values.get('NewConnectionStatus') ?? '',
    lastConnectionError: values.get('NewLastConnectionError') ?? '',
    uptimeSeconds: uptime !== undefined && /^\d+$/.test(uptime) ? Number(uptime) : undefined,
  };
}

/**
 * Reads a GetGenericPortMappingEntry or GetSpecificPortMappingEntry answer (the latter does not
 * repeat the key: pass it as `key`). A {@link ProtocolError} with reason `bad-entry` when a
 * field is missing or invalid.
 *
 * @example
 * ```ts
 * readPortMappingEntry(response.values); // { protocol: 'tcp', externalPort: 8080, ... }
 * ```
 */
export function readPortMappingEntry(
  values: ReadonlyMap<string, string>,
  key?: PortMappingKey,
  gateway?: string,
): PortMappingEntry | ProtocolError {
  const bad = (field: string): ProtocolError => new ProtocolError('upnp', 'bad-entry', `port mapping entry with invalid ${field}`, gateway);
  const protocolText = (values.get('NewProtocol') ?? (key ? wireProtocol(key.protocol) : '')).toUpperCase();
  if (protocolText !== 'TCP' && protocolText !== 'UDP') return bad('NewProtocol');
  const externalPort = key?.externalPort ?? readPort(values.get('NewExternalPort'));
  if (externalPort === undefined) return bad('NewExternalPort');
  const internalPort = readPort(values.get('NewInternalPort'));
  if (internalPort === undefined) return bad('NewInternalPort');
  const lease = values.get('NewLeaseDuration') ?? '0';
  if (!/^\d{1,10}$/.test(lease)) return bad('NewLeaseDuration');
  const enabled = (values.get('NewEnabled') ?? '1').toLowerCase();
  return {
    protocol: protocolText === 'UDP' ? 'udp' : 'tcp',
    externalPort,
    internalClient: values.get('NewInternalClient') ?? '',
    internalPort,
    description: values.get('NewPortMappingDescription') ?? '',
    lifetimeSeconds: Number(lease),
    enabled: enabled === '1' || enabled === 'true' || enabled === 'yes',
  };
}

function readPort(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

// ---------------------------------------------------------------------------------------------
// Server side (used by the gateway simulator).

/**
 * A decoded SOAP request (server side).
 *
 * @example
 * ```ts
 * const request = decodeSoapRequest(body, req.headers.soapaction);
 * if (!(request instanceof ProtocolError)) console.log(request.action, request.args.get('NewExternalPort'));
 * ```
 */
export interface DecodedSoapRequest {
  readonly serviceType: string;
  readonly action: string;
  readonly args: ReadonlyMap<string, string>;
}

/**
 * Decodes a SOAP request (server side): the action element of the body, checked against the
 * `SOAPAction` header when given. A {@link ProtocolError} when malformed; never throws.
 *
 * @example
 * ```ts
 * decodeSoapRequest(encodeGetStatusInfo(serviceType).body, `"${serviceType}#GetStatusInfo"`);
 * ```
 */
export function decodeSoapRequest(body: string, soapAction?: string): DecodedSoapRequest | ProtocolError {
  if (body.trim() === '') return new ProtocolError('upnp', 'empty', 'empty SOAP request');
  const root = parseXml(body, { maxBytes: 65_536, maxDepth: 8 });
  if (root instanceof ProtocolError) return root;
  const soapBody = root.name === 'Envelope' ? child(root, 'Body') : undefined;
  const actionElement = soapBody?.children[0];
  if (!actionElement) return new ProtocolError('upnp', 'not-soap', 'request is not a SOAP envelope with an action');
  const serviceType = [...actionElement.attributes].find(([name]) => name.startsWith('xmlns'))?.[1] ?? attribute(actionElement, 'xmlns') ?? '';
  if (soapAction !== undefined) {
    const header = soapAction.trim().replace(/^"|"$/g, '');
    const hash = header.lastIndexOf('#');
    if (hash === -1 || header.slice(hash + 1) !== actionElement.name) {
      return new ProtocolError('upnp', 'soapaction', `SOAPAction ${soapAction} does not match <${actionElement.qname}>`);
    }
  }
  return { serviceType, action: actionElement.name, args: valuesOf(actionElement) };
}

/**
 * Encodes an action response (server side).
 *
 * @example
 * ```ts
 * encodeSoapResponse(serviceType, 'GetExternalIPAddress', [['NewExternalIPAddress', '203.0.113.1']]);
 * ```
 */
export function encodeSoapResponse(serviceType: string, action: string, args: SoapArguments): string {
  const inner = args.map(([name, value]) => `<${name}>${escapeXml(String(value))}</${name}>`).join('');
  return (
    `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="${SOAP_ENVELOPE_NS}" s:encodingStyle="${SOAP_ENCODING_STYLE}">` +
    `<s:Body><u:${action}Response xmlns:u="${escapeXml(serviceType)}">${inner}</u:${action}Response></s:Body></s:Envelope>\r\n`
  );
}

/**
 * Encodes a `UPnPError` fault (server side; sent with HTTP 500).
 *
 * @example
 * ```ts
 * encodeSoapFault(718); // ...<errorCode>718</errorCode><errorDescription>ConflictInMappingEntry</errorDescription>...
 * ```
 */
export function encodeSoapFault(errorCode: number, errorDescription = upnpErrorName(errorCode)): string {
  return (
    `<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="${SOAP_ENVELOPE_NS}" s:encodingStyle="${SOAP_ENCODING_STYLE}">` +
    `<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>` +
    `<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${errorCode}</errorCode>` +
    `<errorDescription>${escapeXml(errorDescription)}</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>\r\n`
  );
}
