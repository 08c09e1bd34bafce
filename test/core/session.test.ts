/**
 * The transition function as a table: every phase × every event, the phase it leads to and the
 * effects it asks for. Then the rules the table cannot show in one cell (what teardown deletes,
 * the lease clock, the re-add rate limit, grant validation, the view).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { GatewayError, GatewayLostError, GatewayResetError, GatewayTimeoutError, LeaseExpiredError, MappingMissingError, ProtocolError } from '../../src/errors.js';
import type { MappingGrant } from '../../src/core/nat.js';
import {
  grantProblem,
  initialSession,
  MIN_RENEW_DELAY_MS,
  PHASES,
  READD_INTERVAL_MS,
  LEASE_MARGIN_MS,
  leaseMarginMs,
  step,
  trustedLeaseMs,
  view,
  type Effect,
  type Phase,
  type Session,
  type SessionConfig,
  type SessionEvent,
} from '../../src/core/session.js';

const config: SessionConfig = {
  request: { protocol: 'tcp', internalPort: 8080, externalPort: 8080, description: 'rxnat', lifetimeSeconds: 60 },
  gateway: 'fake(192.0.2.1)',
  protocol: 'pmp',
  renewFraction: 1 / 3,
  retry: { initialDelayMs: 1000, maxDelayMs: 60_000, jitter: 0.2 },
  maxConsecutiveUnreachable: 3,
  teardownTimeoutMs: 10_000,
  checkIntervalMs: 30_000,
};

const grant = (externalPort = 8080, lifetimeSeconds = 60, extra: Partial<MappingGrant> = {}): MappingGrant => ({
  protocol: 'tcp',
  internalPort: 8080,
  externalPort,
  lifetimeSeconds,
  ...extra,
});
const refused = new GatewayError({ protocol: 'pmp', resultCode: 3, resultName: 'NETWORK_FAILURE', gateway: '192.0.2.1' });
const silent = new GatewayTimeoutError('pmp', '192.0.2.1', 2000);
const notHere = new GatewayError({ protocol: 'pcp', resultCode: 2, resultName: 'NOT_AUTHORIZED', gateway: '192.0.2.1' });
const failed = (at: number, applied: boolean, extra: Partial<Extract<SessionEvent, { type: 'failed' }>> = {}): SessionEvent => ({
  type: 'failed',
  at,
  error: applied ? silent : refused,
  applied,
  gatewayGone: false,
  silent: false,
  notHere: false,
  retryAfterMs: 0,
  jitter: 0.5,
  ...extra,
});

/** Runs events from a session; returns the last session and the effects of the last event. */
function run(events: readonly SessionEvent[], from: Session = initialSession()): { session: Session; effects: readonly Effect[]; all: Effect[] } {
  let session = from;
  let effects: readonly Effect[] = [];
  const all: Effect[] = [];
  for (const event of events) {
    ({ session, effects } = step(session, event, config));
    all.push(...effects);
  }
  return { session, effects, all };
}

/** A session in each phase, reached the way a real one gets there, and the instant it is at. */
function fixtures(): Record<Phase, { session: Session; at: number }> {
  const queued = run([{ type: 'start', at: 0 }]).session;
  const adding = run([{ type: 'sent', at: 0 }], queued).session;
  const mapped = run([{ type: 'address', at: 0, ip: '203.0.113.7', error: null }, { type: 'granted', at: 1, grant: grant() }], adding).session;
  const renewing = run([{ type: 'timer', at: 20_001, name: 'renew' }], mapped).session;
  const degraded = run([{ type: 'sent', at: 20_001 }, failed(20_002, false)], renewing).session;
  const unmapped = run([failed(1, false)], adding).session;
  const closing = run([{ type: 'teardown', at: 2 }], mapped).session;
  const closed = run([{ type: 'deleted', at: 3, port: 8080 }], closing).session;
  return {
    idle: { session: initialSession(), at: 0 },
    queued: { session: queued, at: 0 },
    adding: { session: adding, at: 0 },
    mapped: { session: mapped, at: 1 },
    renewing: { session: renewing, at: 20_001 },
    degraded: { session: degraded, at: 20_002 },
    unmapped: { session: unmapped, at: 1 },
    closing: { session: closing, at: 2 },
    closed: { session: closed, at: 3 },
  };
}

type EventName =
  | 'start'
  | 'sent'
  | 'granted'
  | 'refused'
  | 'notHere'
  | 'noAnswer'
  | 'renew'
  | 'retry'
  | 'leaseEnd'
  | 'readd'
  | 'addBound'
  | 'check'
  | 'present'
  | 'missing'
  | 'newAddress'
  | 'badAddress'
  | 'reset'
  | 'teardown'
  | 'stop'
  | 'deleted'
  | 'deleteFailed';

/** The event of each column, at the instant `at` of the session it is applied to (timers at their due time). */
function event(name: EventName, session: Session, at: number): SessionEvent {
  const due = (timer: keyof Session['timers']): number => session.timers[timer] ?? at + 1;
  switch (name) {
    case 'start':
    case 'sent':
    case 'reset':
    case 'teardown':
    case 'stop':
      return { type: name, at: at + 1 };
    case 'granted':
      return { type: 'granted', at: at + 1, grant: grant() };
    case 'refused':
      return failed(at + 1, false);
    case 'notHere':
      return failed(at + 1, false, { error: notHere, notHere: true });
    case 'check':
      return { type: 'timer', at: due('check'), name: 'check' };
    case 'present':
    case 'missing':
      return { type: 'checked', at: at + 1, port: 8080, present: name === 'present' };
    case 'noAnswer':
      return failed(at + 1, true);
    case 'renew':
    case 'retry':
    case 'leaseEnd':
    case 'readd':
    case 'addBound':
      return { type: 'timer', at: due(name), name };
    case 'newAddress':
      return { type: 'address', at: at + 1, ip: '198.51.100.9', error: null };
    case 'badAddress':
      return { type: 'address', at: at + 1, ip: '0.0.0.0', error: null };
    case 'deleted':
      return { type: 'deleted', at: at + 1, port: 8080 };
    case 'deleteFailed':
      return { type: 'deleteFailed', at: at + 1, port: 8080, error: silent };
  }
}

