import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import {
  decodeSoapRequest,
  decodeSoapResponse,
  encodeAddPortMapping,
  encodeSoapFault,
  encodeSoapRequest,
  encodeSoapResponse,
  faultToError,
  readExternalIp,
  readPortMappingEntry,
  readReservedPort,
  readStatusInfo,
  type PortMappingArguments,
} from '../../../src/protocols/upnp/soap.js';
import { anyText, assertTyped, ipv4, lifetime, record, RUNS, textMutations } from '../../../bench/lib/arbitraries.js';
import { mutateText } from '../../../bench/lib/mutate.js';
import { ACTIONS, action, anyValue, args, serviceType } from '../../../bench/lib/messages/soap.js';

/**
 * What the decoder reports for an argument: its text, trimmed (UPnP values carry no significant
 * edge whitespace; the codec trims with String.prototype.trim, so U+00A0, U+FEFF... go too).
 */
const wire = (args: readonly (readonly [string, string | number])[]): Map<string, string> => new Map(args.map(([n, v]) => [n, String(v).trim()]));

const port1 = fc.integer({ min: 1, max: 65535 });

const responses = (() => {
  const dir = new URL('../../fixtures/upnp/', import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.startsWith('soap-'))
    .map((f) => readFileSync(new URL(f, dir), 'utf8'));
})();

/** Runs every reader on whatever a decoder returned; none may throw. */
function readAll(body: string, anAction: string): void {
  const decoded = decodeSoapResponse(body, anAction, { status: 500, gateway: 'http://192.0.2.1:5000/ctl' });
  assertTyped(decoded, 'upnp');
  if (decoded instanceof ProtocolError) return;
  if (decoded.kind === 'fault') {
    assert.ok(Number.isInteger(decoded.errorCode) && decoded.errorCode >= 0 && decoded.errorCode <= 9999, 'errorCode out of range');
    assert.equal(faultToError(decoded, 'http://192.0.2.1:5000/ctl').code, 'ERR_GATEWAY_REFUSED');
    return;
  }
  const { values } = decoded;
  const ip = readExternalIp(values);
  if (typeof ip !== 'string') assertTyped(ip, 'upnp');
  const reserved = readReservedPort(values);
  if (typeof reserved !== 'number') assertTyped(reserved, 'upnp');
  assert.equal(typeof readStatusInfo(values).connectionStatus, 'string');
  assertTyped(readPortMappingEntry(values), 'upnp');
  assertTyped(readPortMappingEntry(values, { externalPort: 1, protocol: 'udp' }), 'upnp');
}

