/**
 * What kind of address a gateway reported as its external address. Anything but `public`
 * means the mapping is not reachable from the internet as it stands (double NAT, CGNAT).
 */
export type AddressKind = 'public' | 'private' | 'cgnat' | 'loopback' | 'link-local' | 'unspecified' | 'reserved' | 'invalid';

/**
 * Parses a dotted-quad IPv4 address into its four octets; `undefined` when it is not one.
 *
 * The one rule for IPv4 text in rxnat: exactly four decimal octets 0-255, nothing around them,
 * and no leading zeros (`192.168.01.1` is refused, not read as `192.168.1.1`). RFC 6943 §3.1.1
 * calls dotted decimal with leading zeros ambiguous (some readers take `010` as octal 8), and
 * POSIX `inet_pton` (glibc) refuses it too. Every IPv4 parser in the library goes through here.
 *
 * @example
 * ```ts
 * parseIpv4('192.168.1.1'); // [192, 168, 1, 1]
 * parseIpv4('1.2.3');       // undefined
 * ```
 */
export function parseIpv4(text: string): [number, number, number, number] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const octets = parts.map((p) => (/^(0|[1-9]\d{0,2})$/.test(p) ? Number(p) : NaN));
  if (octets.some((o) => !(o >= 0 && o <= 255))) return undefined;
  return octets as [number, number, number, number];
}

/**
 * True for a dotted-quad IPv4 address, by the rule of {@link parseIpv4} (no leading zeros).
 *
 * @example
 * ```ts
 * isIpv4('192.168.1.1');  // true
 * isIpv4('192.168.01.1'); // false
 * isIpv4('::1');          // false
 * ```
 */
export function isIpv4(text: string): boolean {
  return parseIpv4(text) !== undefined;
}

/**
 * The four bytes of a dotted-quad IPv4 address ({@link parseIpv4}'s rule); a `RangeError` when
 * the text is not one.
 *
 * @example
 * ```ts
 * ipv4ToBytes('192.0.2.1'); // Uint8Array [192, 0, 2, 1]
 * ipv4ToBytes('1.2.3');     // throws RangeError
 * ```
 */
export function ipv4ToBytes(text: string): Uint8Array {
  const octets = parseIpv4(text);
  if (!octets) throw new RangeError(`not an IPv4 address: ${text}`);
  return Uint8Array.from(octets);
}

/**
 * The dotted-quad text of the first four bytes.
 *
 * @example
 * ```ts
 * bytesToIpv4(Uint8Array.of(203, 0, 113, 1)); // '203.0.113.1'
 * ```
 */
export function bytesToIpv4(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 4)).join('.');
}

/**
 * True for an IPv4 dotted quad or an IPv6 address (RFC 4291 text forms, without zone).
 *
 * @example
 * ```ts
 * isIpAddress('203.0.113.7'); // true
 * isIpAddress('2001:db8::1'); // true
 * isIpAddress('router.lan');  // false
 * ```
 */
export function isIpAddress(text: string): boolean {
  if (parseIpv4(text)) return true;
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(':')) return false;
  const [head, tail, ...rest] = text.split('::');
  if (rest.length > 0) return false;
  const groups = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const all = [...groups(head), ...groups(tail)];
  const last = all[all.length - 1];
  let count = all.length;
  if (last !== undefined && last.includes('.')) {
    if (!parseIpv4(last)) return false;
    all.pop();
    count += 1;
  }
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  return tail === undefined ? count === 8 : count < 8;
}

/**
 * Classifies an IPv4 address: `public`, or the reason it is not reachable from the internet
 * (`private` RFC 1918, `cgnat` 100.64/10, `loopback`, `link-local`, `unspecified`, `reserved`).
 * Documentation ranges (TEST-NET) count as public so simulated gateways look like real ones.
 *
 * @example
 * ```ts
 * classifyIpv4('10.77.0.2');   // 'private'  (double NAT)
 * classifyIpv4('100.64.1.1');  // 'cgnat'
 * classifyIpv4('203.0.113.7'); // 'public'
 * ```
 */