// Each cell: the phase the event leads to, then the effects asked for ('' for none).
// prettier-ignore
const TABLE: Record<Phase, Record<EventName, string>> = {
  idle:     { start: 'queued add', sent: 'idle', granted: 'idle', refused: 'idle', notHere: 'idle', noAnswer: 'idle', renew: 'idle', retry: 'idle', leaseEnd: 'idle', readd: 'idle', addBound: 'idle', check: 'idle', present: 'idle', missing: 'idle', newAddress: 'idle', badAddress: 'idle', reset: 'idle', teardown: 'closed closed', stop: 'closed closed', deleted: 'idle', deleteFailed: 'idle' },
  queued:   { start: 'queued', sent: 'adding', granted: 'mapped', refused: 'unmapped', notHere: 'closed lost,closed', noAnswer: 'unmapped', renew: 'queued', retry: 'queued', leaseEnd: 'queued', readd: 'queued', addBound: 'queued', check: 'queued', present: 'queued', missing: 'queued', newAddress: 'queued', badAddress: 'queued', reset: 'queued', teardown: 'closed cancelAdd,closed', stop: 'closed cancelAdd,closed', deleted: 'queued', deleteFailed: 'queued' },
  adding:   { start: 'adding', sent: 'adding', granted: 'mapped', refused: 'unmapped', notHere: 'closed lost,closed', noAnswer: 'unmapped', renew: 'adding', retry: 'adding', leaseEnd: 'adding', readd: 'adding', addBound: 'adding', check: 'adding', present: 'adding', missing: 'adding', newAddress: 'adding', badAddress: 'adding', reset: 'adding', teardown: 'closing', stop: 'closing', deleted: 'adding', deleteFailed: 'adding' },
  mapped:   { start: 'mapped', sent: 'mapped', granted: 'mapped', refused: 'mapped', notHere: 'mapped', noAnswer: 'mapped', renew: 'renewing add', retry: 'mapped', leaseEnd: 'unmapped', readd: 'mapped', addBound: 'mapped', check: 'mapped check', present: 'mapped', missing: 'queued add', newAddress: 'renewing add', badAddress: 'mapped', reset: 'queued add', teardown: 'closing delete', stop: 'closing delete', deleted: 'mapped', deleteFailed: 'mapped' },
  renewing: { start: 'renewing', sent: 'renewing', granted: 'mapped', refused: 'degraded', notHere: 'degraded', noAnswer: 'degraded', renew: 'renewing', retry: 'renewing', leaseEnd: 'queued', readd: 'renewing', addBound: 'renewing', check: 'renewing', present: 'renewing', missing: 'renewing', newAddress: 'renewing', badAddress: 'renewing', reset: 'queued', teardown: 'closing cancelAdd,delete', stop: 'closing cancelAdd,delete', deleted: 'renewing', deleteFailed: 'renewing' },
  degraded: { start: 'degraded', sent: 'degraded', granted: 'degraded', refused: 'degraded', notHere: 'degraded', noAnswer: 'degraded', renew: 'degraded', retry: 'renewing add', leaseEnd: 'unmapped', readd: 'degraded', addBound: 'degraded', check: 'degraded', present: 'degraded', missing: 'degraded', newAddress: 'renewing add', badAddress: 'degraded', reset: 'queued add', teardown: 'closing delete', stop: 'closing delete', deleted: 'degraded', deleteFailed: 'degraded' },
  unmapped: { start: 'unmapped', sent: 'unmapped', granted: 'unmapped', refused: 'unmapped', notHere: 'unmapped', noAnswer: 'unmapped', renew: 'unmapped', retry: 'queued add', leaseEnd: 'unmapped', readd: 'unmapped', addBound: 'unmapped', check: 'unmapped', present: 'unmapped', missing: 'unmapped', newAddress: 'unmapped', badAddress: 'unmapped', reset: 'unmapped', teardown: 'closed closed', stop: 'closed closed', deleted: 'unmapped', deleteFailed: 'unmapped' },
  closing:  { start: 'closing', sent: 'closing', granted: 'closing', refused: 'closing', notHere: 'closing', noAnswer: 'closing', renew: 'closing', retry: 'closing', leaseEnd: 'closing', readd: 'closing', addBound: 'closing', check: 'closing', present: 'closing', missing: 'closing', newAddress: 'closing', badAddress: 'closing', reset: 'closing', teardown: 'closing', stop: 'closing', deleted: 'closed closed', deleteFailed: 'closed closed' },
  closed:   { start: 'closed', sent: 'closed', granted: 'closed', refused: 'closed', notHere: 'closed', noAnswer: 'closed', renew: 'closed', retry: 'closed', leaseEnd: 'closed', readd: 'closed', addBound: 'closed', check: 'closed', present: 'closed', missing: 'closed', newAddress: 'closed', badAddress: 'closed', reset: 'closed', teardown: 'closed', stop: 'closed', deleted: 'closed', deleteFailed: 'closed' },
};

describe('step: every phase × every event', () => {
  const sessions = fixtures();
  for (const phase of PHASES) {
    test(`from ${phase}`, () => {
      const { session, at } = sessions[phase];
      assert.equal(session.phase, phase, 'the fixture is in its phase');
      for (const [name, cell] of Object.entries(TABLE[phase]) as Array<[EventName, string]>) {
        const [expectedPhase, effects = ''] = cell.split(' ');
        const result = step(session, event(name, session, at), config);
        assert.equal(result.session.phase, expectedPhase, `${phase} × ${name}: phase`);
        assert.deepEqual(result.effects.map((e) => e.type).join(','), effects, `${phase} × ${name}: effects`);
      }
    });
  }

  test('an event that changes nothing returns the same session', () => {
    const { session } = sessions.closed;
    assert.equal(step(session, { type: 'start', at: 9 }, config).session, session);
    assert.equal(step(sessions.mapped.session, { type: 'timer', at: 5, name: 'retry' }, config).session.phase, 'mapped');
  });
});

