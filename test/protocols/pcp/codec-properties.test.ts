import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import {
  decodePcpRequest,
  decodePcpResponse,
  encodePcpErrorResponse,
  encodePcpRequest,
  encodePcpResponse,
  ipToPcpBytes,
  pcpBytesToIp,
} from '../../../src/protocols/pcp/codec.js';
import { pcpFixture } from '../../fixtures/pcp/fixture.js';
import { anyBytes, assertTyped, byteMutations, epoch, lifetime, RUNS } from '../../../bench/lib/arbitraries.js';
import { mutateBytes } from '../../../bench/lib/mutate.js';
import { request, response } from '../../../bench/lib/messages/pcp.js';

const fixtures = [
  'announce-request',
  'announce-response',
  'map-error-response',
  'map-request-prefer-failure',
  'map-request',
  'map-response',
  'pmp-unsupported-version',
  'unsupp-version-header',
].map(pcpFixture);

const validBytes = fc.oneof(fc.constantFrom(...fixtures), request.map(encodePcpRequest), response.map(encodePcpResponse));

const decodeAll = (bytes: Uint8Array): void => {
  assertTyped(decodePcpRequest(bytes), 'pcp');
  assertTyped(decodePcpRequest(bytes, { reserved: 'ignore' }), 'pcp');
  assertTyped(decodePcpResponse(bytes), 'pcp');
  assertTyped(decodePcpResponse(bytes, { reserved: 'ignore' }), 'pcp');
};

describe('PCP codec properties', () => {
  it('round-trips every ANNOUNCE and MAP request', () => {
    fc.assert(
      fc.property(request, (message) => {
        assert.deepEqual(decodePcpRequest(encodePcpRequest(message)), message);
      }),
      RUNS,
    );
  });

  it('round-trips every response (MAP, ANNOUNCE, bare error header, NAT-PMP unsupported version)', () => {
    fc.assert(
      fc.property(response, (message) => {
        assert.deepEqual(decodePcpResponse(encodePcpResponse(message)), message);
      }),
      RUNS,
    );
  });

  it('round-trips every 16-byte address through its text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        assert.deepEqual(ipToPcpBytes(pcpBytesToIp(bytes)), bytes);
      }),
      RUNS,
    );
  });

  it('error responses built from any request decode, and echo a MAP request nonce', () => {
    fc.assert(
      fc.property(request, fc.integer({ min: 1, max: 255 }), lifetime, epoch, (message, resultCode, lifetimeSeconds, epochSeconds) => {
        const reply = decodePcpResponse(encodePcpErrorResponse(encodePcpRequest(message), { resultCode, lifetimeSeconds, epochSeconds }));
        assertTyped(reply, 'pcp');
        if (reply instanceof ProtocolError) assert.fail(reply.message);
        assert.equal(reply.op, message.op);
        if (reply.op === 'map' && message.op === 'map') assert.deepEqual(reply.nonce, message.nonce);
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

  it('builds an error response from any bytes without throwing', () => {
    fc.assert(
      fc.property(fc.oneof(anyBytes, validBytes), (bytes) => {
        assertTyped(decodePcpResponse(encodePcpErrorResponse(bytes, { resultCode: 3, lifetimeSeconds: 0, epochSeconds: 0 }), { reserved: 'ignore' }), 'pcp');
      }),
      RUNS,
    );
  });

  it('decode is stable: whatever it accepts re-encodes to a message that decodes the same', () => {
    fc.assert(
      fc.property(validBytes, byteMutations, (valid, mutations) => {
        const bytes = mutateBytes(valid, mutations);
        const req = decodePcpRequest(bytes);
        if (!(req instanceof ProtocolError)) assert.deepEqual(decodePcpRequest(encodePcpRequest(req)), req);
        const res = decodePcpResponse(bytes);
        if (!(res instanceof ProtocolError)) assert.deepEqual(decodePcpResponse(encodePcpResponse(res)), res);
      }),
      RUNS,
    );
  });
});
