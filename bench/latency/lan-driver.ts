/**
 * The latency driver: runs INSIDE the gateway lab's lan namespace (started by
 * `bench/latency/index.ts` through the lab harness) and times each contestant in this process.
 * Never run it in the root namespace: peers discover by multicast SSDP and the default gateway,
 * which must only ever reach the lab's router.
 *
 * Protocol: JSON lines. It prints `{"ready":true}`, then reads requests on stdin
 * (`{"op":"run","contestant":ID,"port":N,"igd":1|2,"cli":[...],"timeoutMs":N}` or
 * `{"op":"exit"}`) and answers each with one JSON line: `{"ok":true,"ms":N,"extra":{...}}` or
 * `{"ok":false,"error":"..."}`. Every run deletes what it mapped before answering (untimed).
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { request as httpRequest } from 'node:http';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { Subject, tap, type Observable } from 'rxjs';
import type { Nat } from '../../src/index.js';
import { loadRxnat } from '../lib/build.js';

const GATEWAY = '192.168.77.1';
const LAN = '192.168.77.10';
const DESCRIPTION_URL = `http://${GATEWAY}:5000/rootDesc.xml`;
const SSDP_TARGET = { address: GATEWAY, port: 1900 };
const LIFETIME_SECONDS = 60;

/** What one timed run reports. */
interface Outcome {
  /** The timed span, in ms. */
  readonly ms: number;
  /** Further spans (delete, process exit), in ms. */
  readonly extra?: Record<string, number>;
  /** What happened, counted per contestant (for example which backend won a race). */
  readonly detail?: string;
}

interface RunRequest {
  readonly op: 'run';
  readonly contestant: string;
  readonly port: number;
  readonly igd: 1 | 2;
  readonly cli: readonly string[];
  readonly timeoutMs: number;
}

/** One timed run; `signal` aborts at the run's deadline (contestants that can, stop and clean up). */
type Contestant = (request: RunRequest, signal: AbortSignal) => Promise<Outcome>;

const require = createRequire(import.meta.url);
/** rxnat as the bench built it (compiled JavaScript), see bench/lib/build.ts. */
const { discoverNat, mapPort, pcp, pmp, upnp } = await loadRxnat();
const now = (): number => performance.now();

// ---------------------------------------------------------------------------------------------
// rxnat, in process: subscribe -> first `mapped`; then a graceful stop (delete) outside the timing.

/** Counters of every NAT-PMP/PCP exchange a Nat makes (rxnat's `stats` option). */
interface UdpStats {
  exchanges: number;
  sent: number;
  received: number;
  accepted: number;
  dropped: number;
}

function rxnatRun(makeNat: (stats: UdpStats) => Observable<Nat>): Contestant {
  return ({ port }, signal) =>
    new Promise<Outcome>((resolve, reject) => {
      const stop$ = new Subject<void>();
      let mappedMs: number | undefined;
      let stoppedAt = 0;
      let backend = '';
      let failure: Error | undefined;
      let exchanges = '';
      let discoveredMs: number | undefined;
      const stats: UdpStats = { exchanges: 0, sent: 0, received: 0, accepted: 0, dropped: 0 };
      const t0 = now();
      const nat$ = makeNat(stats).pipe(tap(() => (discoveredMs ??= now() - t0)));
      const subscription = mapPort(nat$, { protocol: 'tcp', internalPort: port, lifetimeSeconds: LIFETIME_SECONDS, description: 'rxnat bench' }, { stop: stop$ }).subscribe({
        next: (state) => {
          if (state.status === 'mapped' && mappedMs === undefined) {
            mappedMs = now() - t0;
            stoppedAt = now();
            backend = (state.backend ?? '').replace(/\(.*$/, '');
            if (stats.exchanges > 0) exchanges = `, ${stats.exchanges} UDP exchanges (${stats.sent} datagrams sent) until mapped`;
            stop$.next();
          } else if (state.status === 'unmapped' && mappedMs === undefined && failure === undefined && state.error) {
            failure = state.error;
            stop$.next();
          }
        },
        error: (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
        complete: () => {
          if (failure) reject(failure);
          else if (mappedMs === undefined) reject(new Error('completed without a mapping'));
          else {
            const extra: Record<string, number> = { deleteMs: now() - stoppedAt };
            if (discoveredMs !== undefined) {
              extra.discoveryMs = discoveredMs;
              extra.addAfterDiscoveryMs = mappedMs - discoveredMs;
            }
            resolve({ ms: mappedMs, extra, detail: `backend ${backend}${exchanges}` });
          }
        },
      });
      // At the deadline: unsubscribe (rxnat deletes whatever it made), so nothing keeps renewing.
      signal.addEventListener('abort', () => subscription.unsubscribe(), { once: true });
    });
}

// ---------------------------------------------------------------------------------------------
// The floor: the same exchanges made bare, with no library.

function udpExchange(socket: Socket, message: Buffer, port: number, accept: (reply: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: Buffer): void => {
      if (!accept(reply)) return;
      socket.off('message', onMessage);
      resolve(reply);
    };
    socket.on('message', onMessage);
    socket.once('error', reject);
    socket.send(message, port, GATEWAY);
  });
}

