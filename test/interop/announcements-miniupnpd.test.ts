// A real router's announcements (#11 item 3): miniupnpd multicasts a PCP ANNOUNCE (epoch 0) to
// 224.0.0.1:5350 on the LAN when it starts. rxnat runs inside the lab's lan namespace (through
// test/interop/rxnat-driver.ts) with the default announcement listener, 0.0.0.0:5350 joined to
// 224.0.0.1, bound in that namespace only; the router restarts and forgets its table, and the
// mapping is back long before any renewal or address poll could have noticed (lease 1 h, address
// cached 10 min): only the announcement can have told it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../lab/lab.js';
import type { Lab, LabProcess } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';
import type { MappingState } from '../../src/index.js';

const { lan: LAN_IP, gateway: GW_IP } = LAB_ADDRESSES;
const DRIVER = 'test/interop/rxnat-driver.ts';

interface Reply {
  readonly id?: number;
  readonly ok?: unknown;
  readonly error?: { readonly name: string; readonly message: string };
  readonly event?: 'state' | 'complete' | 'error';
  readonly key?: string;
  readonly state?: MappingState;
}

/** The driver's replies and events, read in order; events kept until asked for. */
class Driver {
  private nextId = 1;
  private readonly events: Array<Reply & { readonly at: number }> = [];
  constructor(private readonly process: LabProcess) {}

  async call(command: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    const id = this.nextId++;
    this.process.send({ ...command, id });
    for (;;) {
      const message = await this.process.next<Reply>(timeoutMs);
      if (message.event) this.events.push({ ...message, at: performance.now() });
      else if (message.id === id) {
        if (message.error) throw new Error(`${String(command.op)}: ${message.error.name}: ${message.error.message}`);
        return message.ok;
      }
    }
  }

  /** The first event (kept or to come) matching `predicate`, with when it was read. */
  async event(predicate: (event: Reply) => boolean, timeoutMs = 10_000): Promise<Reply & { readonly at: number }> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const index = this.events.findIndex(predicate);
      if (index >= 0) return this.events.splice(index, 1)[0]!;
      const message = await this.process.next<Reply>(Math.max(1, deadline - performance.now()));
      if (message.event) this.events.push({ ...message, at: performance.now() });
    }
  }

  async close(): Promise<void> {
    const result = await this.process.done();
    assert.equal(result.code, 0, `driver exited ${result.code}: ${result.stderr}`);
  }
}

const skip = await labSkip();

describe('announcements from miniupnpd 2.3 (a router restart that forgets its table)', { skip }, () => {
  const lab = useLab();

  for (const [backend, port] of [
    ['pmp', 47100],
    ['pcp', 47200],
  ] as const) {
    it(`${backend}: re-mapped on miniupnpd's start-up ANNOUNCE, not at a renewal or poll`, async (t) => {
      const l: Lab = lab();
      const driver = new Driver(l.spawnNodeIn('lan', DRIVER));
      try {
        // Default options: the listener is 0.0.0.0:5350 + 224.0.0.1, in the lan namespace.
        await driver.call({ op: 'nat', backend, gateway: GW_IP, options: {} });
        await driver.call({
          op: 'mapPort',
          key: 'a',
          request: { protocol: 'tcp', internalPort: port, externalPort: port, lifetimeSeconds: 3600 },
          options: { externalIpCacheMs: 600_000 },
        });
        await driver.event((e) => e.key === 'a' && e.state?.status === 'mapped');
        const rule = async (): Promise<boolean> => (await l.rules()).some((r) => r.protocol === 'tcp' && r.externalPort === port && r.internalClient === LAN_IP);
        assert.ok(await rule(), 'mapped on the router');
        // RFC 6886 §3.6: a client can tell a reboot only once the epoch has run for a while (a
        // new epoch counts as "backwards" when below old + 7/8 of the time since − 2 s). A
        // miniupnpd restarted within ~2 s of its own start announces an epoch no client can
        // tell from the old one, so let its clock run past that first.
        await new Promise((resolve) => setTimeout(resolve, 4000));
        const restartAt = performance.now();
        await l.restartDaemon({ clearMappings: true });
        const readyAt = performance.now();
        // The reset (unmapped), then mapped again; 10 s only for a loaded machine: without the
        // announcement nothing would re-add for 20 minutes (the renewal) or 10 (the address poll).
        await driver.event((e) => e.key === 'a' && e.state?.status === 'unmapped', 10_000);
        const mapped = await driver.event((e) => e.key === 'a' && e.state?.status === 'mapped', 10_000);
        assert.ok(await rule(), 'the router has the mapping again');
        // Events are read once restartDaemon returns: an upper bound (the kill ~0.1 s, the start
        // ~0.4 s, the ANNOUNCE as it starts, then the re-add).
        t.diagnostic(
          `${backend}: mapped again within ${Math.round(mapped.at - restartAt)} ms of the restart beginning (${mapped.at - readyAt < 5 ? 'already when miniupnpd was found ready' : `${Math.round(mapped.at - readyAt)} ms after miniupnpd was found ready`})`,
        );
        await driver.call({ op: 'stop', key: 'a' });
        await driver.event((e) => e.key === 'a' && e.event === 'complete');
        assert.ok(!(await rule()), 'deleted on stop');
      } finally {
        await driver.close();
      }
    });
  }
});
