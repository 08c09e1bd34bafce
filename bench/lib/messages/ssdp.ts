/**
 * Valid SSDP search answers (as text, with the headers the decoder must read) as fast-check arbitraries.
 * Shared by the property tests (`test/protocols/<proto>/*-properties.test.ts`) and the fuzzer
 * (`bench/fuzz.ts`), so both generate the same messages.
 */
import fc from 'fast-check';
import { SSDP_MAX_MESSAGE_BYTES } from '../../../src/protocols/upnp/ssdp.js';

const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+.^_`|~-".split('');
const headerName = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 16 });

/** A latin1 header value as the decoder returns it: no line breaks, nothing trim() would remove at the edges. */
export const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const headerValue = latin1.map((v) => v.replace(/[\r\n]/g, '').trim());
const nonEmptyValue = headerValue.filter((v) => v !== '');

/** Random case, as gateways write header names. */
const anyCase = (name: string): fc.Arbitrary<string> =>
  fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((upper) => [...name].map((c, i) => (upper[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

/** An SSDP search answer (any header order, case and separator) with the headers the decoder must report. */
export const response = fc
  .record({
    statusLine: fc.tuple(fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'http/1.1'), fc.constantFrom(' ', '  '), fc.constantFrom('', ' OK', ' ok', ' Whatever You Like')),
    location: fc.tuple(anyCase('location'), nonEmptyValue),
    st: fc.tuple(anyCase('st'), nonEmptyValue),
    usn: fc.option(fc.tuple(anyCase('usn'), headerValue), { nil: undefined }),
    server: fc.option(fc.tuple(anyCase('server'), headerValue), { nil: undefined }),
    others: fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }),
    order: fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
    separator: fc.constantFrom(': ', ':', ':\t', ' : '),
    eol: fc.constantFrom('\r\n', '\n'),
    body: fc.oneof(fc.constant(''), latin1),
  })
  .map((r) => {
    const headers: [string, string][] = [r.location, r.st, ...(r.usn ? [r.usn] : []), ...(r.server ? [r.server] : []), ...r.others];
    // Shuffle deterministically from the generated order.
    const shuffled = headers.map((h, i) => [r.order[i % r.order.length] ?? 0, i, h] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, , h]) => h);
    const [version, space, phrase] = r.statusLine;
    const head = [`${version}${space}200${phrase}`, ...shuffled.map(([n, v]) => `${n}${r.separator}${v}`)].join(r.eol);
    // A \n-only head has no \r\n\r\n end: it must stop before a body that is not headers.
    const text = r.eol === '\r\n' ? `${head}\r\n\r\n${r.body}` : `${head}\n`;
    const expected = new Map<string, string>();
    for (const [n, v] of shuffled) expected.set(n.toLowerCase(), v);
    return { text, expected };
  })
  .filter(({ text, expected }) => text.length <= SSDP_MAX_MESSAGE_BYTES && expected.get('location') !== '' && expected.get('st') !== '');
