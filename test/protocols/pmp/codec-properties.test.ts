import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import {
  decodePmpRequest,
  decodePmpResponse,
  encodePmpRequest,
  encodePmpResponse,
} from '../../../src/protocols/pmp/codec.js';
import { pmpFixture } from '../../fixtures/pmp/read-hex.js';
import { anyBytes, assertTyped, byteMutations, RUNS } from '../../../bench/lib/arbitraries.js';
import { mutateBytes } from '../../../bench/lib/mutate.js';
import { request, response } from '../../../bench/lib/messages/pmp.js';

const fixtures = [
  'delete-udp-request',
  'external-address-request',
  'external-address-response',
  'map-tcp-refused-response',
  'map-tcp-request',
  'map-udp-response',
  'unsupported-version-response',
].map(pmpFixture);

/** Valid wire messages: fixtures and freshly encoded requests and responses. */
const validBytes = fc.oneof(fc.constantFrom(...fixtures), request.map(encodePmpRequest), response.map(encodePmpResponse));

const decodeAll = (bytes: Uint8Array): void => {
  assertTyped(decodePmpRequest(bytes), 'pmp');
  assertTyped(decodePmpRequest(bytes, { reserved: 'ignore' }), 'pmp');
  assertTyped(decodePmpResponse(bytes), 'pmp');
};

describe('NAT-PMP codec properties', () => {
  it('round-trips every request', () => {
    fc.assert(
      fc.property(request, (message) => {
        assert.deepEqual(decodePmpRequest(encodePmpRequest(message)), message);
      }),
      RUNS,
    );
  });

  it('round-trips every response', () => {
    fc.assert(
      fc.property(response, (message) => {
        assert.deepEqual(decodePmpResponse(encodePmpResponse(message)), message);
      }),
      RUNS,
    );
  });

  it('decodes arbitrary bytes to a message or a ProtocolError, never throws', () => {
    fc.assert(fc.property(anyBytes, decodeAll), RUNS);
  });

  it('decodes mutated valid messages (flips, truncation, extension, splices) to a message or a ProtocolError', () => {
    fc.assert(fc.property(validBytes, byteMutations, (bytes, mutations) => decodeAll(mutateBytes(bytes, mutations))), RUNS);
  });

  it('re-encodes whatever it accepts to the same bytes', () => {
    // A decoded message is canonical: encoding it gives back the datagram (reserved fields are zero).
    fc.assert(
      fc.property(validBytes, byteMutations, (valid, mutations) => {
        const bytes = mutateBytes(valid, mutations);
        const req = decodePmpRequest(bytes);
        if (!(req instanceof ProtocolError)) assert.deepEqual(encodePmpRequest(req), bytes);
        const res = decodePmpResponse(bytes);
        if (!(res instanceof ProtocolError)) assert.deepEqual(encodePmpResponse(res), bytes);
      }),
      RUNS,
    );
  });
});