describe('step: what teardown deletes', () => {
  test('an add that got no valid answer may exist: its port is deleted with the last grant', () => {
    const { session } = fixtures().mapped;
    // Renewal on 8080 lost; then a fresh add on another port (after the lease ended) lost too.
    const lost = run([{ type: 'timer', at: 20_001, name: 'renew' }, { type: 'sent', at: 20_001 }, failed(22_001, true)], session).session;
    assert.deepEqual(lost.maybeApplied, [8080]);
    const { all } = run([{ type: 'teardown', at: 22_002 }], lost);
    assert.deepEqual(
      all.filter((e) => e.type === 'delete').map((e) => (e.type === 'delete' ? e.target.externalPort : 0)),
      [8080],
    );
  });

  test('a refused add made nothing: nothing to delete', () => {
    const { all } = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, failed(1, false), { type: 'teardown', at: 2 }]);
    assert.deepEqual(all.map((e) => e.type), ['add', 'closed']);
  });

  test('an add lost before teardown is deleted although nothing was ever granted', () => {
    const { all } = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, failed(2000, true), { type: 'teardown', at: 2001 }]);
    const deletes = all.filter((e) => e.type === 'delete');
    assert.equal(deletes.length, 1);
    assert.deepEqual(deletes[0]!.type === 'delete' && [deletes[0]!.target.externalPort, deletes[0]!.target.lifetimeSeconds], [8080, 0]);
  });

  test('an add on the wire at teardown is waited for; its grant is what is deleted', () => {
    const { session } = fixtures().adding;
    const closing = run([{ type: 'teardown', at: 5 }], session).session;
    assert.equal(closing.closing?.awaitingAdd, true);
    assert.equal(closing.timers.addBound, 0 + config.teardownTimeoutMs, 'bounded from when it was sent');
    const { all, session: after } = run([{ type: 'granted', at: 7, grant: grant(40_000) }], closing);
    assert.deepEqual(all.map((e) => (e.type === 'delete' ? e.target.externalPort : e.type)), [40_000]);
    assert.equal(after.phase, 'closing');
  });

  test('an add on the wire that never answers: at the bound it is cancelled and the port it asked for deleted', () => {
    const closing = run([{ type: 'teardown', at: 5 }], fixtures().adding.session).session;
    const { all } = run([{ type: 'timer', at: 10_000, name: 'addBound' }], closing);
    assert.deepEqual(all.map((e) => (e.type === 'delete' ? `delete ${e.target.externalPort}` : e.type)), ['cancelAdd', 'delete 8080']);
  });

  test('an add on the wire that fails at teardown: deleted if it may exist, not if refused', () => {
    const closing = run([{ type: 'teardown', at: 5 }], fixtures().adding.session).session;
    assert.deepEqual(run([failed(6, true)], closing).all.map((e) => e.type), ['delete']);
    assert.deepEqual(run([failed(6, false)], closing).all.map((e) => e.type), ['closed']);
  });

  test('a renewal granted on another port leaves the old one to delete too', () => {
    const renewing = fixtures().renewing.session;
    const moved = run([{ type: 'sent', at: 20_001 }, { type: 'granted', at: 20_002, grant: grant(40_000) }], renewing).session;
    const { all } = run([{ type: 'teardown', at: 20_003 }], moved);
    assert.deepEqual(all.map((e) => (e.type === 'delete' ? e.target.externalPort : e.type)), [40_000, 8080]);
  });

  test('an unconfirmed delete is reported with when the router drops it by itself', () => {
    const closing = fixtures().closing.session;
    const { all } = run([{ type: 'deleteFailed', at: 3, port: 8080, error: silent }], closing);
    const closed = all.find((e) => e.type === 'closed');
    assert.ok(closed && closed.type === 'closed');
    assert.deepEqual(closed.unconfirmed.map((d) => [d.protocol, d.externalPort, d.internalPort, d.gateway, d.leaseEndsAtMs, d.error]), [
      ['tcp', 8080, 8080, config.gateway, 60_000, silent],
    ]);
  });

  test('a confirmed delete reports nothing', () => {
    const { all } = run([{ type: 'deleted', at: 3, port: 8080 }], fixtures().closing.session);
    assert.deepEqual(all, [{ type: 'closed', unconfirmed: [] }]);
  });

  test('an answer for a port not being deleted changes nothing', () => {
    const closing = fixtures().closing.session;
    assert.equal(step(closing, { type: 'deleted', at: 3, port: 1 }, config).session, closing);
  });

  test('unsubscribing during a graceful stop makes it abrupt', () => {
    const stopping = run([{ type: 'stop', at: 2 }], fixtures().mapped.session).session;
    assert.equal(stopping.closing?.graceful, true);
    assert.equal(step(stopping, { type: 'teardown', at: 3 }, config).session.closing?.graceful, false);
  });
});

describe('step: the lease clock', () => {
  test('the lease runs from when the add was sent, and ends whatever is in flight', () => {
    const { session } = fixtures().mapped;
    assert.equal(session.leaseEndsAt, 60_000 - LEASE_MARGIN_MS, 'sent at 0, granted 60 s, less the margin: not from the answer at 1');
    assert.equal(session.timers.leaseEnd, 59_000);
    const renewing = run([{ type: 'timer', at: 20_001, name: 'renew' }], session).session;
    assert.equal(renewing.timers.leaseEnd, 59_000, 'the lease clock keeps running while the renewal waits');
    const lapsed = run([{ type: 'timer', at: 59_000, name: 'leaseEnd' }], renewing).session;
    assert.equal(view(lapsed, config).status, 'unmapped');
    assert.ok(view(lapsed, config).error instanceof LeaseExpiredError);
  });

  test('the margin: a second, or a quarter of a lease shorter than 4 s', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 60, 7200].map((seconds) => [seconds, leaseMarginMs(seconds), trustedLeaseMs(seconds)]),
      [
        [1, 250, 750],
        [2, 500, 1500],
        [3, 750, 2250],
        [4, 1000, 3000],
        [5, 1000, 4000],
        [60, 1000, 59_000],
        [7200, 1000, 7_199_000],
      ],
    );
  });

  test('renewed at a third of the granted lease, never sooner than the floor', () => {
    assert.equal(fixtures().mapped.session.timers.renew, 1 + 20_000);
    const short = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 1, grant: grant(8080, 1) }]).session;
    assert.equal(short.timers.renew, 1 + MIN_RENEW_DELAY_MS);
  });

  test('a permanent lease has no end, and is re-added at a third of the lifetime asked for', () => {
    const permanent = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 1, grant: grant(8080, 0) }]).session;
    assert.equal(permanent.leaseEndsAt, Infinity);
    assert.equal(permanent.timers.leaseEnd, undefined);
    assert.equal(permanent.timers.renew, 1 + 20_000);
  });

  test('a grant that arrives after its own lease ended is not mapped', () => {
    const late = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 3000, grant: grant(8080, 2) }]).session;
    assert.equal(late.phase, 'unmapped');
    assert.ok(late.timers.retry !== undefined);
  });

  test('retries back off from the failure count, and honour the gateway asking to wait longer', () => {
    const once = run([failed(1, false)], fixtures().adding.session).session;
    assert.equal(once.timers.retry, 1 + 1000);
    const told = run([failed(1, false, { retryAfterMs: 30_000 })], fixtures().adding.session).session;
    assert.equal(told.timers.retry, 1 + 30_000);
  });

  test('connection refused three times in a row: the gateway is lost, and what may exist is deleted', () => {
    let s = fixtures().mapped.session;
    const lost: Effect[] = [];
    let at = 20_001;
    s = run([{ type: 'timer', at, name: 'renew' }], s).session;
    for (let i = 0; i < 3; i++) {
      const result = run([{ type: 'sent', at }, failed(at + 1, false, { gatewayGone: true })], s);
      s = result.session;
      lost.push(...result.all);
      at = (s.timers.retry ?? at) + 0;
      if (s.phase !== 'closing') s = run([{ type: 'timer', at, name: 'retry' }], s).session;
    }
    assert.equal(s.phase, 'closing');
    assert.deepEqual(lost.filter((e) => e.type !== 'add').map((e) => e.type), ['lost', 'delete']);
  });
});

