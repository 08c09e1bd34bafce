/**
 * Fuzzes every decoder of rxnat: NAT-PMP, PCP, SSDP, the XML reader, device descriptions and SOAP.
 * Each decoder gets `--count` inputs (default 100 000): random bytes and text, freshly encoded
 * valid messages, and mutations of valid ones (bit flips, byte insert/delete, truncation,
 * duplication, splices of two inputs, boundary bytes, numeric-boundary and markup substitutions
 * for text). Inputs that decode, or fail for a reason not seen yet, join the pool mutated next.
 *
 * A decoder must answer a message or a typed ProtocolError. An exception escaping it (or any
 * client-side reader run on its answer) is a crash; crashes are minimised and printed as hex.
 * Decoders with an encoder are also checked for stability: whatever decodes re-encodes to a
 * message that decodes the same (NAT-PMP: to the same bytes).
 *
 * Usage: node --import tsx bench/fuzz.ts [--count N] [--seed S] [--only NAME] [--no-write]
 * Writes bench/results/fuzz-<ISO date>.json; exits 1 on any crash or untyped answer.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { ProtocolError } from '../src/errors.js';
import { decodePcpRequest, decodePcpResponse, encodePcpErrorResponse, encodePcpRequest, encodePcpResponse, type PcpOption } from '../src/protocols/pcp/codec.js';
import { decodePmpRequest, decodePmpResponse, encodePmpRequest, encodePmpResponse } from '../src/protocols/pmp/codec.js';
import { chooseWanConnectionService, parseDescription, WAN_CONNECTION_SERVICE_TYPES, wanConnectionServices } from '../src/protocols/upnp/description.js';
import {
  decodeSoapRequest,
  decodeSoapResponse,
  encodeSoapFault,
  encodeSoapRequest,
  encodeSoapResponse,
  faultToError,
  readExternalIp,
  readPortMappingEntry,
  readReservedPort,
  readStatusInfo,
} from '../src/protocols/upnp/soap.js';
import { decodeSsdpResponse, usnDevice } from '../src/protocols/upnp/ssdp.js';
import { escapeXml, parseXml } from '../src/protocols/upnp/xml.js';
import { readHex } from './lib/hex.js';
import {
  BOUNDARY_BYTES,
  BOUNDARY_NUMBERS,
  HTTP_TOKENS,
  mutateBytes,
  mutateText,
  toHex,
  XML_TOKENS,
  type ByteMutation,
  type TextMutation,
} from './lib/mutate.js';

// ---------------------------------------------------------------------------------------------
// Options.

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}
const COUNT = Number(option('count') ?? 100_000);
const SEED = Number(option('seed') ?? 42);
const ONLY = option('only');
const WRITE = !process.argv.includes('--no-write');
if (!Number.isInteger(COUNT) || COUNT < 1 || !Number.isInteger(SEED)) {
  console.error('usage: node --import tsx bench/fuzz.ts [--count N] [--seed S] [--only NAME] [--no-write]');
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (sfc32, seeded by splitmix32): the same seed gives the same inputs.

class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }
  u32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }
  /** 0..n-1 */
  int(n: number): number {
    return n <= 0 ? 0 : this.u32() % n;
  }
  range(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
  /** 1..max, each value half as likely as the one before (mutation counts: mostly one or two). */
  count(max: number): number {
    let n = 1;
    while (n < max && this.chance(0.5)) n++;
    return n;
  }
  /** A length biased to small values, up to `max`. */
  length(max: number): number {
    const r = this.int(4);
    return r === 0 ? this.int(Math.min(max, 16) + 1) : r === 1 ? this.int(Math.min(max, 128) + 1) : this.int(max + 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Random values and mutations.

const ALPHABETS: readonly ((rng: Rng) => string)[] = [
  (rng) => String.fromCharCode(rng.range(0x20, 0x7e)),
  (rng) => String.fromCharCode(rng.int(0x100)),
  (rng) => String.fromCharCode(rng.int(0x10000)),
  (rng) => String.fromCodePoint(rng.range(0x10000, 0x10ffff)),
  (rng) => rng.pick(XML_TOKENS),
  (rng) => rng.pick(HTTP_TOKENS),
  (rng) => rng.pick(BOUNDARY_NUMBERS),
];

function randomText(rng: Rng, max: number): string {
  const n = rng.length(max);
  const mixed = rng.chance(0.5);
  const fixed = rng.pick(ALPHABETS);
  let out = '';
  while (out.length < n) out += (mixed ? rng.pick(ALPHABETS) : fixed)(rng);
  return out;
}

function byteMutation(rng: Rng, other: () => Uint8Array | undefined): ByteMutation {
  const at = rng.int(4096);
  switch (rng.int(8)) {
    case 0:
    case 1:
      return { kind: 'flip', at, bit: rng.int(8) };
    case 2:
      return { kind: 'set', at, value: rng.chance(0.7) ? rng.pick(BOUNDARY_BYTES) : rng.int(256) };
    case 3:
      return { kind: 'insert', at, bytes: rng.chance(0.5) ? Uint8Array.of(rng.pick(BOUNDARY_BYTES)) : rng.bytes(rng.range(1, 16)) };
    case 4:
      return { kind: 'delete', at, length: rng.range(1, 16) };
    case 5:
      return { kind: 'truncate', at };
    case 6:
      return { kind: 'duplicate', at, length: rng.range(1, 64), to: rng.int(4096) };
    default:
      return { kind: 'splice', at, other: other() ?? rng.bytes(rng.length(64)), from: rng.int(4096) };
  }
}

function textMutation(rng: Rng, other: () => string | undefined): TextMutation {
  const at = rng.int(1 << 16);
  switch (rng.int(10)) {
    case 0:
      return { kind: 'flip', at, bit: rng.chance(0.7) ? rng.int(8) : rng.int(16) };
    case 1:
    case 2:
      return { kind: 'insert', at, text: rng.chance(0.8) ? rng.pick(rng.chance(0.5) ? XML_TOKENS : HTTP_TOKENS) : randomText(rng, 8) };
    case 3:
      return { kind: 'delete', at, length: rng.range(1, 32) };
    case 4:
      return { kind: 'truncate', at };
    case 5:
      return { kind: 'duplicate', at, length: rng.range(1, 256), to: rng.int(1 << 16) };
    case 6:
      return { kind: 'splice', at, other: other() ?? randomText(rng, 64), from: rng.int(1 << 16) };
    case 7:
    case 8:
      return { kind: 'number', index: rng.int(64), value: rng.pick(BOUNDARY_NUMBERS) };
    default:
      return { kind: 'case', at, length: rng.range(1, 16) };
  }
}

/** 1-8 mutations (mostly one or two); a splice takes the other input from `other` (a pool member). */
const mutateBytesRandomly = (rng: Rng, input: Uint8Array, other: () => Uint8Array | undefined): Uint8Array =>
  mutateBytes(input, Array.from({ length: rng.count(8) }, () => byteMutation(rng, other)));
const mutateTextRandomly = (rng: Rng, input: string, other: () => string | undefined): string =>
  mutateText(input, Array.from({ length: rng.count(8) }, () => textMutation(rng, other)));

// ---------------------------------------------------------------------------------------------
// Valid messages and fixtures.

const fixtureDir = new URL('../test/fixtures/', import.meta.url);
const hexFixtures = (dir: string): Uint8Array[] =>
  readdirSync(new URL(`${dir}/`, fixtureDir))
    .filter((f) => f.endsWith('.hex'))
    .map((f) => readHex(new URL(`${dir}/${f}`, fixtureDir)));
const textFixtures = (match: RegExp, encoding: BufferEncoding = 'utf8'): string[] =>
  readdirSync(new URL('upnp/', fixtureDir))
    .filter((f) => match.test(f))
    .map((f) => readFileSync(new URL(`upnp/${f}`, fixtureDir), encoding));

const u16 = (rng: Rng): number => (rng.chance(0.3) ? rng.pick([0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff]) : rng.int(0x10000));
const u32 = (rng: Rng): number => (rng.chance(0.3) ? rng.pick([0, 1, 0x7fffffff, 0x80000000, 0xffffffff]) : rng.u32());
const ipv4 = (rng: Rng): string => [0, 0, 0, 0].map(() => rng.int(256)).join('.');
const protocol = (rng: Rng): 'tcp' | 'udp' => (rng.chance(0.5) ? 'tcp' : 'udp');
const pcpAddress = (rng: Rng): string => {
  if (rng.chance(0.6)) return ipv4(rng);
  const groups = Array.from({ length: 8 }, () => (rng.chance(0.4) ? 0 : rng.int(0x10000)));
  return groups.map((g) => g.toString(16)).join(':');
};
const pcpOptions = (rng: Rng): PcpOption[] =>
  Array.from({ length: rng.chance(0.6) ? 0 : rng.range(1, 4) }, () => ({ code: rng.range(1, 255), data: rng.bytes(rng.length(64)) }));

function validPmp(rng: Rng): Uint8Array {
  switch (rng.int(5)) {
    case 0:
      return encodePmpRequest({ op: 'external-address' });
    case 1:
      return encodePmpRequest({ op: 'map', protocol: protocol(rng), internalPort: u16(rng), suggestedExternalPort: u16(rng), lifetimeSeconds: u32(rng) });
    case 2:
      return encodePmpResponse({ op: 'external-address', resultCode: rng.int(7), epochSeconds: u32(rng), externalIp: ipv4(rng) });
    case 3:
      return encodePmpResponse({ op: 'map', protocol: protocol(rng), resultCode: rng.int(7), epochSeconds: u32(rng), internalPort: u16(rng), externalPort: u16(rng), lifetimeSeconds: u32(rng) });
    default:
      return encodePmpResponse({ op: 'short', opcode: rng.range(128, 255), resultCode: rng.range(1, 6), epochSeconds: u32(rng) });
  }
}

function validPcp(rng: Rng): Uint8Array {
  const nonce = rng.bytes(12);
  switch (rng.int(6)) {
    case 0:
      return encodePcpRequest({ op: 'announce', lifetimeSeconds: 0, clientIp: pcpAddress(rng), options: pcpOptions(rng) });
    case 1:
      return encodePcpRequest({
        op: 'map',
        lifetimeSeconds: u32(rng),
        clientIp: pcpAddress(rng),
        nonce,
        protocol: rng.pick([0, 6, 17, rng.int(256)]),
        internalPort: u16(rng),
        suggestedExternalPort: u16(rng),
        suggestedExternalIp: pcpAddress(rng),
        options: pcpOptions(rng),
      });
    case 2:
      return encodePcpResponse({ op: 'announce', opcode: 0, resultCode: rng.int(14), lifetimeSeconds: u32(rng), epochSeconds: u32(rng), options: pcpOptions(rng) });
    case 3:
      return encodePcpResponse({
        op: 'map',
        opcode: 1,
        resultCode: rng.int(14),
        lifetimeSeconds: u32(rng),
        epochSeconds: u32(rng),
        nonce,
        protocol: rng.pick([6, 17]),
        internalPort: u16(rng),
        externalPort: u16(rng),
        externalIp: pcpAddress(rng),
        options: pcpOptions(rng),
      });
    case 4:
      return encodePcpResponse({ op: 'header', opcode: rng.range(1, 127), resultCode: rng.range(1, 13), lifetimeSeconds: u32(rng), epochSeconds: u32(rng) });
    default:
      return encodePcpResponse({ op: 'pmp-unsupported-version', opcode: rng.range(128, 255), resultCode: 1, epochSeconds: u32(rng) });
  }
}

const SSDP_HEADERS = ['CACHE-CONTROL', 'DATE', 'EXT', 'LOCATION', 'SERVER', 'ST', 'USN', 'OPT', '01-NLS', 'BOOTID.UPNP.ORG', 'CONFIGID.UPNP.ORG'];
const LOCATIONS = ['http://192.168.1.1:5000/rootDesc.xml', 'http://10.0.0.138:2869/upnphost/udhisapi.dll?content=uuid:x', 'http://[fe80::1]:80/d.xml', 'https://x/', '/relative'];

function validSsdp(rng: Rng): string {
  const headers = SSDP_HEADERS.filter(() => rng.chance(0.7));
  if (!headers.includes('LOCATION')) headers.push('LOCATION');
  if (!headers.includes('ST')) headers.push('ST');
  const value = (name: string): string =>
    name === 'LOCATION'
      ? rng.pick(LOCATIONS)
      : name === 'ST'
        ? rng.pick(['upnp:rootdevice', ...WAN_CONNECTION_SERVICE_TYPES, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'])
        : name === 'USN'
          ? `uuid:${toHex(rng.bytes(16))}::upnp:rootdevice`
          : String(rng.u32());
  const lines = [rng.pick(['HTTP/1.1 200 OK', 'HTTP/1.0 200', 'http/1.1 200 ok']), ...headers.map((h) => `${rng.chance(0.3) ? h.toLowerCase() : h}:${rng.chance(0.8) ? ' ' : ''}${value(h)}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

const SERVICE_TYPES = [...WAN_CONNECTION_SERVICE_TYPES, 'urn:schemas-upnp-org:service:Layer3Forwarding:1', 'urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1'];
const CONTROL_URLS = ['/ctl/IPConn', 'ctl', '../x/../ctl', 'http://192.168.1.1:5000/ctl', 'http://192.168.1.1:5001/ctl', 'http://evil.example/', 'https://192.168.1.1:5000/c', 'http://[::1', 'web+x:/.//y', ''];

function validDescription(rng: Rng): string {
  const text = (): string => escapeXml(rng.chance(0.7) ? `name ${rng.int(1000)}` : randomText(rng, 24));
  const device = (level: number): string => {
    const services = Array.from({ length: rng.int(3) }, () => {
      const url = rng.chance(0.8) ? rng.pick(CONTROL_URLS) : randomText(rng, 24);
      return `<service><serviceType>${rng.pick(SERVICE_TYPES)}</serviceType><serviceId>urn:upnp-org:serviceId:${rng.int(9)}</serviceId><SCPDURL>/scpd.xml</SCPDURL><controlURL>${escapeXml(url)}</controlURL></service>`;
    });
    const children = level < 3 ? Array.from({ length: rng.int(3) }, () => device(level + 1)) : [];
    return (
      `<device><deviceType>urn:schemas-upnp-org:device:${rng.pick(['InternetGatewayDevice:1', 'InternetGatewayDevice:2', 'WANDevice:1', 'WANConnectionDevice:1'])}</deviceType>` +
      `<friendlyName>${text()}</friendlyName><manufacturer>${text()}</manufacturer><modelName>${text()}</modelName><UDN>uuid:${toHex(rng.bytes(8))}</UDN>` +
      (services.length > 0 ? `<serviceList>${services.join('')}</serviceList>` : '') +
      (children.length > 0 ? `<deviceList>${children.join('')}</deviceList>` : '') +
      `</device>`
    );
  };
  const base = rng.chance(0.3) ? `<URLBase>${rng.pick(['http://192.168.1.1:5000/', 'http://10.0.0.1:2869/upnphost/', 'ftp://x/', 'junk'])}</URLBase>` : '';
  return `<?xml version="1.0"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>${base}${device(0)}</root>`;
}

const ACTIONS = ['AddPortMapping', 'AddAnyPortMapping', 'DeletePortMapping', 'GetExternalIPAddress', 'GetSpecificPortMappingEntry', 'GetGenericPortMappingEntry', 'GetStatusInfo'];
const SOAP_ARGS = [
  'NewExternalIPAddress',
  'NewReservedPort',
  'NewRemoteHost',
  'NewExternalPort',
  'NewProtocol',
  'NewInternalPort',
  'NewInternalClient',
  'NewEnabled',
  'NewPortMappingDescription',
  'NewLeaseDuration',
  'NewConnectionStatus',
  'NewLastConnectionError',
  'NewUptime',
];

function soapValue(rng: Rng): string | number {
  switch (rng.int(5)) {
    case 0:
      return rng.pick(BOUNDARY_NUMBERS);
    case 1:
      return ipv4(rng);
    case 2:
      return rng.pick(['TCP', 'UDP', 'tcp', 'Connected', '1', '0', 'true', 'no', '']);
    case 3:
      return u32(rng);
    default:
      return randomText(rng, 24);
  }
}

function validSoap(rng: Rng): { body: string; action: string } {
  const action = rng.pick(ACTIONS);
  const serviceType = rng.pick(SERVICE_TYPES);
  if (rng.chance(0.3)) return { body: encodeSoapFault(rng.chance(0.8) ? rng.range(400, 800) : rng.range(-1, 100_000), rng.chance(0.5) ? undefined : randomText(rng, 24)), action };
  const args = SOAP_ARGS.filter(() => rng.chance(0.5)).map((name) => [name, soapValue(rng)] as const);
  return { body: encodeSoapResponse(serviceType, action, args), action };
}

// ---------------------------------------------------------------------------------------------
// Targets.

interface Target<I> {
  readonly codec: string;
  readonly decoder: string;
  /** Valid inputs to mutate: fixtures. */
  readonly seeds: readonly I[];
  valid(rng: Rng): I;
  random(rng: Rng): I;
  mutate(rng: Rng, input: I, pool: readonly I[]): I;
  /** Decodes, then does whatever a client does with the answer. Returns the decoder's answer. */
  run(input: I): unknown;
  /** For a decoded message: a description of how re-encoding changed it, or undefined. */
  stable?(input: I, decoded: unknown): string | undefined;
  /** The input's units, for minimising crashes, and the input with other units. */
  units(input: I): Uint8Array | string;
  withUnits(input: I, units: Uint8Array | string): I;
  show(input: I): { size: number; hex: string; text?: string };
}

/** Inputs are reported whole up to 4 KiB, else cut (the size says so). */
const SHOW_MAX = 4096;
const showBytes = (bytes: Uint8Array): { size: number; hex: string } => ({ size: bytes.length, hex: toHex(bytes.subarray(0, SHOW_MAX)) });
const showText = (text: string): { size: number; hex: string; text: string } => {
  const cut = text.slice(0, SHOW_MAX);
  return { size: text.length, hex: toHex(Buffer.from(cut, 'utf8')), text: cut };
};

/** A target over raw bytes. */
function bytesTarget(init: Pick<Target<Uint8Array>, 'codec' | 'decoder' | 'seeds' | 'valid' | 'run' | 'stable'> & Partial<Pick<Target<Uint8Array>, 'mutate'>>): Target<Uint8Array> {
  return {
    random: (rng) => (rng.chance(0.5) ? rng.bytes(rng.length(2048)) : rng.bytes(rng.pick([2, 8, 12, 16, 24, 28, 60, 64, 1100, 1104]))),
    mutate: (rng, input, pool) => mutateBytesRandomly(rng, input, () => rng.pick(pool)),
    ...init,
    units: (input) => input,
    withUnits: (_input, units) => (typeof units === 'string' ? Buffer.from(units, 'latin1') : units),
    show: showBytes,
  };
}

const BIG_UNITS = ['<a>', '<a/>', '</a>', '&', '&amp;', '&#x1F600;', '<!---->', '<?p?>', '<', ' a="1"', '<!ENTITY a "&a;&a;">', '<a><s/>', ']]>', '-->', ':', '\r\n'];

function bigText(rng: Rng): string {
  const unit = rng.chance(0.7) ? rng.pick(BIG_UNITS) : randomText(rng, 16) || 'x';
  const size = rng.range(64 * 1024, 1_000_000);
  const prefix = rng.pick(['', '<r>', '<r a="', '<!--', '<r><![CDATA[', '<s:Envelope><s:Body>', '<root><device>']);
  return prefix + unit.repeat(Math.max(1, Math.floor((size - prefix.length) / unit.length)));
}

/** Text plus a context value (the action a SOAP answer answers, the URL a description came from). */
interface Contextual {
  readonly text: string;
  readonly context: string;
}

function textTarget(
  init: Pick<Target<Contextual>, 'codec' | 'decoder' | 'seeds' | 'valid' | 'run' | 'stable'> & { readonly contexts: readonly string[]; readonly maxRandom: number },
): Target<Contextual> {
  const context = (rng: Rng, current: string): string => (rng.chance(0.9) ? current : rng.chance(0.5) ? rng.pick(init.contexts) : randomText(rng, 32));
  return {
    ...init,
    // One random input in 50 (one input in 500 overall) is big: a fragment repeated up to 1 MB
    // (the XML reader's size bound), to find super-linear paths. The rest is short random text.
    random: (rng) => ({ text: rng.chance(0.02) ? bigText(rng) : randomText(rng, init.maxRandom), context: rng.pick(init.contexts) }),
    mutate: (rng, input, pool) => ({ text: mutateTextRandomly(rng, input.text, () => rng.pick(pool).text), context: context(rng, input.context) }),
    units: (input) => input.text,
    withUnits: (input, units) => ({ ...input, text: typeof units === 'string' ? units : Buffer.from(units).toString('latin1') }),
    show: (input) => ({ ...showText(input.text), context: input.context }),
  };
}

/** readExternalIp must only ever answer a dotted quad: anything else is thrown, and counted as a crash. */
const ipv4Only = (values: ReadonlyMap<string, string>): void => {
  const ip = readExternalIp(values);
  if (typeof ip === 'string' && !/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new Error(`readExternalIp accepted ${ip}`);
};

const DESCRIPTION_URL = 'http://192.168.1.1:5000/rootDesc.xml';

/** A target with its input type hidden. */
interface Entry {
  readonly name: string;
  run(rng: Rng): TargetReport;
}
const entry = <I>(target: Target<I>): Entry => ({ name: `${target.codec} / ${target.decoder}`, run: (rng) => fuzz(target, rng) });

const all: Entry[] = [
  bytesTarget({
    codec: 'NAT-PMP',
    decoder: 'decodePmpRequest',
    seeds: hexFixtures('pmp'),
    valid: validPmp,
    run: (bytes) => {
      decodePmpRequest(bytes);
      return decodePmpRequest(bytes, { reserved: 'ignore' });
    },
    stable: (bytes) => {
      const strict = decodePmpRequest(bytes);
      if (strict instanceof ProtocolError) return undefined;
      return isDeepStrictEqual(encodePmpRequest(strict), bytes) ? undefined : 're-encoded request differs';
    },
  }),
  bytesTarget({
    codec: 'NAT-PMP',
    decoder: 'decodePmpResponse',
    seeds: [...hexFixtures('pmp'), ...hexFixtures('pcp')],
    valid: validPmp,
    run: (bytes) => decodePmpResponse(bytes),
    stable: (bytes, decoded) => {
      if (decoded instanceof ProtocolError) return undefined;
      return isDeepStrictEqual(encodePmpResponse(decoded as Parameters<typeof encodePmpResponse>[0]), bytes) ? undefined : 're-encoded response differs';
    },
  }),
  bytesTarget({
    codec: 'PCP',
    decoder: 'decodePcpRequest',
    seeds: hexFixtures('pcp'),
    valid: validPcp,
    run: (bytes) => {
      decodePcpRequest(bytes);
      const decoded = decodePcpRequest(bytes, { reserved: 'ignore' });
      // What the server does with a request it cannot serve: answer an error echoing it.
      const reply = decodePcpResponse(encodePcpErrorResponse(bytes, { resultCode: 3, lifetimeSeconds: 30, epochSeconds: 1 }), { reserved: 'ignore' });
      if (!(reply instanceof ProtocolError) && reply.op !== 'header' && reply.op !== 'announce' && reply.op !== 'map') throw new Error(`error response decoded as ${reply.op}`);
      return decoded;
    },
    stable: (bytes) => {
      const strict = decodePcpRequest(bytes);
      if (strict instanceof ProtocolError) return undefined;
      return isDeepStrictEqual(decodePcpRequest(encodePcpRequest(strict)), strict) ? undefined : 're-encoded request decodes differently';
    },
  }),
  bytesTarget({
    codec: 'PCP',
    decoder: 'decodePcpResponse',
    seeds: [...hexFixtures('pcp'), ...hexFixtures('pmp')],
    valid: validPcp,
    run: (bytes) => {
      decodePcpResponse(bytes);
      return decodePcpResponse(bytes, { reserved: 'ignore' });
    },
    stable: (bytes) => {
      const strict = decodePcpResponse(bytes);
      if (strict instanceof ProtocolError) return undefined;
      return isDeepStrictEqual(decodePcpResponse(encodePcpResponse(strict)), strict) ? undefined : 're-encoded response decodes differently';
    },
  }),
  bytesTarget({
    codec: 'SSDP',
    decoder: 'decodeSsdpResponse',
    seeds: textFixtures(/^ssdp-/, 'latin1').map((t) => Buffer.from(t, 'latin1')),
    valid: (rng) => Buffer.from(validSsdp(rng), 'latin1'),
    run: (bytes) => {
      const answer = decodeSsdpResponse(bytes, '192.0.2.1');
      if (!(answer instanceof ProtocolError)) usnDevice(answer.usn);
      // The same datagram handed over as a string (non-latin1 text is possible that way).
      decodeSsdpResponse(Buffer.from(bytes).toString('utf8'));
      return answer;
    },
    // Half byte mutations, half text mutations (numeric boundaries, header fragments) of the latin1 text.
    mutate: (rng, input, pool) =>
      rng.chance(0.5)
        ? mutateBytesRandomly(rng, input, () => rng.pick(pool))
        : Buffer.from(mutateTextRandomly(rng, Buffer.from(input).toString('latin1'), () => Buffer.from(rng.pick(pool)).toString('latin1')), 'latin1'),
  }),
  textTarget({
    codec: 'UPnP XML',
    decoder: 'parseXml',
    seeds: textFixtures(/\.xml$/).map((text) => ({ text, context: '' })),
    contexts: ['', '8', '1'],
    maxRandom: 2048,
    valid: (rng) => ({ text: rng.chance(0.5) ? validDescription(rng) : validSoap(rng).body, context: '' }),
    run: ({ text, context }) => parseXml(text, context === '' ? {} : { maxDepth: Number(context) || 0 }),
  }),
  textTarget({
    codec: 'Device description',
    decoder: 'parseDescription',
    seeds: textFixtures(/^igd.*\.xml$/).map((text) => ({ text, context: DESCRIPTION_URL })),
    contexts: [DESCRIPTION_URL, 'http://10.0.0.138:2869/upnphost/udhisapi.dll?content=uuid:x', 'https://192.168.1.1/', 'http://[::1]:5000/d.xml', 'not a url'],
    maxRandom: 2048,
    valid: (rng) => ({ text: validDescription(rng), context: DESCRIPTION_URL }),
    run: ({ text, context }) => {
      const description = parseDescription(text, context, { rewriteOrigins: ['http://192.168.1.2:5000', 'http://10.0.0.138:2869'] });
      if (!(description instanceof ProtocolError)) {
        const services = wanConnectionServices(description);
        if (!(services instanceof ProtocolError)) for (const s of services) new URL(s.controlUrl);
        chooseWanConnectionService(description);
      }
      return description;
    },
  }),
  textTarget({
    codec: 'SOAP',
    decoder: 'decodeSoapResponse',
    seeds: textFixtures(/^soap-/).flatMap((text) => ACTIONS.map((context) => ({ text, context }))),
    contexts: ACTIONS,
    maxRandom: 2048,
    valid: (rng) => {
      const { body, action } = validSoap(rng);
      return { text: body, context: action };
    },
    run: ({ text, context }) => {
      const decoded = decodeSoapResponse(text, context, { status: 500, gateway: 'http://192.168.1.1:5000/ctl' });
      if (decoded instanceof ProtocolError) return decoded;
      if (decoded.kind === 'fault') {
        faultToError(decoded, 'http://192.168.1.1:5000/ctl');
      } else {
        ipv4Only(decoded.values);
        readReservedPort(decoded.values);
        readStatusInfo(decoded.values);
        readPortMappingEntry(decoded.values);
        readPortMappingEntry(decoded.values, { externalPort: 8080, protocol: 'tcp' });
      }
      return decoded;
    },
  }),
  textTarget({
    codec: 'SOAP',
    decoder: 'decodeSoapRequest',
    seeds: ACTIONS.map((action) => {
      const request = encodeSoapRequest('urn:schemas-upnp-org:service:WANIPConnection:2', action, [['NewExternalPort', 8080], ['NewProtocol', 'TCP']]);
      return { text: request.body, context: request.headers.SOAPAction ?? '' };
    }),
    contexts: ACTIONS.map((a) => `"urn:schemas-upnp-org:service:WANIPConnection:2#${a}"`),
    maxRandom: 2048,
    valid: (rng) => {
      const args = SOAP_ARGS.filter(() => rng.chance(0.4)).map((name) => [name, soapValue(rng)] as const);
      const request = encodeSoapRequest(rng.pick(SERVICE_TYPES), rng.pick(ACTIONS), args);
      return { text: request.body, context: request.headers.SOAPAction ?? '' };
    },
    run: ({ text, context }) => decodeSoapRequest(text, context),
  }),
].map((target: Target<Uint8Array> | Target<Contextual>) => entry(target as Target<unknown>));

// ---------------------------------------------------------------------------------------------
// parseXml turns an exception of its reader into a `malformed` ProtocolError (defensive). Such an
// error has a message none of the reader's own failures has: count those as masked crashes.

const XML_MESSAGES = [
  /^not a string$/,
  /^document longer than \d+ bytes$/,
  /^text outside the root element at \d+$/,
  /^unterminated (processing instruction|comment|CDATA section|entity reference)$/,
  /^CDATA outside the root element$/,
  /^(DOCTYPE|ENTITY) declarations are not accepted$/,
  /^unsupported markup declaration at \d+$/,
  /^expected '>' after <\/.*$/s,
  /^unexpected closing tag <\/.*>$/s,
  /^<.*> closed by <\/.*>$/s,
  /^more than one root element$/,
  /^more than \d+ elements$/,
  /^nesting deeper than \d+$/,
  /^unclosed element <.*>$/s,
  /^no root element$/,
  /^unterminated tag <.*$/s,
  /^expected '\/>' in <.*>$/s,
  /^expected whitespace before attribute in <.*>$/s,
  /^attribute .* (without '='|value not quoted)$/s,
  /^unterminated attribute .*$/s,
  /^'<' in attribute .*$/s,
  /^duplicate attribute .*$/s,
  /^expected a name at \d+$/,
  /^(invalid character reference|unknown entity) &.*;$/s,
];

function maskedException(result: unknown): string | undefined {
  if (!(result instanceof ProtocolError) || result.reason !== 'malformed') return undefined;
  const at = result.message.indexOf('invalid XML: ');
  if (at === -1) return undefined;
  const message = result.message.slice(at + 'invalid XML: '.length);
  return XML_MESSAGES.some((re) => re.test(message)) ? undefined : message;
}

// ---------------------------------------------------------------------------------------------
// The run.

interface Sample {
  readonly size: number;
  readonly hex: string;
  readonly text?: string;
  readonly message: string;
  readonly minimized?: { size: number; hex: string; text?: string };
}

interface TargetReport {
  codec: string;
  decoder: string;
  inputs: number;
  decodedOk: number;
  typedErrors: number;
  reasons: Record<string, number>;
  crashes: number;
  /** Crashes by error (name and message), so one bug hit many times shows as one line. */
  crashKinds: Record<string, number>;
  untyped: number;
  maskedExceptions: number;
  unstable: number;
  slowestMs: number;
  slowestInput: { size: number; hex: string; text?: string } | undefined;
  totalMs: number;
  samples: { crashes: Sample[]; untyped: Sample[]; masked: Sample[]; unstable: Sample[] };
}

/** Delta debugging: removes ever smaller chunks while the input still fails (at most 10 s). */
function minimize<I>(target: Target<I>, input: I, fails: (input: I) => boolean): I {
  let units = target.units(input);
  let chunk = Math.max(1, Math.floor(units.length / 2));
  const deadline = performance.now() + 10_000;
  while (chunk >= 1 && performance.now() < deadline) {
    let removed = false;
    for (let at = 0; at < units.length && performance.now() < deadline; ) {
      const candidate = typeof units === 'string' ? units.slice(0, at) + units.slice(at + chunk) : Uint8Array.from([...units.subarray(0, at), ...units.subarray(at + chunk)]);
      if (fails(target.withUnits(input, candidate))) {
        units = candidate;
        removed = true;
      } else {
        at += chunk;
      }
    }
    if (!removed) chunk = Math.floor(chunk / 2);
  }
  return target.withUnits(input, units);
}

function timed<I>(target: Target<I>, input: I): number {
  const t0 = performance.now();
  try {
    target.run(input);
  } catch {
    // Counted by the caller.
  }
  return performance.now() - t0;
}

const throws = <I>(target: Target<I>) => (input: I): boolean => {
  try {
    target.run(input);
    return false;
  } catch {
    return true;
  }
};

function fuzz<I>(target: Target<I>, rng: Rng): TargetReport {
  const report: TargetReport = {
    codec: target.codec,
    decoder: target.decoder,
    inputs: 0,
    decodedOk: 0,
    typedErrors: 0,
    reasons: {},
    crashes: 0,
    crashKinds: {},
    untyped: 0,
    maskedExceptions: 0,
    unstable: 0,
    slowestMs: 0,
    slowestInput: undefined,
    totalMs: 0,
    samples: { crashes: [], untyped: [], masked: [], unstable: [] },
  };
  const pool: I[] = [...target.seeds];
  const keep = (input: I): void => {
    if (pool.length < 512) pool.push(input);
    else pool[rng.int(pool.length)] = input;
  };
  const sample = (input: I, message: string, minimized?: I): Sample => ({
    ...target.show(input),
    message,
    ...(minimized !== undefined ? { minimized: target.show(minimized) } : {}),
  });
  const started = performance.now();
  for (let i = 0; i < COUNT; i++) {
    const r = rng.int(100);
    const input =
      r < 10
        ? target.random(rng)
        : r < 25
          ? target.valid(rng)
          : target.mutate(rng, r < 40 && target.seeds.length > 0 ? rng.pick(target.seeds) : r < 60 ? target.valid(rng) : rng.pick(pool), pool);
    report.inputs++;
    let result: unknown;
    const t0 = performance.now();
    try {
      result = target.run(input);
    } catch (error) {
      const ms = performance.now() - t0;
      if (ms > report.slowestMs) [report.slowestMs, report.slowestInput] = [ms, target.show(input)];
      report.crashes++;
      const kind = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      const isNew = report.crashKinds[kind] === undefined;
      report.crashKinds[kind] = (report.crashKinds[kind] ?? 0) + 1;
      if (isNew && report.samples.crashes.length < 10) {
        const where = error instanceof Error ? `\n${error.stack?.split('\n').slice(1, 4).join('\n') ?? ''}` : '';
        report.samples.crashes.push(sample(input, kind + where, minimize(target, input, throws(target))));
      }
      continue;
    }
    const ms = performance.now() - t0;
    if (ms > report.slowestMs) {
      // Re-time a new slowest input: a GC pause or a JIT tier-up during one call is not the decoder's cost.
      const again = Math.min(ms, ...[0, 1, 2].map(() => timed(target, input)));
      if (again > report.slowestMs) [report.slowestMs, report.slowestInput] = [again, target.show(input)];
    }
    if (result instanceof ProtocolError) {
      report.typedErrors++;
      const isNew = report.reasons[result.reason] === undefined;
      report.reasons[result.reason] = (report.reasons[result.reason] ?? 0) + 1;
      if (isNew) keep(input);
      const masked = maskedException(result);
      if (masked !== undefined) {
        report.maskedExceptions++;
        if (report.samples.masked.length < 5) report.samples.masked.push(sample(input, masked));
      }
    } else if (result instanceof Error || typeof result !== 'object' || result === null) {
      report.untyped++;
      if (report.samples.untyped.length < 5) report.samples.untyped.push(sample(input, String(result)));
    } else {
      report.decodedOk++;
      if (rng.chance(0.05)) keep(input);
      try {
        const change = target.stable?.(input, result);
        if (change !== undefined) {
          report.unstable++;
          if (report.samples.unstable.length < 5) report.samples.unstable.push(sample(input, change));
        }
      } catch (error) {
        report.unstable++;
        if (report.samples.unstable.length < 5) report.samples.unstable.push(sample(input, `re-encoding threw: ${String(error)}`));
      }
    }
  }
  report.totalMs = performance.now() - started;
  return report;
}

const selected = all.filter((e) => ONLY === undefined || e.name.toLowerCase().includes(ONLY.toLowerCase()));
const machine = {
  node: process.version,
  v8: process.versions.v8,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores: os.cpus().length,
  os: `${os.type()} ${os.release()} (${os.platform()}/${os.arch()})`,
  totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
};
console.log(`rxnat fuzz: ${COUNT} inputs per decoder, seed ${SEED}; node ${machine.node} on ${machine.cpu} (${machine.os})\n`);

const rng = new Rng(SEED);
const reports: TargetReport[] = [];
for (const e of selected) {
  const report = e.run(rng);
  reports.push(report);
  console.log(`  ${e.name.padEnd(40)} ${(report.totalMs / 1000).toFixed(1)} s`);
}

const columns = ['codec', 'decoder', 'inputs', 'ok', 'typed err', 'crashes', 'untyped', 'masked', 'unstable', 'slowest ms'];
const rows = reports.map((r) => [
  r.codec,
  r.decoder,
  String(r.inputs),
  String(r.decodedOk),
  String(r.typedErrors),
  String(r.crashes),
  String(r.untyped),
  String(r.maskedExceptions),
  String(r.unstable),
  r.slowestMs.toFixed(2),
]);
const widths = columns.map((c, i) => Math.max(c.length, ...rows.map((row) => (row[i] ?? '').length)));
const line = (cells: readonly string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
console.log(`\n${line(columns)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
for (const row of rows) console.log(line(row));
console.log('\ntyped errors by reason:');
for (const r of reports) {
  const reasons = Object.entries(r.reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');
  console.log(`  ${`${r.codec} / ${r.decoder}`.padEnd(40)} ${reasons}`);
}
for (const r of reports) {
  for (const [kind, samples] of Object.entries(r.samples)) {
    for (const s of samples) {
      console.log(`\n${kind.toUpperCase()} in ${r.codec} / ${r.decoder}: ${s.message}`);
      const shown = s.minimized ?? s;
      console.log(`  input${s.minimized ? ' (minimised)' : ''}: ${shown.size} units, hex ${shown.hex.slice(0, 400)}${shown.text !== undefined ? `, text ${JSON.stringify(shown.text.slice(0, 200))}` : ''}`);
    }
  }
}

const failed = reports.some((r) => r.crashes > 0 || r.untyped > 0);
const total = reports.reduce((sum, r) => sum + r.inputs, 0);
console.log(`\n${total} inputs, ${reports.reduce((s, r) => s + r.crashes, 0)} crashes${failed ? ' - FAILED' : ''}`);

if (WRITE) {
  const date = new Date().toISOString();
  const dir = new URL('./results/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  const file = new URL(`fuzz-${date.replace(/:/g, '-')}.json`, dir);
  writeFileSync(file, `${JSON.stringify({ date, seed: SEED, countPerDecoder: COUNT, machine, reports }, null, 2)}\n`);
  console.log(`wrote ${file.pathname}`);
}
process.exit(failed ? 1 : 0);
