import { of, type Observable } from 'rxjs';
import { extIp } from './core/ext-ip.js';
import type { Nat } from './core/nat.js';
import { discoverNat, type DiscoverNatOptions } from './discover.js';
import { pcp } from './protocols/pcp/client.js';
import { pmp } from './protocols/pmp/client.js';
import { stun } from './protocols/stun/client.js';
import { upnp } from './protocols/upnp/client.js';
import { upnpPinhole } from './protocols/upnp/firewall-client.js';
import { parseNatSpec } from './nat-spec.js';

/**
 * Turns a NAT spec string into a NAT source, like go-ethereum's `nat.Parse` (names are not
 * case-sensitive):
 *
 * | spec | result |
 * |---|---|
 * | `""`, `none`, `off` | `null`: no NAT |
 * | `any`, `auto`, `on` (each `:<IP>` optional) | {@link discoverNat}: PCP, NAT-PMP and UPnP raced (at IP, UPnP preferring it) |
 * | `extip:<IP>`, `ip:<IP>` | {@link extIp}: reachable on IP, ports forwarded by hand |
 * | `upnp` | UPnP via SSDP |
 * | `upnp:<description URL>` | UPnP at that device description, no SSDP |
 * | `upnp:<IP>` | UPnP via SSDP, searching and preferring the IGD at IP (go-ethereum accepts it too) |
 * | `stun[:<host[:port]>]` | {@link stun}: the external address a STUN server sees (default: public servers); mappings do nothing, as `extip` |
 * | `pmp`, `natpmp`, `nat-pmp` (each `:<IP>` optional) | NAT-PMP at IP, or the default gateway |
 * | `pcp[:<IP>]` | PCP at IP, or the default gateway |
 * | `any6`, `any6:<IPv6>`, `any:<IPv6>` | {@link discoverNat} with `family: 'ipv6'`: PCP over IPv6 and UPnP pinholes raced (the IPv6 router at IPv6) |
 * | `pcp6`, `pcp6:<IPv6>`, `pcp:<IPv6>` | PCP over IPv6 at that router, or the IPv6 default router |
 * | `pinhole`, `upnp6` | UPnP IPv6 pinholes (WANIPv6FirewallControl:1): discovery's UPnP firewall contestant |
 * | `pinhole:<description URL>`, `upnp6:<URL>` | UPnP IPv6 pinholes at that device description |
 *
 * An IPv6 address may be written in brackets, and a link-local router needs its zone:
 * `pcp:[fe80::1%eth0]`. NAT-PMP is IPv4 only.
 *
 * Anything else throws a {@link NatSpecError} naming the spec (the grammar is
 * {@link parseNatSpec}'s). `options` are passed to the
 * backends (tests use them to point at a simulator on loopback).
 *
 * @example
 * ```ts
 * const nat$ = parseNat('extip:203.0.113.7');
 * if (nat$) mapPort(nat$, { protocol: 'tcp', internalPort: 8080 }).subscribe(console.log);
 * ```
 */
export function parseNat(spec: string, options: DiscoverNatOptions = {}): Observable<Nat> | null {
  const parsed = parseNatSpec(spec);
  switch (parsed.mechanism) {
    case 'none':
      return null;
    case 'any':
      return discoverNat({ ...options, ...(parsed.gateway !== undefined ? { gateway: parsed.gateway } : {}), ...(parsed.family ? { family: parsed.family } : {}) });
    case 'pinhole':
      return parsed.descriptionUrl !== undefined
        ? upnpPinhole({ ...options.pinhole, descriptionUrl: parsed.descriptionUrl })
        : discoverNat({ ...options, family: 'ipv6', backends: ['upnp'] });
    case 'extip':
      return of(extIp(parsed.ip));
    case 'upnp':
      if (parsed.gateway !== undefined) return upnp({ ...options.upnp, gateway: parsed.gateway });
      return upnp(parsed.descriptionUrl === undefined ? options.upnp : { ...options.upnp, descriptionUrl: parsed.descriptionUrl });
    case 'stun':
      return stun(parsed.server, options.stun);
    case 'pmp':
      return pmp(parsed.gateway ?? options.gateway, options.pmp);
    case 'pcp':
      return parsed.family === 'ipv6' || options.family === 'ipv6'
        ? pcp(parsed.gateway ?? ipv6Only(options.gateway), { ...options.pcp, family: 'ipv6' })
        : pcp(parsed.gateway ?? options.gateway, options.pcp);
  }
}

/** An IPv6 gateway option is kept for PCP over IPv6; an IPv4 one is not its router. */
function ipv6Only(gateway: string | undefined): string | undefined {
  return gateway?.includes(':') ? gateway : undefined;
}