describe('step: forced re-adds are rate-limited', () => {
  test('a reset ends the lease at once and re-adds; another within 5 s waits for the limit', () => {
    const { session } = fixtures().mapped;
    const first = run([{ type: 'reset', at: 100 }], session);
    assert.equal(view(first.session, config).status, 'unmapped', 'the router forgot it: not mapped while the re-add is queued');
    assert.ok(view(first.session, config).error instanceof GatewayResetError);
    assert.deepEqual(first.all.map((e) => e.type), ['add']);
    const regranted = run([{ type: 'sent', at: 100 }, { type: 'granted', at: 101, grant: grant() }], first.session).session;
    const second = run([{ type: 'reset', at: 200 }], regranted);
    assert.deepEqual(second.all, [], 'no add before the rate limit allows');
    assert.equal(second.session.timers.readd, 100 + READD_INTERVAL_MS);
    assert.equal(view(second.session, config).status, 'unmapped');
    assert.ok(view(second.session, config).error instanceof GatewayResetError);
    const due = run([{ type: 'timer', at: 100 + READD_INTERVAL_MS, name: 'readd' }], second.session);
    assert.deepEqual(due.all.map((e) => e.type), ['add']);
  });

  test('a re-add asked for while an add is in flight runs after its answer', () => {
    const renewing = run([{ type: 'sent', at: 20_001 }], fixtures().renewing.session).session;
    const pending = run([{ type: 'address', at: 20_002, ip: '198.51.100.9', error: null }], renewing).session;
    assert.equal(pending.readdPending, true);
    const { all } = run([{ type: 'granted', at: 20_003, grant: grant() }], pending);
    assert.deepEqual(all.map((e) => e.type), ['add'], 'the queued re-add is not dropped');
  });

  test('a re-add pending when the add fails is covered by the retry', () => {
    const renewing = run([{ type: 'sent', at: 20_001 }, { type: 'reset', at: 20_002 }], fixtures().renewing.session).session;
    assert.equal(renewing.readdPending, true);
    const failedOnce = run([failed(20_003, false)], renewing).session;
    assert.equal(failedOnce.readdPending, false);
    assert.ok(failedOnce.timers.retry !== undefined);
  });

  test('an unchanged address re-adds nothing; the first address is no change', () => {
    const { session } = fixtures().mapped;
    assert.deepEqual(step(session, { type: 'address', at: 5, ip: '203.0.113.7', error: null }, config).effects, []);
    const fresh = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 1, grant: grant() }]).session;
    assert.deepEqual(step(fresh, { type: 'address', at: 2, ip: '203.0.113.7', error: null }, config).effects, []);
  });
});

describe('grant validation and the view', () => {
  test('a success reply that is not a mapping is a ProtocolError, and the add counts as possibly made', () => {
    const cases: Array<[Partial<MappingGrant>, string]> = [
      [{ externalPort: 0 }, 'external-port'],
      [{ externalPort: 70_000 }, 'external-port'],
      [{ externalPort: 1.5 }, 'external-port'],
      [{ lifetimeSeconds: -1 }, 'lifetime'],
      [{ lifetimeSeconds: Number.NaN }, 'lifetime'],
      [{ externalIp: '0.0.0.0' }, 'external-address'],
      [{ externalIp: 'garbage' }, 'external-address'],
      [{ externalIp: '' }, 'external-address'],
      [{ internalPort: 9090 }, 'grant'],
      [{ protocol: 'udp' }, 'grant'],
    ];
    for (const [patch, reason] of cases) {
      const problem = grantProblem({ ...grant(), ...patch }, config);
      assert.ok(problem instanceof ProtocolError, JSON.stringify(patch));
      assert.equal(problem.reason, reason, JSON.stringify(patch));
      assert.equal(problem.gateway, config.gateway);
      const after = run([{ type: 'granted', at: 1, grant: { ...grant(), ...patch } }], fixtures().adding.session).session;
      assert.equal(after.phase, 'unmapped', JSON.stringify(patch));
      assert.deepEqual(after.maybeApplied, [8080]);
    }
    assert.equal(grantProblem(grant(8080, 0), config), null, 'lifetime 0 is a permanent lease (UPnP)');
    assert.equal(grantProblem(grant(8080, 60, { externalIp: '2001:db8::7' }), config), null);
  });

  test('mapped needs a usable external address; 0.0.0.0 (not connected) is unmapped with the reason', () => {
    const mapped = fixtures().mapped.session;
    assert.equal(view(mapped, config).status, 'mapped');
    const notConnected = run([{ type: 'address', at: 2, ip: '0.0.0.0', error: null }], mapped).session;
    const state = view(notConnected, config);
    assert.equal(state.status, 'unmapped');
    assert.equal(state.externalPort, 0);
    assert.ok(state.error instanceof ProtocolError && state.error.reason === 'external-address');
    const back = run([{ type: 'address', at: 3, ip: '203.0.113.7', error: null }], notConnected).session;
    assert.equal(view(back, config).status, 'mapped');
  });

  test('granted before any address is known: not mapped yet', () => {
    const granted = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 1, grant: grant() }]).session;
    assert.equal(view(granted, config).status, 'mapping');
    assert.equal(view(granted, config).externalIp, null);
  });

  test('doubleNat: private and CGNAT IPv4 only, never IPv6', () => {
    const at = (ip: string) => view(run([{ type: 'address', at: 2, ip, error: null }], fixtures().mapped.session).session, config);
    assert.equal(at('10.77.0.2').doubleNat, true);
    assert.equal(at('100.64.1.1').doubleNat, true);
    assert.equal(at('203.0.113.7').doubleNat, false);
    const v6 = view(run([{ type: 'granted', at: 1, grant: grant(8080, 60, { externalIp: '2001:db8::7' }) }], fixtures().adding.session).session, config);
    assert.equal(v6.status, 'mapped');
    assert.equal(v6.externalIp, '2001:db8::7');
    assert.equal(v6.doubleNat, false);
  });

  test('degraded while the lease holds, with the error; unmapped after', () => {
    const degraded = fixtures().degraded.session;
    assert.equal(view(degraded, config).status, 'degraded');
    assert.equal(view(degraded, config).error, refused);
    assert.equal(view(degraded, config).externalPort, 8080);
    const ended = run([{ type: 'timer', at: 60_000, name: 'leaseEnd' }], degraded).session;
    assert.equal(view(ended, config).status, 'unmapped');
    assert.equal(view(ended, config).error, refused, 'the last failure stays the reason');
  });

  test('renewals are counted on grants of renewals only', () => {
    const renewed = run([{ type: 'sent', at: 20_001 }, { type: 'granted', at: 20_002, grant: grant() }], fixtures().renewing.session).session;
    assert.equal(view(renewed, config).renewals, 1);
    assert.equal(view(fixtures().mapped.session, config).renewals, 0);
  });
});

