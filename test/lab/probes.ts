/**
 * Small inline node programs run inside the lab's namespaces (plain JavaScript, no tsx, so
 * they start in ~0.1 s). Each prints its result as one JSON line (see `Lab.runNodeIn`).
 *
 * @packageDocumentation
 */
import type { NodeScript } from './lab.js';

/** Result of {@link natPmpRequest}. */
export interface NatPmpProbeResult {
  readonly timeout?: true;
  readonly opcode?: number;
  readonly resultCode?: number;
  readonly epoch?: number;
  readonly internalPort?: number;
  readonly externalPort?: number;
  readonly lifetime?: number;
  readonly externalIp?: string;
}

/**
 * A raw NAT-PMP request to 192.168.77.1:5351. Arguments: opcode (0 external address,
 * 1 map UDP, 2 map TCP), internal port, suggested external port, lifetime.
 *
 * @example
 * ```ts
 * const r = await lab.runNodeInLan<NatPmpProbeResult>(natPmpRequest, ['2', '40000', '40000', '60'], { tsx: false });
 * ```
 */
export const natPmpRequest: NodeScript = {
  code: `
import { createSocket } from 'node:dgram';
const [op, internal, external, lifetime] = JSON.parse(process.env.RXNAT_LAB_ARGS).map(Number);
const socket = createSocket('udp4');
const request = op === 0 ? Buffer.from([0, 0]) : Buffer.alloc(12);
if (op !== 0) {
  request[1] = op;
  request.writeUInt16BE(internal, 4);
  request.writeUInt16BE(external, 6);
  request.writeUInt32BE(lifetime, 8);
}
const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(0); }, 2000);
socket.on('message', (m) => {
  const r = { opcode: m[1], resultCode: m.readUInt16BE(2), epoch: m.readUInt32BE(4) };
  if (m[1] === 128 && m.length >= 12) r.externalIp = [...m.subarray(8, 12)].join('.');
  if (m[1] > 128 && m.length >= 16) Object.assign(r, { internalPort: m.readUInt16BE(8), externalPort: m.readUInt16BE(10), lifetime: m.readUInt32BE(12) });
  console.log(JSON.stringify(r));
  clearTimeout(timer);
  socket.close();
});
socket.send(request, 5351, '192.168.77.1');
`,
};

/** Result of {@link pcpMapRequest}. */
export interface PcpProbeResult {
  readonly timeout?: true;
  readonly version?: number;
  readonly opcode?: number;
  readonly resultCode?: number;
  readonly lifetime?: number;
  readonly epoch?: number;
  readonly externalPort?: number;
  readonly externalIp?: string;
}

/**
 * A raw PCP (RFC 6887) MAP request from 192.168.77.10 to 192.168.77.1:5351. Arguments:
 * protocol number (6 TCP, 17 UDP), internal port, suggested external port, lifetime.
 */
export const pcpMapRequest: NodeScript = {
  code: `
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
const [proto, internal, external, lifetime] = JSON.parse(process.env.RXNAT_LAB_ARGS).map(Number);
const socket = createSocket('udp4');
const request = Buffer.alloc(60);
request[0] = 2; request[1] = 1; request.writeUInt32BE(lifetime, 4);
request.writeUInt16BE(0xffff, 18); Buffer.from([192, 168, 77, 10]).copy(request, 20);
randomBytes(12).copy(request, 24);
request[36] = proto; request.writeUInt16BE(internal, 40); request.writeUInt16BE(external, 42);
request.writeUInt16BE(0xffff, 54);
const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(0); }, 2000);
socket.on('message', (m) => {
  const r = { version: m[0], opcode: m[1], resultCode: m[3], lifetime: m.readUInt32BE(4), epoch: m.readUInt32BE(8) };
  if (m.length >= 60) Object.assign(r, { externalPort: m.readUInt16BE(42), externalIp: [...m.subarray(56, 60)].join('.') });
  console.log(JSON.stringify(r));
  clearTimeout(timer);
  socket.close();
});
socket.send(request, 5351, '192.168.77.1');
`,
};

/**
 * A TCP server on 0.0.0.0:<port> that answers the first connection's first chunk with
 * `pong <chunk>`, then prints `{ remote, data }` and exits. Arguments: port, timeout ms.
 */
export const tcpOnce: NodeScript = {
  code: `
import { createServer } from 'node:net';
const [port, timeoutMs] = JSON.parse(process.env.RXNAT_LAB_ARGS).map(Number);
const server = createServer((socket) => {
  socket.once('data', (data) => {
    socket.end('pong ' + data);
    console.log(JSON.stringify({ remote: socket.remoteAddress, data: String(data) }));
    server.close();
  });
});
server.listen(port, '0.0.0.0');
setTimeout(() => { console.log(JSON.stringify({ timeout: true })); process.exit(1); }, timeoutMs).unref();
`,
};

/**
 * Connects to <host>:<port> (retrying refused connections every 50 ms until the deadline),
 * sends `ping`, prints `{ reply }` or `{ error }`. Arguments: host, port, timeout ms.
 */
export const tcpPing: NodeScript = {
  code: `
import { connect } from 'node:net';
const [host, port, timeoutMs] = JSON.parse(process.env.RXNAT_LAB_ARGS);
const deadline = Date.now() + Number(timeoutMs);
const attempt = () => {
  const socket = connect(Number(port), host);
  let reply = '';
  socket.setTimeout(Math.max(1, deadline - Date.now()), () => socket.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
  socket.on('connect', () => socket.write('ping'));
  socket.on('data', (d) => (reply += d));
  socket.on('end', () => console.log(JSON.stringify({ reply })));
  socket.on('error', (error) => {
    if (Date.now() < deadline) setTimeout(attempt, 50);
    else console.log(JSON.stringify({ error: error.code ?? error.message }));
  });
};
attempt();
`,
};
