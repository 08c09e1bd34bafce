/**
 * UPnP device descriptions (UDA §2): the device tree, its services, and the choice of the WAN
 * connection service an IGD is controlled through. Pure.
 *
 * @packageDocumentation
 */
import { ProtocolError } from '../../errors.js';
import { child, childText, children, parseXml, type XmlElement } from './xml.js';

/**
 * `WANIPConnection:2` (IGDv2).
 *
 * @example
 * ```ts
 * if (service.serviceType === WAN_IP_CONNECTION_2) console.log('AddAnyPortMapping available');
 * ```
 */
export const WAN_IP_CONNECTION_2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
/**
 * `WANIPConnection:1` (IGDv1).
 *
 * @example
 * ```ts
 * encodeGetStatusInfo(WAN_IP_CONNECTION_1);
 * ```
 */
export const WAN_IP_CONNECTION_1 = 'urn:schemas-upnp-org:service:WANIPConnection:1';
/**
 * `WANPPPConnection:1` (IGDv1, DSL routers).
 *
 * @example
 * ```ts
 * if (service.serviceType === WAN_PPP_CONNECTION_1) console.log('PPP link');
 * ```
 */
export const WAN_PPP_CONNECTION_1 = 'urn:schemas-upnp-org:service:WANPPPConnection:1';

/**
 * `WANIPv6FirewallControl:1` (IGDv2): IPv6 firewall pinholes.
 *
 * @example
 * ```ts
 * const service = firewallControlService(description);
 * if (!(service instanceof ProtocolError)) console.log(service.serviceType === WAN_IPV6_FIREWALL_CONTROL_1);
 * ```
 */
export const WAN_IPV6_FIREWALL_CONTROL_1 = 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1';

/**
 * The WAN connection service types rxnat controls, most preferred first.
 *
 * @example
 * ```ts
 * WAN_CONNECTION_SERVICE_TYPES.indexOf(service.serviceType); // 0 is best
 * ```
 */
export const WAN_CONNECTION_SERVICE_TYPES: readonly string[] = [WAN_IP_CONNECTION_2, WAN_IP_CONNECTION_1, WAN_PPP_CONNECTION_1];

/**
 * A service of a device, URLs resolved to absolute form.
 *
 * @example
 * ```ts
 * description.device.services.forEach((s) => console.log(s.serviceType, s.controlUrl));
 * ```
 */
export interface UpnpService {
  readonly serviceType: string;
  readonly serviceId: string;
  /** Absolute control URL, or `undefined` when missing or unresolvable. */
  readonly controlUrl: string | undefined;
  /** Absolute SCPD URL, where resolvable. */
  readonly scpdUrl: string | undefined;
}

/**
 * A device of a description, with its embedded devices.
 *
 * @example
 * ```ts
 * const walk = (d: UpnpDevice): void => { console.log(d.deviceType); d.devices.forEach(walk); };
 * ```
 */
export interface UpnpDevice {
  readonly deviceType: string;
  readonly friendlyName: string;
  readonly udn: string;
  readonly manufacturer: string;
  readonly modelName: string;
  readonly services: readonly UpnpService[];
  readonly devices: readonly UpnpDevice[];
}

/**
 * A parsed device description.
 *
 * @example
 * ```ts
 * const description = parseDescription(xml, 'http://192.168.1.1:5000/rootDesc.xml');
 * if (!(description instanceof ProtocolError)) console.log(description.device.friendlyName);
 * ```
 */
export interface DeviceDescription {
  /** The URL the description was fetched from. */
  readonly descriptionUrl: string;
  /** The base relative URLs were resolved against (`URLBase`, else the description URL). */
  readonly baseUrl: string;
  /** The root device. */
  readonly device: UpnpDevice;
  /** IGD version of the root device (1 or 2), `undefined` when the root is not an IGD. */
  readonly igdVersion: 1 | 2 | undefined;
}

/**
 * A WAN connection service rxnat can control.
 *
 * @example
 * ```ts
 * const service = chooseWanConnectionService(description);
 * if (!(service instanceof ProtocolError)) console.log(service.serviceType, service.controlUrl);
 * ```
 */
export interface WanConnectionService {
  readonly serviceType: string;
  readonly serviceId: string;
  /** Absolute control URL, on the description's host and port. */
  readonly controlUrl: string;
  /** 2 for WANIPConnection:2 (AddAnyPortMapping available), else 1. */
  readonly version: 1 | 2;
  /** `ip` (WANIPConnection) or `ppp` (WANPPPConnection). */
  readonly kind: 'ip' | 'ppp';
  /** The UDN of the device that holds the service. */
  readonly deviceUdn: string;
}

