import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayUnreachableError, NoGatewayError } from '../src/errors.js';
import { raceNats } from '../src/core/race-nats.js';
import type { Nat } from '../src/core/nat.js';
import { fakeNat } from './fake-nat.js';
import { parseScenario, scenario, testScheduler } from './contract.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const diagram = scenario(import.meta.url);
// The second block of the file: the race nobody wins.
const markdown = readFileSync(fileURLToPath(import.meta.url).replace(/\.test\.ts$/, '.md'), 'utf8');
const silent = parseScenario(markdown.slice(markdown.indexOf('When nothing answers')));
const refused = new GatewayUnreachableError('pcp', '192.0.2.1', 'connection refused');

test(diagram.title, () => {
  testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
    const n = nat('pmp'), u = nat('upnp');
    const pcp = cold<Nat>(diagram.row('pcp'), undefined, refused);
    const pmp = cold<Nat>(diagram.row('pmp'), { n });
    const upnp = cold<Nat>(diagram.row('upnp'), { u });
    const race$ = raceNats([{ name: 'pcp', nat$: pcp }, { name: 'pmp', nat$: pmp }, { name: 'upnp', nat$: upnp }], 10);
    expectObservable(race$).toBe(diagram.row('race'), { n });
    expectSubscriptions(pcp.subscriptions).toBe(diagram.row('pcpSubs'));
    expectSubscriptions(pmp.subscriptions).toBe(diagram.row('pmpSubs'));
    expectSubscriptions(upnp.subscriptions).toBe(diagram.row('upnpSubs'));
  });
});

test(`${diagram.title}: none found by the deadline`, () => {
  let failure: unknown;
  testScheduler().run(({ cold, expectObservable }) => {
    const pcp = cold<Nat>(diagram.row('pcp'), undefined, refused);
    const pmp = cold<Nat>(silent.row('silentPmp'));
    const upnp = cold<Nat>(silent.row('silentPmp'));
    const race$ = raceNats([{ name: 'pcp', nat$: pcp }, { name: 'pmp', nat$: pmp }, { name: 'upnp', nat$: upnp }], 10);
    race$.subscribe({ error: (e: unknown) => (failure = e) });
    expectObservable(race$).toBe(silent.row('deadline'), undefined, expectedNoGateway());
  });
  assert.ok(failure instanceof NoGatewayError);
  assert.deepEqual(failure.failures.map((f) => [f.backend, f.error.message]), [
    ['pcp', refused.message],
    ['pmp', 'no answer within 10 ms'],
    ['upnp', 'no answer within 10 ms'],
  ]);
});

test(`${diagram.title}: every backend failed before the deadline`, () => {
  testScheduler().run(({ cold, expectObservable }) => {
    const race$ = raceNats([{ name: 'pcp', nat$: cold<Nat>('--#', undefined, refused) }, { name: 'pmp', nat$: cold<Nat>('---#', undefined, refused) }], 10);
    expectObservable(race$).toBe('---#', undefined, new NoGatewayError([{ backend: 'pcp', error: refused }, { backend: 'pmp', error: refused }]));
  });
});

function nat(name: string): Nat {
  return fakeNat({ name, add: () => { throw new Error('unused'); }, ip: () => { throw new Error('unused'); } });
}

function expectedNoGateway(): NoGatewayError {
  return new NoGatewayError([
    { backend: 'pcp', error: refused },
    { backend: 'pmp', error: new Error('no answer within 10 ms') },
    { backend: 'upnp', error: new Error('no answer within 10 ms') },
  ]);
}
