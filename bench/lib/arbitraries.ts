/**
 * fast-check arbitraries shared by the property tests (`test/protocols/<proto>/*-properties.test.ts`)
 * and the fuzzer (`bench/fuzz.ts`): protocol fields, arbitrary bytes and text, mutation
 * descriptors and the settings every property runs with. Here rather than under test/ so that
 * bench/ never imports from test/.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../src/errors.js';
import { BOUNDARY_BYTES, BOUNDARY_NUMBERS, HTTP_TOKENS, XML_TOKENS, type ByteMutation, type TextMutation } from './mutate.js';

/** `fc.record` with an ordinary prototype (fast-check 4 defaults to null-prototype records, which deepEqual tells apart). */
export const record = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }): fc.Arbitrary<T> =>
  fc.record(model, { noNullPrototype: true }) as fc.Arbitrary<T>;

/** Deterministic settings of every property: a fixed seed, 500 runs. */
export const RUNS = { seed: 42, numRuns: 500 } as const;

export const u8 = fc.integer({ min: 0, max: 0xff });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const u32 = fc.integer({ min: 0, max: 0xffffffff });
export const port = u16;
export const lifetime = u32;
export const epoch = u32;

/** Dotted-quad IPv4 text. */
export const ipv4 = fc.tuple(u8, u8, u8, u8).map((parts) => parts.join('.'));

/** 12-byte PCP nonce. */
export const nonce = fc.uint8Array({ minLength: 12, maxLength: 12 });

/** Arbitrary bytes of any length a datagram could bring, biased to protocol-sized lengths. */
export const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }),
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom(2, 8, 12, 16, 24, 60, 64, 1100, 1104).chain((length) => fc.uint8Array({ minLength: length, maxLength: length })),
);

/** Any UTF-16 code unit, lone surrogates included. */
export const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Arbitrary text: every code point, raw UTF-16 code units (lone surrogates), controls, markup and header fragments. */
export const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 512 }),
  fc.string({ unit: codeUnit, maxLength: 256 }),
  fc.string({ unit: 'grapheme', maxLength: 256 }),
  fc.string({ unit: 'binary-ascii', maxLength: 512 }),
  fc.string({ unit: fc.constantFrom(...XML_TOKENS, ...HTTP_TOKENS, 'a', ' ', '1'), maxLength: 64 }),
);

const position = fc.nat({ max: 4096 });

/** One byte mutation (bit flip, insert, delete, truncate, duplicate, splice, boundary value). */
export const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
  record({ kind: fc.constant('set' as const), at: position, value: fc.oneof(fc.constantFrom(...BOUNDARY_BYTES), u8) }),
  record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 16 }) }),
  record({ kind: fc.constant('truncate' as const), at: position }),
  record({ kind: fc.constant('duplicate' as const), at: position, length: fc.integer({ min: 1, max: 64 }), to: position }),
  record({ kind: fc.constant('splice' as const), at: position, other: fc.uint8Array({ maxLength: 128 }), from: position }),
);

/** One text mutation, including numeric-boundary substitution and markup/header fragments. */
export const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 15 }) }),
  record({
    kind: fc.constant('insert' as const),
    at: position,
    text: fc.oneof(fc.constantFrom(...XML_TOKENS, ...HTTP_TOKENS), fc.string({ unit: 'binary', maxLength: 8 })),
  }),
  record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 32 }) }),
  record({ kind: fc.constant('truncate' as const), at: position }),
  record({ kind: fc.constant('duplicate' as const), at: position, length: fc.integer({ min: 1, max: 128 }), to: position }),
  record({ kind: fc.constant('splice' as const), at: position, other: fc.string({ unit: 'binary', maxLength: 64 }), from: position }),
  record({ kind: fc.constant('number' as const), index: fc.nat({ max: 64 }), value: fc.constantFrom(...BOUNDARY_NUMBERS) }),
  record({ kind: fc.constant('case' as const), at: position, length: fc.integer({ min: 1, max: 16 }) }),
);

export const byteMutations = fc.array(byteMutation, { minLength: 1, maxLength: 6 });
export const textMutations = fc.array(textMutation, { minLength: 1, maxLength: 6 });

/**
 * Asserts a decoder's answer is a typed value: a {@link ProtocolError} of `protocol` with a
 * non-empty reason, or a non-error object. Returns the reason, or `undefined` for a message.
 */
export function assertTyped(result: unknown, protocol: string): string | undefined {
  if (result instanceof ProtocolError) {
    assert.equal(result.protocol, protocol);
    assert.equal(result.code, 'ERR_PROTOCOL');
    assert.ok(typeof result.reason === 'string' && result.reason.length > 0, 'a ProtocolError without a reason');
    return result.reason;
  }
  assert.ok(!(result instanceof Error), `an untyped error: ${String(result)}`);
  assert.ok(typeof result === 'object' && result !== null, `not a message: ${String(result)}`);
  return undefined;
}
