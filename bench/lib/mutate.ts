/**
 * Mutations of valid messages, described as plain data so that both fast-check (property tests)
 * and the fuzzer (`bench/fuzz.ts`) can generate them. Every position is taken modulo the
 * input's length (plus one), so any non-negative integer is a valid position: generators need not
 * know the input.
 */

/** One mutation of a byte string. */
export type ByteMutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'duplicate'; readonly at: number; readonly length: number; readonly to: number }
  | { readonly kind: 'splice'; readonly at: number; readonly other: Uint8Array; readonly from: number };

/** One mutation of a text. */
export type TextMutation =
  | { readonly kind: 'flip'; readonly at: number; readonly bit: number }
  | { readonly kind: 'insert'; readonly at: number; readonly text: string }
  | { readonly kind: 'delete'; readonly at: number; readonly length: number }
  | { readonly kind: 'truncate'; readonly at: number }
  | { readonly kind: 'duplicate'; readonly at: number; readonly length: number; readonly to: number }
  | { readonly kind: 'splice'; readonly at: number; readonly other: string; readonly from: number }
  | { readonly kind: 'number'; readonly index: number; readonly value: string }
  | { readonly kind: 'case'; readonly at: number; readonly length: number };

/** Byte values that sit on field boundaries. */
export const BOUNDARY_BYTES: readonly number[] = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff];

/** Numbers (as text) that sit on the boundaries of ports, lifetimes, codes and JS numbers. */
export const BOUNDARY_NUMBERS: readonly string[] = [
  '0',
  '-0',
  '-1',
  '1',
  '00000',
  '255',
  '256',
  '65535',
  '65536',
  '99999',
  '2147483647',
  '2147483648',
  '4294967295',
  '4294967296',
  '9007199254740993',
  '99999999999999999999999999',
  '1e309',
  '0x10',
  'NaN',
  'Infinity',
  '١٢٣',
  '',
  ' 1 ',
];

/** Fragments that stress an XML reader. */
export const XML_TOKENS: readonly string[] = [
  '<',
  '>',
  '&',
  '"',
  "'",
  '/',
  '</',
  '/>',
  '<a>',
  '</a>',
  '<a/>',
  '&amp;',
  '&lt;',
  '&#0;',
  '&#65;',
  '&#x10FFFF;',
  '&#x110000;',
  '&#xD800;',
  '&#99999999;',
  '&lol;',
  '&__proto__;',
  '&constructor;',
  '<![CDATA[',
  ']]>',
  '<!--',
  '-->',
  '<?xml version="1.0"?>',
  '<?',
  '?>',
  '<!DOCTYPE x [<!ENTITY a "b">]>',
  '<!doctype x>',
  '<!ENTITY x SYSTEM "file:///etc/passwd">',
  '<!ELEMENT a ANY>',
  '\uFEFF',
  '\u0000',
  '\uD800',
  '\uDC00',
  'xmlns:u="urn:x"',
  ' a="1"',
  ' a="1" a="2"',
  ':',
  'ß',
  '\r\n',
];

/** Fragments that stress an HTTP/SSDP header reader. */
export const HTTP_TOKENS: readonly string[] = [
  '\r\n',
  '\n',
  '\r',
  '\r\n\r\n',
  ':',
  ': ',
  ' ',
  '\t',
  'HTTP/1.1 200 OK',
  'HTTP/1.0 200',
  'HTTP/1.1 404 Not Found',
  'LOCATION: ',
  'ST: ',
  'USN: ',
  'location:http://192.168.1.1:5000/x.xml',
  'st:upnp:rootdevice',
  'http://',
  'http://[::1]:80/',
  'http://0x7f.1/',
  'file:///etc/passwd',
  '\u00ff',
  '\u0100',
  '\u010d\u010a',
  '\u0000',
  '%00',
];

/** Position `at` folded into 0..length. */
const fold = (at: number, length: number): number => (length < 0 ? 0 : at % (length + 1));

/**
 * Applies mutations in order; never throws, whatever the positions.
 *
 * @example
 * ```ts
 * mutateBytes(Uint8Array.of(0, 0), [{ kind: 'flip', at: 1, bit: 7 }]); // [0, 128]
 * ```
 */
export function mutateBytes(input: Uint8Array, mutations: readonly ByteMutation[]): Uint8Array {
  let bytes: Uint8Array = input.slice();
  for (const m of mutations) {
    const n = bytes.length;
    switch (m.kind) {
      case 'flip':
        if (n > 0) {
          const at = m.at % n;
          bytes[at] = (bytes[at] ?? 0) ^ (1 << (m.bit & 7));
        }
        break;
      case 'set':
        if (n > 0) bytes[m.at % n] = m.value & 0xff;
        break;
      case 'insert': {
        const at = fold(m.at, n);
        bytes = concat(bytes.subarray(0, at), m.bytes, bytes.subarray(at));
        break;
      }
      case 'delete': {
        const at = fold(m.at, n);
        bytes = concat(bytes.subarray(0, at), bytes.subarray(at + m.length));
        break;
      }
      case 'truncate':
        bytes = bytes.slice(0, fold(m.at, n));
        break;
      case 'duplicate': {
        const at = fold(m.at, n);
        const piece = bytes.slice(at, at + m.length);
        const to = fold(m.to, n);
        bytes = concat(bytes.subarray(0, to), piece, bytes.subarray(to));
        break;
      }
      case 'splice': {
        const at = fold(m.at, n);
        bytes = concat(bytes.subarray(0, at), m.other.subarray(fold(m.from, m.other.length)));
        break;
      }
    }
  }
  return bytes;
}

/**
 * Applies text mutations in order; never throws, whatever the positions.
 *
 * @example
 * ```ts
 * mutateText('<a>8080</a>', [{ kind: 'number', index: 0, value: '65536' }]); // '<a>65536</a>'
 * ```
 */
export function mutateText(input: string, mutations: readonly TextMutation[]): string {
  let text = input;
  for (const m of mutations) {
    const n = text.length;
    switch (m.kind) {
      case 'flip':
        if (n > 0) {
          const at = m.at % n;
          text = text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ (1 << (m.bit & 15))) + text.slice(at + 1);
        }
        break;
      case 'insert': {
        const at = fold(m.at, n);
        text = text.slice(0, at) + m.text + text.slice(at);
        break;
      }
      case 'delete': {
        const at = fold(m.at, n);
        text = text.slice(0, at) + text.slice(at + m.length);
        break;
      }
      case 'truncate':
        text = text.slice(0, fold(m.at, n));
        break;
      case 'duplicate': {
        const at = fold(m.at, n);
        const to = fold(m.to, n);
        text = text.slice(0, to) + text.slice(at, at + m.length) + text.slice(to);
        break;
      }
      case 'splice': {
        const at = fold(m.at, n);
        text = text.slice(0, at) + m.other.slice(fold(m.from, m.other.length));
        break;
      }
      case 'number': {
        const runs = [...text.matchAll(/\d+/g)];
        const run = runs.length > 0 ? runs[m.index % runs.length] : undefined;
        if (run !== undefined) text = text.slice(0, run.index) + m.value + text.slice(run.index + run[0].length);
        break;
      }
      case 'case': {
        const at = fold(m.at, n);
        const piece = text.slice(at, at + m.length);
        const swapped = piece === piece.toUpperCase() ? piece.toLowerCase() : piece.toUpperCase();
        text = text.slice(0, at) + swapped + text.slice(at + m.length);
        break;
      }
    }
  }
  return text;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Hex of bytes, for reports and regression tests.
 *
 * @example
 * ```ts
 * toHex(Uint8Array.of(0, 255)); // '00ff'
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}
