/**
 * Valid NAT-PMP (RFC 6886) requests and responses as fast-check arbitraries.
 * Shared by the property tests (`test/protocols/<proto>/*-properties.test.ts`) and the fuzzer
 * (`bench/fuzz.ts`), so both generate the same messages.
 */
import fc from 'fast-check';
import type { PmpRequest, PmpResponse } from '../../../src/protocols/pmp/codec.js';
import { epoch, ipv4, lifetime, port, record, u16 } from '../arbitraries.js';

/** A mapping protocol. */
export const protocol = fc.constantFrom('tcp' as const, 'udp' as const);

/** Any NAT-PMP request: external address, or a map of either protocol. */
export const request: fc.Arbitrary<PmpRequest> = fc.oneof(
  fc.constant({ op: 'external-address' as const }),
  record({ op: fc.constant('map' as const), protocol, internalPort: port, suggestedExternalPort: port, lifetimeSeconds: lifetime }),
);

/** Any NAT-PMP response: external address, map, or the 8-byte error form. */
export const response: fc.Arbitrary<PmpResponse> = fc.oneof(
  record({ op: fc.constant('external-address' as const), resultCode: u16, epochSeconds: epoch, externalIp: ipv4 }),
  record({
    op: fc.constant('map' as const),
    protocol,
    resultCode: u16,
    epochSeconds: epoch,
    internalPort: port,
    externalPort: port,
    lifetimeSeconds: lifetime,
  }),
  // The 8-byte error form: a response opcode and a non-zero result (a zero result needs the full form).
  record({ op: fc.constant('short' as const), opcode: fc.integer({ min: 128, max: 255 }), resultCode: fc.integer({ min: 1, max: 0xffff }), epochSeconds: epoch }),
);
