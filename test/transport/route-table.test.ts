/**
 * The /proc/net/route parser, against tables captured from Linux network namespaces
 * (test/fixtures/proc-net-route/*.txt, made with `ip route add …` in `unshare -n`).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { defaultRoute, machineByteOrder, parseRouteTable, readRouteTable } from '../../src/transport/route-table.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/proc-net-route/${name}`, import.meta.url), 'utf8');
const parsed = (text: string): NonNullable<ReturnType<typeof parseRouteTable>> => {
  const routes = parseRouteTable(text);
  assert.ok(routes !== null, 'the table parses');
  return routes;
};

describe('parseRouteTable', () => {
  it('reads every route: interface, little-endian hex addresses, hex flags, decimal metric', () => {
    assert.deepEqual(parsed(fixture('single-default.txt')), [
      { iface: 'eth0', destination: '0.0.0.0', gateway: '192.0.2.1', flags: 0x3, metric: 0, mask: '0.0.0.0' },
      { iface: 'eth0', destination: '192.0.2.0', gateway: '0.0.0.0', flags: 0x1, metric: 0, mask: '255.255.255.0' },
    ]);
    const routes = parsed(fixture('several-defaults.txt'));
    assert.equal(routes.length, 6);
    assert.deepEqual(routes[2], { iface: 'eth0', destination: '10.0.0.0', gateway: '192.168.1.2', flags: 0x3, metric: 0, mask: '255.0.0.0' });
    assert.deepEqual(routes[3], { iface: 'eth0', destination: '172.17.0.0', gateway: '0.0.0.0', flags: 0x1, metric: 0, mask: '255.255.0.0' });
  });

  it('reads a big-endian machine\'s table in its byte order', () => {
    const text = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\tC0A80101\t0003\t0\t0\t0\t00000000\n';
    assert.equal(parseRouteTable(text, 'BE')?.[0]?.gateway, '192.168.1.1');
    assert.equal(parseRouteTable(text, 'LE')?.[0]?.gateway, '1.1.168.192');
  });

  it('finds the columns by name, in any order, with spaces or tabs', () => {
    const text = 'Destination Iface Mask Metric Gateway Flags\n00000000 wlan0 00000000 5 0108A8C0 3\n';
    assert.deepEqual(parseRouteTable(text), [{ iface: 'wlan0', destination: '0.0.0.0', gateway: '192.168.8.1', flags: 3, metric: 5, mask: '0.0.0.0' }]);
  });

  it('a header without routes is an empty table (a namespace with no IPv4 route)', () => {
    assert.deepEqual(parseRouteTable(fixture('header-only.txt')), []);
  });

  it('is null for text that is not such a table, so the caller can ask another way', () => {
    for (const text of [
      '',
      '\n\n',
      'default via 192.168.1.1 dev eth0\n',
      'Iface\tDestination\tFlags\tMetric\tMask\neth0\t00000000\t0003\t0\t00000000\n', // no Gateway column
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t0000000G\t0101A8C0\t0003\t0\t0\t0\t00000000\n',
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\t0101A8C\t0003\t0\t0\t0\t00000000\n',
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\t0101A8C0\tzz\t0\t0\t0\t00000000\n',
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\t0101A8C0\t0003\t0\t0\t-1\t00000000\n',
      'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\neth0\t00000000\t0101A8C0\n', // truncated row
    ]) {
      assert.equal(parseRouteTable(text), null, JSON.stringify(text));
    }
  });
});

describe('defaultRoute', () => {
  it('one default route: its router and interface', () => {
    assert.deepEqual(defaultRoute(parsed(fixture('single-default.txt'))), { kind: 'gateway', gateway: '192.0.2.1', interface: 'eth0' });
  });

  it('several default routes: the lowest metric wins, wherever it is listed', () => {
    const text = fixture('several-defaults.txt');
    assert.deepEqual(defaultRoute(parsed(text)), { kind: 'gateway', gateway: '192.168.1.254', interface: 'eth0' });
    const [header, first, second, ...rest] = text.split('\n');
    const swapped = [header, second, first, ...rest].join('\n');
    assert.deepEqual(defaultRoute(parsed(swapped)), { kind: 'gateway', gateway: '192.168.1.254', interface: 'eth0' });
  });

  it('equal metrics: the first listed wins (the order `ip route` shows)', () => {
    const text = 'Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nb0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\na0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\n';
    assert.deepEqual(defaultRoute(parsed(text)), { kind: 'gateway', gateway: '192.168.2.1', interface: 'b0' });
  });

  it('no default route: connected networks and routes through routers are not one', () => {
    assert.deepEqual(defaultRoute(parsed(fixture('no-default.txt'))), { kind: 'no-default-route' });
    assert.deepEqual(defaultRoute(parsed(fixture('header-only.txt'))), { kind: 'no-default-route' });
    // 10.0.0.0/8 via 192.168.1.2 has a router but is not a default route
    const routes = parsed(fixture('several-defaults.txt')).filter((r) => r.destination !== '0.0.0.0');
    assert.deepEqual(defaultRoute(routes), { kind: 'no-default-route' });
  });

  it('blackhole and unreachable defaults are skipped; the best remaining one, `default dev tun9`, has no router', () => {
    assert.deepEqual(defaultRoute(parsed(fixture('vpn-reject-blackhole.txt'))), { kind: 'no-router', interface: 'tun9' });
    const withoutVpn = parsed(fixture('vpn-reject-blackhole.txt')).filter((r) => r.iface !== 'tun9');
    assert.deepEqual(defaultRoute(withoutVpn), { kind: 'gateway', gateway: '192.168.1.1', interface: 'v0' });
  });

  it('a default route flagged as through a router with no router address names no router', () => {
    assert.deepEqual(defaultRoute([{ iface: 'ppp0', destination: '0.0.0.0', gateway: '0.0.0.0', flags: 0x3, metric: 0, mask: '0.0.0.0' }]), { kind: 'no-router', interface: 'ppp0' });
  });

  it('a route that is not up is not used', () => {
    assert.deepEqual(defaultRoute([{ iface: 'eth0', destination: '0.0.0.0', gateway: '192.168.1.1', flags: 0x2, metric: 0, mask: '0.0.0.0' }]), { kind: 'no-default-route' });
  });
});

describe('readRouteTable', () => {
  it('reads the file it is given (the real one is /proc/net/route)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rxnat-route-'));
    try {
      writeFileSync(join(dir, 'route'), fixture('single-default.txt'));
      assert.equal(await readRouteTable(join(dir, 'route')), fixture('single-default.txt'));
      await assert.rejects(readRouteTable(join(dir, 'missing')), { code: 'ENOENT' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('machineByteOrder', () => {
  it('is what os.endianness() says', async () => {
    const { endianness } = await import('node:os');
    assert.equal(machineByteOrder(), endianness());
  });
});
