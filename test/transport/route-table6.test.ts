/**
 * The /proc/net/ipv6_route parser and the IPv6 default router, against tables captured from Linux
 * network namespaces (test/fixtures/proc-net-ipv6-route/*.txt, made with `ip -6 route add …` on
 * veth pairs in `unshare -n`), and the lookup around it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { firstValueFrom } from 'rxjs';
import { DefaultGatewayError } from '../../src/errors.js';
import { clearDefaultIpv6GatewayCache, defaultIpv6Gateway, lookupDefaultIpv6Gateway, type DefaultIpv6GatewaySources } from '../../src/transport/default-gateway6.js';
import { defaultIpv6Route, parseIpv6RouteTable } from '../../src/transport/route-table6.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/proc-net-ipv6-route/${name}`, import.meta.url), 'utf8');
const parsed = (text: string): NonNullable<ReturnType<typeof parseIpv6RouteTable>> => {
  const routes = parseIpv6RouteTable(text);
  assert.ok(routes !== null, 'the table parses');
  return routes;
};

describe('parseIpv6RouteTable', () => {
  it('reads every route: network-order hex addresses, hex prefix length, metric and flags, the interface', () => {
    const routes = parsed(fixture('link-local-router.txt'));
    assert.equal(routes.length, 17);
    assert.deepEqual(routes[0], { destination: '2001:db8:5::', prefixLength: 64, nextHop: '::', metric: 256, flags: 1, iface: 'd0' });
    assert.deepEqual(routes[5], { destination: '::', prefixLength: 0, nextHop: 'fe80::1', metric: 1024, flags: 3, iface: 'd0' });
    assert.deepEqual(routes[6], { destination: '::1', prefixLength: 128, nextHop: '::', metric: 0, flags: 0x80200001, iface: 'lo' });
    assert.deepEqual(parsed(fixture('several-defaults.txt'))[1], { destination: '2001:db8:99::', prefixLength: 48, nextHop: 'fe80::3', metric: 1024, flags: 3, iface: 'd1' });
  });

  it('writes addresses in RFC 5952 form: the first longest zero run compressed, a single zero group kept', () => {
    const row = (dest: string): string => `${dest} 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001 eth0`;
    assert.equal(parsed(row('20010db8000000000001000000000001'))[0]?.destination, '2001:db8::1:0:0:1');
    assert.equal(parsed(row('20010db8000100010001000100010000'))[0]?.destination, '2001:db8:1:1:1:1:1:0');
    assert.equal(parsed(row('20010db800000001000000000000abcd'))[0]?.destination, '2001:db8:0:1::abcd');
    assert.equal(parsed(row('ff020000000000000000000000000001'))[0]?.destination, 'ff02::1');
  });

  it('is null for text that is not the table, so the caller can ask another way', () => {
    const line = '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0';
    assert.equal(parsed(line).length, 1);
    assert.deepEqual(parsed(''), []);
    for (const bad of [
      line.replace(' eth0', ''),
      line.replace('fe80000000000000', 'fe8000000000000g'),
      line.replace(' 00 ', ' 81 '),
      line.replace('00000400', '1024'),
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask',
    ]) {
      assert.equal(parseIpv6RouteTable(bad), null, bad);
    }
  });
});

describe('defaultIpv6Route', () => {
  it('a link-local router comes with its interface as zone', () => {
    assert.deepEqual(defaultIpv6Route(parsed(fixture('link-local-router.txt'))), { kind: 'gateway', gateway: 'fe80::1%d0', interface: 'd0' });
  });

  it('the lowest metric wins; a global router has no zone', () => {
    assert.deepEqual(defaultIpv6Route(parsed(fixture('several-defaults.txt'))), { kind: 'gateway', gateway: 'fe80::2%d1', interface: 'd1' });
    const withoutBest = parsed(fixture('several-defaults.txt')).filter((r) => r.nextHop !== 'fe80::2');
    assert.deepEqual(defaultIpv6Route(withoutBest), { kind: 'gateway', gateway: 'fd77::1', interface: 'd0' });
  });

  it("the kernel's own catch-all route on lo is no default route", () => {
    assert.deepEqual(defaultIpv6Route(parsed(fixture('no-default.txt'))), { kind: 'no-default-route' });
  });

  it('a default route out of an interface without a router is no-router (an `unreachable default` with a lower metric is skipped)', () => {
    assert.deepEqual(defaultIpv6Route(parsed(fixture('no-router.txt'))), { kind: 'no-router', interface: 'd0' });
  });
});

const sources = (overrides: Partial<DefaultIpv6GatewaySources>): DefaultIpv6GatewaySources => ({
  platform: 'linux',
  readRouteTable: () => Promise.resolve(fixture('link-local-router.txt')),
  fallback: () => Promise.reject(new Error('fallback not expected')),
  ...overrides,
});
const reason = (expected: DefaultGatewayError['reason']) => (error: unknown): boolean => error instanceof DefaultGatewayError && error.reason === expected;

describe('lookupDefaultIpv6Gateway', () => {
  it('on Linux the table decides', async () => {
    assert.deepEqual(await lookupDefaultIpv6Gateway(sources({})), { gateway: 'fe80::1%d0', interface: 'd0' });
    await assert.rejects(lookupDefaultIpv6Gateway(sources({ readRouteTable: () => Promise.resolve(fixture('no-default.txt')) })), reason('no-default-route'));
    await assert.rejects(
      lookupDefaultIpv6Gateway(sources({ readRouteTable: () => Promise.resolve(fixture('no-router.txt')) })),
      (error: unknown) => reason('unsupported-route')(error) && /dev d0/.test((error as Error).message),
    );
  });

  it('an unreadable table, or another platform, asks the default-gateway package; a link-local answer gets its zone', async () => {
    const fallback = (): Promise<{ gateway: string; int: string }> => Promise.resolve({ gateway: 'fe80::1', int: 'en0' });
    assert.deepEqual(await lookupDefaultIpv6Gateway(sources({ readRouteTable: () => Promise.reject(new Error('ENOENT')), fallback })), { gateway: 'fe80::1%en0', interface: 'en0' });
    assert.deepEqual(await lookupDefaultIpv6Gateway(sources({ platform: 'darwin', fallback: () => Promise.resolve({ gateway: '2001:db8::1', int: 'en0' }) })), {
      gateway: '2001:db8::1',
      interface: 'en0',
    });
    await assert.rejects(
      lookupDefaultIpv6Gateway(sources({ platform: 'darwin', fallback: () => Promise.reject(new Error('Unable to determine default gateway')) })),
      (error: unknown) => reason('no-default-route')(error) && /IPv6/.test((error as Error).message),
    );
  });

  it('agrees with `ip -6 route show default` on this machine (read only: nothing is sent)', async (t) => {
    const ip = spawnSync('ip', ['-6', 'route', 'show', 'default'], { encoding: 'utf8' });
    const lines = (ip.stdout ?? '').split('\n').filter((l) => l.startsWith('default via '));
    const first = /^default via (\S+) dev (\S+)/.exec(lines[0] ?? '');
    if (process.platform !== 'linux' || ip.status !== 0 || first === null || lines.length > 1) {
      t.skip('needs Linux, `ip` and one IPv6 default route through a router');
      return;
    }
    const [, via = '', dev = ''] = first;
    clearDefaultIpv6GatewayCache();
    const expected = { gateway: /^fe[89ab]/i.test(via) ? `${via}%${dev}` : via, interface: dev };
    assert.deepEqual(await firstValueFrom(defaultIpv6Gateway()), expected);
    assert.deepEqual(await firstValueFrom(defaultIpv6Gateway()), expected, 'cached');
    clearDefaultIpv6GatewayCache();
  });
});
