// The JavaScript packages rxnat replaces, run against the real router side by side with it.
// Each assertion records the *measured* behaviour (see /work/shared/notes/peers.md, "The
// JavaScript packages rxnat replaces"); if an assertion here starts failing, the package or
// the router changed, and peers.md and the README's comparison must be updated with it.
//
// Both packages run inside the lab's lan namespace (runNodeInLan). nat-upnp has no way to be
// given a description URL: it always discovers by SSDP multicast (an M-SEARCH for IGD:1 from
// every non-internal interface). Inside the lan namespace that only reaches the lab gateway.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_ADDRESSES } from '../lab/lab.js';
import type { NodeScript } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';

const { lan: LAN_IP, external: EXT_IP } = LAB_ADDRESSES;

/** One step's outcome, as the inline scripts report it. */
interface Step<T = unknown> {
  readonly ok?: T;
  readonly error?: string;
  readonly errorName?: string;
  readonly errorCode?: unknown;
  readonly ms: number;
}

// Shared by the inline scripts: run a callback API call, record { ok | error, ms }.
const STEP = `
const step = (fn) => new Promise((resolve) => {
  const started = performance.now();
  const done = (error, value) => resolve(error
    ? { error: error.message, errorName: error.name, errorCode: error.code, ms: Math.round(performance.now() - started) }
    : { ok: value ?? null, ms: Math.round(performance.now() - started) });
  try { fn(done); } catch (error) { done(error); }
});
`;

/** nat-pmp: external address, then map (args: action tcp|unmap, port, ttl). */
const natPmpScript: NodeScript = {
  code: `
import natpmp from 'nat-pmp';
${STEP}
const [action, port, ttl] = JSON.parse(process.env.RXNAT_LAB_ARGS);
const client = natpmp.connect('192.168.77.1');
const result = {};
setTimeout(() => { console.log(JSON.stringify({ ...result, timeout: true })); process.exit(0); }, 4000).unref();
if (action === 'map') {
  result.externalIp = await step((cb) => client.externalIp((e, info) => cb(e, info && info.ip.join('.'))));
  result.map = await step((cb) => client.portMapping({ type: 'tcp', private: Number(port), public: Number(port), ttl: Number(ttl) },
    (e, info) => cb(e, info && { private: info.private, public: info.public, ttl: info.ttl, type: info.type })));
} else {
  result.unmap = await step((cb) => client.portUnmapping({ type: 'tcp', private: Number(port), public: Number(port) },
    (e, info) => cb(e, info && { private: info.private, public: info.public, ttl: info.ttl })));
}
client.close();
console.log(JSON.stringify(result));
`,
};

/**
 * nat-pmp pointed at a host that never answers (the LAN host itself: nothing on 5351), then a
 * 1-byte datagram to its fixed port 5350 from 127.0.0.1 while the request is pending.
 */
const natPmpCrashScript: NodeScript = {
  code: `
import natpmp from 'nat-pmp';
import { createSocket } from 'node:dgram';
const client = natpmp.connect('192.168.77.10');
client.externalIp((error) => console.log(JSON.stringify({ callback: error ? error.message : 'ok' })));
setTimeout(() => {
  console.log(JSON.stringify({ pendingAfterMs: 500 }));
  const poke = createSocket('udp4');
  poke.send(Buffer.from([0]), 5350, '127.0.0.1', () => poke.close());
}, 500);
setTimeout(() => { console.log(JSON.stringify({ survived: true })); process.exit(0); }, 1500);
`,
};

/** nat-upnp: externalIp, map (args: port, internal client or ''), list, unmap (args[2] === 'unmap'). */
const natUpnpScript: NodeScript = {
  code: `
import natUpnp from 'nat-upnp';
${STEP}
const [port, client_, doUnmap] = JSON.parse(process.env.RXNAT_LAB_ARGS);
const client = natUpnp.createClient();
const result = {};
setTimeout(() => { console.log(JSON.stringify({ ...result, timeout: true })); process.exit(0); }, 8000).unref();
result.externalIp = await step((cb) => client.externalIp(cb));
result.map = await step((cb) => client.portMapping({ public: Number(port), private: client_ ? { host: client_, port: Number(port) } : Number(port), ttl: 60, description: 'nat-upnp baseline' }, (e) => cb(e, 'mapped')));
result.mappings = await step((cb) => client.getMappings((e, list) => cb(e, list && list.map((m) => ({ public: m.public.port, private: m.private, protocol: m.protocol, ttl: m.ttl, description: m.description })))));
if (doUnmap === 'unmap') result.unmap = await step((cb) => client.portUnmapping({ public: Number(port) }, (e) => cb(e, 'unmapped')));
client.close();
console.log(JSON.stringify(result));
`,
};

const skip = await labSkip(['upnpc']);

