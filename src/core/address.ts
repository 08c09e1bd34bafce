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
