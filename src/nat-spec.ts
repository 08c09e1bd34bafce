/**
 * The grammar of NAT spec strings (`any`, `pmp:192.168.1.1`, `upnp:http://…`), apart from the
 * backends they name: {@link parseNat} turns a spec into a NAT source, and the `rxnat` command
 * reads the spec first, then loads only the backend it names.
 *
 * @packageDocumentation
 */
import { isIpAddress } from './core/address.js';
import { NatSpecError } from './errors.js';

/**
 * What a NAT spec asks for, checked but not yet connected to a backend. `family: 'ipv6'`
 * (`any6`, `pcp6`, or an IPv6 gateway address): IPv6 firewall openings instead of IPv4
 * port forwarding.
 */
export type NatSpec =
  | { readonly mechanism: 'none' }
  /** `gateway` set (`any:<IP>`, as go-ethereum accepts): PCP and NAT-PMP ask it, UPnP prefers it. */
  | { readonly mechanism: 'any'; readonly gateway?: string; readonly family?: 'ipv6' }
  /** UPnP IPv6 firewall pinholes: `descriptionUrl` set: that description; unset: discovery's UPnP firewall contestant. */
  | { readonly mechanism: 'pinhole'; readonly descriptionUrl?: string }
  | { readonly mechanism: 'extip'; readonly ip: string }
  /** `descriptionUrl` set: that device description, no SSDP; `gateway` set: SSDP, preferring that router. */
  | { readonly mechanism: 'upnp'; readonly descriptionUrl?: string; readonly gateway?: string }
  /** The external address from STUN (`server`: `host[:port]`, default: a public server list); mappings do nothing. */
  | { readonly mechanism: 'stun'; readonly server?: string }
  /** `gateway` unset: the `gateway` option, else the default gateway. */
  | { readonly mechanism: 'pmp'; readonly gateway?: string }
  | { readonly mechanism: 'pcp'; readonly gateway?: string; readonly family?: 'ipv6' };

/**
 * Reads a NAT spec string (names are not case-sensitive; see {@link parseNat} for the table).
 * Anything else throws a {@link NatSpecError} naming the spec.
 *
 * @example
 * ```ts
 * parseNatSpec('NAT-PMP:192.168.1.1'); // { mechanism: 'pmp', gateway: '192.168.1.1' }
 * parseNatSpec('off');                 // { mechanism: 'none' }
 * parseNatSpec('pcp:[fe80::1%eth0]');   // { mechanism: 'pcp', gateway: 'fe80::1%eth0', family: 'ipv6' }
 * parseNatSpec('any6');                 // { mechanism: 'any', family: 'ipv6' }
 * ```
 */