export function classifyIpv4(text: string): AddressKind {
  const o = parseIpv4(text);
  if (!o) return 'invalid';
  const [a, b] = o;
  if (a === 0) return 'unspecified';
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private';
  if (a === 100 && b >= 64 && b <= 127) return 'cgnat';
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local';
  if (a >= 224) return 'reserved';
  return 'public';
}

/**
 * Parses an IPv6 address (RFC 4291 text forms, an embedded IPv4 tail allowed, no zone) into its
 * eight 16-bit groups; `undefined` when it is not one.
 *
 * @example
 * ```ts
 * parseIpv6('2001:db8::1'); // [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]
 * parseIpv6('::ffff:192.0.2.1'); // [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201]
 * ```
 */
export function parseIpv6(text: string): number[] | undefined {
  if (!isIpAddress(text) || !text.includes(':')) return undefined;
  const [head = '', tail] = text.split('::');
  const expand = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const group of part.split(':')) {
      const v4 = group.includes('.') ? parseIpv4(group) : undefined;
      if (v4) out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      else out.push(parseInt(group, 16));
    }
    return out;
  };
  const left = expand(head);
  const right = tail === undefined ? [] : expand(tail);
  const zeros = 8 - left.length - right.length;
  return tail === undefined ? left : [...left, ...new Array<number>(zeros).fill(0), ...right];
}

/**
 * Classifies an IPv4 or IPv6 address. IPv6: `unspecified` (::), `loopback` (::1), `link-local`
 * (fe80::/10), `reserved` (multicast ff00::/8), `private` (unique local fc00::/7), else `public`;
 * an IPv4-mapped address (::ffff:a.b.c.d) is classified as its IPv4 address.
 *
 * @example
 * ```ts
 * classifyAddress('2001:db8::7'); // 'public'
 * classifyAddress('::');          // 'unspecified'
 * classifyAddress('10.0.0.1');    // 'private'
 * ```
 */
export function classifyAddress(text: string): AddressKind {
  if (parseIpv4(text)) return classifyIpv4(text);
  const groups = parseIpv6(text);
  if (!groups) return 'invalid';
  const [g0 = 0, , , , , g5 = 0, g6 = 0, g7 = 0] = groups;
  if (groups.slice(0, 5).every((g) => g === 0) && g5 === 0xffff) {
    return classifyIpv4(`${g6 >> 8}.${g6 & 0xff}.${g7 >> 8}.${g7 & 0xff}`);
  }
  if (groups.every((g) => g === 0)) return 'unspecified';
  if (groups.slice(0, 7).every((g) => g === 0) && g7 === 1) return 'loopback';
  if ((g0 & 0xffc0) === 0xfe80) return 'link-local';
  if ((g0 & 0xff00) === 0xff00) return 'reserved';
  if ((g0 & 0xfe00) === 0xfc00) return 'private';
  return 'public';
}

/**
 * True when a gateway's answer names an external address a mapping can be reached on: an IPv4
 * or IPv6 unicast address that is not unspecified (`0.0.0.0` means "not connected"), loopback,
 * link-local or multicast. Private and CGNAT IPv4 addresses are usable (behind a double NAT).
 *
 * @example
 * ```ts
 * isUsableExternalAddress('203.0.113.7'); // true
 * isUsableExternalAddress('0.0.0.0');     // false
 * ```
 */
export function isUsableExternalAddress(text: string | null | undefined): text is string {
  if (typeof text !== 'string') return false;
  const kind = classifyAddress(text);
  return kind === 'public' || kind === 'private' || kind === 'cgnat';
}

