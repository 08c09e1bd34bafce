/**
 * Faulty-gateway rows against a real router: miniupnpd in the gateway lab's network namespaces.
 * The client (real `mapPort` streams over NAT-PMP, PCP and UPnP, see `lab-driver.ts`) runs
 * inside the lan namespace; the test kills and restarts the daemon, flushes its rules, switches
 * `secure_mode`, denies a port range, and checks the states each stream goes through, that it
 * recovers, and that after a graceful stop the router's DNAT rules hold nothing of ours.
 *
 * Skipped unless root with the lab's tools (`RXNAT_REQUIRE_LAB=1` makes that a failure).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MappingState } from '../../src/core/map-port.js';
import type { Lab, LabOptions, LabProcess } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';
import { eventually, StateRecorder, statusPath } from './harness.js';
import { LAB_DRIVER_PORTS, type LabBackend, type LabState } from './lab-driver.js';

const ALL: readonly LabBackend[] = ['pmp', 'pcp', 'upnp'];
const LIFETIME_SECONDS = 4;
const STEP_MS = 8000;

/** A driver in the lan namespace and one state recorder per backend. */
class Driver {
  readonly recorders = new Map<LabBackend, StateRecorder>();
  private readonly pump: Promise<void>;
  done = false;
  failures: string[] = [];

  constructor(
    readonly lab: Lab,
    readonly process: LabProcess,
    readonly backends: readonly LabBackend[],
  ) {
    for (const backend of backends) this.recorders.set(backend, new StateRecorder());
    this.pump = (async () => {
      for (;;) {
        let message: { kind?: string; backend?: LabBackend; message?: string };
        try {
          message = await process.next(60_000);
        } catch {
          return;
        }
        if (message.kind === 'done') this.done = true;
        else if (message.kind === 'error') this.failures.push(`${message.backend}: ${message.message}`);
        else if (message.kind === 'state' && message.backend) {
          this.recorders.get(message.backend)?.states.push(message as unknown as MappingState);
        }
      }
    })();
  }

  static start(lab: Lab, backends: readonly LabBackend[] = ALL, udpTimeoutMs?: number): Driver {
    const env: Record<string, string> = { RXNAT_LAB_LIFETIME: String(LIFETIME_SECONDS) };
    if (udpTimeoutMs !== undefined) env.RXNAT_LAB_UDP_TIMEOUT_MS = String(udpTimeoutMs);
    return new Driver(lab, lab.spawnNodeIn('lan', 'test/faults/lab-driver.ts', [...backends], { env }), backends);
  }

  recorder(backend: LabBackend): StateRecorder {
    return this.recorders.get(backend) as StateRecorder;
  }

  /** Waits, for every backend given, for the next state with `status` that `where` accepts. */
  async expect(
    phase: string,
    status: MappingState['status'],
    where: (s: LabState, backend: LabBackend) => boolean = () => true,
    backends: readonly LabBackend[] = this.backends,
  ): Promise<void> {
    await Promise.all(
      backends.map(async (backend) => {
        const recorder = this.recorder(backend);
        const found = await recorder.next((s) => s.status === status && where(s as unknown as LabState, backend), STEP_MS);
        assert.ok(found, `[${phase}] ${backend}: expected ${status} within ${STEP_MS} ms\nstates:\n${recorder.log()}\ndriver stderr: ${this.process.stderr.slice(-1500)}`);
      }),
    );
  }

  /** Stops gracefully: every stream completes with `unmapped`, then the process exits by itself. */
  async stop(): Promise<void> {
    this.process.send({ op: 'stop' });
    const completed = await eventually(() => this.done, 6000);
    assert.ok(completed, `every stream completes after stop (no hang)\n${this.paths()}\nstderr: ${this.process.stderr.slice(-1500)}`);
    const exit = await this.process.done(6000);
    await this.pump;
    assert.deepEqual([exit.code, exit.signal], [0, null], `the driver exits by itself with 0: ${exit.stderr.slice(-1500)}`);
    assert.deepEqual(this.failures, [], 'no stream errored');
    for (const backend of this.backends) assert.equal(this.recorder(backend).latest()?.status, 'unmapped', `${backend}: last state after stop is unmapped`);
  }