describe('step: the details a mutation pass asked about', () => {
  test('a second sent keeps the first send time; stop is graceful, teardown and loss are not', () => {
    const adding = fixtures().adding.session;
    assert.equal(step(adding, { type: 'sent', at: 500 }, config).session.inFlight?.sentAt, 0);
    const mapped = fixtures().mapped.session;
    assert.equal(step(mapped, { type: 'stop', at: 2 }, config).session.closing?.graceful, true);
    assert.equal(step(mapped, { type: 'teardown', at: 2 }, config).session.closing?.graceful, false);
    let s = run([{ type: 'timer', at: 20_001, name: 'renew' }], mapped).session;
    for (let i = 0; i < 3 && s.phase !== 'closing'; i++) {
      s = run([{ type: 'sent', at: 20_001 }, failed(20_002, false, { gatewayGone: true })], s).session;
      if (s.phase !== 'closing') s = run([{ type: 'timer', at: s.timers.retry!, name: 'retry' }], s).session;
    }
    assert.equal(s.closing?.graceful, false, 'a lost gateway is left, not stopped');
  });

  test('the add asks for the granted port, with the grant it renews, and the rest of the request', () => {
    const { effects } = step(fixtures().mapped.session, { type: 'timer', at: 20_001, name: 'renew' }, config);
    assert.deepEqual(effects, [{ type: 'add', request: { ...config.request, externalPort: 8080, previous: grant() }, priority: 59_000 }]);
    const first = step(initialSession(), { type: 'start', at: 0 }, config).effects;
    assert.deepEqual(first, [{ type: 'add', request: config.request, priority: Infinity }]);
  });

  test('an invalid success reply is a failure that may have been made, never a refused connection', () => {
    let s = fixtures().adding.session;
    for (let i = 0; i < 5; i++) {
      const result = run([{ type: 'granted', at: 10 + i, grant: grant(0) }], s);
      assert.ok(!result.all.some((e) => e.type === 'lost'), 'invalid replies never count as a lost gateway');
      s = run([{ type: 'timer', at: result.session.timers.retry!, name: 'retry' }, { type: 'sent', at: result.session.timers.retry! }], result.session).session;
    }
    assert.equal(s.unreachable, 0);
  });

  test('a grant on a port that may have been made takes it off the list; a moved renewal puts the old port on it', () => {
    const lost = run([failed(2000, true)], fixtures().adding.session).session;
    assert.deepEqual(lost.maybeApplied, [8080]);
    const regranted = run([{ type: 'timer', at: lost.timers.retry!, name: 'retry' }, { type: 'sent', at: 3001 }, { type: 'granted', at: 3002, grant: grant() }], lost).session;
    assert.deepEqual(regranted.maybeApplied, []);
    const moved = run([{ type: 'sent', at: 20_001 }, { type: 'granted', at: 20_002, grant: grant(40_000) }], fixtures().renewing.session).session;
    assert.deepEqual(moved.maybeApplied, [8080]);
    const same = run([{ type: 'sent', at: 20_001 }, { type: 'granted', at: 20_002, grant: grant() }], fixtures().renewing.session).session;
    assert.deepEqual(same.maybeApplied, []);
  });

  test('a re-add waiting for the rate limit survives a grant; a rate-limited one is pending', () => {
    const renewing = run([{ type: 'sent', at: 20_001 }], fixtures().renewing.session).session;
    const waiting: Session = { ...renewing, timers: { ...renewing.timers, readd: 50_000 } };
    assert.equal(step(waiting, { type: 'granted', at: 20_002, grant: grant() }, config).session.timers.readd, 50_000);
    const reset = run([{ type: 'reset', at: 100 }, { type: 'sent', at: 100 }, { type: 'granted', at: 101, grant: grant() }, { type: 'reset', at: 200 }], fixtures().mapped.session).session;
    assert.equal(reset.readdPending, true);
  });

  test('a grant that arrives exactly at the end of its own lease is not mapped', () => {
    const exact = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 2000, grant: grant(8080, 2) }]).session;
    assert.equal(exact.phase, 'unmapped');
    assert.ok(exact.error instanceof LeaseExpiredError);
    assert.equal(exact.timers.renew, undefined);
    assert.equal(exact.timers.leaseEnd, undefined);
    assert.equal(exact.timers.retry, 2000 + MIN_RENEW_DELAY_MS);
  });

  test('a renewal failing at the very instant its lease ends is unmapped, not degraded', () => {
    const renewing = run([{ type: 'sent', at: 20_001 }], fixtures().renewing.session).session;
    assert.equal(step(renewing, failed(59_000, false), config).session.phase, 'unmapped');
    assert.equal(step(renewing, failed(58_999, false), config).session.phase, 'degraded');
  });

  test('a lease that ends before its renewal is due: unmapped, and the renewal becomes the retry', () => {
    const short = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 1, grant: grant(8080, 1) }]).session;
    assert.equal(short.timers.leaseEnd, 750, 'a 1 s lease keeps a quarter as its margin');
    assert.equal(short.timers.renew, 1001);
    const lapsed = step(short, { type: 'timer', at: 750, name: 'leaseEnd' }, config).session;
    assert.equal(lapsed.phase, 'unmapped');
    assert.deepEqual(lapsed.timers, { retry: 1001 });
    const sent = run([{ type: 'sent', at: 20_001 }], fixtures().renewing.session).session;
    assert.equal(step(sent, { type: 'timer', at: 59_000, name: 'leaseEnd' }, config).session.phase, 'adding');
  });

  test('an unusable address says why; an address change before any grant re-adds nothing', () => {
    const bad = step(fixtures().mapped.session, { type: 'address', at: 2, ip: '0.0.0.0', error: null }, config).session;
    assert.match(bad.addressError?.message ?? '', /not usable/);
    const queued = fixtures().queued.session;
    const first = step(queued, { type: 'address', at: 1, ip: '203.0.113.7', error: null }, config).session;
    assert.deepEqual(step(first, { type: 'address', at: 2, ip: '198.51.100.9', error: null }, config).effects, []);
  });

  test('teardown keeps the lease clock: a lease that ends while deletes wait turns the state unmapped', () => {
    const closing = run([{ type: 'stop', at: 2 }], fixtures().mapped.session).session;
    assert.equal(closing.timers.leaseEnd, 59_000);
    assert.equal(view(closing, config).status, 'mapped', 'until then, the state teardown began in');
    const lapsed = step(closing, { type: 'timer', at: 59_000, name: 'leaseEnd' }, config).session;
    assert.equal(view(lapsed, config).status, 'unmapped');
    assert.ok(view(lapsed, config).error instanceof LeaseExpiredError);
    assert.equal(lapsed.timers.leaseEnd, undefined);
    const reset = step(closing, { type: 'reset', at: 3 }, config).session;
    assert.ok(view(reset, config).error instanceof GatewayResetError);
    const fromQueued = run([{ type: 'stop', at: 2 }], fixtures().renewing.session).session;
    assert.equal(fromQueued.closing?.from, 'renewing');
    const unmappedClosing = run([{ type: 'teardown', at: 2 }], run([failed(2000, true)], fixtures().adding.session).session).session;
    assert.equal(step(unmappedClosing, { type: 'reset', at: 3 }, config).session, unmappedClosing, 'nothing held: a reset changes nothing');
  });

  test('an add answered during teardown: its lease and a moved port are what is deleted, an invalid answer deletes the asked port', () => {
    const closing = run([{ type: 'teardown', at: 5 }], fixtures().adding.session).session;
    const valid = step(closing, { type: 'granted', at: 7, grant: grant(8080, 30) }, config).session;
    assert.equal(valid.leaseEndsAt, 29_000, 'from the send, 0 ms, less the margin');
    const permanent = step(closing, { type: 'granted', at: 7, grant: grant(8080, 0) }, config).session;
    assert.equal(permanent.leaseEndsAt, Infinity);
    const invalid = step(closing, { type: 'granted', at: 7, grant: grant(0) }, config);
    assert.deepEqual(invalid.effects.map((e) => (e.type === 'delete' ? e.target.externalPort : e.type)), [8080]);
    const renewingClosing = run([{ type: 'sent', at: 20_001 }, { type: 'teardown', at: 20_002 }], fixtures().renewing.session).session;
    const moved = step(renewingClosing, { type: 'granted', at: 20_003, grant: grant(40_000) }, config);
    assert.deepEqual(moved.effects.map((e) => (e.type === 'delete' ? e.target.externalPort : e.type)), [40_000, 8080]);
    const same = step(renewingClosing, { type: 'granted', at: 20_003, grant: grant() }, config);
    assert.deepEqual(same.effects.map((e) => (e.type === 'delete' ? e.target.externalPort : e.type)), [8080]);
    assert.equal(step(closing, { type: 'timer', at: 9, name: 'retry' }, config).session, closing, 'only the add bound counts');
  });

  test('when an unconfirmed entry goes away by itself', () => {
    const permanent = run([{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 1, grant: grant(8080, 0) }, { type: 'teardown', at: 2 }]).session;
    const closed = step(permanent, { type: 'deleteFailed', at: 3, port: 8080, error: silent }, config).effects.find((e) => e.type === 'closed');
    assert.equal(closed?.type === 'closed' && closed.unconfirmed[0]?.leaseEndsAtMs, null, 'a permanent lease never ends');
    const maybe = run([failed(2000, true), { type: 'teardown', at: 2001 }], fixtures().adding.session).session;
    const after = step(maybe, { type: 'deleteFailed', at: 2002, port: 8080, error: silent }, config).effects.find((e) => e.type === 'closed');
    assert.equal(after?.type === 'closed' && after.unconfirmed[0]?.leaseEndsAtMs, 2002 + 60_000, 'no longer than asked for, from now');
    const permanentAsk: SessionConfig = { ...config, request: { ...config.request, lifetimeSeconds: 0 } };
    const maybeP = run([failed(2000, true), { type: 'teardown', at: 2001 }], fixtures().adding.session).session;
    const afterP = step(maybeP, { type: 'deleteFailed', at: 2002, port: 8080, error: silent }, permanentAsk).effects.find((e) => e.type === 'closed');
    assert.equal(afterP?.type === 'closed' && afterP.unconfirmed[0]?.leaseEndsAtMs, null);
    const two = run([{ type: 'sent', at: 20_001 }, { type: 'granted', at: 20_002, grant: grant(40_000) }, { type: 'teardown', at: 20_003 }], fixtures().renewing.session).session;
    const one = step(two, { type: 'deleted', at: 20_004, port: 40_000 }, config).session;
    assert.deepEqual(one.closing?.pending.map((g) => g.externalPort), [8080], 'one answered, one still pending');
    assert.equal(one.phase, 'closing');
  });

  test('grant validation: the edges of every range, and the reason in every message', () => {
    assert.equal(grantProblem(grant(1), config), null);
    assert.equal(grantProblem(grant(65_535), config), null);
    assert.equal(grantProblem(grant(8080, 0xffffffff), config), null);
    assert.equal(grantProblem(grant(8080, 0x100000000), config)?.reason, 'lifetime');
    assert.equal(grantProblem(grant(65_536), config)?.reason, 'external-port');
    assert.equal(grantProblem(null as never, config)?.reason, 'grant');
    assert.equal(grantProblem(7 as never, config)?.reason, 'grant');
    for (const g of [grant(0), grant(8080, -1), grant(8080, 60, { externalIp: '0.0.0.0' }), grant(8080, 60, { internalPort: 1 })]) {
      assert.match(grantProblem(g, config)?.message ?? '', /success reply is not a mapping: \S/);
    }
  });

  test('PHASES lists every phase once', () => {
    assert.deepEqual([...PHASES].sort(), ['adding', 'closed', 'closing', 'degraded', 'idle', 'mapped', 'queued', 'renewing', 'unmapped']);
  });
});

