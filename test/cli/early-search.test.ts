/** Which command lines send their first request before the command loads, and what they send (no sockets here). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCliArgs } from '../../src/cli/args.js';
import { earlyDatagrams, earlyRequest, type EarlyRequest, type EarlySearchEnvironment } from '../../src/cli/early-search.js';
import { encodePcpRequest } from '../../src/protocols/pcp/codec.js';
import { encodePmpRequest } from '../../src/protocols/pmp/codec.js';
import { encodeMSearch, IGD_LEAD_SEARCH_TARGETS } from '../../src/protocols/upnp/ssdp.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'proc-net-route');
const linux = (table: string): EarlySearchEnvironment => ({ platform: 'linux', readRouteTable: () => readFileSync(join(FIXTURES, table), 'utf8') });
const ROUTED = linux('single-default.txt'); // default route via 192.0.2.1

const CASES: ReadonlyArray<readonly [string, readonly string[], EarlySearchEnvironment, EarlyRequest | undefined]> = [
  ['--nat upnp: the router on the default route', ['map', 'tcp', '8080', '--nat', 'upnp'], ROUTED, { kind: 'ssdp', to: [{ address: '192.0.2.1', port: 1900 }] }],
  [
    'unicast --ssdp-targets lead, a multicast one does not',
    ['map', 'tcp', '8080', '--nat', 'upnp', '--ssdp-target', '127.0.0.1:41900', '--ssdp-target', '239.255.255.250:1900'],
    ROUTED,
    { kind: 'ssdp', to: [{ address: '127.0.0.1', port: 41900 }] },
  ],
  ['several mappings: one search', ['map', 'tcp', '8080', 'udp', '4001', '--nat', 'upnp', '--ssdp-target', '127.0.0.1:41900'], ROUTED, { kind: 'ssdp', to: [{ address: '127.0.0.1', port: 41900 }] }],
  ['only a multicast target: no lead to send', ['map', 'tcp', '8080', '--nat', 'upnp', '--ssdp-target', '239.255.255.250:1900'], ROUTED, undefined],
  ['an IPv6 target: not told here', ['map', 'tcp', '8080', '--nat', 'upnp', '--ssdp-target', '[::1]:41900'], ROUTED, undefined],
  ['--nat upnp:URL: no search', ['map', 'tcp', '8080', '--nat', 'upnp:http://127.0.0.1:5000/rootDesc.xml'], ROUTED, undefined],
  ['--nat any: the PCP probe to the default route', ['map', 'tcp', '8080', '--nat', 'any'], ROUTED, { kind: 'pcp', to: { address: '192.0.2.1', port: 5351 } }],
  ['--nat any --gateway --pcp-port', ['map', 'tcp', '8080', '--nat', 'any', '--gateway', '127.0.0.1', '--pcp-port', '15351'], ROUTED, { kind: 'pcp', to: { address: '127.0.0.1', port: 15351 } }],
  ['--nat pcp:IP (--pcp-port defaults to --pmp-port)', ['map', 'tcp', '8080', '--nat', 'pcp:127.0.0.2', '--pmp-port', '15352'], ROUTED, { kind: 'pcp', to: { address: '127.0.0.2', port: 15352 } }],
  ['--nat pmp:IP: the external address request', ['map', 'tcp', '8080', '--nat', 'pmp:127.0.0.3', '--pmp-port', '15353'], ROUTED, { kind: 'pmp', to: { address: '127.0.0.3', port: 15353 } }],
  ['--nat NAT-PMP (the default route)', ['map', 'tcp', '8080', '--nat', 'NAT-PMP'], ROUTED, { kind: 'pmp', to: { address: '192.0.2.1', port: 5351 } }],
  ['--nat any:IP (the address is ignored, as go-ethereum does): not told here', ['map', 'tcp', '8080', '--nat', 'any:127.0.0.1'], ROUTED, undefined],
  ['--nat pmp:IPv6: not told here', ['map', 'tcp', '8080', '--nat', 'pcp:[fe80::1%eth0]'], ROUTED, undefined],
  ['no default route', ['map', 'tcp', '8080', '--nat', 'upnp'], linux('no-default.txt'), undefined],
  ['no default route, --nat any', ['map', 'tcp', '8080', '--nat', 'any'], linux('no-default.txt'), undefined],
  ['not Linux (no /proc/net/route)', ['map', 'tcp', '8080', '--nat', 'upnp'], { platform: 'darwin', readRouteTable: () => assert.fail('not read') }, undefined],
  ['an unreadable route table', ['map', 'tcp', '8080', '--nat', 'any'], { platform: 'linux', readRouteTable: () => { throw new Error('EACCES'); } }, undefined],
  ['--nat extip:IP sends nothing', ['map', 'tcp', '8080', '--nat', 'extip:203.0.113.1'], ROUTED, undefined],
  ['--ipv6: pinholes and PCP over IPv6', ['map', 'tcp', '8080', '--nat', 'upnp', '--ipv6'], ROUTED, undefined],
  ['other commands', ['discover', '--nat', 'upnp'], ROUTED, undefined],
];

for (const [name, argv, environment, expected] of CASES) {
  test(`early request: ${name}`, () => assert.deepEqual(earlyRequest(parseCliArgs(argv), environment), expected));
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const local = { address: '192.0.2.10', port: 40000 };

test('early datagrams are the bytes each backend sends first', async () => {
  const [search] = await earlyDatagrams({ kind: 'ssdp', to: [{ address: '192.0.2.1', port: 1900 }] });
  // The UPnP search's lead (ssdp-search.ts): IGD:1, MX 1, the multicast HOST header.
  assert.equal(text(search!.message as Uint8Array), text(encodeMSearch({ searchTarget: IGD_LEAD_SEARCH_TARGETS[0]!, mxSeconds: 1, host: '239.255.255.250:1900' })));
  const [announce] = await earlyDatagrams({ kind: 'pcp', to: { address: '192.0.2.1', port: 5351 } });
  assert.equal(typeof announce!.message, 'function', 'built once the socket knows its local address');
  assert.equal(text((announce!.message as (l: typeof local) => Uint8Array)(local)), text(encodePcpRequest({ op: 'announce', lifetimeSeconds: 0, clientIp: local.address })));
  const [probe] = await earlyDatagrams({ kind: 'pmp', to: { address: '192.0.2.1', port: 5351 } });
  assert.equal(text(probe!.message as Uint8Array), text(encodePmpRequest({ op: 'external-address' })));
});
