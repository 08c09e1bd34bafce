import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import { decodeSsdpResponse, encodeMSearch, usnDevice } from '../../../src/protocols/upnp/ssdp.js';
import { anyBytes, anyText, assertTyped, byteMutations, RUNS, textMutations } from '../../../bench/lib/arbitraries.js';
import { mutateBytes, mutateText } from '../../../bench/lib/mutate.js';
import { latin1, response } from '../../../bench/lib/messages/ssdp.js';

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
