/**
 * mapPort's `gatewayRegistry` option: streams in one registry share router entries and gateway
 * contexts; streams in different registries share nothing, options included; without the option
 * every stream is in the process-wide registry.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { of, type Observable } from 'rxjs';
import { createGatewayRegistry } from '../../src/core/gateway-context.js';
import { mapPort } from '../../src/core/map-port.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import { InvalidOptionError } from '../../src/errors.js';
import { fakeNat, grant } from '../../marbles/fake-nat.js';
import { VirtualClock } from '../support/virtual-clock.js';

const request = { protocol: 'tcp', internalPort: 8080 } as const;
const done = (): Observable<void> => of(undefined);
const gateway = () => fakeNat({ add: (r) => of(grant(r.externalPort, 60, r.protocol, r.internalPort)), remove: done, ip: () => of('203.0.113.7') });

test('without a registry, two streams for one gateway, protocol and internal port share one router entry', () => {
  const clock = new VirtualClock();
  const nat = gateway();
  const one = mapPort(nat, request, { scheduler: clock, logger: silentLogger }).subscribe();
  const two = mapPort(nat, request, { scheduler: clock, logger: silentLogger }).subscribe();
  assert.equal(nat.adds.length, 1);
  assert.equal(nat.ipCalls, 1);
  one.unsubscribe();
  two.unsubscribe();
  assert.equal(nat.deletes.length, 1);
});

test('streams in one registry share the entry; streams in two registries each add their own, and log to their own logger', () => {
  const clock = new VirtualClock();
  const nat = gateway();
  const lines = new Map<string, string[]>();
  const logger = (name: string): Logger => {
    lines.set(name, []);
    return { debug: (_namespace, message) => lines.get(name)!.push(message) };
  };
  const first = createGatewayRegistry();
  const second = createGatewayRegistry();
  const a = mapPort(nat, request, { scheduler: clock, logger: logger('a'), gatewayRegistry: first }).subscribe();
  const b = mapPort(nat, request, { scheduler: clock, logger: logger('b'), gatewayRegistry: first }).subscribe();
  assert.equal(nat.adds.length, 1, 'one registry: one entry');
  const c = mapPort(nat, request, { scheduler: clock, logger: logger('c'), gatewayRegistry: second }).subscribe();
  assert.equal(nat.adds.length, 2, 'another registry: another entry');
  assert.equal(nat.ipCalls, 2, 'and another address watcher');
  const adding = `${nat.name} tcp/8080: adding, asking for external port 8080`;
  assert.ok(lines.get('a')!.includes(adding), 'the first stream of a registry logs its entry');
  assert.ok(!lines.get('b')!.includes(adding), 'a later stream of the same registry uses the first one’s logger');
  assert.ok(lines.get('c')!.includes(adding), 'the other registry logs to its own logger');
  for (const s of [a, b, c]) s.unsubscribe();
  assert.equal(nat.deletes.length, 2);
  assert.equal(clock.pending, 0);
});

test('gatewayRegistry must be one made by createGatewayRegistry()', () => {
  let seen: unknown;
  mapPort(gateway(), request, { gatewayRegistry: {} as never, logger: silentLogger }).subscribe({ error: (e: unknown) => (seen = e) });
  assert.ok(seen instanceof InvalidOptionError);
  assert.equal(seen.option, 'gatewayRegistry');
  assert.match(seen.message, /gatewayRegistry must be made by createGatewayRegistry\(\)/, 'the message says how to make one');
});
