/**
 * natService over a source of NATs that never completes (`discoverNat({ followNetwork: true })`,
 * `followNetwork(...)`): each gateway loss rediscovers through a fresh subscription of the source,
 * and the one it replaces must be let go, or every loss leaves a live watch behind (polling the
 * routing table, rediscovering on every change) that not even `close()` ends. Virtual time, fake
 * NATs, no sockets.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defer, Observable, of, throwError } from 'rxjs';
import { silentLogger } from '../../src/core/logger.js';
import type { Nat } from '../../src/core/nat.js';
import { GatewayTimeoutError } from '../../src/errors.js';
import { natService } from '../../src/facade/nat-service.js';
import { VirtualClock } from '../support/virtual-clock.js';

/** A gateway that is found but never answers an add: lost after a few timeouts, found again. */
const silentNat = (adds: { n: number }): Nat => ({
  name: 'silent(192.0.2.1)',
  kind: 'pmp',
  gateway: '192.0.2.1',
  addMapping: () =>
    defer(() => {
      adds.n++;
      return throwError(() => new GatewayTimeoutError('pmp', '192.0.2.1', 250));
    }),
  deleteMapping: () => new Observable<void>((subscriber) => subscriber.complete()),
  externalIp: () => of('203.0.113.7'),
});

test('natService over a never-completing source: gateway losses leave at most one live subscription of it, close leaves none', async () => {
  const clock = new VirtualClock();
  const adds = { n: 0 };
  let live = 0;
  let subscribes = 0;
  // Emits the gateway and stays open, as a network watch does.
  const nat$ = new Observable<Nat>((subscriber) => {
    live++;
    subscribes++;
    subscriber.next(silentNat(adds));
    return () => live--;
  });
  const service = natService(nat$, { scheduler: clock, logger: silentLogger, retry: { initialDelayMs: 1000, maxDelayMs: 5000, jitter: 0 } });
  const mapping = service.newMapping('udp', 4001);
  let mostLive = 0;
  for (let second = 0; second < 3600; second++) {
    clock.advance(1000);
    mostLive = Math.max(mostLive, live);
  }
  assert.ok(subscribes >= 20, `the gateway was lost and found again ${subscribes - 1} times (expected many)`);
  assert.ok(mostLive <= 1, `${mostLive} live subscriptions of the source at once after ${subscribes - 1} losses`);
  assert.equal(mapping.state.status, 'unmapped');
  const closed = service.close();
  clock.advance(120_000);
  await closed;
  assert.equal(live, 0, 'the source is unsubscribed once the service closed');
  assert.equal(clock.pending, 0, 'no timer left');
});

test('natService over a source that completes: a second mapping is served the NAT already found, without subscribing again', () => {
  const clock = new VirtualClock();
  let subscribes = 0;
  const nat$ = defer(() => (subscribes++, of(silentNat({ n: 0 }))));
  const service = natService(nat$, { scheduler: clock, logger: silentLogger });
  service.newMapping('udp', 4001).close().catch(() => undefined);
  clock.advance(100);
  service.newMapping('udp', 4002);
  clock.advance(100);
  assert.equal(subscribes, 1);
  void service.close().catch(() => undefined);
  clock.advance(120_000);
});
