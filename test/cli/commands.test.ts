/**
 * End-to-end tests of `rxnat discover`, `ip`, `list`, `unmap`, usage errors, help and failures:
 * the CLI runs as a child process against a gateway simulator on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startGatewaySimulator, type GatewaySimulator, type GatewaySimulatorOptions } from '../../src/testing/simulator.js';
import { closedUdpPort, jsonLines, runCli, runMany, simArgs } from './cli-harness.js';
import { startLoopbackStunServer } from '../support/stun-server.js';

async function withSim<T>(fn: (sim: GatewaySimulator) => Promise<T>, options: GatewaySimulatorOptions = {}): Promise<T> {
  const sim = await startGatewaySimulator(options);
  try {
    return await fn(sim);
  } finally {
    await sim.close();
  }
}

const add = (sim: GatewaySimulator, port: number, via: 'upnp' | 'pmp' | 'pcp' = 'upnp'): void => {
  const result = sim.table.add({ protocol: 'tcp', internalClient: '127.0.0.1', internalPort: port, externalPort: port, description: 'test', lifetimeSeconds: 600, via });
  assert.ok(result.ok);
};

describe('rxnat discover / ip', { concurrency: 2 }, () => {
  it('discover --json names the backend, gateway and external IP for every spec', () =>
    withSim(async (sim) => {
      const cases: [string, string, string][] = [
        ['pmp:127.0.0.1', 'pmp', '127.0.0.1'],
        ['pcp:127.0.0.1', 'pcp', '127.0.0.1'],
        ['pmp', 'pmp', '127.0.0.1'], // the gateway from --gateway
        ['upnp', 'upnp', sim.descriptionUrl], // SSDP to the simulator's unicast port
        [`upnp:${sim.descriptionUrl}`, 'upnp', sim.descriptionUrl],
      ];
      const results = await runMany(cases.map(([spec]) => ['discover', '--nat', spec, ...simArgs(sim), '--json']));
      results.forEach((r, i) => {
        const [spec, backend, gateway] = cases[i]!;
        assert.equal(r.code, 0, `${spec}: ${r.stderr}`);
        const [json, ...more] = jsonLines(r.stdout);
        assert.equal(more.length, 0);
        assert.equal(json!.backend, backend, spec);
        assert.equal(json!.gateway, gateway, spec);
        assert.equal(json!.externalIp, '203.0.113.1');
        assert.equal(typeof json!.elapsedMs, 'number');
      });
    }));

  it('discover --nat any races the backends on loopback and one wins', () =>
    withSim(async (sim) => {
      const r = await runCli(['discover', '--nat', 'any', ...simArgs(sim), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const json = jsonLines(r.stdout)[0]!;
      assert.ok(['pcp', 'pmp', 'upnp'].includes(json.backend as string));
      assert.equal(json.externalIp, '203.0.113.1');
    }));

  it('discover prints the backend, gateway, external IP and time for people', () =>
    withSim(async (sim) => {
      const r = await runCli(['discover', '--nat', 'pmp:127.0.0.1', ...simArgs(sim)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^backend\s+pmp \(pmp\(127\.0\.0\.1\)\)$/m);
      assert.match(r.stdout, /^gateway\s+127\.0\.0\.1$/m);
      assert.match(r.stdout, /^external IP\s+203\.0\.113\.1$/m);
      assert.match(r.stdout, /^found in\s+\d+ ms$/m);
      assert.equal(r.stderr, '', 'no progress output when stderr is not a terminal');
    }));

  it('ip prints the external IP, and follows the simulator', () =>
    withSim(async (sim) => {
      sim.setExternalIp('198.51.100.77');
      const [plain, json, ext] = await Promise.all([
        runCli(['ip', '--nat', 'pcp:127.0.0.1', ...simArgs(sim)]),
        runCli(['ip', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim), '--json']),
        runCli(['ip', '--nat', 'extip:203.0.113.5', '--json']),
      ]);
      assert.equal(plain.code, 0, plain.stderr);
      assert.equal(plain.stdout, '198.51.100.77\n');
      assert.deepEqual(jsonLines(json.stdout), [{ externalIp: '198.51.100.77', backend: 'upnp', gateway: sim.descriptionUrl, doubleNat: false }]);
      assert.deepEqual(jsonLines(ext.stdout), [{ externalIp: '203.0.113.5', backend: 'extip', gateway: null, doubleNat: false }]);
    }));

  it('ip --nat stun:HOST:PORT asks that STUN server (a responder on loopback)', async () => {
    const server = await startLoopbackStunServer('203.0.113.9');
    try {
      const r = await runCli(['ip', '--nat', `stun:127.0.0.1:${server.port}`, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(jsonLines(r.stdout), [{ externalIp: '203.0.113.9', backend: 'stun', gateway: null, doubleNat: false }]);
    } finally {
      await server.close();
    }
  });
});

describe('rxnat list / unmap', { concurrency: 2 }, () => {
  it('list shows the UPnP table, as text and JSON', () =>
    withSim(async (sim) => {
      add(sim, 8080);
      add(sim, 9090, 'pmp');
      const [text, json] = await Promise.all([
        runCli(['list', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim)]),
        runCli(['list', '--nat', 'upnp', ...simArgs(sim), '--json']),
      ]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^PROTO\s+EXTERNAL\s+INTERNAL\s+LEASE\s+DESCRIPTION$/m);
      assert.match(text.stdout, /^tcp\s+8080\s+127\.0\.0\.1:8080\s+\d+ s\s+test$/m);
      assert.match(text.stdout, /^tcp\s+9090\s+/m);
      const [listing] = jsonLines(json.stdout);
      assert.equal(listing!.backend, 'upnp');
      assert.equal(listing!.source, 'router');
      assert.equal(listing!.complete, true);
      assert.match(text.stderr, /^rxnat: the router's table, read through UPnP at upnp\(127\.0\.0\.1\)\.$/m);
      assert.deepEqual(
        (listing!.mappings as { externalPort: number }[]).map((m) => m.externalPort),
        [8080, 9090],
      );
    }));

  it('list over NAT-PMP/PCP says it only knows this process\'s mappings', () =>
    withSim(async (sim) => {
      add(sim, 8080, 'pmp');
      const [text, json] = await Promise.all([
        runCli(['list', '--nat', 'pmp:127.0.0.1', ...simArgs(sim)]),
        runCli(['list', '--nat', 'pcp:127.0.0.1', ...simArgs(sim), '--json']),
      ]);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stderr, /cannot list a gateway's table.*--nat upnp/);
      assert.doesNotMatch(text.stderr, /read through UPnP/, 'an explicit --nat pmp is not replaced by UPnP');
      assert.doesNotMatch(text.stdout, /8080/);
      const [listing] = jsonLines(json.stdout);
      assert.equal(listing!.complete, false);
      assert.deepEqual(listing!.mappings, []);
      assert.equal(listing!.source, 'process');
      assert.match(listing!.note as string, /only the mappings this process holds/);
    }));

  it('list --nat any: when PCP or NAT-PMP wins, the router\'s table is read through UPnP, and said so', () =>
    withSim(
      async (sim) => {
        add(sim, 8080);
        add(sim, 9090, 'pmp');
        const [json, text] = await Promise.all([runCli(['list', '--nat', 'any', ...simArgs(sim), '--json']), runCli(['list', '--nat', 'any', ...simArgs(sim)])]);
        assert.equal(json.code, 0, json.stderr);
        const [listing] = jsonLines(json.stdout);
        const discovered = listing!.discovered as { backend: string };
        assert.ok(['pcp', 'pmp'].includes(discovered.backend), `the slow SSDP lets PCP or NAT-PMP win: ${discovered.backend}`);
        assert.equal(listing!.source, 'router');
        assert.equal(listing!.backend, 'upnp');
        assert.equal(listing!.gateway, sim.descriptionUrl);
        assert.equal(listing!.complete, true);
        assert.match(listing!.note as string, /the router's table, read through UPnP at upnp\(127\.0\.0\.1\): (pcp|pmp)\(127\.0\.0\.1\) won discovery/);
        assert.deepEqual(
          (listing!.mappings as { externalPort: number }[]).map((m) => m.externalPort),
          [8080, 9090],
        );
        assert.equal(text.code, 0, text.stderr);
        assert.match(text.stderr, /^rxnat: the router's table, read through UPnP at upnp\(127\.0\.0\.1\)/);
        assert.match(text.stdout, /^tcp\s+8080\s+127\.0\.0\.1:8080/m);
        assert.match(text.stdout, /^tcp\s+9090\s+/m);
      },
      // SSDP answers late, so the UDP protocols win the race.
      { upnp: { ssdpResponseDelayMs: 400 } },
    ));

  it('list --nat any without a UPnP gateway: only this process\'s mappings, and why', () =>
    withSim(async (sim) => {
      add(sim, 8080, 'pmp');
      sim.upnp.faults.ssdpSilent = true;
      const r = await runCli(['list', '--nat', 'any', ...simArgs(sim), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const [listing] = jsonLines(r.stdout);
      assert.equal(listing!.source, 'process');
      assert.equal(listing!.complete, false);
      assert.deepEqual(listing!.mappings, []);
      assert.match(listing!.note as string, /cannot list a gateway's table and no UPnP gateway answered/);
    }));

  it('unmap deletes a UPnP mapping by external port, and says when there is none', () =>
    withSim(async (sim) => {
      add(sim, 8080);
      const r = await runCli(['unmap', 'tcp', '8080', '--nat', `upnp:${sim.descriptionUrl}`, ...simArgs(sim)]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /deleted tcp\/8080 on upnp\(127\.0\.0\.1\)/);
      assert.equal(sim.table.list().length, 0);
      assert.equal(sim.upnp.counters.DeletePortMapping, 1);
      const again = await runCli(['unmap', 'tcp', '8080', '--nat', 'upnp', ...simArgs(sim), '--json']);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /^rxnat: upnp\(127\.0\.0\.1\) has no tcp\/8080 mapping: nothing to delete/);
    }));

  it('unmap over NAT-PMP deletes by internal port (--internal-port, default the external port)', () =>
    withSim(async (sim) => {
      add(sim, 8080, 'pmp');
      sim.table.add({ protocol: 'udp', internalClient: '127.0.0.1', internalPort: 4000, externalPort: 40000, lifetimeSeconds: 600, via: 'pmp' });
      const r = await runCli(['unmap', 'tcp', '8080', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        { ...jsonLines(r.stdout)[0], note: undefined },
        { deleted: true, protocol: 'tcp', externalPort: 8080, internalPort: 8080, backend: 'pmp', gateway: '127.0.0.1', note: undefined },
      );
      const udp = await runCli(['unmap', 'udp', '40000', '--internal-port', '4000', '--nat', 'pmp:127.0.0.1', ...simArgs(sim)]);
      assert.equal(udp.code, 0, udp.stderr);
      assert.match(udp.stdout, /NAT-PMP deletes by internal port 4000/);
      assert.equal(sim.table.list().length, 0);
    }));

  it('unmap of another process\'s PCP mapping fails with an explanation (PCP needs the nonce)', () =>
    withSim(async (sim) => {
      sim.table.add({ protocol: 'tcp', internalClient: '127.0.0.1', internalPort: 8080, externalPort: 8080, lifetimeSeconds: 600, via: 'pcp', nonce: '00112233445566778899aabb' });
      const r = await runCli(['unmap', 'tcp', '8080', '--nat', 'pcp:127.0.0.1', ...simArgs(sim)]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^rxnat: pcp\(127\.0\.0\.1\) refused the delete \(NOT_AUTHORIZED\): PCP lets only the process that created a mapping delete it/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
      assert.equal(sim.table.list().length, 1);
    }));
});

describe('rxnat status', { concurrency: 2 }, () => {
  it('probes PCP, NAT-PMP and UPnP each on its own: all found, the external IP, no double NAT', () =>
    withSim(async (sim) => {
      const [json, text] = await Promise.all([runCli(['status', ...simArgs(sim), '--json']), runCli(['status', ...simArgs(sim)])]);
      assert.equal(json.code, 0, json.stderr);
      const [report, ...more] = jsonLines(json.stdout);
      assert.equal(more.length, 0);
      assert.equal(report!.gateway, '127.0.0.1');
      assert.deepEqual(report!.portMapping, ['pcp', 'pmp', 'upnp']);
      assert.equal(report!.externalIp, '203.0.113.1');
      assert.equal(report!.doubleNat, false);
      const protocols = report!.protocols as Record<string, Record<string, unknown>>;
      for (const [protocol, name, gateway] of [['pcp', 'pcp(127.0.0.1)', '127.0.0.1'], ['pmp', 'pmp(127.0.0.1)', '127.0.0.1'], ['upnp', 'upnp(127.0.0.1)', sim.descriptionUrl]] as const) {
        const p = protocols[protocol]!;
        assert.deepEqual([p.status, p.name, p.gateway, p.externalIp, p.error], ['found', name, gateway, '203.0.113.1', null], protocol);
        assert.equal(typeof p.elapsedMs, 'number');
      }
      assert.equal(protocols.upnp!.detail, 'IGDv2 WANIPConnection:2');
      // Each protocol was asked, not only a race's winner.
      assert.ok(sim.pmpPcp.counters.byKind['pcp.announce'] >= 2, 'PCP probed by each run');
      assert.ok(sim.pmpPcp.counters.byKind['pmp.externalAddress'] >= 2, 'NAT-PMP probed by each run');
      assert.ok((sim.upnp.counters.GetExternalIPAddress ?? 0) >= 1, 'UPnP asked');
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^gateway {7}127\.0\.0\.1$/m);
      assert.match(text.stdout, /^PCP {11}found +pcp\(127\.0\.0\.1\), external IP 203\.0\.113\.1, in \d+ ms$/m);
      assert.match(text.stdout, /^NAT-PMP {7}found +pmp\(127\.0\.0\.1\), external IP 203\.0\.113\.1, in \d+ ms$/m);
      assert.match(text.stdout, /^UPnP {10}found +upnp\(127\.0\.0\.1\): IGDv2 WANIPConnection:2 at http:\/\/127\.0\.0\.1:\d+\/rootDesc\.xml, external IP 203\.0\.113\.1, in \d+ ms$/m);
      assert.match(text.stdout, /^port mapping {2}PCP, NAT-PMP, UPnP$/m);
      assert.match(text.stdout, /^external IP {3}203\.0\.113\.1$/m);
      assert.match(text.stdout, /^double NAT {4}no$/m);
    }));

  it('says what each answered: a NAT-PMP-only gateway is a PCP error with its code, a mute SSDP is silent; double NAT', () =>
    withSim(
      async (sim) => {
        sim.upnp.faults.ssdpSilent = true;
        sim.setExternalIp('100.64.0.7');
        const r = await runCli(['status', ...simArgs(sim), '--timeout', '600', '--json']);
        assert.equal(r.code, 0, r.stderr);
        const report = jsonLines(r.stdout)[0]!;
        const protocols = report.protocols as Record<string, { status: string; error: Record<string, unknown> | null }>;
        assert.equal(protocols.pcp!.status, 'error');
        assert.deepEqual([protocols.pcp!.error!.resultCode, protocols.pcp!.error!.resultName, protocols.pcp!.error!.code], [1, 'UNSUPP_VERSION', 'ERR_GATEWAY_REFUSED']);
        assert.equal(protocols.pmp!.status, 'found');
        assert.equal(protocols.upnp!.status, 'silent');
        assert.equal(protocols.upnp!.error!.code, 'ERR_GATEWAY_TIMEOUT');
        assert.deepEqual(report.portMapping, ['pmp']);
        assert.equal(report.externalIp, '100.64.0.7');
        assert.equal(report.doubleNat, true);
        const text = await runCli(['status', ...simArgs(sim), '--timeout', '600']);
        assert.equal(text.code, 0, text.stderr);
        assert.match(text.stdout, /^PCP {11}error +1 UNSUPP_VERSION: pcp gateway 127\.0\.0\.1 refused/m);
        assert.match(text.stdout, /^UPnP {10}silent +no answer/m);
        assert.match(text.stdout, /^port mapping {2}NAT-PMP$/m);
        assert.match(text.stdout, /^double NAT {4}yes: 100\.64\.0\.7 is not public/m);
      },
      { pmpPcp: { protocols: { pmp: true, pcp: false } } },
    ));

  it('nothing answering: every protocol reported, exit 1 with what to do', async () => {
    const port = String(await closedUdpPort());
    const ssdp = await closedUdpPort();
    const r = await runCli(['status', '--gateway', '127.0.0.1', '--pmp-port', port, '--ssdp-target', `127.0.0.1:${ssdp}`, '--local-address', '127.0.0.1', '--timeout', '500', '--json']);
    assert.equal(r.code, 1);
    const report = jsonLines(r.stdout)[0]!;
    const protocols = report.protocols as Record<string, { status: string; error: Record<string, unknown> | null }>;
    assert.deepEqual(Object.keys(protocols), ['pcp', 'pmp', 'upnp']);
    for (const p of ['pcp', 'pmp']) assert.equal(protocols[p]!.status, 'error', `${p}: ICMP port unreachable on loopback`);
    assert.equal(protocols.pmp!.error!.code, 'ERR_GATEWAY_UNREACHABLE');
    assert.deepEqual(report.portMapping, []);
    assert.equal(report.externalIp, null);
    assert.match(r.stderr, /^rxnat: no protocol found a gateway\. Is UPnP or NAT-PMP\/PCP enabled/m);
  });
});

describe('rxnat usage, help and failures', { concurrency: 2 }, () => {
  it('usage errors exit 2 with one line that says what to do', async () => {
    // The parser's cases are covered in-process by args.test.ts; these check the exit path.
    const cases: [string[], RegExp][] = [
      [['frob'], /^rxnat: unknown command "frob": use one of discover, ip, status, map, unmap, list, demo \(see rxnat --help\)$/],
      [['lsit', '--nat', 'extip:203.0.113.5'], /^rxnat: unknown command "lsit": did you mean list\? use one of/],
      [['map', 'tcp', '8080', '--lifetime', '-1', '--nat', 'extip:203.0.113.5'], /^rxnat: map: --lifetime must be a whole number from 0 to 604800, not "-1" \(see rxnat map --help\)$/],
      [['map', 'tcp', '-5', '--nat', 'extip:203.0.113.5'], /^rxnat: map: internal port must be a whole number from 1 to 65535, not "-5" \(see rxnat map --help\)$/],
      [['ip', '--json', '--nat', 'extip:203.0.113.5', '--nat'], /^rxnat: ip: --nat needs a value \(SPEC\), as in --nat pmp:192\.168\.1\.1 \(see rxnat ip --help\)$/],
      [['ip', '--nat', 'extip:203.0.113.5', '--jsno'], /^rxnat: ip: unknown option '--jsno': did you mean --json\? \(see rxnat ip --help\)$/],
      [['map', '--nat', 'extip:203.0.113.5'], /^rxnat: map needs a protocol and an internal port, as in: rxnat map tcp 8080 \(see rxnat map --help\)$/],
      [['discover', '--nat', 'bogus'], /^rxnat: unknown NAT mechanism "bogus"/],
      [['ip', '--nat', 'extip:203.0.113.5', '--bogus'], /^rxnat: ip: unknown option '--bogus'/],
    ];
    const results = await runMany(cases.map(([args]) => args));
    results.forEach((r, i) => {
      const [args, pattern] = cases[i]!;
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), pattern);
    });
  });

  it('bare rxnat prints the usage on stderr and exits 2', async () => {
    const r = await runCli([]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^rxnat: open ports on NAT gateways[\s\S]*Usage:[\s\S]*rxnat status[\s\S]*rxnat map <tcp\|udp> <port>\[:<external>\]/);
    assert.match(r.stderr, /\nrxnat: give a command \(see rxnat --help\)\n$/);
  });

  it('--help works for rxnat and a command, and exits 0', async () => {
    const [top, map, unmap] = await runMany([['--help'], ['map', '--help'], ['help', 'unmap']]);
    for (const r of [top!, map!, unmap!]) {
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Usage:/);
      assert.match(r.stdout, /Exit codes: 0 success, 1 runtime failure/);
    }
    assert.match(map!.stdout, /Testing and lab options[\s\S]*--pmp-port/);
    assert.match(unmap!.stdout, /PCP\s+needs the nonce/);
  });

  it('no gateway: exits 1 quickly with a message that says what to do', async () => {
    const port = String(await closedUdpPort());
    const [unreachable, map] = await Promise.all([
      runCli(['discover', '--nat', 'pmp:127.0.0.1', '--pmp-port', port, '--local-address', '127.0.0.1']),
      runCli(['map', 'tcp', '8080', '--nat', 'pcp:127.0.0.1', '--pcp-port', port, '--local-address', '127.0.0.1', '--json']),
    ]);
    assert.equal(unreachable.code, 1);
    assert.ok(unreachable.elapsedMs < 40_000, `${unreachable.elapsedMs} ms: bounded (not killed at 45 s)`);
    assert.match(unreachable.stderr, /^rxnat: pmp gateway 127\.0\.0\.1 unreachable: .*NAT-PMP is not served there\. Check the address and port, or try another --nat/);
    assert.equal(map.code, 1);
    assert.ok(map.elapsedMs < 40_000, `${map.elapsedMs} ms: bounded (not killed at 45 s)`);
    assert.match(map.stderr, /^rxnat: pcp gateway 127\.0\.0\.1 unreachable/m);
    const states = jsonLines(map.stdout);
    assert.equal(states.at(-1)!.status, 'unmapped');
  });

  it('a silent gateway: exits 1 after --timeout, naming the timeout', () =>
    withSim(async (sim) => {
      sim.pmpPcp.faults.silent = true;
      const r = await runCli(['ip', '--nat', 'pmp:127.0.0.1', ...simArgs(sim), '--timeout', '300']);
      assert.equal(r.code, 1);
      assert.ok(r.elapsedMs < 40_000, `${r.elapsedMs} ms: bounded (not killed at 45 s)`);
      assert.match(r.stderr, /^rxnat: pmp gateway 127\.0\.0\.1 did not answer within 300 ms\. .*raise --timeout/);
    }));

  it('discover --nat any with nothing answering lists every backend\'s failure', async () => {
    const port = String(await closedUdpPort());
    const ssdp = await closedUdpPort();
    const r = await runCli(['discover', '--nat', 'any', '--gateway', '127.0.0.1', '--pmp-port', port, '--ssdp-target', `127.0.0.1:${ssdp}`, '--local-address', '127.0.0.1', '--timeout', '500']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^rxnat: no NAT gateway found \(.*pcp.*pmp.*upnp.*\)\. Is UPnP or NAT-PMP\/PCP enabled/);
  });
});