function pmpMapMessage(port: number, lifetimeSeconds: number): Buffer {
  const message = Buffer.alloc(12);
  message[1] = 2; // map TCP
  message.writeUInt16BE(port, 4);
  message.writeUInt16BE(lifetimeSeconds === 0 ? 0 : port, 6);
  message.writeUInt32BE(lifetimeSeconds, 8);
  return message;
}

const floorPmp: Contestant = async ({ port }) => {
  const t0 = now();
  const socket = createSocket('udp4');
  try {
    const reply = await udpExchange(socket, pmpMapMessage(port, LIFETIME_SECONDS), 5351, (r) => r.length === 16 && r[1] === 130 && r.readUInt16BE(8) === port);
    const ms = now() - t0;
    if (reply.readUInt16BE(2) !== 0) throw new Error(`NAT-PMP result ${reply.readUInt16BE(2)}`);
    await udpExchange(socket, pmpMapMessage(port, 0), 5351, (r) => r.length === 16 && r[1] === 130);
    return { ms };
  } finally {
    socket.close();
  }
};

function pcpMapMessage(port: number, lifetimeSeconds: number, nonce: Buffer): Buffer {
  const message = Buffer.alloc(60);
  message[0] = 2; // version
  message[1] = 1; // MAP
  message.writeUInt32BE(lifetimeSeconds, 4);
  message.writeUInt16BE(0xffff, 18); // client address ::ffff:192.168.77.10
  LAN.split('.').forEach((octet, i) => (message[20 + i] = Number(octet)));
  nonce.copy(message, 24);
  message[36] = 6; // TCP
  message.writeUInt16BE(port, 40);
  message.writeUInt16BE(port, 42);
  message.writeUInt16BE(0xffff, 54); // suggested external address ::ffff:0.0.0.0
  return message;
}

const floorPcp: Contestant = async ({ port }) => {
  const nonce = Buffer.from(Array.from({ length: 12 }, () => Math.floor(Math.random() * 256)));
  const t0 = now();
  const socket = createSocket('udp4');
  try {
    const matches = (r: Buffer): boolean => r.length >= 60 && r[1] === 0x81 && r.subarray(24, 36).equals(nonce);
    const reply = await udpExchange(socket, pcpMapMessage(port, LIFETIME_SECONDS, nonce), 5351, matches);
    const ms = now() - t0;
    if (reply[3] !== 0) throw new Error(`PCP result ${reply[3]}`);
    await udpExchange(socket, pcpMapMessage(port, 0, nonce), 5351, matches);
    return { ms };
  } finally {
    socket.close();
  }
};