describe('SOAP codec properties', () => {
  it('round-trips any request: service type exact, arguments escaped and read back (trimmed)', () => {
    fc.assert(
      fc.property(serviceType, action, args, (st, name, list) => {
        const request = encodeSoapRequest(st, name, list);
        const decoded = decodeSoapRequest(request.body, request.headers.SOAPAction);
        if (decoded instanceof ProtocolError) assert.fail(`${decoded.reason}: ${decoded.message}`);
        assert.deepEqual(decoded, { serviceType: st, action: name, args: wire(list) });
      }),
      RUNS,
    );
  });

  it('round-trips any action response', () => {
    fc.assert(
      fc.property(serviceType, action, args, (st, name, list) => {
        assert.deepEqual(decodeSoapResponse(encodeSoapResponse(st, name, list), name), { kind: 'response', action: name, values: wire(list) });
      }),
      RUNS,
    );
  });

  it('round-trips any UPnPError fault', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9999 }), fc.option(anyValue, { nil: undefined }), action, (code, description, name) => {
        const body = description === undefined ? encodeSoapFault(code) : encodeSoapFault(code, description);
        const decoded = decodeSoapResponse(body, name, { status: 500 });
        assert.equal(decoded instanceof ProtocolError ? decoded.message : decoded.kind, 'fault');
        if (decoded instanceof ProtocolError || decoded.kind !== 'fault') return;
        assert.equal(decoded.errorCode, code);
        assert.equal(decoded.faultString, 'UPnPError');
        if (description !== undefined) assert.equal(decoded.errorDescription, description.trim());
        assert.equal(faultToError(decoded, 'http://192.0.2.1/ctl').resultCode, code);
      }),
      RUNS,
    );
  });

  it('round-trips AddPortMapping arguments and port mapping entries through the readers', () => {
    const mapping = record<PortMappingArguments>({
      remoteHost: fc.oneof(fc.constant(''), ipv4),
      externalPort: port1,
      protocol: fc.constantFrom('tcp' as const, 'udp' as const),
      internalPort: port1,
      internalClient: ipv4,
      enabled: fc.boolean(),
      description: anyValue,
      leaseDurationSeconds: lifetime,
    });
    fc.assert(
      fc.property(mapping, (m) => {
        const st = 'urn:schemas-upnp-org:service:WANIPConnection:2';
        const request = decodeSoapRequest(encodeAddPortMapping(st, m).body);
        if (request instanceof ProtocolError) assert.fail(request.message);
        assert.equal(request.args.get('NewPortMappingDescription'), m.description.trim());
        // The gateway answers the entry back (GetGenericPortMappingEntry): the readers recover it.
        const body = encodeSoapResponse(st, 'GetGenericPortMappingEntry', [...request.args]);
        const decoded = decodeSoapResponse(body, 'GetGenericPortMappingEntry');
        if (decoded instanceof ProtocolError || decoded.kind !== 'response') assert.fail('not a response');
        assert.deepEqual(readPortMappingEntry(decoded.values), {
          protocol: m.protocol,
          externalPort: m.externalPort,
          internalClient: m.internalClient,
          internalPort: m.internalPort,
          description: m.description.trim(),
          lifetimeSeconds: m.leaseDurationSeconds,
          enabled: m.enabled,
        });
      }),
      RUNS,
    );
    fc.assert(
      fc.property(ipv4, port1, (ip, port) => {
        const decoded = decodeSoapResponse(encodeSoapResponse('urn:x', 'X', [['NewExternalIPAddress', ip], ['NewReservedPort', port]]), 'X');
        if (decoded instanceof ProtocolError || decoded.kind !== 'response') assert.fail('not a response');
        // A usable address reads back as sent; 0.x (not connected), loopback, link-local,
        // multicast and reserved (240/4) are typed `external-address` errors, never an address.
        const [a = 0, b = 0] = ip.split('.').map(Number);
        const unusable = a === 0 || a === 127 || (a === 169 && b === 254) || a >= 224;
        const read = readExternalIp(decoded.values);
        if (unusable) assert.ok(read instanceof ProtocolError && read.reason === 'external-address', `${ip} read as ${String(read)}`);
        else assert.equal(read, ip);
        assert.equal(readReservedPort(decoded.values), port);
      }),
      RUNS,
    );
  });

  it('decodes arbitrary text to a response, a fault or a ProtocolError, never throws (readers included)', () => {
    fc.assert(fc.property(anyText, action, readAll), RUNS);
    fc.assert(
      fc.property(anyText, fc.option(anyText, { nil: undefined }), (body, soapAction) => {
        assertTyped(decodeSoapRequest(body, soapAction), 'upnp');
      }),
      RUNS,
    );
  });

  it('decodes mutated responses and requests (fixtures and generated) to a typed result, never throws', () => {
    const generated = fc.oneof(
      fc.tuple(serviceType, action, args).map(([st, name, list]) => encodeSoapResponse(st, name, list)),
      fc.tuple(fc.integer({ min: 0, max: 9999 }), anyValue).map(([code, d]) => encodeSoapFault(code, d)),
    );
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...responses), generated), textMutations, fc.constantFrom(...ACTIONS), (body, mutations, name) => {
        readAll(mutateText(body, mutations), name);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.tuple(serviceType, action, args), textMutations, ([st, name, list], mutations) => {
        const request = encodeSoapRequest(st, name, list);
        assertTyped(decodeSoapRequest(mutateText(request.body, mutations), request.headers.SOAPAction), 'upnp');
      }),
      RUNS,
    );
  });
});
