/**
 * Model-based property test of the mapping shell (map-port + session-runner + gateway queue) in
 * virtual time, against a fake gateway that keeps a table with leases and can grant, refuse,
 * lose answers (after applying), answer late, refuse connections, ignore deletes, reset its
 * epoch and change its external address. Random sequences of those and of subscribe /
 * unsubscribe / stop, with the invariants checked after every command:
 *
 * 1. a stream that reports `mapped` or `degraded` has its entry in the gateway's table, with an
 *    unexpired lease, on the port it reports;
 * 2. after teardown the table holds nothing of ours, except entries whose delete the stream
 *    reported unconfirmed;
 * 3. adds per router entry within the documented bound;
 * 4. no timers left once everything is torn down.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Observable, Subject, type Subscription } from 'rxjs';
import { GatewayError, GatewayTimeoutError, GatewayUnreachableError, UnconfirmedDeleteError } from '../../src/errors.js';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import type { MappingGrant, Nat, NatMappingRequest } from '../../src/core/nat.js';
import { READD_INTERVAL_MS } from '../../src/core/session.js';
import { VirtualClock } from '../support/virtual-clock.js';

type AddMode = 'grant' | 'refuse' | 'lose' | 'late' | 'connectionRefused';
type DeleteMode = 'answer' | 'silent';

const RTT_MS = 10;
const TEARDOWN_MS = 2000;

/** A gateway with a table, driven by the commands. */
class FakeGateway implements Nat {
  readonly name = 'model(192.0.2.1)';
  readonly kind = 'pmp' as const;
  readonly gateway = '192.0.2.1';
  readonly maxConcurrentRequests = 1;
  readonly resets$ = new Subject<void>();
  addMode: AddMode = 'grant';
  deleteMode: DeleteMode = 'answer';
  ip = '203.0.113.7';
  /** external port → when the lease ends (Infinity: permanent). */
  readonly table = new Map<number, number>();
  readonly adds: Array<{ readonly port: number; readonly at: number }> = [];
  inFlight = 0;
  maxInFlight = 0;

  constructor(
    readonly clock: VirtualClock,
    readonly lifetimeSeconds: number,
  ) {}

  holds(port: number): boolean {
    const end = this.table.get(port);
    return end !== undefined && end > this.clock.now();
  }

  private apply(request: NatMappingRequest): MappingGrant {
    const lifetimeSeconds = this.lifetimeSeconds === 0 ? 0 : Math.min(this.lifetimeSeconds, request.lifetimeSeconds || this.lifetimeSeconds);
    this.table.set(request.externalPort, lifetimeSeconds === 0 ? Infinity : this.clock.now() + lifetimeSeconds * 1000);
    return { protocol: request.protocol, internalPort: request.internalPort, externalPort: request.externalPort, lifetimeSeconds };
  }

  /** A request that is answered after `ms` by `answer` (which may apply it first); counted while in flight. */
  private exchange<T>(ms: number, answer: (subscriber: { next(v: T): void; error(e: unknown): void; complete(): void }) => void): Observable<T> {
    return new Observable<T>((subscriber) => {
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      let done = false;
      const finish = (): void => {
        if (!done) {
          done = true;
          this.inFlight--;
        }
      };
      const action = this.clock.schedule(() => {
        finish();
        answer(subscriber);
      }, ms);
      return () => {
        finish();
        action.unsubscribe();
      };
    });
  }