function http(method: 'GET' | 'POST', url: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, agent: false, headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function soap(controlUrl: string, service: string, action: string, args: Record<string, string | number>): Promise<{ status: number; body: string }> {
  const argumentXml = Object.entries(args)
    .map(([name, value]) => `<${name}>${value}</${name}>`)
    .join('');
  const envelope =
    '<?xml version="1.0"?>\r\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body><u:${action} xmlns:u="${service}">${argumentXml}</u:${action}></s:Body></s:Envelope>\r\n`;
  return http('POST', controlUrl, envelope, { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${service}#${action}"` });
}

/** The bare UPnP floor: one unicast M-SEARCH (skipped with `viaUrl`: the description URL is known), one GET, one AddPortMapping. */
const floorUpnp = (viaUrl: boolean): Contestant => async ({ port, igd }) => {
  const t0 = now();
  // 1. One M-SEARCH, unicast to the gateway; the first answer's LOCATION.
  const socket = createSocket('udp4');
  let location = DESCRIPTION_URL;
  try {
    if (!viaUrl) {
      const search = Buffer.from(
        `M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:${igd}\r\n\r\n`,
      );
      const answer = await new Promise<Buffer>((resolve, reject) => {
        socket.on('message', resolve);
        socket.once('error', reject);
        socket.send(search, SSDP_TARGET.port, SSDP_TARGET.address);
      });
      const match = /^location:\s*(\S+)/im.exec(answer.toString('latin1'));
      if (!match) throw new Error('SSDP answer without LOCATION');
      location = match[1]!;
    }
  } finally {
    socket.close();
  }
  // 2. One description GET; the WANIPConnection control URL.
  const description = await http('GET', location);
  const service = new RegExp(
    '<serviceType>(urn:schemas-upnp-org:service:WANIPConnection:\\d)</serviceType>[\\s\\S]*?<controlURL>([^<]+)</controlURL>',
  ).exec(description.body);
  if (!service) throw new Error('no WANIPConnection in the description');
  const serviceType = service[1]!;
  const controlUrl = new URL(service[2]!, location).href;
  // 3. One AddPortMapping.
  const added = await soap(controlUrl, serviceType, 'AddPortMapping', {
    NewRemoteHost: '',
    NewExternalPort: port,
    NewProtocol: 'TCP',
    NewInternalPort: port,
    NewInternalClient: LAN,
    NewEnabled: 1,
    NewPortMappingDescription: 'floor',
    NewLeaseDuration: LIFETIME_SECONDS,
  });
  const ms = now() - t0;
  if (added.status !== 200) throw new Error(`AddPortMapping answered HTTP ${added.status}`);
  await soap(controlUrl, serviceType, 'DeletePortMapping', { NewRemoteHost: '', NewExternalPort: port, NewProtocol: 'TCP' });
  return { ms };
};

// ---------------------------------------------------------------------------------------------
// Peers, in process: construct -> mapping confirmed; then their own delete and close.

type Callback<T = unknown> = (error: Error | null, value?: T) => void;
interface NatPmpClient {
  portMapping(options: { type: string; private: number; public: number; ttl: number }, callback: Callback): void;
  portUnmapping(options: { type: string; private: number; public: number }, callback: Callback): void;
  close(): void;
}
interface NatUpnpClient {
  portMapping(options: { public: number; private: number; ttl: number; description: string }, callback: Callback): void;
  portUnmapping(options: { public: number }, callback: Callback): void;
  close(): void;
}
interface NatApi {
  map(options: { publicPort: number; privatePort: number; protocol: string }): Promise<boolean>;
  unmap(options: { publicPort: number; privatePort: number; protocol: string }): Promise<boolean>;
  destroy(): Promise<unknown>;
}
type NatApiConstructor = new (options: Record<string, unknown>) => NatApi;

function callback<T>(run: (done: Callback<T>) => void): Promise<T | undefined> {
  return new Promise((resolve, reject) => run((error, value) => (error ? reject(error) : resolve(value))));
}

const natPmp: Contestant = async ({ port }) => {
  const natpmp = require('nat-pmp') as { connect(gateway: string): NatPmpClient };
  const t0 = now();
  const client = natpmp.connect(GATEWAY);
  try {
    await callback((done) => client.portMapping({ type: 'tcp', private: port, public: port, ttl: LIFETIME_SECONDS }, done));
    const ms = now() - t0;
    await callback((done) => client.portUnmapping({ type: 'tcp', private: port, public: port }, done));
    return { ms };
  } finally {
    client.close();
  }
};

const natUpnp: Contestant = async ({ port }) => {
  const natupnp = require('nat-upnp') as { createClient(): NatUpnpClient };
  const t0 = now();
  const client = natupnp.createClient();
  try {
    await callback((done) => client.portMapping({ public: port, private: port, ttl: LIFETIME_SECONDS, description: 'nat-upnp bench' }, done));
    const ms = now() - t0;
    await callback((done) => client.portUnmapping({ public: port }, done));
    return { ms };
  } finally {
    client.close();
  }
};

function natApi(backend: 'pmp' | 'upnp' | 'any'): Contestant {
  return async ({ port }) => {
    const specifier = '@silentbot1/nat-api';
    const NatAPI = ((await import(specifier)) as { default: NatApiConstructor }).default;
    const options = { publicPort: port, privatePort: port, protocol: 'TCP' };
    const t0 = now();
    const api = new NatAPI({ enablePMP: backend !== 'upnp', enableUPNP: backend !== 'pmp', autoUpdate: false, description: 'nat-api bench' });
    try {
      const ok = await api.map(options);
      const ms = now() - t0;
      if (!ok) throw new Error('map() answered false (no protocol succeeded)');
      await api.unmap(options);
      return { ms };
    } finally {
      await api.destroy().catch(() => undefined);
    }
  };
}

function achingbrain(path: 'pmp' | 'ssdp' | 'url'): Contestant {
  return async ({ port }) => {
    const { pmpNat, upnpNat } = await import('@achingbrain/nat-port-mapper');
    const abort = new AbortController();
    const t0 = now();
    let gateway: Awaited<ReturnType<ReturnType<typeof upnpNat>['getGateway']>> | undefined;
    try {
      if (path === 'pmp') {
        gateway = pmpNat(GATEWAY, { autoRefresh: false });
      } else {
        const client = upnpNat({ autoRefresh: false });
        if (path === 'url') {
          gateway = await client.getGateway(new URL(DESCRIPTION_URL), { signal: abort.signal });
        } else {
          for await (const found of client.findGateways({ signal: abort.signal })) {
            gateway = found;
            break;
          }
          if (!gateway) throw new Error('findGateways ended without a gateway');
        }
      }
      await gateway.map(port, LAN, { externalPort: port, protocol: 'tcp', description: 'nat-port-mapper bench', autoRefresh: false, signal: abort.signal });
      const ms = now() - t0;
      await gateway.unmap(port, { signal: abort.signal });
      return { ms };
    } finally {
      abort.abort();
      await gateway?.stop().catch(() => undefined);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Whole processes: spawn -> exit (reference clients), or spawn -> first `mapped` line (rxnat map).

function runProcess(command: string, args: readonly string[], timeoutMs: number): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: now() - t0, code, stdout, stderr });
    });
  });
}

