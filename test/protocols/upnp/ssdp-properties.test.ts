import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import { decodeSsdpResponse, encodeMSearch, SSDP_MAX_MESSAGE_BYTES, usnDevice } from '../../../src/protocols/upnp/ssdp.js';
import { anyBytes, anyText, assertTyped, byteMutations, RUNS, textMutations } from '../../../bench/lib/arbitraries.js';
import { mutateBytes, mutateText } from '../../../bench/lib/mutate.js';

const TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+.^_`|~-".split('');
const headerName = fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 16 });

/** A latin1 header value as the decoder returns it: no line breaks, nothing trim() would remove at the edges. */
const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const headerValue = latin1.map((v) => v.replace(/[\r\n]/g, '').trim());
const nonEmptyValue = headerValue.filter((v) => v !== '');

/** Random case, as gateways write header names. */
const anyCase = (name: string): fc.Arbitrary<string> =>
  fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((upper) => [...name].map((c, i) => (upper[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

const response = fc
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

const fixtures = ['ssdp-lowercase.txt', 'ssdp-miniupnpd.txt', 'ssdp-notify.txt'].map((f) =>
  readFileSync(new URL(`../../fixtures/upnp/${f}`, import.meta.url), 'latin1'),
);
const validText = fc.oneof(fc.constantFrom(...fixtures), response.map((r) => r.text));

const decodeChecked = (input: Uint8Array | string): void => {
  const result = decodeSsdpResponse(input, '192.0.2.1');
  assertTyped(result, 'ssdp');
  if (!(result instanceof ProtocolError)) {
    assert.equal(typeof result.location, 'string');
    assert.notEqual(result.location, '');
    assert.notEqual(result.st, '');
    assert.equal(typeof usnDevice(result.usn), 'string');
  }
};

describe('SSDP codec properties', () => {
  it('decodes every generated 200 answer to its headers (names case-insensitive, last one wins)', () => {
    fc.assert(
      fc.property(response, fc.boolean(), ({ text, expected }, asBytes) => {
        const decoded = decodeSsdpResponse(asBytes ? Buffer.from(text, 'latin1') : text);
        if (decoded instanceof ProtocolError) assert.fail(`${decoded.reason}: ${decoded.message}`);
        assert.deepEqual(decoded.headers, expected);
        assert.equal(decoded.location, expected.get('location'));
        assert.equal(decoded.st, expected.get('st'));
        assert.equal(decoded.usn, expected.get('usn') ?? '');
        assert.equal(decoded.server, expected.get('server'));
      }),
      RUNS,
    );
  });

  it('encodes an M-SEARCH with exactly its four headers for any latin1 search target and host (only printable ASCII kept)', () => {
    fc.assert(
      fc.property(latin1, fc.option(latin1, { nil: undefined }), fc.option(fc.integer({ min: -10, max: 100 }), { nil: undefined }), (st, host, mx) => {
        const text = encodeMSearch({ searchTarget: st, ...(host !== undefined ? { host } : {}), ...(mx !== undefined ? { mxSeconds: mx } : {}) }).toString('latin1');
        const lines = text.split('\r\n');
        assert.equal(lines.length, 7, JSON.stringify(text));
        assert.equal(lines[0], 'M-SEARCH * HTTP/1.1');
        assert.equal(lines[4], `ST: ${st.replace(/[^\x20-\x7e]/g, '')}`);
        assert.match(lines[3] ?? '', /^MX: [1-5]$/);
        assert.deepEqual(lines.slice(5), ['', '']);
      }),
      RUNS,
    );
  });

  it('decodes arbitrary bytes and strings to an answer or a ProtocolError, never throws', () => {
    fc.assert(fc.property(fc.oneof(anyBytes, anyText), decodeChecked), RUNS);
  });

  it('decodes mutated answers (text and byte mutations, numeric boundaries) to an answer or a ProtocolError', () => {
    fc.assert(fc.property(validText, textMutations, (text, mutations) => decodeChecked(mutateText(text, mutations))), RUNS);
    fc.assert(fc.property(validText, byteMutations, (text, mutations) => decodeChecked(mutateBytes(Buffer.from(text, 'latin1'), mutations))), RUNS);
  });
});
