/**
 * IPv6 requests through mapPort: each internal address is its own router entry on the gateway,
 * and each state carries its own address (from the grant), whatever the gateway-wide reading says.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { map, NEVER, of, timer, VirtualTimeScheduler } from 'rxjs';
import { InvalidMappingRequestError, ProtocolError } from '../../src/errors.js';
import { mayHaveApplied } from '../../src/core/session-runner.js';
import { createGatewayRegistry } from '../../src/core/gateway-context.js';
import { silentLogger } from '../../src/core/logger.js';
import { mapPort } from '../../src/core/map-port.js';
import type { MappingState } from '../../src/core/mapping-state.js';
import type { Nat, NatMappingRequest } from '../../src/core/nat.js';

test('two hosts behind one IPv6 router, same port: two entries, each mapped at its own address', () => {
  const scheduler = new VirtualTimeScheduler();
  const adds: NatMappingRequest[] = [];
  const nat: Nat = {
    name: 'pcp([fd77::1])',
    kind: 'pcp',
    gateway: 'fd77::1',
    family: 'ipv6',
    addMapping: (request) => {
      adds.push(request);
      return timer(3, scheduler).pipe(map(() => ({ protocol: request.protocol, internalPort: request.internalPort, externalPort: request.externalPort, lifetimeSeconds: 120, externalIp: request.internalAddress! })));
    },
    deleteMapping: () => timer(1, scheduler).pipe(map(() => undefined)),
    // What PCP answers for the gateway-wide lookup over IPv6: the newest mapping's address.
    externalIp: () => timer(1, scheduler).pipe(map(() => adds.at(-1)?.internalAddress ?? '2001:db8::ff')),
  };
  const options = { scheduler, gatewayRegistry: createGatewayRegistry(), logger: silentLogger };
  const last = new Map<string, MappingState>();
  const hosts = ['2001:db8::10', '2001:db8::20'];
  const subscriptions = hosts.map((internalAddress) =>
    mapPort(nat, { protocol: 'udp', internalPort: 4001, internalAddress }, options).subscribe((state) => last.set(internalAddress, state)),
  );
  scheduler.schedule(() => subscriptions.forEach((s) => s.unsubscribe()), 100_000);
  scheduler.flush();
  assert.deepEqual(adds.filter((a) => a.previous === undefined).map((a) => a.internalAddress).sort(), hosts, 'one add per host');
  for (const host of hosts) {
    assert.equal(last.get(host)?.status, 'mapped', host);
    assert.equal(last.get(host)?.externalIp, host);
  }
});

test('a NAT of the other family: an error at once when given as such, unmapped (family) and nothing sent from a source', () => {
  const scheduler = new VirtualTimeScheduler();
  const sent: string[] = [];
  const v4: Nat = {
    name: 'pmp(192.0.2.1)',
    kind: 'pmp',
    gateway: '192.0.2.1',
    addMapping: () => (sent.push('add'), NEVER),
    deleteMapping: () => (sent.push('delete'), NEVER),
    externalIp: () => timer(1, scheduler).pipe(map(() => '203.0.113.7')),
  };
  const options = { scheduler, gatewayRegistry: createGatewayRegistry(), logger: silentLogger };
  let error: unknown;
  mapPort(v4, { protocol: 'udp', internalPort: 4001, family: 'ipv6' }, options).subscribe({ error: (e: unknown) => (error = e) });
  assert.ok(error instanceof InvalidMappingRequestError && error.field === 'family', String(error));
  const states: MappingState[] = [];
  const subscription = mapPort(of(v4), { protocol: 'udp', internalPort: 4001, internalAddress: '2001:db8::10' }, options).subscribe((s) => states.push(s));
  scheduler.schedule(() => subscription.unsubscribe(), 10_000);
  scheduler.flush();
  assert.ok(states.length > 1 && states.slice(1).every((s) => s.status === 'unmapped' && s.error instanceof ProtocolError && s.error.reason === 'family'));
  assert.deepEqual(sent, [], 'no add, and no delete at the end');
  assert.equal(mayHaveApplied(new ProtocolError('pcp', 'family', 'an IPv4 request to an IPv6 gateway')), false);
});