describe('baseline nat-pmp 1.0.0 against miniupnpd', { skip }, () => {
  const lab = useLab();

  it('maps and unmaps a TCP port (measured: works when nothing goes wrong)', async (t) => {
    const l = lab();
    const mapped = await l.runNodeInLan<{ externalIp: Step<string>; map: Step }>(natPmpScript, ['map', '40100', '60'], {
      tsx: false,
      timeoutMs: 6000,
    });
    t.diagnostic(`nat-pmp map: ${JSON.stringify(mapped.json)}`);
    assert.equal(mapped.code, 0, mapped.stderr);
    assert.equal(mapped.json?.externalIp.ok, EXT_IP);
    assert.deepEqual(mapped.json?.map.ok, { private: 40100, public: 40100, ttl: 60, type: 'tcp' });
    assert.deepEqual(await l.rules(), [{ protocol: 'tcp', externalPort: 40100, internalClient: LAN_IP, internalPort: 40100 }]);

    const unmapped = await l.runNodeInLan<{ unmap: Step }>(natPmpScript, ['unmap', '40100', '0'], { tsx: false, timeoutMs: 6000 });
    assert.equal(unmapped.code, 0, unmapped.stderr);
    // miniupnpd answers a delete with external port 0 and lifetime 0 (RFC 6886 §3.4)
    assert.deepEqual(unmapped.json?.unmap.ok, { private: 40100, public: 0, ttl: 0 });
    assert.deepEqual(await l.rules(), []);
  });

  it('hangs forever on a silent gateway, and a 1-byte datagram to its port crashes the process (peers.md)', async () => {
    const l = lab();
    const r = await l.runNodeInLan(natPmpCrashScript, [], { tsx: false, timeoutMs: 5000 });
    // no timeout, no retransmission: after 500 ms the request is still pending, no callback
    assert.match(r.stdout, /"pendingAfterMs":500/);
    assert.doesNotMatch(r.stdout, /callback/);
    // a datagram from any source (here 127.0.0.1) is parsed as the answer: uncaught RangeError
    assert.doesNotMatch(r.stdout, /survived/);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /RangeError \[ERR_OUT_OF_RANGE\]: The value of "offset" is out of range/);
  });
});

describe('baseline nat-upnp 1.1.1 against miniupnpd serving IGDv2 (the default)', { skip }, () => {
  const lab = useLab();

  it('fails every call with "Service not found" (it only knows WANIPConnection:1 / WANPPPConnection:1)', async (t) => {
    const l = lab();
    const r = await l.runNodeInLan<{ externalIp: Step; map: Step; mappings: Step }>(natUpnpScript, ['40200', '', 'unmap'], {
      tsx: false,
      timeoutMs: 10_000,
    });
    t.diagnostic(`nat-upnp on IGDv2: ${JSON.stringify(r.json)}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json?.externalIp.error, 'Service not found');
    assert.equal(r.json?.map.error, 'Service not found');
    // getMappings swallows errors (it stops at the first failing index): an empty list, no error
    assert.deepEqual(r.json?.mappings.ok, []);
    assert.deepEqual(await l.rules(), []);
  });
});

describe('baseline nat-upnp 1.1.1 against miniupnpd forced to IGDv1', { skip }, () => {
  const lab = useLab({ igdV1: true });

  it('serves the IGD:1 description', async () => {
    const desc = await lab().execInLan('curl', ['-sf', lab().descriptionUrl]);
    assert.match(desc.stdout, /urn:schemas-upnp-org:device:InternetGatewayDevice:1/);
    assert.match(desc.stdout, /urn:schemas-upnp-org:service:WANIPConnection:1/);
    assert.doesNotMatch(desc.stdout, /InternetGatewayDevice:2/);
  });

  it('works: external IP, map, list, unmap', async (t) => {
    const l = lab();
    const r = await l.runNodeInLan<{ externalIp: Step<string>; map: Step; mappings: Step<Array<Record<string, unknown>>> }>(
      natUpnpScript,
      ['40201', ''],
      { tsx: false, timeoutMs: 10_000 },
    );
    t.diagnostic(`nat-upnp on IGDv1: ${JSON.stringify(r.json)}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json?.externalIp.ok, EXT_IP);
    assert.equal(r.json?.map.ok, 'mapped');
    assert.deepEqual(r.json?.mappings.ok?.map((m) => [m.public, m.protocol, m.description]), [[40201, 'tcp', 'nat-upnp baseline']]);
    assert.deepEqual(await l.rules(), [{ protocol: 'tcp', externalPort: 40201, internalClient: LAN_IP, internalPort: 40201 }]);

    const unmap = await l.runNodeInLan<{ unmap: Step }>(natUpnpScript, ['40201', '', 'unmap'], { tsx: false, timeoutMs: 10_000 });
    assert.equal(unmap.json?.unmap.ok, 'unmapped', unmap.stdout + unmap.stderr);
    assert.deepEqual(await l.rules(), []);
  });

  it('discards the UPnP fault code: 718 (secure mode, other LAN host) arrives as "Request failed: 500"', async () => {
    const l = lab();
    const r = await l.runNodeInLan<{ map: Step }>(natUpnpScript, ['40202', '192.168.77.20'], { tsx: false, timeoutMs: 10_000 });
    assert.equal(r.json?.map.error, 'Request failed: 500');
    const upnpc = await l.execInLan('upnpc', ['-u', l.descriptionUrl, '-a', '192.168.77.20', '40202', '40202', 'TCP']);
    assert.match(upnpc.stdout, /failed with code 718/, 'the router did say 718');
  });
});
