// rxnat against a real router: every backend (NAT-PMP, PCP, UPnP on IGDv2 and IGDv1) maps TCP
// and UDP on miniupnpd, reads the external address, renews, deletes, and the router's nft DNAT
// rules are checked while mapped and after the delete. rxnat runs inside the lab's lan
// namespace through test/interop/rxnat-driver.ts (JSON lines over stdin/stdout).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../lab/lab.js';
import type { Lab, LabRule } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';
import { DriverClient } from './driver-client.js';
import type { MappingGrant, MappingProtocol, PortMappingEntry } from '../../src/index.js';

const { lan: LAN_IP, gateway: GW_IP, external: EXT_IP } = LAB_ADDRESSES;
const DRIVER = 'test/interop/rxnat-driver.ts';



function ruleFor(rules: readonly LabRule[], protocol: MappingProtocol, externalPort: number): LabRule | undefined {
  return rules.find((r) => r.protocol === protocol && r.externalPort === externalPort);
}

interface Scenario {
  readonly backend: 'pmp' | 'pcp' | 'upnp';
  readonly label: string;
  readonly basePort: number;
  readonly serviceType?: RegExp;
}

/** The full round on one backend: discover, external IP, map tcp+udp, renew, delete, mapPort. */
function roundTrip(lab: () => Lab, scenario: Scenario): void {
  it(`${scenario.label}: external IP, maps tcp and udp, renews, deletes; nft rules follow`, async (t) => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      const options = scenario.backend === 'upnp' ? { descriptionUrl: l.descriptionUrl } : {};
      const nat = await driver.call<{ kind: string; name: string; serviceType?: string; internalClient?: string }>({
        op: 'nat',
        backend: scenario.backend,
        gateway: GW_IP,
        options,
      });
      t.diagnostic(`nat: ${JSON.stringify(nat)}`);
      assert.equal(nat.kind, scenario.backend);
      if (scenario.serviceType) assert.match(nat.serviceType ?? '', scenario.serviceType);
      if (scenario.backend === 'upnp') assert.equal(nat.internalClient, LAN_IP);
      assert.equal(await driver.call({ op: 'externalIp' }), EXT_IP);

      const protocols: MappingProtocol[] = ['tcp', 'udp'];
      for (const [i, protocol] of protocols.entries()) {
        const port = scenario.basePort + i;
        const request = { protocol, internalPort: port, externalPort: port, description: 'rxnat interop', lifetimeSeconds: 120 };
        const grant = await driver.call<MappingGrant>({ op: 'add', key: protocol, request });
        assert.equal(grant.protocol, protocol);
        assert.equal(grant.internalPort, port);
        assert.equal(grant.externalPort, port, 'the requested port is free: granted as asked');
        assert.equal(grant.lifetimeSeconds, 120);
        if (scenario.backend === 'pcp') assert.equal(grant.externalIp, EXT_IP);
        assert.deepEqual(ruleFor(await l.rules(), protocol, port), { protocol, externalPort: port, internalClient: LAN_IP, internalPort: port });

        const renewed = await driver.call<MappingGrant>({ op: 'add', key: protocol, request, renew: true });
        assert.equal(renewed.externalPort, port, 'a renewal keeps the port');
        assert.equal((await l.rules()).filter((r) => r.protocol === protocol && r.externalPort === port).length, 1, 'renewal adds no second rule');
      }

      if (scenario.backend === 'upnp') {
        const entries = await driver.call<PortMappingEntry[]>({ op: 'list' });
        assert.deepEqual(
          entries.map((e) => [e.protocol, e.externalPort, e.internalClient, e.internalPort, e.description]).sort(),
          [
            ['tcp', scenario.basePort, LAN_IP, scenario.basePort, 'rxnat interop'],
            ['udp', scenario.basePort + 1, LAN_IP, scenario.basePort + 1, 'rxnat interop'],
          ],
        );
      }

      for (const [i, protocol] of protocols.entries()) {
        await driver.call({ op: 'delete', key: protocol });
        assert.equal(ruleFor(await l.rules(), protocol, scenario.basePort + i), undefined, `${protocol} rule deleted`);
      }
      assert.deepEqual(await l.rules(), []);
    } finally {
      await driver.close();
    }
  });

  it(`${scenario.label}: mapPort maps, keeps the rule while subscribed, deletes on stop`, async () => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      const options = scenario.backend === 'upnp' ? { descriptionUrl: l.descriptionUrl } : {};
      await driver.call({ op: 'nat', backend: scenario.backend, gateway: GW_IP, options });
      const port = scenario.basePort + 10;
      await driver.call({ op: 'mapPort', key: 'm', request: { protocol: 'udp', internalPort: port, externalPort: port, lifetimeSeconds: 60 } });
      const mapped = await driver.event('m', (e) => e.event !== 'state' || e.state?.status === 'mapped');
      assert.equal(mapped.event, 'state', JSON.stringify(mapped));
      assert.equal(mapped.state?.externalPort, port);
      assert.equal(mapped.state?.externalIp, EXT_IP);
      assert.equal(mapped.state?.doubleNat, true, '10.77.0.2 is private: rxnat flags the double NAT');
      assert.ok(ruleFor(await l.rules(), 'udp', port));
      await driver.call({ op: 'stop', key: 'm' });
      await driver.event('m', (e) => e.event === 'complete');
      assert.equal(ruleFor(await l.rules(), 'udp', port), undefined, 'deleted on stop');
    } finally {
      await driver.close();
    }
  });
}