describe('step: what the second mutation pass found untested', () => {
  test('an address change before the first grant re-adds nothing after it: the grant is already on the new address', () => {
    const adding = run([{ type: 'address', at: 0, ip: '203.0.113.7', error: null }], fixtures().adding.session).session;
    const changed = step(adding, { type: 'address', at: 1, ip: '198.51.100.9', error: null }, config).session;
    assert.equal(changed.readdPending, false);
    const { all, session } = run([{ type: 'granted', at: 2, grant: grant() }], changed);
    assert.deepEqual(all, [], 'no second add');
    assert.equal(view(session, config).externalIp, '198.51.100.9');
  });

  test('a reset while the first add is on the wire re-adds after its answer: the router may have forgotten it at once', () => {
    const reset = step(fixtures().adding.session, { type: 'reset', at: 1 }, config).session;
    assert.equal(reset.readdPending, true);
    const { all } = run([{ type: 'granted', at: 2, grant: grant() }], reset);
    assert.deepEqual(all.map((e) => e.type), ['add']);
  });

  test('teardown waiting on a renewal while the lease timer is set: the add bound still cancels it and deletes', () => {
    const closing = run([{ type: 'sent', at: 20_001 }, { type: 'teardown', at: 20_002 }], fixtures().renewing.session).session;
    assert.deepEqual(closing.timers, { leaseEnd: 59_000, addBound: 20_001 + config.teardownTimeoutMs });
    const { all, session } = run([{ type: 'timer', at: 30_001, name: 'addBound' }], closing);
    assert.deepEqual(all.map((e) => (e.type === 'delete' ? `delete ${e.target.externalPort}` : e.type)), ['cancelAdd', 'delete 8080']);
    assert.equal(session.timers.leaseEnd, 59_000, 'the lease clock still runs');
    assert.equal(view(session, config).status, 'mapped', 'the lease has not ended');
  });

  test('an unconfirmed delete of a port that may have been made ends when its own ask would, not with the grant', () => {
    const two = run([{ type: 'sent', at: 20_001 }, { type: 'granted', at: 20_002, grant: grant(40_000) }, { type: 'teardown', at: 20_003 }], fixtures().renewing.session).session;
    assert.equal(two.leaseEndsAt, 20_001 + 59_000, 'trusted until a second before the router lets it go');
    const failedBoth = run(
      [
        { type: 'deleteFailed', at: 20_004, port: 40_000, error: silent },
        { type: 'deleteFailed', at: 20_010, port: 8080, error: silent },
      ],
      two,
    );
    const closed = failedBoth.all.find((e) => e.type === 'closed');
    assert.ok(closed?.type === 'closed');
    assert.deepEqual(
      closed.unconfirmed.map((d) => [d.externalPort, d.leaseEndsAtMs]),
      [
        [40_000, 20_001 + 60_000],
        [8080, 20_010 + 60_000],
      ],
    );
  });

  test('a grant that names its own usable address answers an earlier "not usable": the latest reading wins', () => {
    // PCP names the external address in each MAP answer; the watcher may have said 0.0.0.0 (or
    // failed) before it. The grant is the newer fact, as a watcher reading after it would be.
    const notConnected = run([{ type: 'address', at: 0, ip: '0.0.0.0', error: null }], fixtures().adding.session).session;
    assert.equal(view(notConnected, config).status, 'mapping');
    const granted = step(notConnected, { type: 'granted', at: 1, grant: grant(8080, 60, { externalIp: '203.0.113.7' }) }, config).session;
    assert.equal(granted.addressError, null);
    assert.deepEqual([view(granted, config).status, view(granted, config).externalIp, view(granted, config).error], ['mapped', '203.0.113.7', null]);
    const lostAgain = step(granted, { type: 'address', at: 2, ip: '0.0.0.0', error: null }, config).session;
    assert.equal(view(lostAgain, config).status, 'unmapped', 'and a later "not usable" wins over the grant');
    const withoutIp = step(notConnected, { type: 'granted', at: 1, grant: grant() }, config).session;
    assert.equal(view(withoutIp, config).status, 'unmapped', 'a grant without an address does not answer it');
    assert.match(view(withoutIp, config).error?.message ?? '', /not usable/);
  });

  test('teardown that waited on an add closes once the deletes after it are answered', () => {
    const closing = run([{ type: 'teardown', at: 5 }], fixtures().adding.session).session;
    const answered = run([{ type: 'granted', at: 7, grant: grant() }, { type: 'deleted', at: 8, port: 8080 }], closing);
    assert.equal(answered.session.phase, 'closed');
    assert.deepEqual(answered.effects, [{ type: 'closed', unconfirmed: [] }]);
    const bounded = run([{ type: 'timer', at: 10_000, name: 'addBound' }, { type: 'deleted', at: 10_001, port: 8080 }], closing);
    assert.equal(bounded.session.phase, 'closed');
    assert.deepEqual(bounded.effects, [{ type: 'closed', unconfirmed: [] }]);
  });

  test('a missing grant says so', () => {
    assert.match(grantProblem(null as never, config)?.message ?? '', /success reply is not a mapping: no grant$/);
  });
});

