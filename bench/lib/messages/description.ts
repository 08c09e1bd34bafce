/**
 * Valid UPnP device descriptions, as a model and its XML, as fast-check arbitraries.
 * Shared by the property tests (`test/protocols/<proto>/*-properties.test.ts`) and the fuzzer
 * (`bench/fuzz.ts`), so both generate the same messages.
 */
import fc from 'fast-check';
import { WAN_CONNECTION_SERVICE_TYPES, WAN_IP_CONNECTION_1 } from '../../../src/protocols/upnp/description.js';
import { escapeXml } from '../../../src/protocols/upnp/xml.js';
import { codeUnit, record } from '../arbitraries.js';

/** A service as the model writes it into a description (undefined: the element is left out). */
export interface ModelService {
  readonly serviceType: string;
  readonly serviceId: string;
  readonly controlURL: string | undefined;
  readonly SCPDURL: string | undefined;
}
/** A device of the model: its fields, services and embedded devices. */
export interface ModelDevice {
  readonly deviceType: string;
  readonly friendlyName: string | undefined;
  readonly UDN: string;
  readonly services: readonly ModelService[];
  readonly devices: readonly ModelDevice[];
}

/** Element text: any code point, raw code units, and XML specials. */
export const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.string({ unit: codeUnit, maxLength: 10 }),
  fc.string({ unit: fc.constantFrom('<', '>', '&', "'", '"', ' ', '\n', 'x'), maxLength: 10 }),
);
/** A service type: the WAN connection types, near misses, or any text. */
export const serviceType = fc.oneof(
  fc.constantFrom(...WAN_CONNECTION_SERVICE_TYPES),
  fc.constantFrom('urn:schemas-upnp-org:service:Layer3Forwarding:1', 'urn:schemas-upnp-org:service:WANIPConnection:3', ` ${WAN_IP_CONNECTION_1} `),
  text,
);
/** A controlURL or SCPDURL: relative, absolute, other origin, other scheme, broken, or any text. */
export const url = fc.oneof(
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

/** One service of the model. */
export const service = record<ModelService>({
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
/** A root device with embedded devices three levels down. */
export const device = deviceTree(3);

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

/** A description document: the model (`root`, `base`) and its XML (`xml`). */
export const document = fc.record({ root: device, base: urlBase }).map(({ root, base }) => ({
  root,
  base,
  xml: `<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>${tag('URLBase', base)}${serializeDevice(root)}</root>`,
}));
