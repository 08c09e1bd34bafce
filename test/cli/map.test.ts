/**
 * End-to-end tests of `rxnat map` (and the demo): the CLI runs as a child process against a
 * gateway simulator on 127.0.0.1; the simulator's table shows what the gateway holds.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startGatewaySimulator, type GatewaySimulator } from '../../src/testing/simulator.js';
import { jsonLines, runCli, simArgs, startCli, until } from './cli-harness.js';

async function withSim<T>(fn: (sim: GatewaySimulator) => Promise<T>): Promise<T> {
  // PCP leases as short as asked (miniupnpd's min_lifetime=1 in the lab), so renewals show fast.
  const sim = await startGatewaySimulator({ pmpPcp: { pcpMinLifetimeSeconds: 1 } });
  try {
    return await fn(sim);
  } finally {
    await sim.close();
  }
}

const held = (sim: GatewaySimulator, port: number): boolean => sim.table.list().some((m) => m.internalPort === port);

describe('rxnat map', { concurrency: 3 }, () => {
  it('--duration --json: maps, renews, deletes, exits 0; every line parses', () =>
    withSim(async (sim) => {
      const cli = startCli(['map', 'tcp', '8080', '--lifetime', '3', '--duration', '1.8', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--json']);
      await cli.waitFor(/"event":"mapped"/);
      assert.ok(held(sim, 8080), 'the gateway holds the mapping while map runs');
      const [mapping] = sim.table.list();
      assert.equal(mapping!.via, 'pmp');
      assert.equal(mapping!.lifetimeSeconds, 3);
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(sim.table.list(), [], 'deleted on exit');
      const states = jsonLines(result.stdout);
      for (const s of states) {
        for (const key of ['time', 'event', 'status', 'protocol', 'internalPort', 'externalPort', 'externalIp', 'backend', 'lifetimeSeconds', 'renewals', 'error']) {
          assert.ok(key in s, `${key} in ${JSON.stringify(s)}`);
        }
      }
      const mapped = states.find((s) => s.event === 'mapped')!;
      assert.deepEqual(
        { status: mapped.status, protocol: mapped.protocol, internalPort: mapped.internalPort, externalPort: mapped.externalPort, externalIp: mapped.externalIp, backend: mapped.backend },
        { status: 'mapped', protocol: 'tcp', internalPort: 8080, externalPort: 8080, externalIp: '203.0.113.1', backend: 'pmp(127.0.0.1)' },
      );
      assert.ok(states.some((s) => s.event === 'renewed'), 'a 3 s lease is renewed within 1.8 s');
      assert.deepEqual({ event: states.at(-1)!.event, status: states.at(-1)!.status, error: states.at(-1)!.error }, { event: 'unmapped', status: 'unmapped', error: null });
      assert.match(result.stderr, /--duration 1\.8 s elapsed: deleting the mapping/);
    }));

  it('SIGINT deletes the mapping and exits 0 (PCP, output for people)', () =>
    withSim(async (sim) => {
      const cli = startCli(['map', 'udp', '4001', '--external-port', '14001', '--nat', 'pcp:127.0.0.1', ...simArgs(sim)]);
      await cli.waitFor(/ mapped +udp 203\.0\.113\.1:14001 -> local :4001, lease 60 s, via pcp\(127\.0\.0\.1\)/);
      const [mapping] = sim.table.list();
      assert.equal(mapping?.via, 'pcp');
      assert.equal(mapping?.externalPort, 14001);
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(sim.table.list(), []);
      assert.match(result.stdout.trim().split('\n').at(-1)!, /^\d\d:\d\d:\d\d unmapped +deleted udp 203\.0\.113\.1:14001 on pcp\(127\.0\.0\.1\)$/);
      assert.match(result.stderr, /^rxnat: interrupted: deleting the mapping\.\.\. \(Ctrl-C again to quit at once\)$/m);
    }));

  it('SIGTERM deletes the mapping and exits 0 (UPnP via SSDP)', () =>
    withSim(async (sim) => {
      const cli = startCli(['map', 'tcp', '8443', '--description', 'cli test', '--nat', 'upnp', ...simArgs(sim), '--json']);
      await cli.waitFor(/"event":"mapped"/);
      assert.equal(sim.table.list()[0]?.description, 'cli test');
      cli.signal('SIGTERM');
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(sim.table.list(), []);
      assert.equal(sim.upnp.counters.DeletePortMapping, 1);
    }));

  const FIRST_REQUESTS: ReadonlyArray<readonly [string, (sim: GatewaySimulator) => string[], (sim: GatewaySimulator) => number | undefined]> = [
    ['upnp', () => ['--nat', 'upnp'], (sim) => sim.upnp.counters['M-SEARCH']],
    ['pmp:127.0.0.1', () => ['--nat', 'pmp:127.0.0.1'], (sim) => sim.pmpPcp.counters.byKind['pmp.externalAddress']],
    ['any', () => ['--nat', 'any'], (sim) => sim.pmpPcp.counters.byKind['pcp.announce']],
  ];
  for (const [nat, natArgs, firstRequests] of FIRST_REQUESTS) {
    it(`--nat ${nat}: the first request leaves before the command loads, and only once (#13)`, async () => {
      // The router answers M-SEARCH 200 ms late (miniupnpd: 50 ms): the command loads meanwhile.
      const sim = await startGatewaySimulator({ upnp: { ssdpResponseDelayMs: 200 } });
      const cli = startCli(['map', 'tcp', '8444', ...natArgs(sim), ...simArgs(sim), '--json'], { env: { DEBUG: 'rxnat:cli' } });
      try {
        await cli.waitFor(/"event":"mapped"/);
        const sent = firstRequests(sim);
        cli.signal('SIGTERM');
        const result = await cli.exited;
        assert.equal(result.code, 0, result.stderr);
        assert.equal(sent, 1, 'the backend took over the early socket: its first request was not sent again');
        const early = result.stderr.indexOf('first request sent early');
        assert.ok(early >= 0, `logged: ${result.stderr}`);
        assert.ok(early < result.stderr.indexOf('NAT source for map'), 'sent before the command module ran');
        assert.deepEqual(sim.table.list(), []);
      } finally {
        cli.signal('SIGKILL');
        await cli.exited;
        await sim.close();
      }
    });
  }

  it('SIGINT while the add is in flight still deletes (UPnP add delayed by the gateway)', () =>
    withSim(async (sim) => {
      sim.upnp.faults.inject({ kind: 'delay', ms: 700 }, { action: 'AddPortMapping' });
      const cli = startCli(['map', 'tcp', '9000', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim), '--json']);
      // The AddPortMapping has reached the gateway, which answers in 700 ms.
      await until(() => sim.upnp.counters.AddPortMapping === 1, 'the AddPortMapping', 30_000);
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      assert.equal(sim.upnp.counters.AddPortMapping, 1);
      assert.equal(sim.upnp.counters.DeletePortMapping, 1, 'the delete followed the add');
      assert.deepEqual(sim.table.list(), []);
      assert.equal(jsonLines(result.stdout).at(-1)!.status, 'unmapped');
    }));

  it('SIGINT while the add is in flight still deletes (NAT-PMP reply delayed)', () =>
    withSim(async (sim) => {
      sim.pmpPcp.faults.delayMs = 500;
      const cli = startCli(['map', 'tcp', '9100', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--timeout', '3000']);
      await until(() => sim.pmpPcp.counters.byKind['pmp.mapTcp'] >= 1, 'the map request', 30_000);
      assert.ok(held(sim, 9100), 'the gateway made the mapping; its answer is on the way');
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(sim.table.list(), []);
      // NAT-PMP requests are keyed on the internal port: lifetime (bytes 8-11) 0 is the delete.
      const lifetimes = sim.pmpPcp.log.filter((r) => r.kind === 'pmp.mapTcp').map((r) => new DataView(r.bytes.buffer, r.bytes.byteOffset).getUint32(8));
      assert.ok(lifetimes.includes(60) && lifetimes.at(-1) === 0, `adds (retransmitted) then the delete: ${lifetimes.join(', ')}`);
    }));

  it('a second SIGINT exits at once (130) without waiting for a slow delete', () =>
    withSim(async (sim) => {
      sim.upnp.faults.inject({ kind: 'delay', ms: 8000 }, { action: 'DeletePortMapping' });
      const cli = startCli(['map', 'tcp', '9200', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim)]);
      await cli.waitFor(/ mapped /);
      cli.signal('SIGINT');
      await cli.waitFor(/deleting the mapping/);
      await until(() => (sim.upnp.counters.DeletePortMapping ?? 0) === 1, 'the delete request');
      const secondAt = performance.now();
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 130);
      assert.ok(performance.now() - secondAt < 6000, 'exits without waiting for the 8 s delete');
      assert.match(result.stderr, /quitting without waiting for the delete/);
    }));

  it('a refused first mapping exits 1 with the gateway\'s reason and what to do', () =>
    withSim(async (sim) => {
      const result = await runCli(['map', 'tcp', '80', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim)]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^rxnat: upnp gateway .* refused: 606 ActionNotAuthorized\. The router refused the action: internal ports below 1024/m);
      assert.deepEqual(sim.table.list(), []);
    }));

  it('--keep-trying retries a refused first mapping instead of exiting', () =>
    withSim(async (sim) => {
      sim.pmpPcp.faults.refuse = { resultCode: 3, count: 1 };
      const cli = startCli(['map', 'udp', '5000', '--keep-trying', '--duration', '5', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--json']);
      await cli.waitFor(/"event":"mapped"/, 30_000);
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      const events = jsonLines(result.stdout).map((s) => s.event);
      assert.ok(events.includes('unmapped') && events.indexOf('unmapped') < events.indexOf('mapped'), `failed, then mapped: ${events.join(', ')}`);
      assert.deepEqual(sim.table.list(), []);
    }));

  it('--nat any: PCP and NAT-PMP answer the probes but refuse every mapping; the race moves it to UPnP (#11)', () =>
    withSim(async (sim) => {
      sim.pmpPcp.faults.refuse = { resultCode: 2, requests: 'mappings' };
      const cli = startCli(['map', 'udp', '5100', '--nat', 'any', ...simArgs(sim), '--json']);
      await cli.waitFor(/"event":"mapped"/, 30_000);
      assert.ok(sim.pmpPcp.counters.byKind['pcp.map'] + sim.pmpPcp.counters.byKind['pmp.mapUdp'] >= 1, 'a mapping was refused first');
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      const mapped = jsonLines(result.stdout).find((s) => s.event === 'mapped');
      assert.match(String(mapped?.backend), /^upnp\(/);
      assert.deepEqual(sim.table.list(), [], 'deleted on SIGINT');
    }));

  it('--nat any: every backend refuses ("not here"); exit 1 with a refusal once the race has nothing else', () =>
    withSim(async (sim) => {
      sim.pmpPcp.faults.refuse = { resultCode: 2, requests: 'mappings' };
      sim.upnp.faults.inject({ kind: 'error', code: 606 }, { action: 'AddPortMapping', times: 1000 });
      const result = await runCli(['map', 'udp', '5101', '--nat', 'any', ...simArgs(sim), '--json']);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^rxnat: (pcp|pmp|upnp) gateway .* refused: /m);
      assert.deepEqual(sim.table.list(), []);
    }));

  it('SIGINT with a silent gateway: exit 1, one line naming the mapping and when its lease ends', () =>
    withSim(async (sim) => {
      // --request-timeout bounds the delete on the wire (NAT-PMP retransmits until then).
      const cli = startCli(['map', 'tcp', '9300', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--request-timeout', '500']);
      await cli.waitFor(/ mapped +tcp 203\.0\.113\.1:9300 /);
      sim.pmpPcp.faults.silent = true;
      const signalledAt = Date.now();
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 1, result.stderr);
      assert.ok(held(sim, 9300), 'the silent gateway still holds the mapping');
      const lines = result.stderr.split('\n').filter((l) => /could not confirm the delete/.test(l));
      assert.equal(lines.length, 1, result.stderr);
      const match = /^rxnat: could not confirm the delete of tcp 9300 → 9300 on pmp\(127\.0\.0\.1\): it may stay mapped until (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ); remove it sooner with: rxnat unmap tcp 9300 --nat pmp:127\.0\.0\.1 --pmp-port (\d+) --local-address 127\.0\.0\.1$/.exec(lines[0]!);
      assert.ok(match, lines[0]);
      assert.equal(Number(match[2]), sim.pmpPort);
      const endsAt = Date.parse(match[1]!);
      assert.ok(endsAt > signalledAt && endsAt <= Date.now() + 61_000, `a 60 s lease granted just before: ${match[1]}`);
      assert.match(result.stdout.trim().split('\n').at(-1)!, /unmapped +delete not confirmed: tcp 203\.0\.113\.1:9300 on pmp\(127\.0\.0\.1\) may still be mapped$/);
      assert.ok(Date.now() - signalledAt < 20_000, 'the core answered (500 ms request bound), not the 25 s backstop');
    }));

  it('--json with a silent gateway: the last object carries the unconfirmed deletes; exit 1', () =>
    withSim(async (sim) => {
      const cli = startCli(['map', 'udp', '9301', '--external-port', '19301', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--request-timeout', '500', '--json']);
      await cli.waitFor(/"event":"mapped"/);
      sim.pmpPcp.faults.silent = true;
      cli.signal('SIGTERM');
      const result = await cli.exited;
      assert.equal(result.code, 1, result.stderr);
      const last = jsonLines(result.stdout).at(-1)!;
      assert.equal(last.status, 'unmapped');
      const error = last.error as { name: string; code: string; deletes: Record<string, unknown>[] };
      assert.equal(error.name, 'UnconfirmedDeleteError');
      assert.equal(error.code, 'ERR_DELETE_UNCONFIRMED');
      assert.equal(error.deletes.length, 1);
      const [d] = error.deletes;
      assert.deepEqual(
        { protocol: d!.protocol, internalPort: d!.internalPort, externalPort: d!.externalPort, gateway: d!.gateway },
        { protocol: 'udp', internalPort: 9301, externalPort: 19301, gateway: 'pmp(127.0.0.1)' },
      );
      assert.equal(typeof d!.leaseEndsAtMs, 'number');
      assert.match(d!.leaseEndsAt as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal((d!.error as { name: string }).name, 'GatewayTimeoutError');
      assert.match(result.stderr, /^rxnat: could not confirm the delete of udp 19301 → 9301 on pmp\(127\.0\.0\.1\): .*--internal-port 9301 /m);
    }));

  it('a refused delete of a permanent UPnP lease: exit 1, "permanently", and the unmap command', async () => {
    const sim = await startGatewaySimulator({ upnp: { igdVersion: 1 } });
    try {
      const cli = startCli(['map', 'tcp', '9302', '--lifetime', '0', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim)]);
      await cli.waitFor(/ mapped +tcp .*permanent lease/);
      sim.upnp.faults.inject({ kind: 'error', code: 606 }, { action: 'DeletePortMapping', times: 10 });
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 1, result.stderr);
      const escaped = sim.descriptionUrl.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      assert.match(
        result.stderr,
        new RegExp(`^rxnat: could not confirm the delete of tcp 9302 → 9302 on upnp\\(127\\.0\\.0\\.1\\): it may stay mapped permanently; remove it with: rxnat unmap tcp 9302 --nat upnp:${escaped} --local-address 127\\.0\\.0\\.1$`, 'm'),
      );
      assert.ok(sim.table.list().some((m) => m.externalPort === 9302), 'still mapped on the router');
    } finally {
      await sim.close();
    }
  });

  // Behaviour only: how fast discovery is belongs to bench/, not to a test on a loaded machine.
  it('--nat any on loopback maps through the first backend that answers', () =>
    withSim(async (sim) => {
      const cli = startCli(['map', 'tcp', '8081', '--nat', 'any', ...simArgs(sim), '--json']);
      await cli.waitFor(/"event":"mapped"/, 30_000);
      assert.ok(held(sim, 8081), 'the mapping is on the simulator while map runs');
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      const mapped = jsonLines(result.stdout).find((s) => s.status === 'mapped');
      assert.ok(mapped, result.stdout);
      assert.match(mapped.backend as string, /^(pcp|pmp|upnp)\(127\.0\.0\.1\)$/);
      assert.deepEqual(sim.table.list(), []);
    }));
});

describe('rxnat map: several mappings', { concurrency: 2 }, () => {
  it('maps every pair at once over one discovery; SIGINT deletes them all and exits 0', () =>
    withSim(async (sim) => {
      const cli = startCli(['map', 'tcp', '8080', 'udp', '4001:14001', 'tcp', '8443', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--json']);
      await until(() => jsonLines(cli.stdout()).filter((s) => s.event === 'mapped').length === 3, 'three mapped states', 30_000);
      const table = sim.table.list().map((m) => `${m.protocol} ${m.externalPort}->${m.internalPort}`).sort();
      assert.deepEqual(table, ['tcp 8080->8080', 'tcp 8443->8443', 'udp 14001->4001']);
      assert.equal(sim.pmpPcp.counters.byKind['pmp.externalAddress'] >= 1, true);
      cli.signal('SIGINT');
      const result = await cli.exited;
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(sim.table.list(), [], 'every mapping deleted');
      const states = jsonLines(result.stdout);
      for (const [protocol, internalPort] of [['tcp', 8080], ['udp', 4001], ['tcp', 8443]] as const) {
        const own = states.filter((s) => s.protocol === protocol && s.internalPort === internalPort);
        assert.equal(own.find((s) => s.event === 'mapped')?.externalPort, internalPort === 4001 ? 14001 : internalPort);
        assert.deepEqual({ status: own.at(-1)!.status, error: own.at(-1)!.error }, { status: 'unmapped', error: null }, `${protocol} ${internalPort} deleted`);
      }
      assert.match(result.stderr, /^rxnat: interrupted: deleting the mappings\.\.\. \(Ctrl-C again to quit at once\)$/m);
    }));

  it('one mapping refused: the others are deleted, exit 1 naming the refused one', () =>
    withSim(async (sim) => {
      const result = await runCli(['map', 'tcp', '9400', 'tcp', '80', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim)]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /^rxnat: tcp 80: upnp gateway .* refused: 606 ActionNotAuthorized/m);
      assert.deepEqual(sim.table.list(), [], 'the mapping made was deleted');
      assert.match(result.stdout, /unmapped +deleted tcp 203\.0\.113\.1:9400 on upnp\(127\.0\.0\.1\)$/m);
    }));

  it('SIGTERM with a silent gateway: exit 1, one line per mapping that may remain', () =>
    withSim(async (sim) => {
      const cli = startCli(['map', 'tcp', '9500', 'udp', '9501:19501', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--request-timeout', '500']);
      await cli.waitFor(/ mapped +tcp 203\.0\.113\.1:9500 /, 30_000);
      await cli.waitFor(/ mapped +udp 203\.0\.113\.1:19501 /, 30_000);
      sim.pmpPcp.faults.silent = true;
      cli.signal('SIGTERM');
      const result = await cli.exited;
      assert.equal(result.code, 1, result.stderr);
      const lines = result.stderr.split('\n').filter((l) => /could not confirm the delete/.test(l));
      assert.equal(lines.length, 2, result.stderr);
      assert.ok(lines.some((l) => /of tcp 9500 → 9500 on pmp\(127\.0\.0\.1\): it may stay mapped until \S+Z; remove it sooner with: rxnat unmap tcp 9500 --nat pmp:127\.0\.0\.1 /.test(l)), lines.join('\n'));
      assert.ok(lines.some((l) => /of udp 19501 → 9501 .*rxnat unmap udp 19501 --internal-port 9501 --nat pmp:127\.0\.0\.1 /.test(l)), lines.join('\n'));
    }));
});

describe('rxnat map --leave', { concurrency: 2 }, () => {
  it('NAT-PMP: adds, prints each lease and the unmap command, exits 0 leaving them; the printed command removes one', () =>
    withSim(async (sim) => {
      const result = await runCli(['map', 'tcp', '8080', 'udp', '4001:14001', '--leave', '--lifetime', '600', '--nat', 'pmp:127.0.0.1', ...simArgs(sim)]);
      assert.equal(result.code, 0, result.stderr);
      const table = sim.table.list().map((m) => `${m.protocol} ${m.externalPort}->${m.internalPort} ${m.via}`).sort();
      assert.deepEqual(table, ['tcp 8080->8080 pmp', 'udp 14001->4001 pmp'], 'both left on the gateway after exit');
      assert.equal(sim.pmpPcp.log.filter((r) => r.kind === 'pmp.mapTcp' || r.kind === 'pmp.mapUdp').length, 2, 'two adds, no delete');
      const left = /^left +udp 203\.0\.113\.1:14001 -> local :4001, lease 600 s, ends (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ), via pmp\(127\.0\.0\.1\)$/m.exec(result.stdout);
      assert.ok(left, result.stdout);
      const endsAt = Date.parse(left[1]!);
      assert.ok(endsAt > Date.now() + 500_000 && endsAt <= Date.now() + 601_000, left[1]);
      assert.match(result.stdout, /^left +tcp 203\.0\.113\.1:8080 -> local :8080, lease 600 s/m);
      const unmap = /^ +remove it with: (rxnat unmap udp 14001 --internal-port 4001 --nat pmp:127\.0\.0\.1 --pmp-port \d+ --local-address 127\.0\.0\.1)$/m.exec(result.stdout);
      assert.ok(unmap, result.stdout);
      const removed = await runCli(unmap[1]!.split(' ').slice(1));
      assert.equal(removed.code, 0, removed.stderr);
      assert.deepEqual(sim.table.list().map((m) => m.externalPort), [8080], 'the printed command removed the mapping');
    }));

  it('PCP: says no other process can remove it and when it expires', () =>
    withSim(async (sim) => {
      const result = await runCli(['map', 'tcp', '8081', '--leave', '--lifetime', '300', '--nat', 'pcp:127.0.0.1', ...simArgs(sim)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(sim.table.list()[0]?.via, 'pcp');
      const match = /^left +tcp 203\.0\.113\.1:8081 -> local :8081, lease 300 s, ends (\S+Z), via pcp\(127\.0\.0\.1\)\n +PCP lets only the process that made a mapping delete it: this one cannot be removed by another process and will expire at (\S+Z) /m.exec(result.stdout);
      assert.ok(match, result.stdout);
      assert.equal(match[1], match[2]);
      assert.doesNotMatch(result.stdout, /rxnat unmap/);
    }));

  it('UPnP --json: one object per mapping with its lease end and unmap command; the default lease is 7200 s', () =>
    withSim(async (sim) => {
      const result = await runCli(['map', 'tcp', '8082', '--leave', '--description', 'left', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim), '--json']);
      assert.equal(result.code, 0, result.stderr);
      const [left, ...more] = jsonLines(result.stdout);
      assert.equal(more.length, 0);
      assert.deepEqual(
        [left!.event, left!.protocol, left!.internalPort, left!.externalPort, left!.externalIp, left!.lifetimeSeconds, left!.backend, left!.note, left!.error],
        ['left', 'tcp', 8082, 8082, '203.0.113.1', 7200, 'upnp(127.0.0.1)', null, null],
      );
      assert.match(left!.leaseEndsAt as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      assert.equal(typeof left!.leaseEndsAtMs, 'number');
      assert.equal(left!.unmap, `rxnat unmap tcp 8082 --nat upnp:${sim.descriptionUrl} --local-address 127.0.0.1`);
      assert.equal(sim.table.list()[0]?.description, 'left');
      assert.equal(sim.upnp.counters.DeletePortMapping ?? 0, 0);
    }));

  it('a refused add: the others stay and are reported, exit 1 naming the refused one', () =>
    withSim(async (sim) => {
      const result = await runCli(['map', 'tcp', '8083', 'tcp', '80', '--leave', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim)]);
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^rxnat: tcp 80 was not mapped: upnp gateway .* refused: 606 ActionNotAuthorized/m);
      assert.match(result.stdout, /^left +tcp 203\.0\.113\.1:8083 /m);
      assert.deepEqual(sim.table.list().map((m) => m.externalPort), [8083]);
    }));
});

describe('rxnat demo', () => {
  it('runs the simulator on loopback, maps through PCP, NAT-PMP and UPnP, and exits 0', async () => {
    // Behaviour only (no wall-clock bound on a busy machine); the kill bound is generous.
    const result = await runCli(['demo'], 60_000);
    assert.equal(result.code, 0, result.stderr);
    const out = result.stdout;
    assert.match(out, /^Simulator table before:\n {4}\(empty\)$/m);
    assert.match(out, /^Simulator table after:\n {4}\(empty\)$/m);
    for (const backend of ['pcp', 'pmp', 'upnp']) {
      for (const event of ['mapped ', 'renewed', 'new IP ', 'unmapped   deleted']) {
        assert.match(out, new RegExp(`${event}.*${backend}\\(127\\.0\\.0\\.1\\)`), `${event} via ${backend}`);
      }
    }
    assert.match(out, /-- simulator: external IP 203\.0\.113\.1 -> 198\.51\.100\.7/);
    assert.doesNotMatch(out, /\b(?!127\.0\.0\.1\b)(?:10|192\.168)\.\d+\.\d+\.\d+/, 'no real network addresses');
  });
});