  paths(): string {
    return this.backends.map((b) => `${b}: ${statusPath(this.recorder(b).states)}`).join('; ');
  }
}

const ours = (rules: Awaited<ReturnType<Lab['rules']>>): typeof rules =>
  rules.filter((r) => Object.values(LAB_DRIVER_PORTS).includes(r.internalPort as never));

/** Polls the router's rules until three of ours are installed (a condition: up to 15 s, for a loaded machine). */
async function allInstalled(lab: Lab): Promise<boolean> {
  for (let i = 0; i < 150; i++) {
    if (ours(await lab.rules()).length === 3) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

async function assertNoRulesLeft(lab: Lab): Promise<void> {
  assert.deepEqual(ours(await lab.rules()), [], 'after teardown the router holds no forwarding of ours');
}

const mappedOn = (s: LabState): boolean => s.externalPort > 0 && s.externalIp === '10.77.0.2';

/**
 * The lab fixes its options at start; a router whose configuration changes (secure_mode, deny
 * rules) is simulated by changing them and restarting the daemon, which rewrites its config.
 */
async function reconfigure(lab: Lab, options: Partial<LabOptions>): Promise<void> {
  (lab as unknown as { options: LabOptions }).options = { ...lab.options, ...options };
  await lab.restartDaemon();
}

const skip = await labSkip();

describe('faulty gateway: miniupnpd in the lab', { skip }, () => {
  const lab = useLab();

  it('daemon killed mid-mapping, then restarted: degraded → unmapped (lost, rediscovering) → mapped; nothing left after stop', async (t) => {
    const l = lab();
    const driver = Driver.start(l);
    try {
      await driver.expect('established', 'mapped', mappedOn);
      await l.killDaemon();
      // UPnP: connection refused, three in a row: lost, rediscovering. NAT-PMP/PCP: ICMP port
      // unreachable, but the kernel rate-limits ICMP (net.ipv4.icmp_ratelimit, 1/s per host),
      // so at this test's request rate some requests just time out; any mix may be seen.
      const down = (s: LabState): boolean => ['GatewayUnreachableError', 'GatewayTimeoutError', 'GatewayLostError'].includes(s.error?.name ?? '');
      await driver.expect('killed', 'degraded', down);
      await driver.expect('killed', 'unmapped', (s, b) => (b === 'upnp' ? s.error?.name === 'GatewayLostError' : down(s)));
      await l.restartDaemon();
      await driver.expect('restarted', 'mapped', mappedOn);
      assert.ok(await allInstalled(l), `every mapping is on the router again: ${JSON.stringify(await l.rules())}`);
      t.diagnostic(driver.paths());
      await driver.stop();
      await assertNoRulesLeft(l);
    } finally {
      driver.process.kill();
      if (l.daemonPid === undefined) await l.restartDaemon();
    }
  });

  it('rules flushed behind its back: re-added by the next renewal (the stream stays mapped: no detection)', async (t) => {
    const l = lab();
    const driver = Driver.start(l);
    try {
      await driver.expect('established', 'mapped', mappedOn);
      assert.equal(ours(await l.rules()).length, 3, 'three forwardings installed');
      const renewals = new Map(ALL.map((b) => [b, driver.recorder(b).latest()?.renewals ?? 0]));
      await l.flushRules();
      assert.deepEqual(ours(await l.rules()), [], 'flushed');
      await driver.expect('flushed', 'mapped', (s, b) => s.renewals > (renewals.get(b) ?? 0));
      assert.ok(await allInstalled(l), `every forwarding is back after a renewal: ${JSON.stringify(await l.rules())}`);
      for (const b of ALL) {
        const after = driver.recorder(b).states.slice(1);
        assert.ok(!after.some((s) => s.status !== 'mapped' && s.status !== 'mapping'), `${b}: stays mapped (${statusPath(after)})`);
      }
      t.diagnostic(driver.paths());
      await driver.stop();
      await assertNoRulesLeft(l);
    } finally {
      driver.process.kill();
    }
  });

  it('secure_mode switched off and on (daemon restarted with the new config): the mappings survive or come back', async (t) => {
    const l = lab();
    const driver = Driver.start(l);
    try {
      await driver.expect('secure_mode=yes', 'mapped', mappedOn);
      await reconfigure(l, { secureMode: false });
      const before = new Map(ALL.map((b) => [b, driver.recorder(b).latest()?.renewals ?? 0]));
      await driver.expect('secure_mode=no', 'mapped', (s, b) => mappedOn(s) && s.renewals > (before.get(b) ?? 0));
      assert.ok(await allInstalled(l), `every forwarding on the router (secure_mode=no): ${JSON.stringify(await l.rules())}`);
      await reconfigure(l, { secureMode: true });
      const again = new Map(ALL.map((b) => [b, driver.recorder(b).latest()?.renewals ?? 0]));
      await driver.expect('secure_mode=yes again', 'mapped', (s, b) => mappedOn(s) && s.renewals > (again.get(b) ?? 0));
      assert.ok(await allInstalled(l), `every forwarding on the router (secure_mode=yes): ${JSON.stringify(await l.rules())}`);
      t.diagnostic(driver.paths());
      await driver.stop();
      await assertNoRulesLeft(l);
    } finally {
      driver.process.kill();
      await reconfigure(l, { secureMode: true });
    }
  });
});

describe('faulty gateway: miniupnpd denying the requested ports', { skip }, () => {
  const lab = useLab({ denyRange: { from: 41000, to: 41099 } });

  it('NAT-PMP/PCP are moved out of the range; UPnP is refused (606) and stays unmapped until the rule goes', async (t) => {
    const l = lab();
    // miniupnpd searches for a port outside the denied range before it answers a PCP MAP: on a
    // loaded machine that took longer than the default 500 ms deadline, seven times in a row
    // (a CI rehearsal with two CPU hogs). This scenario is about what it answers: 2 s deadlines.
    const driver = Driver.start(l, ALL, 2000);
    try {
      await driver.expect('denied', 'mapped', (s) => mappedOn(s) && (s.externalPort < 41000 || s.externalPort > 41099), ['pmp', 'pcp']);
      await driver.expect('denied', 'unmapped', (s) => s.error?.name === 'GatewayError' && s.error.resultCode === 606, ['upnp']);
      const upnp = driver.recorder('upnp');
      assert.ok(!upnp.states.some((s) => s.status === 'mapped'), `UPnP never mapped inside the denied range: ${statusPath(upnp.states)}`);
      await reconfigure(l, { denyRange: undefined });
      await driver.expect('allowed', 'mapped', (s) => mappedOn(s) && s.externalPort === LAB_DRIVER_PORTS.upnp, ['upnp']);
      t.diagnostic(driver.paths());
      await driver.stop();
      await assertNoRulesLeft(l);
    } finally {
      driver.process.kill();
    }
  });
});

describe('faulty gateway: miniupnpd with a broken uplink (no STUN)', { skip }, () => {
  const lab = useLab({ stun: false });

  it('every add refused (UPnP 501, NAT-PMP 3, PCP 8): unmapped and retrying, never a crash; stop completes; nothing left', async (t) => {
    const l = lab();
    const driver = Driver.start(l);
    try {
      const codes: Record<LabBackend, number> = { upnp: 501, pmp: 3, pcp: 8 };
      await driver.expect('broken uplink', 'unmapped', (s, b) => s.error?.name === 'GatewayError' && s.error.resultCode === codes[b]);
      for (const b of ALL) assert.ok(!driver.recorder(b).states.some((s) => s.status === 'mapped'), `${b} never mapped`);
      t.diagnostic(driver.paths());
      await driver.stop();
      await assertNoRulesLeft(l);
    } finally {
      driver.process.kill();
    }
  });
});
