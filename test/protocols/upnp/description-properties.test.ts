import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import {
  chooseWanConnectionService,
  parseDescription,
  WAN_CONNECTION_SERVICE_TYPES,
  WAN_IP_CONNECTION_1,
  WAN_IP_CONNECTION_2,
  WAN_PPP_CONNECTION_1,
  wanConnectionServices,
  type DeviceDescription,
} from '../../../src/protocols/upnp/description.js';
import { escapeXml } from '../../../src/protocols/upnp/xml.js';
import { anyText, assertTyped, codeUnit, record, RUNS, textMutations } from '../../../bench/lib/arbitraries.js';
import { mutateText } from '../../../bench/lib/mutate.js';

const DESCRIPTION_URL = 'http://192.168.1.1:5000/rootDesc.xml';

interface ModelService {
  readonly serviceType: string;
  readonly serviceId: string;
  readonly controlURL: string | undefined;
  readonly SCPDURL: string | undefined;
}
interface ModelDevice {
  readonly deviceType: string;
  readonly friendlyName: string | undefined;
  readonly UDN: string;
  readonly services: readonly ModelService[];
  readonly devices: readonly ModelDevice[];
}

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: codeUnit, maxLength: 10 }),
  fc.string({ unit: fc.constantFrom('<', '>', '&', "'", '"', ' ', '\n', 'x'), maxLength: 10 }),
);
const serviceType = fc.oneof(
  fc.constantFrom(...WAN_CONNECTION_SERVICE_TYPES),
  fc.constantFrom('urn:schemas-upnp-org:service:Layer3Forwarding:1', 'urn:schemas-upnp-org:service:WANIPConnection:3', ` ${WAN_IP_CONNECTION_1} `),
  text,
);
const url = fc.oneof(
  fc.constantFrom(
    '/ctl/IPConn',
    'ctl/IPConn',
    '../../up/../ctl',
    '?control=1',
    '#frag',
    '//192.168.1.1:5000/ctl',
    'http://192.168.1.1:5000/ctl',
    'HTTP://192.168.1.1:5000/ctl',
    'http://192.168.1.1:5001/ctl',
    'http://evil.example/ctl',
    'https://192.168.1.1:5000/ctl',
    'file:///etc/passwd',
    'javascript:alert(1)',
    'http://[::1',
    'http://%zz/',
    'http://192.168.1.1:99999/',
    '  /padded  ',
    '',
  ),
  text,
);
const urlBase = fc.option(fc.constantFrom('http://192.168.1.1:5000/', 'http://10.0.0.138:2869/upnphost/', 'ftp://192.168.1.1/', 'not a url', '/relative/'), { nil: undefined });

const service = record<ModelService>({
  serviceType,
  serviceId: text,
  controlURL: fc.option(url, { nil: undefined }),
  SCPDURL: fc.option(url, { nil: undefined }),
});

/** A device with embedded devices down to `levels` more levels (the tree stays well within the XML depth limit). */
const deviceTree = (levels: number): fc.Arbitrary<ModelDevice> =>
  record<ModelDevice>({
    deviceType: fc.oneof(fc.constantFrom('urn:schemas-upnp-org:device:InternetGatewayDevice:1', 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'), text),
    friendlyName: fc.option(text, { nil: undefined }),
    UDN: text,
    services: fc.array(service, { maxLength: 3 }),
    devices: levels === 0 ? fc.constant([]) : fc.array(deviceTree(levels - 1), { maxLength: 2 }),
  });
const device = deviceTree(3);

const tag = (name: string, value: string | undefined): string => (value === undefined ? '' : `<${name}>${escapeXml(value)}</${name}>`);

function serializeDevice(d: ModelDevice): string {
  const services = d.services.map((s) => `<service>${tag('serviceType', s.serviceType)}${tag('serviceId', s.serviceId)}${tag('SCPDURL', s.SCPDURL)}${tag('controlURL', s.controlURL)}</service>`);
  return (
    `<device>${tag('deviceType', d.deviceType)}${tag('friendlyName', d.friendlyName)}${tag('UDN', d.UDN)}` +
    (services.length > 0 ? `<serviceList>${services.join('\n')}</serviceList>` : '') +
    (d.devices.length > 0 ? `<deviceList>${d.devices.map(serializeDevice).join('')}</deviceList>` : '') +
    `</device>`
  );
}

const document = fc.record({ root: device, base: urlBase }).map(({ root, base }) => ({
  root,
  base,
  xml: `<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>${tag('URLBase', base)}${serializeDevice(root)}</root>`,
}));

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