  addMapping(request: NatMappingRequest): Observable<MappingGrant> {
    return new Observable<MappingGrant>((subscriber) => {
      this.adds.push({ port: request.internalPort, at: this.clock.now() });
      const mode = this.addMode;
      const call =
        mode === 'grant'
          ? this.exchange<MappingGrant>(RTT_MS, (s) => {
              s.next(this.apply(request));
              s.complete();
            })
          : mode === 'late'
            ? this.exchange<MappingGrant>(1500, (s) => {
                s.next(this.apply(request));
                s.complete();
              })
            : mode === 'lose'
              ? this.exchange<MappingGrant>(RTT_MS, () => this.apply(request)).pipe((source) =>
                  new Observable<MappingGrant>((s) => {
                    const inner = source.subscribe();
                    const gaveUp = this.clock.schedule(() => s.error(new GatewayTimeoutError('pmp', this.gateway, 1500)), 1500);
                    return () => {
                      inner.unsubscribe();
                      gaveUp.unsubscribe();
                    };
                  }),
                )
              : mode === 'refuse'
                ? this.exchange<MappingGrant>(RTT_MS, (s) => s.error(new GatewayError({ protocol: 'pmp', resultCode: 3, resultName: 'NETWORK_FAILURE', gateway: this.gateway })))
                : this.exchange<MappingGrant>(RTT_MS, (s) =>
                    s.error(new GatewayUnreachableError('pmp', this.gateway, 'refused', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) })),
                  );
      return call.subscribe(subscriber);
    });
  }

  deleteMapping(grant: MappingGrant): Observable<void> {
    if (this.deleteMode === 'silent') return this.exchange<void>(Infinity, () => undefined);
    return this.exchange<void>(RTT_MS, (s) => {
      this.table.delete(grant.externalPort);
      s.complete();
    });
  }

  externalIp(): Observable<string> {
    return this.exchange<string>(RTT_MS, (s) => {
      s.next(this.ip);
      s.complete();
    });
  }

  reset(): void {
    this.table.clear();
    this.resets$.next();
  }
}

interface Stream {
  readonly port: number;
  readonly stop: Subject<void>;
  readonly states: MappingState[];
  subscription: Subscription | null;
  completed: boolean;
  ended: boolean;
}

interface Real {
  readonly clock: VirtualClock;
  readonly gateway: FakeGateway;
  readonly streams: Stream[];
  readonly unconfirmed: Set<number>;
  readonly subscribes: Map<number, number>;
}

type Model = { streams: number };

const PORTS = [8080, 8081, 8082];

class Subscribe implements fc.Command<Model, Real> {
  constructor(readonly port: number) {}
  check = (m: Readonly<Model>): boolean => m.streams < 6;
  run(m: Model, r: Real): void {
    m.streams++;
    const stream: Stream = { port: this.port, stop: new Subject<void>(), states: [], subscription: null, completed: false, ended: false };
    r.subscribes.set(this.port, (r.subscribes.get(this.port) ?? 0) + 1);
    stream.subscription = mapPort(
      r.gateway,
      { protocol: 'tcp', internalPort: this.port, lifetimeSeconds: 60 },
      {
        scheduler: r.clock,
        stop: stream.stop,
        teardownTimeoutMs: TEARDOWN_MS,
        random: () => 0.5,
        logger: {
          debug: (_ns, _message, data) => {
            const error = data?.['error'];
            if (error instanceof UnconfirmedDeleteError) for (const d of error.deletes) r.unconfirmed.add(d.externalPort);
          },
        },
      },
    ).subscribe({
      next: (state) => {
        stream.states.push(state);
        if (state.error instanceof UnconfirmedDeleteError) for (const d of state.error.deletes) r.unconfirmed.add(d.externalPort);
      },
      complete: () => {
        stream.completed = true;
        stream.ended = true;
      },
      error: (error: unknown) => assert.fail(`a mapping stream errored: ${String(error)}`),
    });
    r.streams.push(stream);
    checkInvariants(r);
  }
  toString = (): string => `subscribe(${this.port})`;
}

class Leave implements fc.Command<Model, Real> {
  constructor(
    readonly index: number,
    readonly graceful: boolean,
  ) {}
  check = (m: Readonly<Model>): boolean => m.streams > 0;
  run(_m: Model, r: Real): void {
    const live = r.streams.filter((s) => !s.ended);
    const stream = live[this.index % Math.max(1, live.length)];
    if (stream) {
      if (this.graceful) stream.stop.next();
      else {
        stream.ended = true;
        stream.subscription?.unsubscribe();
      }
    }
    checkInvariants(r);
  }
  toString = (): string => `${this.graceful ? 'stop' : 'unsubscribe'}(${this.index})`;
}

class Advance implements fc.Command<Model, Real> {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  run(_m: Model, r: Real): void {
    // In small steps, so the invariants are checked at many instants.
    for (let left = this.ms; left > 0; left -= 250) {
      r.clock.advance(Math.min(250, left));
      checkInvariants(r);
    }
  }
  toString = (): string => `advance(${this.ms})`;
}

