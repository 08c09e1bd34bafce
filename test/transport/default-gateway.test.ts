/**
 * The default-gateway lookup: /proc/net/route decides on Linux, the `default-gateway` package
 * only where that table cannot be had; failures become typed errors with a reason.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { firstValueFrom } from 'rxjs';
import { DefaultGatewayError } from '../../src/errors.js';
import {
  clearDefaultGatewayCache,
  defaultGateway,
  lookupDefaultGateway,
  toDefaultGatewayError,
  type DefaultGatewaySources,
} from '../../src/transport/default-gateway.js';

const fixture = (name: string): string => readFileSync(new URL(`../fixtures/proc-net-route/${name}`, import.meta.url), 'utf8');

/** Sources whose every call is counted; the fallback answers `fallbackGateway` unless told to fail. */
function sources(overrides: Partial<DefaultGatewaySources> = {}): DefaultGatewaySources & { calls: { table: number; fallback: number } } {
  const calls = { table: 0, fallback: 0 };
  const base: DefaultGatewaySources = {
    platform: 'linux',
    byteOrder: 'LE',
    readRouteTable: () => Promise.resolve(fixture('single-default.txt')),
    fallback: () => Promise.resolve({ gateway: '10.9.9.9', int: 'fallback0' }),
    ...overrides,
  };
  return {
    ...base,
    calls,
    readRouteTable: () => {
      calls.table++;
      return base.readRouteTable();
    },
    fallback: () => {
      calls.fallback++;
      return base.fallback();
    },
  };
}

const reason = (expected: DefaultGatewayError['reason']) => (error: unknown): boolean => {
  assert.ok(error instanceof DefaultGatewayError, String(error));
  assert.equal(error.reason, expected);
  assert.equal(error.code, 'ERR_DEFAULT_GATEWAY');
  return true;
};

describe('lookupDefaultGateway on Linux: the routing table decides', () => {
  it('a default route: its router and interface, without asking the fallback', async () => {
    const s = sources({ readRouteTable: () => Promise.resolve(fixture('several-defaults.txt')) });
    assert.deepEqual(await lookupDefaultGateway(s), { gateway: '192.168.1.254', interface: 'eth0' });
    assert.deepEqual(s.calls, { table: 1, fallback: 0 });
  });

  it('no default route: no-default-route, without asking the fallback', async () => {
    const s = sources({ readRouteTable: () => Promise.resolve(fixture('no-default.txt')) });
    await assert.rejects(lookupDefaultGateway(s), reason('no-default-route'));
    assert.equal(s.calls.fallback, 0);
  });

  it('the best default route has no router (VPN, `default dev tun9`): unsupported-route naming the interface', async () => {
    const s = sources({ readRouteTable: () => Promise.resolve(fixture('vpn-reject-blackhole.txt')) });
    await assert.rejects(lookupDefaultGateway(s), (error: unknown) => reason('unsupported-route')(error) && /dev tun9/.test((error as Error).message));
    assert.equal(s.calls.fallback, 0);
  });

  it('an unreadable table (no /proc, EACCES): the fallback answers', async () => {
    const s = sources({ readRouteTable: () => Promise.reject(Object.assign(new Error('EACCES'), { code: 'EACCES' })) });
    assert.deepEqual(await lookupDefaultGateway(s), { gateway: '10.9.9.9', interface: 'fallback0' });
    assert.deepEqual(s.calls, { table: 1, fallback: 1 });
  });

  it('a table in a form it cannot parse: the fallback answers', async () => {
    const s = sources({ readRouteTable: () => Promise.resolve('something else entirely\n') });
    assert.deepEqual(await lookupDefaultGateway(s), { gateway: '10.9.9.9', interface: 'fallback0' });
    assert.equal(s.calls.fallback, 1);
  });
});

describe('lookupDefaultGateway elsewhere: the default-gateway package', () => {
  for (const platform of ['darwin', 'win32', 'freebsd'] as const) {
    it(`${platform}: the fallback, and the table is not read`, async () => {
      const s = sources({ platform, fallback: () => Promise.resolve({ gateway: '192.168.0.1', int: null }) });
      assert.deepEqual(await lookupDefaultGateway(s), { gateway: '192.168.0.1', interface: null });
      assert.deepEqual(s.calls, { table: 0, fallback: 1 });
    });
  }

  it('its failures become typed errors', async () => {
    const enoent = Object.assign(new Error('spawn ip ENOENT'), { code: 'ENOENT' });
    await assert.rejects(lookupDefaultGateway(sources({ platform: 'darwin', fallback: () => Promise.reject(enoent) })), reason('ip-missing'));
    await assert.rejects(lookupDefaultGateway(sources({ platform: 'darwin', fallback: () => Promise.reject(new Error('Unable to determine default gateway')) })), reason('no-default-route'));
  });
});

describe('toDefaultGatewayError', () => {
  it('maps what default-gateway throws to a reason, keeping the cause', () => {
    const cases: [unknown, DefaultGatewayError['reason']][] = [
      [Object.assign(new Error('spawn ip ENOENT'), { code: 'ENOENT' }), 'ip-missing'],
      [new TypeError("Cannot read properties of undefined (reading 'substring')"), 'unsupported-route'],
      [new Error('Unable to determine default gateway'), 'no-default-route'],
      [new Error('something else'), 'failed'],
      ['a string', 'failed'],
      [null, 'failed'],
    ];
    for (const [thrown, expected] of cases) {
      const error = toDefaultGatewayError(thrown);
      assert.equal(error.reason, expected, String(thrown));
      assert.equal(error.cause, thrown);
    }
    assert.match(toDefaultGatewayError(new Error('boom')).message, /boom/);
  });
});

describe('defaultGateway() on this machine', () => {
  it('agrees with `ip -4 route show default` (when both can be asked)', async (t) => {
    const ip = spawnSync('ip', ['-4', 'route', 'show', 'default'], { encoding: 'utf8' });
    const first = /^default via (\S+) dev (\S+)/m.exec(ip.stdout ?? '');
    if (process.platform !== 'linux' || ip.status !== 0 || first === null) {
      t.skip('needs Linux, `ip` and a default route through a router');
      return;
    }
    clearDefaultGatewayCache();
    assert.deepEqual(await firstValueFrom(defaultGateway()), { gateway: first[1], interface: first[2] });
    // the second lookup within 30 s is the cached one
    assert.deepEqual(await firstValueFrom(defaultGateway()), { gateway: first[1], interface: first[2] });
    clearDefaultGatewayCache();
  });
});
