/**
 * The memory of "not here" refusals (src/core/unusable.ts): fresh marks, expiry on the
 * scheduler's clock, one memory per registry and per scheduler, bounded size.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { VirtualTimeScheduler } from 'rxjs';
import { createGatewayRegistry } from '../../src/core/gateway-context.js';
import type { Nat } from '../../src/core/nat.js';
import { markUnusable, MAX_REMEMBERED_UNUSABLE, UNUSABLE_FOR_MS, unusableReason } from '../../src/core/unusable.js';
import { extIp } from '../../src/core/ext-ip.js';

const nat = (n: number): Nat => ({ ...extIp('203.0.113.7'), name: `pcp(192.0.2.${n})`, kind: 'pcp', gateway: `192.0.2.${n}` });
const refusal = new Error('refused: 2 NOT_AUTHORIZED');

test('a mark is fresh once, holds for UNUSABLE_FOR_MS on the scheduler clock, then is forgotten', () => {
  const scheduler = new VirtualTimeScheduler();
  const scope = { registry: createGatewayRegistry(), scheduler };
  assert.equal(unusableReason(nat(1), scope), null);
  assert.equal(markUnusable(nat(1), refusal, scope), true);
  assert.equal(markUnusable(nat(1), refusal, scope), false, 'already marked');
  assert.equal(unusableReason(nat(1), scope), refusal);
  assert.equal(unusableReason(nat(2), scope), null, 'another gateway');
  scheduler.schedule(() => undefined, UNUSABLE_FOR_MS - 1);
  scheduler.flush();
  assert.equal(unusableReason(nat(1), scope), refusal, 'still within the period');
  scheduler.schedule(() => undefined, 1);
  scheduler.flush();
  assert.equal(unusableReason(nat(1), scope), null, 'the period is over');
  assert.equal(markUnusable(nat(1), refusal, scope), true, 'fresh again');
});

test('marks are kept per registry and per scheduler', () => {
  const scheduler = new VirtualTimeScheduler();
  const mine = { registry: createGatewayRegistry(), scheduler };
  markUnusable(nat(1), refusal, mine);
  assert.equal(unusableReason(nat(1), { registry: createGatewayRegistry(), scheduler }), null);
  assert.equal(unusableReason(nat(1), { registry: mine.registry, scheduler: new VirtualTimeScheduler() }), null);
  const processWide = { scheduler };
  markUnusable(nat(3), refusal, processWide);
  assert.equal(unusableReason(nat(3), { scheduler }), refusal, 'no registry: the process-wide memory');
  assert.equal(unusableReason(nat(3), mine), null);
});

test('at most MAX_REMEMBERED_UNUSABLE gateways are remembered: the oldest mark goes first', () => {
  const scope = { registry: createGatewayRegistry(), scheduler: new VirtualTimeScheduler() };
  for (let i = 0; i <= MAX_REMEMBERED_UNUSABLE; i++) markUnusable(nat(i), refusal, scope);
  assert.equal(unusableReason(nat(0), scope), null, 'the first one was dropped');
  assert.equal(unusableReason(nat(1), scope), refusal);
  assert.equal(unusableReason(nat(MAX_REMEMBERED_UNUSABLE), scope), refusal);
});
