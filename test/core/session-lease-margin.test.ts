/**
 * The lease margin (src/core/session.ts, LEASE_MARGIN_MS) against a router that keeps lease ends
 * in whole seconds, as miniupnpd does (`time() + lifetime`, swept once `time()` reaches it): for
 * leases of 4 s and more, our clock ends every lease, renewal or first add, before the router can
 * let the entry go, wherever in its second the request arrived and however late it is answered.
 * Without the margin (a state trusted until send + lifetime) this fails for any request that
 * arrives after the start of a router second.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { MappingGrant } from '../../src/core/nat.js';
import { initialSession, step, view, type Session, type SessionConfig, type SessionEvent } from '../../src/core/session.js';

const config: SessionConfig = {
  request: { protocol: 'udp', internalPort: 30303, externalPort: 30303, description: 'rxnat', lifetimeSeconds: 60 },
  gateway: 'fake(192.0.2.1)',
  protocol: 'pmp',
  renewFraction: 1 / 3,
  retry: { initialDelayMs: 1000, maxDelayMs: 60_000, jitter: 0.2 },
  maxConsecutiveUnreachable: 3,
  teardownTimeoutMs: 10_000,
  checkIntervalMs: null,
};

/** When a router with a whole-second clock drops an entry it made at `appliedAt` (ms) for `lifetimeSeconds`. */
const routerDropsAt = (appliedAt: number, lifetimeSeconds: number): number => Math.floor(appliedAt / 1000) * 1000 + lifetimeSeconds * 1000;

function apply(session: Session, events: readonly SessionEvent[]): Session {
  return events.reduce((s, e) => step(s, e, config).session, session);
}

test('the lease ends on our clock before a whole-second router drops the entry (leases ≥ 4 s)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 10_000_000 }), // when the add was sent
      fc.integer({ min: 0, max: 200 }), // how long until the router applied it
      fc.integer({ min: 0, max: 2000 }), // how long after that the answer was read
      fc.integer({ min: 4, max: 7200 }), // the granted lifetime
      fc.integer({ min: 0, max: 400 }), // a renewal sent this long after the first grant
      (sentAt, toRouter, toAnswer, lifetimeSeconds, renewAfter) => {
        const grant: MappingGrant = { protocol: 'udp', internalPort: 30303, externalPort: 30303, lifetimeSeconds };
        const appliedAt = sentAt + toRouter;
        const answeredAt = appliedAt + toAnswer;
        const first = apply(initialSession(), [
          { type: 'start', at: sentAt },
          { type: 'sent', at: sentAt },
          { type: 'granted', at: answeredAt, grant },
        ]);
        const drops = routerDropsAt(appliedAt, lifetimeSeconds);
        if (answeredAt >= drops) return; // answered after the router let it go: nothing to trust
        assert.ok(first.timers.leaseEnd! < drops, `first add: our end ${first.timers.leaseEnd} ≥ the router's ${drops}`);
        assert.ok(first.leaseEndsAt! < drops);
        // A renewal: the same, from its own send.
        const renewSent = answeredAt + renewAfter;
        const renewed = apply(first, [
          { type: 'timer', at: first.timers.renew!, name: 'renew' },
          { type: 'sent', at: Math.max(first.timers.renew!, renewSent) },
          { type: 'granted', at: Math.max(first.timers.renew!, renewSent) + toRouter + toAnswer, grant },
        ]);
        const renewedDrops = routerDropsAt(Math.max(first.timers.renew!, renewSent) + toRouter, lifetimeSeconds);
        if (renewed.timers.leaseEnd !== undefined) assert.ok(renewed.timers.leaseEnd < renewedDrops);
        // At the instant before the router drops it, the state no longer says mapped.
        const atDrop = apply(first, [{ type: 'timer', at: first.timers.leaseEnd!, name: 'leaseEnd' }]);
        assert.notEqual(view(atDrop, config).status, 'mapped');
      },
    ),
    { numRuns: 2000, seed: 14 },
  );
});
