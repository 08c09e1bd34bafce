import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import {
  chooseWanConnectionService,
  parseDescription,
  WAN_CONNECTION_SERVICE_TYPES,
  WAN_IP_CONNECTION_2,
  WAN_PPP_CONNECTION_1,
  wanConnectionServices,
  type DeviceDescription,
} from '../../../src/protocols/upnp/description.js';
import { anyText, assertTyped, RUNS, textMutations } from '../../../bench/lib/arbitraries.js';
import { mutateText } from '../../../bench/lib/mutate.js';
import { document, type ModelDevice } from '../../../bench/lib/messages/description.js';

const DESCRIPTION_URL = 'http://192.168.1.1:5000/rootDesc.xml';

/** URL resolution as UDA describes it: URLBase (when an http URL) else the description URL; invalid URLs are dropped. */
function resolver(base: string | undefined): (value: string | undefined) => string | undefined {
  const parse = (value: string, against: string): URL | undefined => (URL.canParse(value, against) ? new URL(value, against) : undefined);
  const fromBase = base !== undefined && base.trim() !== '' ? parse(base.trim(), DESCRIPTION_URL) : undefined;
  const effective = fromBase?.protocol === 'http:' ? fromBase.href : DESCRIPTION_URL;
  return (value) => {
    const trimmed = value?.trim();
    return trimmed === undefined || trimmed === '' ? undefined : parse(trimmed, effective)?.href;
  };
}

/** The device tree the parser should report. */
function expectedDevice(d: ModelDevice, resolve: (value: string | undefined) => string | undefined): unknown {
  return {
    deviceType: d.deviceType.trim(),
    friendlyName: (d.friendlyName ?? '').trim(),
    udn: d.UDN.trim(),
    manufacturer: '',
    modelName: '',
    services: d.services.map((s) => ({ serviceType: s.serviceType.trim(), serviceId: s.serviceId.trim(), controlUrl: resolve(s.controlURL), scpdUrl: resolve(s.SCPDURL) })),
    devices: d.devices.map((c) => expectedDevice(c, resolve)),
  };
}

/** The WAN services the chooser should offer, most preferred first, or the reason it has none. */
function expectedWan(d: ModelDevice, resolve: (value: string | undefined) => string | undefined): { types: string[]; urls: string[] } | string {
  const found: { type: string; url: string | undefined; order: number }[] = [];
  const walk = (x: ModelDevice): void => {
    for (const s of x.services) {
      const type = s.serviceType.trim();
      if (WAN_CONNECTION_SERVICE_TYPES.includes(type)) found.push({ type, url: resolve(s.controlURL), order: found.length });
    }
    x.devices.forEach(walk);
  };
  walk(d);
  if (found.length === 0) return 'no-wan-service';
  const origin = new URL(DESCRIPTION_URL).origin;
  const usable = found.filter((f) => f.url !== undefined && new URL(f.url).protocol === 'http:' && new URL(f.url).origin === origin);
  if (usable.length === 0) return found.some((f) => f.url !== undefined) ? 'foreign-control-url' : 'no-wan-service';
  const rank = (type: string): number => WAN_CONNECTION_SERVICE_TYPES.indexOf(type);
  usable.sort((a, b) => rank(a.type) - rank(b.type) || a.order - b.order);
  return { types: usable.map((u) => u.type), urls: usable.map((u) => u.url as string) };
}

/** Everything a client does with a parsed description; none of it may throw. */
function useDescription(description: DeviceDescription): void {
  const services = wanConnectionServices(description);
  if (services instanceof ProtocolError) {
    assertTyped(services, 'upnp');
  } else {
    assert.ok(services.length > 0, 'an empty service list');
    for (const s of services) {
      assert.equal(new URL(s.controlUrl).origin, new URL(description.descriptionUrl).origin);
      assert.ok(s.version === (s.serviceType === WAN_IP_CONNECTION_2 ? 2 : 1), 'version');
      assert.ok(s.kind === (s.serviceType === WAN_PPP_CONNECTION_1 ? 'ppp' : 'ip'), 'kind');
    }
  }
  assertTyped(chooseWanConnectionService(description), 'upnp');
}

const fixtures = readdirSync(new URL('../../fixtures/upnp/', import.meta.url))
  .filter((f) => f.endsWith('.xml'))
  .map((f) => readFileSync(new URL(`../../fixtures/upnp/${f}`, import.meta.url), 'utf8'));

describe('device description properties', () => {
  it('parses every generated description: fields (trimmed), embedded devices, URLs resolved against URLBase', () => {
    fc.assert(
      fc.property(document, ({ root, base, xml }) => {
        const parsed = parseDescription(xml, DESCRIPTION_URL);
        if (parsed instanceof ProtocolError) assert.fail(`${parsed.reason}: ${parsed.message}`);
        const resolve = resolver(base);
        assert.deepEqual(parsed.device, expectedDevice(root, resolve));
        const igd = /^urn:schemas-upnp-org:device:InternetGatewayDevice:(\d+)$/.exec(root.deviceType.trim());
        assert.equal(parsed.igdVersion, igd ? (igd[1] === '1' ? 1 : 2) : undefined);
      }),
      RUNS,
    );
  });

  it('chooses WAN services by preference and document order, on the description origin only', () => {
    fc.assert(
      fc.property(document, ({ root, base, xml }) => {
        const parsed = parseDescription(xml, DESCRIPTION_URL);
        if (parsed instanceof ProtocolError) assert.fail(parsed.message);
        const expected = expectedWan(root, resolver(base));
        const services = wanConnectionServices(parsed);
        if (typeof expected === 'string') {
          assert.equal(services instanceof ProtocolError ? services.reason : 'services', expected);
        } else {
          if (services instanceof ProtocolError) assert.fail(services.message);
          assert.deepEqual({ types: services.map((s) => s.serviceType), urls: services.map((s) => s.controlUrl) }, expected);
          assert.deepEqual(chooseWanConnectionService(parsed), services[0]);
        }
      }),
      RUNS,
    );
  });

  it('returns a typed result for arbitrary documents and description URLs, never throws', () => {
    fc.assert(
      fc.property(anyText, fc.oneof(fc.constant(DESCRIPTION_URL), anyText), (xml, descriptionUrl) => {
        const parsed = parseDescription(xml, descriptionUrl);
        assertTyped(parsed, 'upnp');
        if (!(parsed instanceof ProtocolError)) useDescription(parsed);
      }),
      RUNS,
    );
  });

  it('returns a typed result for mutated descriptions (fixtures and generated), and the chooser never throws', () => {
    const valid = fc.oneof(fc.constantFrom(...fixtures), document.map((d) => d.xml));
    const rewrite = fc.option(fc.constantFrom(['http://192.168.1.2:5000'], ['http://10.0.0.138:2869'], ['not an origin']), { nil: undefined });
    fc.assert(
      fc.property(valid, textMutations, rewrite, (xml, mutations, rewriteOrigins) => {
        const parsed = parseDescription(mutateText(xml, mutations), DESCRIPTION_URL, rewriteOrigins ? { rewriteOrigins } : {});
        assertTyped(parsed, 'upnp');
        if (!(parsed instanceof ProtocolError)) useDescription(parsed);
      }),
      RUNS,
    );
  });
});