function referenceClient(command: string, args: (port: number) => string[], ok: RegExp, cleanup: (port: number) => [string, string[]]): Contestant {
  return async ({ port, timeoutMs }) => {
    const result = await runProcess(command, args(port), timeoutMs);
    const [cleanCommand, cleanArgs] = cleanup(port);
    await runProcess(cleanCommand, cleanArgs, timeoutMs).catch(() => undefined);
    if (result.code !== 0 || !ok.test(result.stdout)) {
      throw new Error(`${command} exit ${result.code}: ${(result.stdout + result.stderr).trim().split('\n').slice(-3).join(' | ')}`);
    }
    return { ms: result.ms };
  };
}

const nodeStartup: Contestant = async ({ timeoutMs }) => {
  const result = await runProcess(process.execPath, ['-e', '0'], timeoutMs);
  if (result.code !== 0) throw new Error(`node exit ${result.code}`);
  return { ms: result.ms };
};

function rxnatCli(nat: (igd: 1 | 2) => string[]): Contestant {
  return ({ port, cli, igd, timeoutMs }) =>
    new Promise<Outcome>((resolve, reject) => {
      const [command, ...prefix] = cli;
      const t0 = now();
      const child = spawn(command!, [...prefix, 'map', 'tcp', String(port), '--lifetime', String(LIFETIME_SECONDS), '--json', ...nat(igd)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let mappedMs: number | undefined;
      let stoppedAt = 0;
      let partial = '';
      let stderr = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          if (mappedMs !== undefined) continue;
          try {
            if ((JSON.parse(line) as { status?: string }).status === 'mapped') {
              mappedMs = now() - t0;
              stoppedAt = now();
              child.kill('SIGTERM'); // graceful: rxnat map deletes, then exits
            }
          } catch {
            // not a JSON line
          }
        }
      });
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (mappedMs === undefined) reject(new Error(`rxnat map exited (${signal ?? code}) without a mapping: ${stderr.trim().split('\n').slice(-2).join(' | ')}`));
        else resolve({ ms: mappedMs, extra: { exitMs: now() - t0, deleteAndExitMs: now() - stoppedAt, exitCode: code ?? -1 } });
      });
    });
}

// ---------------------------------------------------------------------------------------------

const ssdpOptions = { ssdpTargets: [SSDP_TARGET] };

