// The gateway lab's own tests: the harness builds a working router (checked with the C
// reference clients upnpc and natpmpc), tears it down cleanly, and its helpers parse right.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { cleanStaleLabs, LAB_ADDRESSES, parseNftRules, startLab } from './lab.js';
import { natPmpRequest, pcpMapRequest, tcpOnce, tcpPing } from './probes.js';
import type { NatPmpProbeResult, PcpProbeResult } from './probes.js';
import { labSkip, useLab } from './require-lab.js';
import { stunBindingResponse } from './stun-responder.mjs';

const { lan: LAN_IP, gateway: GW_IP, external: EXT_IP, internet: WAN_IP } = LAB_ADDRESSES;

describe('lab helpers (no lab needed)', () => {
  it('parses the DNAT rules miniupnpd 2.3.1 writes', () => {
    // captured from `nft -j list chain inet filter prerouting_miniupnpd` after `upnpc -a ... 40000 40000 TCP`
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { chain: { family: 'inet', table: 'filter', name: 'prerouting_miniupnpd', handle: 2 } },
        {
          rule: {
            expr: [
              { match: { op: '==', left: { meta: { key: 'iif' } }, right: 'gw-wan' } },
              { match: { op: '==', left: { payload: { base: 'nh', offset: 72, len: 8 } }, right: 6 } },
              { match: { op: '==', left: { payload: { protocol: 'th', field: 'dport' } }, right: 40000 } },
              { dnat: { family: 'ip', addr: '192.168.77.10', port: 40000 } },
            ],
          },
        },
        {
          rule: {
            expr: [
              { match: { op: '==', left: { meta: { key: 'l4proto' } }, right: 'udp' } },
              { match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 40001 } },
              { dnat: { family: 'ip', addr: '192.168.77.10', port: 40002 } },
            ],
          },
        },
      ],
    });
    assert.deepEqual(parseNftRules(json), [
      { protocol: 'tcp', externalPort: 40000, internalClient: '192.168.77.10', internalPort: 40000 },
      { protocol: 'udp', externalPort: 40001, internalClient: '192.168.77.10', internalPort: 40002 },
    ]);
  });

  it('answers a STUN Binding request with the XOR-mapped sender address', () => {
    const request = Buffer.from('000100002112a442' + '0102030405060708090a0b0c', 'hex');
    const reply = stunBindingResponse(request, '10.77.0.2', 40001);
    assert.ok(reply);
    assert.equal(reply.readUInt16BE(0), 0x0101);
    assert.equal(reply.readUInt16BE(2), reply.length - 20);
    assert.deepEqual(reply.subarray(4, 20), request.subarray(4, 20));
    const xor = reply.indexOf(Buffer.from([0x00, 0x20, 0x00, 0x08]), 20);
    assert.ok(xor > 0, 'XOR-MAPPED-ADDRESS present');
    assert.equal(reply.readUInt16BE(xor + 6) ^ 0x2112, 40001);
    const ip = [...reply.subarray(xor + 8, xor + 12)].map((b, i) => b ^ [0x21, 0x12, 0xa4, 0x42][i]!);
    assert.deepEqual(ip, [10, 77, 0, 2]);
    assert.equal(stunBindingResponse(Buffer.alloc(10), '10.77.0.2', 1), null);
    assert.equal(stunBindingResponse(Buffer.from('0111' + '0'.repeat(36), 'hex'), '10.77.0.2', 1), null);
  });
});

const skip = await labSkip(['upnpc', 'natpmpc']);

