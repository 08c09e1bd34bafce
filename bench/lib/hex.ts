/**
 * The `.hex` fixture format (captured datagrams as commented hex), read by the codec tests and
 * by `bench/fuzz.ts`, which seeds its mutations with the fixtures.
 */
import { readFileSync } from 'node:fs';

/**
 * Reads a `.hex` fixture: hex digits with `#` comments to the end of the line and any whitespace.
 *
 * @example
 * ```ts
 * const bytes = readHex(new URL('./map-tcp-request.hex', import.meta.url));
 * ```
 */
export function readHex(url: URL): Uint8Array {
  const digits = readFileSync(url, 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .join('')
    .replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(digits)) throw new Error(`bad hex fixture ${url.pathname}`);
  return Uint8Array.from(digits.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}
