import { of, type Observable } from 'rxjs';
import { NatSpecError } from './errors.js';
import { isIpAddress } from './core/address.js';
import { extIp } from './core/ext-ip.js';
import type { Nat } from './core/nat.js';
import { discoverNat, type DiscoverNatOptions } from './discover.js';
import { pcp } from './protocols/pcp/client.js';
import { pmp } from './protocols/pmp/client.js';
import { upnp } from './protocols/upnp/client.js';

/**
 * Turns a NAT spec string into a NAT source, like go-ethereum's `nat.Parse` (names are not
 * case-sensitive):
 *
 * | spec | result |
 * |---|---|
 * | `""`, `none`, `off` | `null`: no NAT |
 * | `any`, `auto`, `on` | {@link discoverNat}: PCP, NAT-PMP and UPnP raced |
 * | `extip:<IP>`, `ip:<IP>` | {@link extIp}: reachable on IP, ports forwarded by hand |
 * | `upnp` | UPnP via SSDP |
 * | `upnp:<description URL>` | UPnP at that device description, no SSDP |
 * | `pmp`, `natpmp`, `nat-pmp` (each `:<IP>` optional) | NAT-PMP at IP, or the default gateway |
 * | `pcp[:<IP>]` | PCP at IP, or the default gateway |
 *
 * Anything else throws a {@link NatSpecError} naming the spec. `options` are passed to the
 * backends (tests use them to point at a simulator on loopback).
 *
 * @example
 * ```ts
 * const nat$ = parseNat('extip:203.0.113.7');
 * if (nat$) mapPort(nat$, { protocol: 'tcp', internalPort: 8080 }).subscribe(console.log);
 * ```
 */
export function parseNat(spec: string, options: DiscoverNatOptions = {}): Observable<Nat> | null {
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
  switch (mechanism) {
    case '':
    case 'none':
    case 'off':
      noArgument();
      return null;
    case 'any':
    case 'auto':
    case 'on':
      noArgument();
      return discoverNat(options);
    case 'extip':
    case 'ip':
      return of(extIp(ipArgument(true)!));
    case 'upnp': {
      if (argument === undefined) return upnp(options.upnp);
      let url: URL;
      try {
        url = new URL(argument);
      } catch {
        throw new NatSpecError(spec, `NAT spec "${spec}": "${argument}" is not a URL`);
      }
      if (url.protocol !== 'http:') throw new NatSpecError(spec, `NAT spec "${spec}": the description URL must be http:`);
      return upnp({ ...options.upnp, descriptionUrl: url.href });
    }
    case 'pmp':
    case 'natpmp':
    case 'nat-pmp':
      return pmp(ipArgument(false) ?? options.gateway, options.pmp);
    case 'pcp':
      return pcp(ipArgument(false) ?? options.gateway, options.pcp);
    default:
      throw new NatSpecError(spec, `unknown NAT mechanism "${mechanism}" in "${spec}": use none, any, extip:<IP>, upnp[:<URL>], pmp[:<IP>] or pcp[:<IP>]`);
  }
}