export function parseNatSpec(spec: string): NatSpec {
  if (typeof spec !== 'string') throw new NatSpecError(String(spec), 'a NAT spec must be a string');
  const trimmed = spec.trim();
  const colon = trimmed.indexOf(':');
  const mechanism = (colon < 0 ? trimmed : trimmed.slice(0, colon)).toLowerCase();
  const argument = colon < 0 ? undefined : trimmed.slice(colon + 1);
  const noArgument = (): void => {
    if (argument !== undefined) throw new NatSpecError(spec, `NAT spec "${spec}": "${mechanism}" takes no argument`);
  };
  const ipArgument = (required: boolean): string | undefined => {
    if (argument === undefined || argument === '') {
      if (required) throw new NatSpecError(spec, `NAT spec "${spec}": "${mechanism}" needs an IP address, as in ${mechanism}:203.0.113.7`);
      return undefined;
    }
    if (!isIpAddress(argument)) throw new NatSpecError(spec, `NAT spec "${spec}": "${argument}" is not an IP address`);
    return argument;
  };
  // An IPv6 router: bracketed or not, with a zone for a link-local one (`[fe80::1%eth0]`).
  const gatewayArgument = (): string | undefined => {
    const bracketed = argument !== undefined && /^\[.*\]$/.test(argument) ? argument.slice(1, -1) : undefined;
    const text = bracketed ?? argument;
    const zone = text === undefined ? -1 : text.indexOf('%');
    if (text === undefined || zone < 0) {
      if (bracketed !== undefined && !(isIpAddress(bracketed) && bracketed.includes(':'))) {
        throw new NatSpecError(spec, `NAT spec "${spec}": "${bracketed}" in brackets is not an IPv6 address`);
      }
      return bracketed ?? ipArgument(false);
    }
    const address = text.slice(0, zone);
    const iface = text.slice(zone + 1);
    if (!isIpAddress(address) || !address.includes(':') || !/^[0-9A-Za-z._-]{1,64}$/.test(iface)) {
      throw new NatSpecError(spec, `NAT spec "${spec}": "${text}" is not an IPv6 address with a zone (as in fe80::1%eth0)`);
    }
    return text;
  };
  const gateway = (): { gateway?: string; family?: 'ipv6' } => {
    const ip = gatewayArgument();
    return ip === undefined ? {} : ip.includes(':') ? { gateway: ip, family: 'ipv6' } : { gateway: ip };
  };
  const ipv6Gateway = (): { gateway?: string; family: 'ipv6' } => {
    const ip = gatewayArgument();
    if (ip !== undefined && !ip.includes(':')) throw new NatSpecError(spec, `NAT spec "${spec}": "${mechanism}" is IPv6; "${ip}" is an IPv4 address`);
    return ip === undefined ? { family: 'ipv6' } : { gateway: ip, family: 'ipv6' };
  };
  const descriptionUrl = (): string => {
    let url: URL;
    try {
      url = new URL(argument!);
    } catch {
      throw new NatSpecError(spec, `NAT spec "${spec}": "${argument}" is not a URL`);
    }
    if (url.protocol !== 'http:') throw new NatSpecError(spec, `NAT spec "${spec}": the description URL must be http:`);
    return url.href;
  };
  switch (mechanism) {
    case '':
    case 'none':
    case 'off':
      noArgument();
      return { mechanism: 'none' };
    case 'any':
    case 'auto':
    case 'on':
      // go-ethereum reads an IP after any mechanism's colon; here it names the gateway.
      return { mechanism: 'any', ...gateway() };
    case 'any6':
      return { mechanism: 'any', ...ipv6Gateway() };
    case 'pinhole':
    case 'upnp6':
      return argument === undefined || argument === '' ? { mechanism: 'pinhole' } : { mechanism: 'pinhole', descriptionUrl: descriptionUrl() };
    case 'extip':
    case 'ip':
      return { mechanism: 'extip', ip: ipArgument(true)! };
    case 'upnp': {
      if (argument === undefined || argument === '') return { mechanism: 'upnp' };
      // `upnp:<IP>` (go-ethereum accepts and ignores it): search that router and prefer it.
      if (isIpAddress(argument)) return { mechanism: 'upnp', gateway: argument };
      return { mechanism: 'upnp', descriptionUrl: descriptionUrl() };
    }
    case 'pmp':
    case 'natpmp':
    case 'nat-pmp': {
      // NAT-PMP is IPv4 only.
      const ip = ipArgument(false);
      return ip === undefined ? { mechanism: 'pmp' } : { mechanism: 'pmp', gateway: ip };
    }
    case 'pcp':
      return { mechanism: 'pcp', ...gateway() };
    case 'pcp6':
      return { mechanism: 'pcp', ...ipv6Gateway() };
    case 'stun': {
      if (argument === undefined || argument === '') return { mechanism: 'stun' };
      if (!/^(\[[0-9a-fA-F:.]+\]|[0-9A-Za-z._-]+)(:\d{1,5})?$/.test(argument) && !isIpAddress(argument)) {
        throw new NatSpecError(spec, `NAT spec "${spec}": "${argument}" is not a STUN server (host[:port])`);
      }
      return { mechanism: 'stun', server: argument };
    }
    default:
      throw new NatSpecError(spec, `unknown NAT mechanism "${mechanism}" in "${spec}": use none, any[:<IP>], any6[:<IPv6>], extip:<IP>, upnp[:<URL or IP>], pinhole[:<URL>], pmp[:<IP>], pcp[:<IP>], pcp6[:<IPv6>] or stun[:<host:port>]`);
  }
}
