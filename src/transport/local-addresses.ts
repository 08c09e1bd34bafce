/**
 * This host's own IPv6 addresses, as `os.networkInterfaces()` lists them: where an IPv6 firewall
 * opening must be made from when the router is reached by its link-local address (the kernel
 * would pick a link-local source, which the internet cannot reach). The chooser is pure;
 * {@link listGlobalIpv6Addresses} is the only I/O.
 *
 * @packageDocumentation
 */
import { defer, type Observable } from 'rxjs';

/**
 * One address of an interface, as `os.networkInterfaces()` gives it (the fields used here).
 *
 * @example
 * ```ts
 * const entry: InterfaceAddressInfo = { address: '2001:db8::10', family: 'IPv6', internal: false };
 * ```
 */
export interface InterfaceAddressInfo {
  readonly address: string;
  /** `'IPv6'` (Node 18+), or the number 6 (Node 18.0-18.3). */
  readonly family: string | number;
  readonly internal: boolean;
}

/**
 * The global and unique-local IPv6 addresses of interface `iface`, global unicast ones
 * (2000::/3) first, then unique-local (fc00::/7), each group in the order listed; link-local,
 * loopback, multicast, IPv4-mapped and the addresses of internal interfaces left out. Empty when
 * the interface has none (or does not exist).
 *
 * @example
 * ```ts
 * globalIpv6Addresses({ eth0: [{ address: 'fe80::1', family: 'IPv6', internal: false },
 *   { address: 'fd00::10', family: 'IPv6', internal: false }, { address: '2001:db8::10', family: 'IPv6', internal: false }] }, 'eth0');
 * // ['2001:db8::10', 'fd00::10']
 * ```
 */
export function globalIpv6Addresses(interfaces: Readonly<Record<string, readonly InterfaceAddressInfo[] | undefined>>, iface: string): string[] {
  const global: string[] = [];
  const local: string[] = [];
  for (const entry of interfaces[iface] ?? []) {
    if (entry.internal || (entry.family !== 'IPv6' && entry.family !== 6) || entry.address.includes('.')) continue;
    const first = entry.address.startsWith('::') ? 0 : parseInt(entry.address.split(':')[0] ?? '', 16);
    if ((first & 0xe000) === 0x2000) global.push(entry.address);
    else if ((first & 0xfe00) === 0xfc00) local.push(entry.address);
  }
  return [...global, ...local];
}

/**
 * {@link globalIpv6Addresses} of this host's interface `iface`, read when subscribed
 * (`node:os` taken with `process.getBuiltinModule` then, not when rxnat loads).
 *
 * @example
 * ```ts
 * listGlobalIpv6Addresses('eth0').subscribe((addresses) => console.log(addresses[0]));
 * ```
 */
export function listGlobalIpv6Addresses(iface: string): Observable<readonly string[]> {
  return defer(() => [globalIpv6Addresses(process.getBuiltinModule('node:os').networkInterfaces(), iface)]);
}
