import { of, type Observable } from 'rxjs';
import { extIp } from './core/ext-ip.js';
import type { Nat } from './core/nat.js';
import { discoverNat, type DiscoverNatOptions } from './discover.js';
import { pcp } from './protocols/pcp/client.js';
import { pmp } from './protocols/pmp/client.js';
import { stun } from './protocols/stun/client.js';
import { upnp } from './protocols/upnp/client.js';
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
      return discoverNat(parsed.gateway === undefined ? options : { ...options, gateway: parsed.gateway });
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
      return pcp(parsed.gateway ?? options.gateway, options.pcp);
  }
}
