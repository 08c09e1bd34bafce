/**
 * What kind of address a gateway reported as its external address. Anything but `public`
 * means the mapping is not reachable from the internet as it stands (double NAT, CGNAT).
 */
export type AddressKind = 'public' | 'private' | 'cgnat' | 'loopback' | 'link-local' | 'unspecified' | 'reserved' | 'invalid';

/**
 * Parses a dotted-quad IPv4 address into its four octets; `undefined` when it is not one.
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
