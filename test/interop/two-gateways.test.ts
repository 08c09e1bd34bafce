// A LAN host that moves from one router to another (bench/lib/lab-two-gateways.ts: two
// miniupnpd gateways, the default route switched with `ip route replace`): rxnat, following
// the network with followNetwork() and the default network watch, is mapped on the new router
// within 5 s of the new route, the entry is in the new router's table, and the old router's
// entry is deleted (it is still reachable through its own subnet). Then a graceful stop deletes
// the mapping on the new router.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTwoGatewayLab, TWO_GATEWAY_ADDRESSES, type TwoGatewayLab } from '../../bench/lib/lab-two-gateways.js';
import type { LabProcess, LabRule } from '../lab/lab.js';
import { labSkip } from '../lab/require-lab.js';
import type { MappingState } from '../../src/index.js';

const DRIVER = 'test/interop/follow-network-driver.ts';
const PORT = 40_100;
const { a: A, b: B } = TWO_GATEWAY_ADDRESSES;

interface DriverEvent {
  readonly at: number;
  readonly event: 'discover' | 'nat' | 'state' | 'complete' | 'error';
  readonly state?: MappingState;
  readonly name?: string;
  readonly snapshot?: unknown;
}

/** The driver's events, kept in order, awaited by predicate. */
class Events {
  readonly all: DriverEvent[] = [];
  constructor(private readonly process: LabProcess) {}

  async until(predicate: (event: DriverEvent) => boolean, what: string, timeoutMs: number): Promise<DriverEvent> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = this.all.find(predicate);
      if (seen) return seen;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; events: ${JSON.stringify(this.all)}`);
      try {
        this.all.push(await this.process.next<DriverEvent>(left));
      } catch (error) {
        throw new Error(`no ${what}: ${(error as Error).message}; events: ${JSON.stringify(this.all)}`, { cause: error });
      }
    }
  }
}

const mappedVia = (external: string) => (e: DriverEvent): boolean => e.event === 'state' && e.state?.status === 'mapped' && e.state.externalIp === external;
const ours = (rules: readonly LabRule[]): LabRule[] => rules.filter((r) => r.protocol === 'tcp' && r.internalPort === PORT);

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || performance.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const skip = await labSkip();

describe('following the network between two miniupnpd gateways', { skip }, () => {
  let lab: TwoGatewayLab | undefined;
  before(async () => {
    lab = await startTwoGatewayLab();
  });
  after(async () => {
    await lab?.stop();
  });

  it('moves the mapping to the new router within 5 s of the new default route, deleting it on the old one', async (t) => {
    const l = lab!;
    t.diagnostic(`lab up in ${Math.round(l.startupMs)} ms`);
    const driver = l.spawnNodeInLan(DRIVER, ['tcp', String(PORT)]);
    const events = new Events(driver);
    try {
      // Generous: tsx starts slowly on a busy machine.
      await events.until(mappedVia(A.external), 'mapping on router A', 30_000);
      assert.deepEqual(ours(await l.rules('a')), [{ protocol: 'tcp', externalPort: PORT, internalClient: A.lan, internalPort: PORT }]);
      assert.deepEqual(ours(await l.rules('b')), []);

      const switchStarted = Date.now();
      const switched = await l.useGateway('b');
      const routeInPlace = Date.now();
      const mapped = await events.until(mappedVia(B.external), 'mapping on router B', 30_000);
      const elapsed = mapped.at - switchStarted;
      const discovered = events.all.find((e) => e.event === 'discover' && e.at >= switchStarted);
      const nat = events.all.find((e) => e.event === 'nat' && e.at >= switchStarted);
      t.diagnostic(
        `route switched in ${Math.round(switched.durationMs)} ms; change seen (discovery started) after ${discovered ? discovered.at - routeInPlace : '?'} ms; ` +
          `NAT found (${nat?.name ?? '?'}) after ${nat ? nat.at - routeInPlace : '?'} ms; mapped on B ${mapped.at - routeInPlace} ms after the new route (${elapsed} ms after the switch began)`,
      );
      assert.ok(elapsed <= 5000, `mapped on router B ${elapsed} ms after the switch (issue #11: within 5 s)`);

      assert.deepEqual(ours(await l.rules('b')), [{ protocol: 'tcp', externalPort: PORT, internalClient: B.lan, internalPort: PORT }]);
      // Best-effort, and in flight while B maps: router A is still reachable, so it must go.
      assert.deepEqual(ours(await eventually(() => l.rules('a'), (r) => ours(r).length === 0, 5000)), [], 'the old router still forwards the port');

      driver.send('stop');
      await events.until((e) => e.event === 'complete', 'completion after stop', 15_000);
      assert.deepEqual(ours(await eventually(() => l.rules('b'), (r) => ours(r).length === 0, 5000)), [], 'the stop did not delete on router B');
      const result = await driver.done();
      assert.equal(result.code, 0, `driver exited ${result.code}: ${result.stderr}`);
    } finally {
      driver.kill();
    }
  });
});
