/** Which command lines send their first M-SEARCH before the command loads, and what they send (no sockets here). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseCliArgs } from '../../src/cli/args.js';
import { earlySearchDatagrams, type EarlySearchEnvironment } from '../../src/cli/early-search.js';
import { encodeMSearch, IGD_LEAD_SEARCH_TARGETS } from '../../src/protocols/upnp/ssdp.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'proc-net-route');
const linux = (table: string): EarlySearchEnvironment => ({ platform: 'linux', readRouteTable: () => readFileSync(join(FIXTURES, table), 'utf8') });
const ROUTED = linux('single-default.txt');
// What the UPnP search's lead sends (ssdp-search.ts): IGD:1, MX 1, the multicast HOST header.
const LEAD = encodeMSearch({ searchTarget: IGD_LEAD_SEARCH_TARGETS[0]!, mxSeconds: 1, host: '239.255.255.250:1900' });
const to = (datagrams: ReturnType<typeof earlySearchDatagrams>): string[] | undefined => datagrams?.map((d) => `${d.to.address}:${d.to.port}`);

const CASES: ReadonlyArray<readonly [string, readonly string[], EarlySearchEnvironment, string[] | undefined]> = [
  ['--nat upnp: the router on the default route', ['map', 'tcp', '8080', '--nat', 'upnp'], ROUTED, ['192.0.2.1:1900']],
  ['unicast --ssdp-targets lead, a multicast one does not', ['map', 'tcp', '8080', '--nat', 'upnp', '--ssdp-target', '127.0.0.1:41900', '--ssdp-target', '239.255.255.250:1900'], ROUTED, ['127.0.0.1:41900']],
  ['several mappings: one search', ['map', 'tcp', '8080', 'udp', '4001', '--nat', 'upnp', '--ssdp-target', '127.0.0.1:41900'], ROUTED, ['127.0.0.1:41900']],
  ['only a multicast target: no lead to send', ['map', 'tcp', '8080', '--nat', 'upnp', '--ssdp-target', '239.255.255.250:1900'], ROUTED, undefined],
  ['an IPv6 target: not told here', ['map', 'tcp', '8080', '--nat', 'upnp', '--ssdp-target', '[::1]:41900'], ROUTED, undefined],
  ['no default route', ['map', 'tcp', '8080', '--nat', 'upnp'], linux('no-default.txt'), undefined],
  ['not Linux (no /proc/net/route)', ['map', 'tcp', '8080', '--nat', 'upnp'], { platform: 'darwin', readRouteTable: () => assert.fail('not read') }, undefined],
  ['an unreadable route table', ['map', 'tcp', '8080', '--nat', 'upnp'], { platform: 'linux', readRouteTable: () => { throw new Error('EACCES'); } }, undefined],
  ['--nat any: PCP goes first, UPnP after its head start', ['map', 'tcp', '8080', '--nat', 'any'], ROUTED, undefined],
  ['--nat upnp:URL: no search', ['map', 'tcp', '8080', '--nat', 'upnp:http://127.0.0.1:5000/rootDesc.xml'], ROUTED, undefined],
  ['--ipv6: pinholes', ['map', 'tcp', '8080', '--nat', 'upnp', '--ipv6'], ROUTED, undefined],
  ['other commands', ['discover', '--nat', 'upnp'], ROUTED, undefined],
];

for (const [name, argv, environment, expected] of CASES) {
  test(`early search: ${name}`, () => {
    const datagrams = earlySearchDatagrams(parseCliArgs(argv), environment);
    assert.deepEqual(to(datagrams), expected);
    for (const d of datagrams ?? []) assert.deepEqual(Buffer.from(d.message).toString(), Buffer.from(LEAD).toString(), 'the bytes the search would send first');
  });
}
