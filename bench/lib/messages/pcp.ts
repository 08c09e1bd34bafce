/**
 * Valid PCP (RFC 6887) requests and responses as fast-check arbitraries.
 * Shared by the property tests (`test/protocols/<proto>/*-properties.test.ts`) and the fuzzer
 * (`bench/fuzz.ts`), so both generate the same messages.
 */
import fc from 'fast-check';
import { pcpBytesToIp, type PcpOption, type PcpRequest, type PcpResponse } from '../../../src/protocols/pcp/codec.js';
import { epoch, ipv4, lifetime, nonce, port, record, u32, u8 } from '../arbitraries.js';

/** Any 16-byte address, as the text the decoder produces (IPv4 when IPv4-mapped, else RFC 5952 IPv6). */
export const address = fc.oneof(
  ipv4,
  fc.uint8Array({ minLength: 16, maxLength: 16 }).map(pcpBytesToIp),
  // Sparse IPv6 (zero runs exercise '::' compression).
  fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), { minLength: 8, maxLength: 8 }).map((groups) =>
    pcpBytesToIp(Uint8Array.from(groups.flatMap((g) => [g >> 8, g & 0xff]))),
  ),
);

/** Options (code 0 is reserved and rejected on reception); at most 4 × 64 bytes keeps messages under 1100 bytes. */
export const options: fc.Arbitrary<PcpOption[]> = fc.array(
  record({ code: fc.integer({ min: 1, max: 255 }), data: fc.uint8Array({ maxLength: 64 }) }),
  { maxLength: 4 },
);

/** Any PCP request the encoder accepts: ANNOUNCE or MAP. */
export const request: fc.Arbitrary<PcpRequest> = fc.oneof(
  record({ op: fc.constant('announce' as const), lifetimeSeconds: lifetime, clientIp: address, options }),
  record({
    op: fc.constant('map' as const),
    lifetimeSeconds: lifetime,
    clientIp: address,
    nonce,
    protocol: u8,
    internalPort: port,
    suggestedExternalPort: port,
    suggestedExternalIp: address,
    options,
  }),
);

/** Any PCP response the encoder accepts: ANNOUNCE, MAP, an error header, or the NAT-PMP unsupported-version answer. */
export const response: fc.Arbitrary<PcpResponse> = fc.oneof(
  record({ op: fc.constant('announce' as const), opcode: fc.constant(0), resultCode: u8, lifetimeSeconds: lifetime, epochSeconds: epoch, options }),
  record({
    op: fc.constant('map' as const),
    opcode: fc.constant(1),
    resultCode: u8,
    lifetimeSeconds: lifetime,
    epochSeconds: epoch,
    nonce,
    protocol: u8,
    internalPort: port,
    externalPort: port,
    externalIp: address,
    options,
  }),
  // A bare header is only ever an error, for an opcode other than ANNOUNCE.
  record({ op: fc.constant('header' as const), opcode: fc.integer({ min: 1, max: 127 }), resultCode: fc.integer({ min: 1, max: 255 }), lifetimeSeconds: lifetime, epochSeconds: epoch }),
  record({ op: fc.constant('pmp-unsupported-version' as const), opcode: fc.integer({ min: 128, max: 255 }), resultCode: fc.constant(1), epochSeconds: u32 }),
);