/** Every contestant the driver knows, by id (ids are shared with bench/latency/contestants.ts). */
const CONTESTANTS: Record<string, Contestant> = {
  'floor.pmp': floorPmp,
  'floor.pcp': floorPcp,
  'floor.upnp': floorUpnp(false),
  'floor.upnp.url': floorUpnp(true),
  'rxnat.pmp': rxnatRun((stats) => pmp(GATEWAY, { stats })),
  'rxnat.pcp': rxnatRun((stats) => pcp(GATEWAY, { stats })),
  'rxnat.upnp.ssdp': rxnatRun(() => upnp(ssdpOptions)),
  'rxnat.upnp.url': rxnatRun(() => upnp({ descriptionUrl: DESCRIPTION_URL })),
  'rxnat.discover': rxnatRun((stats) => discoverNat({ gateway: GATEWAY, upnp: ssdpOptions, pmp: { stats }, pcp: { stats } })),
  // Diagnostics of the race (public API only): without the UPnP probe, and with it held back 50 ms.
  'rxnat.discover.udp-only': rxnatRun((stats) => discoverNat({ gateway: GATEWAY, backends: ['pcp', 'pmp'], pmp: { stats }, pcp: { stats } })),
  // The schedule before #11 item 5: all three probes subscribed at once (public API only).
  'rxnat.discover.at-once': rxnatRun((stats) =>
    discoverNat({
      backends: [],
      probes: [
        { name: 'pcp', nat$: pcp(GATEWAY, { stats, timeoutMs: 3000 }) },
        { name: 'pmp', nat$: pmp(GATEWAY, { stats, timeoutMs: 3000 }) },
        { name: 'upnp', nat$: upnp({ ...ssdpOptions, timeoutMs: 3000 }) },
      ],
    }),
  ),
  'peer.nat-pmp': natPmp,
  'peer.nat-upnp': natUpnp,
  'peer.nat-api.pmp': natApi('pmp'),
  'peer.nat-api.upnp': natApi('upnp'),
  'peer.nat-api.any': natApi('any'),
  'peer.nat-port-mapper.pmp': achingbrain('pmp'),
  'peer.nat-port-mapper.upnp.ssdp': achingbrain('ssdp'),
  'peer.nat-port-mapper.upnp.url': achingbrain('url'),
  'proc.node': nodeStartup,
  'proc.upnpc.i': referenceClient(
    'upnpc',
    (port) => ['-i', '-a', LAN, String(port), String(port), 'tcp', String(LIFETIME_SECONDS)],
    /is redirected to internal/,
    (port) => ['upnpc', ['-u', DESCRIPTION_URL, '-d', String(port), 'tcp']],
  ),
  'proc.upnpc.url': referenceClient(
    'upnpc',
    (port) => ['-u', DESCRIPTION_URL, '-a', LAN, String(port), String(port), 'tcp', String(LIFETIME_SECONDS)],
    /is redirected to internal/,
    (port) => ['upnpc', ['-u', DESCRIPTION_URL, '-d', String(port), 'tcp']],
  ),
  'proc.natpmpc': referenceClient(
    'natpmpc',
    (port) => ['-a', String(port), String(port), 'tcp', String(LIFETIME_SECONDS), '-g', GATEWAY],
    /Mapped public port/,
    (port) => ['natpmpc', ['-a', String(port), String(port), 'tcp', '0', '-g', GATEWAY]],
  ),
  'proc.rxnat.pmp': rxnatCli(() => ['--nat', `pmp:${GATEWAY}`]),
  'proc.rxnat.upnp.ssdp': rxnatCli(() => ['--nat', 'upnp', '--ssdp-target', `${GATEWAY}:1900`]),
  'proc.rxnat.any': rxnatCli(() => ['--nat', 'any', '--gateway', GATEWAY, '--ssdp-target', `${GATEWAY}:1900`]),
};

function withTimeout<T>(run: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`no mapping within ${ms} ms`));
      abort.abort();
    }, ms);
  });
  return Promise.race([run(abort.signal), deadline]).finally(() => clearTimeout(timer));
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}: ${error.message}${typeof code === 'string' && !error.message.includes(code) ? ` (${code})` : ''}`.slice(0, 500);
  }
  return String(error).slice(0, 500);
}

function reply(message: unknown): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

// A peer's late failure (a socket error after we gave up on it) must not kill the driver.
process.on('uncaughtException', (error) => process.stderr.write(`uncaught: ${describeError(error)}\n`));
process.on('unhandledRejection', (error) => process.stderr.write(`unhandled: ${describeError(error)}\n`));

reply({ ready: true, pid: process.pid });

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.trim() === '') continue;
  const request = JSON.parse(line) as RunRequest | { op: 'exit' };
  if (request.op === 'exit') break;
  const contestant = CONTESTANTS[request.contestant];
  if (!contestant) {
    reply({ ok: false, error: `unknown contestant ${request.contestant}` });
    continue;
  }
  try {
    const outcome = await withTimeout((signal) => contestant(request, signal), request.timeoutMs);
    reply({ ok: true, ...outcome });
  } catch (error) {
    reply({ ok: false, error: describeError(error) });
  }
}
process.exit(0);