class Gateway implements fc.Command<Model, Real> {
  constructor(readonly what: AddMode | DeleteMode | 'reset' | 'newIp') {}
  check = (): boolean => true;
  run(_m: Model, r: Real): void {
    const g = r.gateway;
    if (this.what === 'reset') g.reset();
    else if (this.what === 'newIp') g.ip = g.ip === '203.0.113.7' ? '198.51.100.9' : '203.0.113.7';
    else if (this.what === 'answer' || this.what === 'silent') g.deleteMode = this.what;
    else g.addMode = this.what;
    checkInvariants(r);
  }
  toString = (): string => `gateway(${this.what})`;
}

function checkInvariants(r: Real): void {
  for (const stream of r.streams) {
    if (stream.ended) continue;
    const last = stream.states.at(-1);
    if (!last) continue;
    if (last.status === 'mapped' || last.status === 'degraded') {
      assert.ok(last.externalPort > 0 && last.externalIp !== null, `a ${last.status} state names its address: ${JSON.stringify(last)}`);
      assert.ok(
        r.gateway.holds(last.externalPort),
        `at ${r.clock.now()} ms a stream on ${stream.port} reports ${last.status} on ${last.externalPort}, but the gateway holds ${JSON.stringify([...r.gateway.table])}`,
      );
    } else {
      assert.equal(last.externalPort, 0, 'not mapped: port 0');
    }
  }
  assert.ok(r.gateway.maxInFlight <= r.gateway.maxConcurrentRequests, 'requests in flight within the gateway limit');
}

const command = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...PORTS).map((p) => new Subscribe(p)) },
  { weight: 2, arbitrary: fc.tuple(fc.nat(5), fc.boolean()).map(([i, g]) => new Leave(i, g)) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 30_000 }).map((ms) => new Advance(ms)) },
  {
    weight: 3,
    arbitrary: fc.constantFrom<AddMode | DeleteMode | 'reset' | 'newIp'>('grant', 'refuse', 'lose', 'late', 'connectionRefused', 'answer', 'silent', 'reset', 'newIp').map(
      (w) => new Gateway(w),
    ),
  },
);

test('model: states tell the truth, teardown leaves nothing unreported, work is bounded, no timers are left', () => {
  const result = fc.check(
    fc.property(fc.constantFrom(3, 60, 0), fc.commands([command], { maxCommands: 40 }), (lifetimeSeconds, commands) => {
      const clock = new VirtualClock();
      const gateway = new FakeGateway(clock, lifetimeSeconds);
      const real: Real = { clock, gateway, streams: [], unconfirmed: new Set(), subscribes: new Map() };
      fc.modelRun(() => ({ model: { streams: 0 }, real }), commands);

      // Teardown: everything leaves (half gracefully), the gateway answers, time passes.
      real.streams.forEach((s, i) => {
        if (s.ended) return;
        if (i % 2 === 0) s.stop.next();
        else {
          s.ended = true;
          s.subscription?.unsubscribe();
        }
      });
      const end = clock.now();
      clock.advance(4 * TEARDOWN_MS + 60_000);

      // 2. Nothing of ours is left but what was reported unconfirmed (a lease may still run out by itself).
      for (const [port, leaseEnd] of gateway.table) {
        if (leaseEnd <= end) continue;
        assert.ok(real.unconfirmed.has(port), `port ${port} left on the gateway (lease to ${leaseEnd}) and not reported; unconfirmed: ${[...real.unconfirmed]}`);
      }
      // Graceful stops completed, with a last unmapped state.
      for (const stream of real.streams) {
        if (stream.completed) assert.equal(stream.states.at(-1)?.status, 'unmapped');
      }
      // 3. Adds per router entry: at most 3 + W / (0.8 × 1 s) + W / 5 s in the run's W ms, per entry made.
      const span = Math.max(1, end);
      for (const port of PORTS) {
        const adds = gateway.adds.filter((a) => a.port === port).length;
        const entries = real.subscribes.get(port) ?? 0;
        const bound = entries * 3 + span / 800 + span / READD_INTERVAL_MS;
        assert.ok(adds <= bound, `${adds} adds on ${port} in ${span} ms (${entries} subscriptions): over the bound ${bound}`);
      }
      // 4. No timers left.
      assert.equal(clock.pending, 0, 'timers left after teardown');
    }),
    { numRuns: 300, seed: 14 },
  );
  if (result.failed) {
    const error = result.errorInstance;
    assert.fail(`counterexample ${fc.stringify(result.counterexample)} (seed ${result.seed}, path ${result.counterexamplePath}): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
});