describe('gateway lab (miniupnpd 2.3.1 in network namespaces)', { skip }, () => {
  const lab = useLab({ denyRange: { from: 45000, to: 45099 } });

  it('comes up isolated: namespaces, forwarding in gw only, nothing in the root namespace', async (t) => {
    const l = lab();
    t.diagnostic(`lab up in ${l.startupMs.toFixed(0)} ms ${JSON.stringify(l.startupPhasesMs)} (${l.id})`);
    assert.ok(l.daemonPid, 'miniupnpd runs');
    for (const ns of Object.values(l.namespaces)) assert.ok(existsSync(`/run/netns/${ns}`), ns);
    for (const ifname of ['lan0', 'gw-lan', 'gw-wan', 'wan0']) {
      assert.notEqual(spawnSync('ip', ['link', 'show', ifname], { stdio: 'ignore' }).status, 0, `${ifname} must not exist in the root ns`);
    }
    const forward = async (role: 'lan' | 'gw' | 'wan'): Promise<string> =>
      (await l.execIn(role, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim();
    assert.deepEqual([await forward('lan'), await forward('gw'), await forward('wan')], ['0', '1', '0']);
    const desc = await l.execInLan('curl', ['-sf', l.descriptionUrl]);
    assert.equal(desc.code, 0);
    assert.match(desc.stdout, /urn:schemas-upnp-org:device:InternetGatewayDevice:2/);
    assert.match(desc.stdout, /urn:schemas-upnp-org:service:WANIPConnection:2/);
    assert.deepEqual(await l.rules(), []);
  });

  it('upnpc -a installs a DNAT rule, upnpc -d removes it', async () => {
    const l = lab();
    const add = await l.execInLan('upnpc', ['-u', l.descriptionUrl, '-a', LAN_IP, '40000', '40000', 'TCP']);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.match(add.stdout, /external 10\.77\.0\.2:40000 TCP is redirected to internal 192\.168\.77\.10:40000/);
    assert.deepEqual(await l.rules(), [{ protocol: 'tcp', externalPort: 40000, internalClient: LAN_IP, internalPort: 40000 }]);
    const del = await l.execInLan('upnpc', ['-u', l.descriptionUrl, '-d', '40000', 'TCP']);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.deepEqual(await l.rules(), []);
  });

  it('natpmpc -a maps a UDP port', async () => {
    const l = lab();
    const r = await l.execInLan('natpmpc', ['-g', GW_IP, '-a', '40001', '40001', 'udp', '60']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Public IP address : 10\.77\.0\.2/);
    assert.match(r.stdout, /Mapped public port 40001 protocol UDP to local port 40001 liftime 60/);
    assert.ok((await l.rules()).some((rule) => rule.protocol === 'udp' && rule.externalPort === 40001));
    const del = await l.execInLan('natpmpc', ['-g', GW_IP, '-a', '40001', '40001', 'udp', '0']);
    assert.equal(del.code, 0, del.stdout + del.stderr);
    assert.ok(!(await l.rules()).some((rule) => rule.externalPort === 40001));
  });

  it('a mapping is real: a TCP connect from the wan namespace reaches the LAN host', async () => {
    const l = lab();
    const map = await l.execInLan('natpmpc', ['-g', GW_IP, '-a', '40002', '40002', 'tcp', '60']);
    assert.equal(map.code, 0, map.stdout + map.stderr);
    const server = l.runNodeInLan<{ remote: string; data: string }>(tcpOnce, ['40002', '5000'], { tsx: false, timeoutMs: 6000 });
    const client = await l.runNodeInWan<{ reply?: string; error?: string }>(tcpPing, [EXT_IP, '40002', '4000'], {
      tsx: false,
      timeoutMs: 6000,
    });
    assert.deepEqual(client.json, { reply: 'pong ping' }, client.stdout + client.stderr);
    assert.deepEqual((await server).json, { remote: WAN_IP, data: 'ping' });
    await l.execInLan('natpmpc', ['-g', GW_IP, '-a', '40002', '40002', 'tcp', '0']);
  });

  it('secure mode refuses another LAN host (718); ports < 1024 (606); denyRange (UPnP 606, NAT-PMP moves the port)', async () => {
    const l = lab();
    const other = await l.execInLan('upnpc', ['-u', l.descriptionUrl, '-a', '192.168.77.20', '40010', '40010', 'TCP']);
    assert.match(other.stdout, /failed with code 718 \(ConflictInMappingEntry\)/);
    const low = await l.execInLan('upnpc', ['-u', l.descriptionUrl, '-a', LAN_IP, '40011', '80', 'TCP']);
    assert.match(low.stdout, /failed with code 606 \(Action not authorized\)/);
    const denied = await l.execInLan('upnpc', ['-u', l.descriptionUrl, '-a', LAN_IP, '45000', '45000', 'TCP']);
    assert.match(denied.stdout, /failed with code 606 \(Action not authorized\)/);
    const pmp = await l.runNodeInLan<NatPmpProbeResult>(natPmpRequest, ['2', '45001', '45001', '60'], { tsx: false });
    assert.equal(pmp.json?.resultCode, 0);
    assert.equal(pmp.json?.externalPort, 45100, 'miniupnpd skips the denied range');
    await l.runNodeInLan(natPmpRequest, ['2', '45001', '45100', '0'], { tsx: false });
    assert.deepEqual(await l.rules(), []);
  });

  it('restartDaemon resets the NAT-PMP epoch; flushRules and clearMappings forget mappings; killDaemon silences it', async (t) => {
    const l = lab();
    const map = await l.runNodeInLan<NatPmpProbeResult>(natPmpRequest, ['2', '40020', '40020', '3600'], { tsx: false });
    assert.equal(map.json?.resultCode, 0);
    let started = performance.now();
    await l.restartDaemon();
    t.diagnostic(`restartDaemon: ${(performance.now() - started).toFixed(0)} ms`);
    const epoch = await l.runNodeInLan<NatPmpProbeResult>(natPmpRequest, ['0', '0', '0', '0'], { tsx: false });
    assert.equal(epoch.json?.resultCode, 0);
    assert.ok((epoch.json?.epoch ?? 99) <= 1, `epoch restarts at 0 (got ${epoch.json?.epoch})`);
    assert.equal(epoch.json?.externalIp, EXT_IP);
    assert.ok((await l.rules()).some((r) => r.externalPort === 40020), 'mappings survive a plain restart (lease file)');
    await l.flushRules();
    assert.deepEqual(await l.rules(), []);
    await l.runNodeInLan(natPmpRequest, ['2', '40021', '40021', '3600'], { tsx: false });
    await l.restartDaemon({ clearMappings: true });
    assert.deepEqual(await l.rules(), []);
    started = performance.now();
    await l.killDaemon();
    t.diagnostic(`killDaemon: ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(l.daemonPid, undefined);
    const silent = await l.execInLan('natpmpc', ['-g', GW_IP], { timeoutMs: 3000 });
    assert.notEqual(silent.code, 0);
    await l.restartDaemon();
    assert.ok(l.daemonPid);
  });
});

describe('broken-uplink gateway (no STUN: private WAN address)', { skip }, () => {
  const lab = useLab({ stun: false });

  it('refuses every mapping: UPnP 501, NAT-PMP result 3, PCP result 8', async () => {
    const l = lab();
    const upnp = await l.execInLan('upnpc', ['-u', l.descriptionUrl, '-a', LAN_IP, '40030', '40030', 'TCP']);
    assert.match(upnp.stdout, /failed with code 501 \(Action Failed\)/);
    const pmp = await l.runNodeInLan<NatPmpProbeResult>(natPmpRequest, ['2', '40030', '40030', '60'], { tsx: false });
    assert.equal(pmp.json?.resultCode, 3);
    const pcp = await l.runNodeInLan<PcpProbeResult>(pcpMapRequest, ['6', '40030', '40030', '60'], { tsx: false });
    assert.equal(pcp.json?.resultCode, 8);
    assert.deepEqual(await l.rules(), []);
  });
});

describe('lab lifecycle', { skip }, () => {
  it('stop() kills its processes, deletes its namespaces and run dir, and is idempotent', async (t) => {
    const started = performance.now();
    const l = await startLab({ stun: false });
    t.diagnostic(`up ${(performance.now() - started).toFixed(0)} ms`);
    const pid = l.daemonPid;
    assert.ok(pid);
    const stopped = performance.now();
    await Promise.all([l.stop(), l.stop()]);
    t.diagnostic(`down ${(performance.now() - stopped).toFixed(0)} ms`);
    await l.stop();
    for (const ns of Object.values(l.namespaces)) assert.equal(existsSync(`/run/netns/${ns}`), false, ns);
    assert.equal(existsSync(l.runDir), false);
    const state = existsSync(`/proc/${pid}/stat`) ? /\) (\S)/.exec(spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout)?.[1] : 'gone';
    assert.ok(state === 'gone' || state === 'Z', `miniupnpd ${pid} dead (state ${state})`);
    await assert.rejects(l.execInLan('true'), /stopped/);
  });

  it('cleans namespaces left by a crashed run (dead owner PID), killing what runs in them', async () => {
    const dead = spawnSync('true').pid;
    assert.ok(dead);
    const ns = `rxnat-${dead}-1-lan`;
    assert.equal(spawnSync('ip', ['netns', 'add', ns]).status, 0);
    const orphan = spawn('ip', ['netns', 'exec', ns, 'sleep', '30'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 100));
    // (a lab starting in a parallel test process may clean it first: either way it goes)
    cleanStaleLabs();
    assert.equal(existsSync(`/run/netns/${ns}`), false);
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => orphan.on('exit', (c, s) => r([c, s])));
    assert.deepEqual([code, signal], [null, 'SIGKILL']);
  });
});
