/**
 * `rxnat map --ipv6`, `--internal-address`, `--nat pcp6|pinhole|any6` and `rxnat list --pinholes`
 * end to end against the gateway simulator on loopback (`ipv6: true`: PCP and the IGD on ::1).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGatewaySimulator, type GatewaySimulator } from '../../src/testing/simulator.js';
import { ipv6LoopbackSkip } from '../support/ipv6.js';
import { jsonLines, runCli, simArgsIpv6, startCli } from './cli-harness.js';

const skip = await ipv6LoopbackSkip();

describe('rxnat over IPv6 (simulator on ::1)', { skip, concurrency: 2 }, () => {
  let sim: GatewaySimulator;
  before(async () => {
    sim = await startGatewaySimulator({ ipv6: true, pmpPcp: { pcpMinLifetimeSeconds: 1 } });
  });
  after(() => sim.close());

  it('map tcp 18101 --ipv6 --nat pcp6: PCP over IPv6 opens the firewall for the host address, the exit closes it', async () => {
    const cli = startCli(['map', 'tcp', '18101', '--ipv6', '--nat', 'pcp6', ...simArgsIpv6(sim), '--json', '--duration', '2']);
    await cli.waitFor(/"event":"mapped"/);
    assert.ok(sim.ipv6Table.list().some((m) => m.internalPort === 18101 && m.protocol === 'tcp'), 'opened while map runs');
    const result = await cli.exited;
    assert.equal(result.code, 0, result.stderr);
    const mapped = jsonLines(result.stdout).find((s) => s.event === 'mapped')!;
    assert.deepEqual([mapped.externalIp, mapped.externalPort, mapped.backend, mapped.doubleNat], ['2001:db8::10', 18101, 'pcp(::1)', false]);
    assert.ok(!sim.ipv6Table.list().some((m) => m.internalPort === 18101), 'closed on exit');
  });

  it('map tcp 18102 --nat pinhole --internal-address: a UPnP pinhole for that address, deleted on exit (people output, bracketed address)', async () => {
    const cli = startCli(['map', 'tcp', '18102', '--nat', 'pinhole', '--internal-address', '2001:db8::10', ...simArgsIpv6(sim), '--duration', '2']);
    await cli.waitFor(/ mapped +tcp \[2001:db8::10\]:18102 -> local :18102, lease 60 s, via upnp-pinhole\(\[::1\]\)/);
    assert.deepEqual(
      sim.pinholes.list().filter((p) => p.internalPort === 18102).map((p) => [p.protocol, p.internalClient]),
      [['tcp', '2001:db8::10']],
    );
    const result = await cli.exited;
    assert.equal(result.code, 0, result.stderr);
    assert.equal(sim.pinholes.list().filter((p) => p.internalPort === 18102).length, 0, 'deleted on exit');
    assert.match(result.stdout, /unmapped +deleted tcp \[2001:db8::10\]:18102 on upnp-pinhole\(\[::1\]\)/);
  });

  it('map tcp 18105 --ipv6 --leave --nat pcp6: the firewall opening is made and left, for the host address', async () => {
    const result = await runCli(['map', 'tcp', '18105', '--ipv6', '--leave', '--nat', 'pcp6', ...simArgsIpv6(sim), '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(sim.ipv6Table.list().some((m) => m.internalPort === 18105 && m.protocol === 'tcp'), 'left open on the router');
    assert.equal(sim.table.list().filter((m) => m.internalPort === 18105).length, 0, 'no IPv4 mapping made instead');
  });

  it('map udp 18103 --ipv6 --nat any: the race finds an IPv6 gateway (PCP or the firewall service)', async () => {
    const result = await runCli(['map', 'udp', '18103', '--ipv6', '--nat', 'any', ...simArgsIpv6(sim), '--json', '--duration', '1.5']);
    assert.equal(result.code, 0, result.stderr);
    const mapped = jsonLines(result.stdout).find((s) => s.event === 'mapped')!;
    assert.match(String(mapped.backend), /^(pcp\(::1\)|upnp-pinhole\(\[::1\]\))$/);
    assert.equal(mapped.externalPort, 18103);
  });

  it('list --pinholes: the firewall status, and honestly no router list (the service has no such action)', async () => {
    const people = await runCli(['list', '--pinholes', '--nat', 'any', ...simArgsIpv6(sim)]);
    assert.equal(people.code, 0, people.stderr);
    assert.equal(people.stdout, 'firewall upnp-pinhole([::1]): on, inbound pinholes allowed\npinholes held by this process: none\n');
    assert.match(people.stderr, /WANIPv6FirewallControl has no action that lists pinholes/);
    const json = await runCli(['list', '--pinholes', '--nat', 'any', ...simArgsIpv6(sim), '--json']);
    assert.equal(json.code, 0, json.stderr);
    const [out] = jsonLines(json.stdout);
    assert.deepEqual(
      { source: out!.source, backend: out!.backend, firewallStatus: out!.firewallStatus, complete: out!.complete, pinholes: out!.pinholes },
      { source: 'process', backend: 'upnp-pinhole', firewallStatus: { firewallEnabled: true, inboundPinholeAllowed: true }, complete: false, pinholes: [] },
    );
  });

  it('status --ipv6: one more line, who opens the IPv6 firewall (the IPv4 probes unchanged)', async () => {
    const v4 = ['--gateway', sim.address, '--pmp-port', String(sim.pmpPort), '--local-address', sim.address];
    const v6 = ['--gateway6', '::1', '--control-host', '::1', '--ssdp-target', `${sim.ssdpTarget.address}:${sim.ssdpTarget.port}`, '--ssdp-target', `[::1]:${sim.upnp6!.ssdpPort}`];
    const people = await runCli(['status', '--ipv6', ...v4, ...v6]);
    assert.equal(people.code, 0, people.stderr);
    assert.match(people.stdout, /^UPnP +found /m);
    assert.match(people.stdout, /^IPv6 +found +(pcp\(::1\) \(PCP over IPv6\)|upnp-pinhole\(\[::1\]\) \(UPnP pinholes\)), in \d+ ms$/m);
    const json = await runCli(['status', '--ipv6', ...v4, ...v6, '--json']);
    assert.equal(json.code, 0, json.stderr);
    const [out] = jsonLines(json.stdout);
    const ipv6 = out!.ipv6 as { status: string; backend: string };
    assert.equal(ipv6.status, 'found');
    assert.match(ipv6.backend, /^(pcp|upnp-pinhole)$/);
    assert.equal((out!.protocols as Record<string, { status: string }>).pmp!.status, 'found');
  });

  it('usage errors: NAT-PMP has no IPv6, an IPv4 router with --ipv6, a bad --internal-address', async () => {
    const pmp = await runCli(['map', 'tcp', '18104', '--ipv6', '--nat', 'pmp:127.0.0.1', '--local-address', '127.0.0.1']);
    assert.equal(pmp.code, 2);
    assert.match(pmp.stderr, /has no IPv6 form.*NAT-PMP is IPv4 only/);
    const v4 = await runCli(['map', 'tcp', '18104', '--ipv6', '--nat', 'pcp:127.0.0.1']);
    assert.equal(v4.code, 2);
    assert.match(v4.stderr, /names an IPv4 router/);
    const bad = await runCli(['map', 'tcp', '18104', '--internal-address', '192.0.2.1', '--nat', 'pcp6', '--gateway', '::1']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--internal-address must be an IPv6 address/);
  });
});