/** A router reboot that forgets its table: NAT-PMP/PCP epochs restart, mapPort must re-add. */
function rebootRecovery(lab: () => Lab, backend: 'pmp' | 'pcp', port: number): void {
  it(`${backend}: after a router reboot that lost the table, mapPort re-adds the mapping`, async (t) => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      // The epoch path: no announcement listener (miniupnpd's start-up ANNOUNCE would re-add
      // before the restart is even over; that is announcements-miniupnpd.test.ts).
      await driver.call({ op: 'nat', backend, gateway: GW_IP, options: { announcements: false } });
      // a short lease, so the renewal that sees the epoch reset comes quickly (renewal at 1/3)
      await driver.call({ op: 'mapPort', key: 'r', request: { protocol: 'tcp', internalPort: port, externalPort: port, lifetimeSeconds: 3 } });
      await driver.event('r', (e) => e.state?.status === 'mapped');
      assert.ok(ruleFor(await l.rules(), 'tcp', port));
      const rebooted = performance.now();
      await l.restartDaemon({ clearMappings: true });
      assert.equal(ruleFor(await l.rules(), 'tcp', port), undefined, 'the reboot lost the mapping');
      let rule: LabRule | undefined;
      // A condition, not a bound: normally re-added within a renewal (~1-2 s); 20 s is for a loaded machine.
      while (!rule && performance.now() - rebooted < 20_000) {
        await new Promise((r) => setTimeout(r, 100));
        rule = ruleFor(await l.rules(), 'tcp', port);
      }
      t.diagnostic(`re-added ${Math.round(performance.now() - rebooted)} ms after the reboot`);
      assert.deepEqual(rule, { protocol: 'tcp', externalPort: port, internalClient: LAN_IP, internalPort: port });
      await driver.call({ op: 'stop', key: 'r' });
      await driver.event('r', (e) => e.event === 'complete');
      assert.equal(ruleFor(await l.rules(), 'tcp', port), undefined);
    } finally {
      await driver.close();
    }
  });
}

const skip = await labSkip();

describe('rxnat against miniupnpd 2.3.1 (IGDv2, NAT-PMP, PCP)', { skip }, () => {
  const lab = useLab();
  roundTrip(lab, { backend: 'pmp', label: 'NAT-PMP', basePort: 41000 });
  roundTrip(lab, { backend: 'pcp', label: 'PCP', basePort: 42000 });
  roundTrip(lab, { backend: 'upnp', label: 'UPnP IGDv2', basePort: 43000, serviceType: /WANIPConnection:2$/ });

  rebootRecovery(lab, 'pmp', 41100);
  rebootRecovery(lab, 'pcp', 42100);

  it('UPnP found by SSDP (no description URL) inside the lan namespace', async () => {
    const driver = DriverClient.start(lab(), DRIVER);
    try {
      const nat = await driver.call<{ kind: string; gateway: string; serviceType: string }>({ op: 'nat', backend: 'upnp', options: {} });
      assert.equal(nat.kind, 'upnp');
      assert.equal(nat.gateway, lab().descriptionUrl);
      assert.match(nat.serviceType, /WANIPConnection:2$/);
    } finally {
      await driver.close();
    }
  });

  it('stun:<internet>:3478 from the LAN reads the address the internet sees through the gateway (the lab\'s STUN responder)', async () => {
    const code = [
      "import { firstValueFrom } from 'rxjs';",
      "import { parseNat } from './src/parse-nat.ts';",
      `const nat = await firstValueFrom(parseNat('stun:${LAB_ADDRESSES.internet}:3478'));`,
      'console.log(JSON.stringify({ kind: nat.kind, ip: await firstValueFrom(nat.externalIp()) }));',
    ].join('\n');
    const r = await lab().runNodeInLan<{ kind: string; ip: string }>({ code }, [], { timeoutMs: 30_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json, { kind: 'stun', ip: EXT_IP });
  });

  it('discoverNat() with defaults (default route, SSDP) finds the gateway', async (t) => {
    const driver = DriverClient.start(lab(), DRIVER);
    try {
      const nat = await driver.call<{ kind: string; name: string }>({ op: 'nat', backend: 'discover', options: {} });
      t.diagnostic(`discoverNat won: ${nat.name}`);
      assert.ok(['pcp', 'pmp', 'upnp'].includes(nat.kind));
      assert.equal(await driver.call({ op: 'externalIp' }), EXT_IP);
    } finally {
      await driver.close();
    }
  });
});

describe('rxnat against miniupnpd forced to IGDv1', { skip }, () => {
  const lab = useLab({ igdV1: true });
  roundTrip(lab, { backend: 'upnp', label: 'UPnP IGDv1', basePort: 44000, serviceType: /WANIPConnection:1$/ });
});