describe('step: backends that will not map here, gateways that fall silent, entries the router dropped', () => {
  const sessions = fixtures();

  test('a "not here" refusal of an add with no lease held: lost (refused) at once, nothing to delete', () => {
    const { session, effects } = run([failed(5, false, { error: notHere, notHere: true })], sessions.adding.session);
    assert.equal(session.phase, 'closed');
    const lost = effects.find((e) => e.type === 'lost');
    assert.ok(lost && lost.type === 'lost' && lost.error instanceof GatewayLostError);
    assert.equal((lost.error as GatewayLostError).reason, 'refused');
    assert.equal((lost.error as GatewayLostError).cause, notHere);
  });

  test('a "not here" refusal of a renewal keeps the lease it still holds: degraded, retried, not lost', () => {
    const { session, effects } = run([failed(20_002, false, { error: notHere, notHere: true })], run([{ type: 'sent', at: 20_001 }], sessions.renewing.session).session);
    assert.equal(session.phase, 'degraded');
    assert.deepEqual(effects, []);
    assert.equal(view(session, config).status, 'degraded');
  });

  test('a "not here" refusal after the lease ended: lost, and the grant is deleted best-effort', () => {
    const lapsed = run([{ type: 'timer', at: 59_001, name: 'leaseEnd' }, { type: 'sent', at: 59_001 }], sessions.renewing.session).session;
    const { session, effects } = run([failed(59_002, false, { error: notHere, notHere: true })], lapsed);
    assert.equal(session.phase, 'closing');
    assert.deepEqual(effects.map((e) => e.type), ['lost', 'delete']);
  });

  test('adds that get no answer count like refused connections: maxConsecutiveUnreachable in a row is lost (unreachable)', () => {
    const timedOut = (at: number): SessionEvent => failed(at, true, { silent: true });
    let session = sessions.adding.session;
    for (let i = 0; i < config.maxConsecutiveUnreachable - 1; i++) {
      session = run([timedOut(10 + i), { type: 'timer', at: session.timers.retry ?? 0, name: 'retry' }], session).session;
      session = run([{ type: 'timer', at: session.timers.retry ?? 0, name: 'retry' }, { type: 'sent', at: 100_000 * (i + 1) }], session).session;
      assert.notEqual(session.phase, 'closing', `after ${i + 1} silent adds`);
    }
    const { effects } = run([timedOut(900_000)], session);
    const lost = effects.find((e) => e.type === 'lost');
    assert.ok(lost && lost.type === 'lost' && lost.error instanceof GatewayLostError);
    assert.equal((lost.error as GatewayLostError).reason, 'unreachable');
    assert.deepEqual(effects.map((e) => e.type), ['lost', 'delete'], 'the port the silent adds asked for may exist: deleted');
  });

  test('a silent add between two grants does not count towards lost once a grant came', () => {
    const once = run([failed(2, true, { silent: true })], sessions.adding.session).session;
    assert.equal(once.unreachable, 1);
    const granted = run([{ type: 'timer', at: once.timers.retry!, name: 'retry' }, { type: 'sent', at: once.timers.retry! }, { type: 'granted', at: once.timers.retry! + 1, grant: grant() }], once).session;
    assert.equal(granted.unreachable, 0);
    assert.equal(run([failed(2, true)], sessions.adding.session).session.unreachable, 0, 'an answer that is not a mapping is not silence');
  });

  test('a grant schedules the table check checkIntervalMs later; none when the NAT cannot check', () => {
    assert.equal(sessions.mapped.session.timers.check, 1 + 30_000);
    const unchecked = { ...config, checkIntervalMs: null };
    let session = initialSession();
    for (const e of [{ type: 'start', at: 0 }, { type: 'sent', at: 0 }, { type: 'granted', at: 1, grant: grant() }] as SessionEvent[]) session = step(session, e, unchecked).session;
    assert.equal(session.timers.check, undefined);
  });

  test('a check due while mapped asks the gateway about the grant; present reschedules it, a failed check too', () => {
    const long = run([{ type: 'granted', at: 1, grant: grant(8080, 3600) }], sessions.adding.session).session;
    const { session, effects } = run([{ type: 'timer', at: 30_001, name: 'check' }], long);
    assert.deepEqual(effects, [{ type: 'check', target: grant(8080, 3600) }]);
    assert.equal(session.timers.check, undefined, 'one check at a time');
    assert.equal(run([{ type: 'checked', at: 30_050, port: 8080, present: true }], session).session.timers.check, 60_050);
    assert.equal(run([{ type: 'checked', at: 30_050, port: 8080, present: null }], session).session.timers.check, 60_050);
  });

  test('an entry found missing: unmapped now (MappingMissingError), re-added at once on the same port', () => {
    const long = run([{ type: 'granted', at: 1, grant: grant(8080, 3600) }], sessions.adding.session).session;
    const { session, effects } = run([{ type: 'timer', at: 30_001, name: 'check' }, { type: 'checked', at: 30_050, port: 8080, present: false }], long);
    assert.equal(session.phase, 'queued');
    assert.equal(session.leaseEndsAt, 30_050);
    assert.ok(session.error instanceof MappingMissingError);
    assert.equal(view(session, config).status, 'unmapped');
    const add = effects.find((e) => e.type === 'add');
    assert.ok(add && add.type === 'add' && add.request.externalPort === 8080);
    assert.equal(session.timers.check, undefined);
  });

  test('a check answer about another port, or one that comes while a renewal is made, changes nothing', () => {
    const long = run([{ type: 'granted', at: 1, grant: grant(8080, 3600) }], sessions.adding.session).session;
    assert.equal(run([{ type: 'checked', at: 5, port: 9090, present: false }], long).session, long);
    assert.equal(run([{ type: 'checked', at: 20_002, port: 8080, present: false }], sessions.renewing.session).session, sessions.renewing.session);
  });

  test('a check timer in any phase but mapped asks nothing', () => {
    for (const phase of PHASES.filter((p) => p !== 'mapped')) {
      const { session } = sessions[phase];
      const withTimer: Session = { ...session, timers: { ...session.timers, check: 5 } };
      assert.deepEqual(step(withTimer, { type: 'timer', at: 5, name: 'check' }, config).effects, [], phase);
    }
  });
});

