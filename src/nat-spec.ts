/**
 * The grammar of NAT spec strings (`any`, `pmp:192.168.1.1`, `upnp:http://…`), apart from the
 * backends they name: {@link parseNat} turns a spec into a NAT source, and the `rxnat` command
 * reads the spec first, then loads only the backend it names.
 *
 * @packageDocumentation
 */
import { isIpAddress } from './core/address.js';
import { NatSpecError } from './errors.js';

/** What a NAT spec asks for, checked but not yet connected to a backend. */
export type NatSpec =
  | { readonly mechanism: 'none' }
  | { readonly mechanism: 'any' }
  | { readonly mechanism: 'extip'; readonly ip: string }
  /** `descriptionUrl` set: that device description, no SSDP. */
  | { readonly mechanism: 'upnp'; readonly descriptionUrl?: string }
  /** `gateway` unset: the `gateway` option, else the default gateway. */
  | { readonly mechanism: 'pmp'; readonly gateway?: string }
  | { readonly mechanism: 'pcp'; readonly gateway?: string };

/**
 * Reads a NAT spec string (names are not case-sensitive; see {@link parseNat} for the table).
 * Anything else throws a {@link NatSpecError} naming the spec.
 *
 * @example
 * ```ts
 * parseNatSpec('NAT-PMP:192.168.1.1'); // { mechanism: 'pmp', gateway: '192.168.1.1' }
 * parseNatSpec('off');                 // { mechanism: 'none' }
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
  const gateway = (): { gateway?: string } => {
    const ip = ipArgument(false);
    return ip === undefined ? {} : { gateway: ip };
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
      noArgument();
      return { mechanism: 'any' };
    case 'extip':
    case 'ip':
      return { mechanism: 'extip', ip: ipArgument(true)! };
    case 'upnp': {
      if (argument === undefined) return { mechanism: 'upnp' };
      let url: URL;
      try {
        url = new URL(argument);
      } catch {
        throw new NatSpecError(spec, `NAT spec "${spec}": "${argument}" is not a URL`);
      }
      if (url.protocol !== 'http:') throw new NatSpecError(spec, `NAT spec "${spec}": the description URL must be http:`);
      return { mechanism: 'upnp', descriptionUrl: url.href };
    }
    case 'pmp':
    case 'natpmp':
    case 'nat-pmp':
      return { mechanism: 'pmp', ...gateway() };
    case 'pcp':
      return { mechanism: 'pcp', ...gateway() };
    default:
      throw new NatSpecError(spec, `unknown NAT mechanism "${mechanism}" in "${spec}": use none, any, extip:<IP>, upnp[:<URL>], pmp[:<IP>] or pcp[:<IP>]`);
  }
}
