/**
 * SOAP actions, service types and arguments as fast-check arbitraries.
 * Shared by the property tests (`test/protocols/<proto>/*-properties.test.ts`) and the fuzzer
 * (`bench/fuzz.ts`), so both generate the same messages.
 */
import fc from 'fast-check';
import type { UpnpAction } from '../../../src/protocols/upnp/soap.js';
import { codeUnit } from '../arbitraries.js';

/** The IGD actions rxnat sends. */
export const ACTIONS: readonly UpnpAction[] = [
  'AddPortMapping',
  'AddAnyPortMapping',
  'DeletePortMapping',
  'GetExternalIPAddress',
  'GetSpecificPortMappingEntry',
  'GetGenericPortMappingEntry',
  'GetStatusInfo',
];
/** An action name: one rxnat sends, or any XML name. */
export const action = fc.oneof(fc.constantFrom(...ACTIONS), fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/));
const argName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,15}$/);

/** Any string: every code point, raw code units (lone surrogates), and the XML specials `<>&'"`. */
export const anyValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: codeUnit, maxLength: 20 }),
  fc.string({ unit: fc.constantFrom('<', '>', '&', "'", '"', '&amp;', ']]>', '<!--', ' ', '\t', '\r\n', 'x', '\u00a0'), maxLength: 16 }),
);
/** A service type: a WAN connection type, or any text. */
export const serviceType = fc.oneof(fc.constantFrom('urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANPPPConnection:1'), anyValue);
/** Action arguments: distinct names, any text or number values. */
export const args = fc.uniqueArray(fc.tuple(argName, fc.oneof(anyValue, fc.integer({ min: -1, max: 0xffffffff }))), { maxLength: 8, selector: ([name]) => name });