describe('step: IPv6 mappings', () => {
  const v6: SessionConfig = { ...config, request: { ...config.request, family: 'ipv6', internalAddress: '2001:db8::10' } };
  const start = (events: readonly SessionEvent[]): Session => events.reduce((s, e) => step(s, e, v6).session, initialSession());

  test('the gateway-wide address reading is ignored: the grant names the mapping\'s own address', () => {
    const session = start([
      { type: 'start', at: 0 },
      { type: 'sent', at: 0 },
      { type: 'address', at: 1, ip: '2001:db8::99', error: null },
      { type: 'granted', at: 2, grant: grant(8080, 60, { externalIp: '2001:db8::10' }) },
      { type: 'address', at: 3, ip: '2001:db8::77', error: null },
      { type: 'address', at: 4, ip: '0.0.0.0', error: null },
    ]);
    const state = view(session, v6);
    assert.equal(state.status, 'mapped');
    assert.equal(state.externalIp, '2001:db8::10');
    assert.equal(session.readdPending, false, 'another host\'s address is no address change');
  });
});

describe('step: a "not here" refusal while an earlier add of ours may exist', () => {
  test('is about that entry, not the protocol: unmapped and retried on the same gateway, not lost', () => {
    const sessions = fixtures();
    const timedOut = run([failed(2, true, { silent: true })], sessions.adding.session).session;
    assert.deepEqual(timedOut.maybeApplied, [8080]);
    const retried = run([{ type: 'timer', at: timedOut.timers.retry!, name: 'retry' }, { type: 'sent', at: timedOut.timers.retry! }], timedOut).session;
    const { session, effects } = run([failed(timedOut.timers.retry! + 1, false, { error: notHere, notHere: true })], retried);
    assert.equal(session.phase, 'unmapped');
    assert.deepEqual(effects, []);
  });
});