/**
 * Why a text cannot be a gateway's external address: the unspecified address (`0.0.0.0`, `::`,
 * `::ffff:0.0.0.0`, or anything in `0.0.0.0/8`: "this network", which NAT-PMP and UPnP use for
 * "not connected"), loopback (`127.0.0.0/8`, `::1`), link-local (`169.254.0.0/16`, `fe80::/10`:
 * a WAN link without a lease), multicast (`224.0.0.0/4`, `ff00::/8`), reserved (`240.0.0.0/4`,
 * the limited broadcast included), or not an IP address at all. Exactly the addresses
 * {@link isUsableExternalAddress} refuses.
 *
 * @example
 * ```ts
 * const problem: ExternalAddressProblem = externalAddressProblem('0.0.0.0') ?? 'undecodable'; // 'unspecified'
 * ```
 */
export type ExternalAddressProblem = 'unspecified' | 'loopback' | 'link-local' | 'multicast' | 'reserved' | 'undecodable';

/**
 * Why `text` cannot be an external address, or `undefined` when it can: {@link classifyAddress}
 * with its `reserved` class split into multicast and the rest. An IPv4-mapped address
 * (`::ffff:a.b.c.d`) is judged by the IPv4 address it carries. Private and shared ranges (`10/8`,
 * `100.64/10`, `fc00::/7`) are accepted: a gateway behind another NAT has one.
 *
 * @example
 * ```ts
 * externalAddressProblem('203.0.113.7');    // undefined
 * externalAddressProblem('::ffff:0.0.0.0'); // 'unspecified'
 * externalAddressProblem('ff02::1');        // 'multicast'
 * externalAddressProblem('router');         // 'undecodable'
 * ```
 */
export function externalAddressProblem(text: string): ExternalAddressProblem | undefined {
  const kind = classifyAddress(text);
  if (kind === 'public' || kind === 'private' || kind === 'cgnat') return undefined;
  if (kind === 'invalid') return 'undecodable';
  if (kind !== 'reserved') return kind;
  const bytes = ipToBytes(text);
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return mapped && (bytes[12] ?? 0) >= 240 ? 'reserved' : 'multicast';
}

/**
 * True when an external address shows another NAT upstream: an IPv4 private (RFC 1918) or
 * CGNAT (100.64/10) address. IPv6 addresses are never double NAT.
 *
 * @example
 * ```ts
 * isDoubleNat('100.64.1.1'); // true
 * isDoubleNat('fd77::10');   // false
 * ```
 */
export function isDoubleNat(text: string): boolean {
  if (!parseIpv4(text)) return false;
  const kind = classifyIpv4(text);
  return kind === 'private' || kind === 'cgnat';
}

/**
 * The 16 bytes of an IP address: IPv6 text ({@link parseIpv6}) as it is, IPv4 text
 * ({@link parseIpv4}) IPv4-mapped (`::ffff:a.b.c.d`). A `RangeError` when the text is neither;
 * a zone (`fe80::1%eth0`) is not part of an address and is refused here (strip it first).
 *
 * @example
 * ```ts
 * ipToBytes('192.0.2.1');   // 00…00 ff ff c0 00 02 01
 * ipToBytes('2001:db8::1'); // 20 01 0d b8 00…00 01
 * ```
 */
export function ipToBytes(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  const v4 = parseIpv4(text);
  if (v4) {
    bytes[10] = 0xff;
    bytes[11] = 0xff;
    bytes.set(v4, 12);
    return bytes;
  }
  const groups = parseIpv6(text);
  if (!groups) throw new RangeError(`not an IP address: ${text}`);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

/**
 * The text of a 16-byte address: dotted IPv4 when it is IPv4-mapped (`::ffff:a.b.c.d`), else
 * IPv6 in the RFC 5952 form (lowercase, no leading zeros, the longest run of two or more zero
 * groups, the first of equals, as `::`).
 *
 * @example
 * ```ts
 * bytesToIp(ipToBytes('203.0.113.1'));          // '203.0.113.1'
 * bytesToIp(ipToBytes('2001:db8:0:0:1:0:0:1')); // '2001:db8::1:0:0:1'
 * ```
 */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytesToIpv4(bytes.subarray(12, 16));
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength && j - i >= 2) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