/**
 * Options of {@link parseDescription}.
 *
 * @example
 * ```ts
 * parseDescription(xml, 'http://192.168.1.1:5000/rootDesc.xml', { rewriteOrigins: ['http://192.168.1.2:5000'] });
 * ```
 */
export interface ParseDescriptionOptions {
  /**
   * Origins (`http://host:port`) whose URLs are rewritten to the description URL's origin: the
   * host a LOCATION named before it was rewritten to the SSDP responder (CARP/VRRP routers).
   */
  readonly rewriteOrigins?: readonly string[];
  /** Largest description accepted, in bytes. Default 1 MiB. */
  readonly maxBytes?: number;
}

/**
 * Parses a device description, walking `deviceList` recursively, and resolves every service URL
 * against `URLBase` (when present) or the description URL. Returns a {@link ProtocolError} with
 * reason from the XML reader, `not-a-description`, or `bad-url`; never throws.
 *
 * @example
 * ```ts
 * const description = parseDescription(xml, 'http://192.168.1.1:5000/rootDesc.xml');
 * ```
 */
export function parseDescription(
  xml: string,
  descriptionUrl: string,
  options: ParseDescriptionOptions = {},
): DeviceDescription | ProtocolError {
  const descUrl = parseUrl(descriptionUrl);
  if (!descUrl || descUrl.protocol !== 'http:') {
    return new ProtocolError('upnp', 'bad-url', `description URL ${descriptionUrl} is not an http: URL`);
  }
  const gateway = descUrl.href;
  const root = parseXml(xml, { gateway, ...(options.maxBytes !== undefined ? { maxBytes: options.maxBytes } : {}) });
  if (root instanceof ProtocolError) return root;
  if (root.name !== 'root') return new ProtocolError('upnp', 'not-a-description', `root element is <${root.qname}>, not <root>`, gateway);
  const deviceElement = child(root, 'device');
  if (!deviceElement) return new ProtocolError('upnp', 'not-a-description', 'no <device> in the description', gateway);
  const rewrite = new Set(options.rewriteOrigins ?? []);
  const rewriteUrl = (url: URL): URL => {
    if (url.protocol === 'http:' && rewrite.has(url.origin)) url.host = descUrl.host;
    return url;
  };
  let base = descUrl;
  const urlBase = childText(root, 'URLBase');
  if (urlBase) {
    const parsed = parseUrl(urlBase, descUrl);
    if (parsed && parsed.protocol === 'http:') base = rewriteUrl(parsed);
  }
  const resolve = (value: string | undefined): string | undefined => {
    if (value === undefined || value === '') return undefined;
    const url = parseUrl(value, base);
    return url ? rewriteUrl(url).href : undefined;
  };
  const device = readDevice(deviceElement, resolve);
  const igd = /^urn:schemas-upnp-org:device:InternetGatewayDevice:(\d+)$/.exec(device.deviceType);
  const igdVersion = igd ? (igd[1] === '1' ? 1 : 2) : undefined;
  return { descriptionUrl: descUrl.href, baseUrl: base.href, device, igdVersion };
}

function readDevice(element: XmlElement, resolve: (value: string | undefined) => string | undefined): UpnpDevice {
  const serviceList = child(element, 'serviceList');
  const deviceList = child(element, 'deviceList');
  return {
    deviceType: childText(element, 'deviceType') ?? '',
    friendlyName: childText(element, 'friendlyName') ?? '',
    udn: childText(element, 'UDN') ?? '',
    manufacturer: childText(element, 'manufacturer') ?? '',
    modelName: childText(element, 'modelName') ?? '',
    services: serviceList
      ? children(serviceList, 'service').map((s) => ({
          serviceType: childText(s, 'serviceType') ?? '',
          serviceId: childText(s, 'serviceId') ?? '',
          controlUrl: resolve(childText(s, 'controlURL')),
          scpdUrl: resolve(childText(s, 'SCPDURL')),
        }))
      : [],
    devices: deviceList ? children(deviceList, 'device').map((d) => readDevice(d, resolve)) : [],
  };
}

/**
 * Every WAN connection service of a description whose control URL stays on the description's
 * host and port, most preferred first (WANIPConnection:2, WANIPConnection:1, WANPPPConnection:1;
 * document order within a type). A {@link ProtocolError} with reason `no-wan-service` when there
 * is none, `foreign-control-url` when the only ones point elsewhere.
 *
 * @example
 * ```ts
 * const services = wanConnectionServices(description);
 * ```
 */
export function wanConnectionServices(description: DeviceDescription): readonly WanConnectionService[] | ProtocolError {
  const found: { service: UpnpService; udn: string }[] = [];
  const walk = (device: UpnpDevice): void => {
    for (const service of device.services) {
      if (WAN_CONNECTION_SERVICE_TYPES.includes(service.serviceType)) found.push({ service, udn: device.udn });
    }
    device.devices.forEach(walk);
  };
  walk(description.device);
  const gateway = description.descriptionUrl;
  if (found.length === 0) {
    return new ProtocolError('upnp', 'no-wan-service', 'the description has no WANIPConnection or WANPPPConnection service', gateway);
  }
  const origin = new URL(description.descriptionUrl).origin;
  const usable: WanConnectionService[] = [];
  let foreign: string | undefined;
  for (const { service, udn } of found) {
    if (service.controlUrl === undefined) continue;
    const url = new URL(service.controlUrl);
    if (url.protocol !== 'http:' || url.origin !== origin) {
      foreign ??= service.controlUrl;
      continue;
    }
    usable.push({
      serviceType: service.serviceType,
      serviceId: service.serviceId,
      controlUrl: service.controlUrl,
      version: service.serviceType === WAN_IP_CONNECTION_2 ? 2 : 1,
      kind: service.serviceType === WAN_PPP_CONNECTION_1 ? 'ppp' : 'ip',
      deviceUdn: udn,
    });
  }
  if (usable.length === 0) {
    return foreign !== undefined
      ? new ProtocolError('upnp', 'foreign-control-url', `control URL ${foreign} is not on the description's host and port`, gateway)
      : new ProtocolError('upnp', 'no-wan-service', 'the WAN connection services have no control URL', gateway);
  }
  const rank = (s: WanConnectionService): number => WAN_CONNECTION_SERVICE_TYPES.indexOf(s.serviceType);
  return usable.map((s, i) => [s, i] as const).sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1]).map(([s]) => s);
}

/**
 * The most preferred WAN connection service (see {@link wanConnectionServices}).
 *
 * @example
 * ```ts
 * const service = chooseWanConnectionService(description);
 * if (service instanceof ProtocolError) throw service;
 * ```
 */
export function chooseWanConnectionService(description: DeviceDescription): WanConnectionService | ProtocolError {
  const services = wanConnectionServices(description);
  return services instanceof ProtocolError ? services : (services[0] as WanConnectionService);
}

/**
 * The IPv6 firewall control service of a description, as a service rxnat can control.
 *
 * @example
 * ```ts
 * const service = firewallControlService(description);
 * if (!(service instanceof ProtocolError)) console.log(service.controlUrl);
 * ```
 */
export interface FirewallControlService {
  /** `urn:schemas-upnp-org:service:WANIPv6FirewallControl:1`. */
  readonly serviceType: string;
  readonly serviceId: string;
  /** Absolute control URL, on the description's host and port. */
  readonly controlUrl: string;
  /** The UDN of the device that holds the service (miniupnpd: the WANConnectionDevice). */
  readonly deviceUdn: string;
}

/**
 * The first WANIPv6FirewallControl:1 service of a description (depth first, document order)
 * whose control URL stays on the description's host and port. A {@link ProtocolError} with
 * reason `no-firewall-service` when the description has none (an IGDv1, or an IGDv2 without
 * IPv6), `foreign-control-url` when the only one points elsewhere.
 *
 * @example
 * ```ts
 * const service = firewallControlService(description);
 * if (service instanceof ProtocolError) throw service;
 * ```
 */
export function firewallControlService(description: DeviceDescription): FirewallControlService | ProtocolError {
  const gateway = description.descriptionUrl;
  const origin = new URL(gateway).origin;
  let foreign: string | undefined;
  let found = false;
  // An explicit stack, not recursion: a hostile description's nesting never grows the call stack.
  const stack: UpnpDevice[] = [description.device];
  while (stack.length > 0) {
    const device = stack.pop()!;
    for (const service of device.services) {
      if (service.serviceType !== WAN_IPV6_FIREWALL_CONTROL_1) continue;
      found = true;
      if (service.controlUrl === undefined) continue;
      const url = new URL(service.controlUrl);
      if (url.protocol !== 'http:' || url.origin !== origin) {
        foreign ??= service.controlUrl;
        continue;
      }
      return { serviceType: service.serviceType, serviceId: service.serviceId, controlUrl: service.controlUrl, deviceUdn: device.udn };
    }
    for (let i = device.devices.length - 1; i >= 0; i--) stack.push(device.devices[i]!);
  }
  if (foreign !== undefined) return new ProtocolError('upnp', 'foreign-control-url', `control URL ${foreign} is not on the description's host and port`, gateway);
  return new ProtocolError(
    'upnp',
    'no-firewall-service',
    found ? 'the WANIPv6FirewallControl service has no control URL' : 'the description has no WANIPv6FirewallControl:1 service (no IPv6 pinholes)',
    gateway,
  );
}

function parseUrl(value: string, base?: URL): URL | undefined {
  try {
    return new URL(value, base);
  } catch {
    return undefined;
  }
}
