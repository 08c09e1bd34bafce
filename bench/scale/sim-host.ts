/**
 * The scale section's gateways: N gateway simulators (`rxnat/testing`) on 127.0.0.1, each on
 * its own ports, in a process of their own so that the client's memory and CPU are measured
 * alone. Forked by `client.ts`; driven over IPC.
 *
 * Each simulator answers NAT-PMP/PCP after `replyDelayMs` (a router's processing time) and
 * counts, at the gateway, the requests it has received and not yet answered: a request is in
 * flight from its arrival until its reply is sent. A retransmission (the same bytes from the same
 * client socket) counts once while the original is pending, and not at all once the original was
 * answered (it is answered again, and counted as a retransmission): the client sent it before it
 * read the answer, it is not a new request. The highest count per gateway is kept per phase.
 *
 * Only loopback: the simulator itself refuses any other address.
 *
 * @packageDocumentation
 */
import type { GatewaySimulator } from '../../src/testing/index.js';
import { loadRxnatTesting } from '../lib/build.js';

const { MappingTable, startGatewaySimulator } = await loadRxnatTesting();

export type SimRequest =
  | { readonly op: 'start'; readonly gateways: number; readonly replyDelayMs: number; readonly capacity: number; readonly pcpMinLifetimeSeconds: number }
  | { readonly op: 'phase' }
  | { readonly op: 'count' }
  | { readonly op: 'close' };

export type SimReply =
  | { readonly op: 'started'; readonly ports: number[] }
  | {
      readonly op: 'phase';
      readonly peaks: number[];
      readonly requests: number;
      readonly deletes: number;
      readonly retransmissions: number;
      readonly byKind: Record<string, number>;
    }
  | { readonly op: 'count'; readonly mappings: number; readonly inFlight: number }
  | { readonly op: 'closed' }
  | { readonly op: 'error'; readonly error: string };

interface Gateway {
  readonly sim: GatewaySimulator;
  readonly pending: Set<string>;
  /** Requests answered lately (source port + bytes), to recognise late retransmissions. */
  readonly answered: Map<string, number>;
  retransmissions: number;
  inFlight: number;
  phasePeak: number;
  requests: number;
  deletes: number;
}

const gateways: Gateway[] = [];

function send(reply: SimReply): void {
  process.send?.(reply);
}

/** Whether a NAT-PMP/PCP request is a delete (lifetime 0 in a map request). */
function isDelete(bytes: Uint8Array): boolean {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] === 0 && (bytes[1] === 1 || bytes[1] === 2) && bytes.length === 12) return view.getUint32(8) === 0;
  if (bytes[0] === 2 && bytes[1] === 1 && bytes.length >= 60) return view.getUint32(4) === 0;
  return false;
}

async function start(count: number, replyDelayMs: number, capacity: number, pcpMinLifetimeSeconds: number): Promise<number[]> {
  for (let i = 0; i < count; i++) {
    const sim = await startGatewaySimulator({ table: new MappingTable({ capacity }), pmpPcp: { pcpMinLifetimeSeconds, logSize: 1 } });
    const gateway: Gateway = { sim, pending: new Set(), answered: new Map(), retransmissions: 0, inFlight: 0, phasePeak: 0, requests: 0, deletes: 0 };
    sim.pmpPcp.faults.tamper = (reply, request) => {
      const key = `${request.from.address}:${request.from.port}`;
      const datagram = `${key}/${Buffer.from(request.bytes).toString('hex')}`;
      gateway.requests++;
      if (gateway.pending.has(key) || gateway.answered.has(datagram)) {
        gateway.retransmissions++;
      } else {
        if (isDelete(request.bytes)) gateway.deletes++;
        gateway.pending.add(key);
        gateway.inFlight++;
        gateway.phasePeak = Math.max(gateway.phasePeak, gateway.inFlight);
      }
      const deliver = (): void => {
        if (gateway.pending.delete(key)) {
          gateway.inFlight--;
          gateway.answered.set(datagram, Date.now());
        }
        sim.pmpPcp.send(reply, request.from).catch(() => undefined);
      };
      if (replyDelayMs > 0) setTimeout(deliver, replyDelayMs);
      else setImmediate(deliver);
      return []; // sent by `deliver`, after the delay
    };
    gateways.push(gateway);
  }
  return gateways.map((g) => g.sim.pmpPort);
}

/** Forgets answered requests after 10 s (longer than any client's retransmission schedule). */
setInterval(() => {
  const horizon = Date.now() - 10_000;
  for (const g of gateways) for (const [datagram, at] of g.answered) if (at < horizon) g.answered.delete(datagram);
}, 2000).unref();

function phase(): SimReply {
  const peaks = gateways.map((g) => g.phasePeak);
  const byKind: Record<string, number> = {};
  let requests = 0;
  let deletes = 0;
  let retransmissions = 0;
  for (const g of gateways) {
    for (const [kind, n] of Object.entries(g.sim.pmpPcp.counters.byKind)) if (n > 0) byKind[kind] = (byKind[kind] ?? 0) + n;
    g.sim.pmpPcp.resetCounters();
    requests += g.requests;
    deletes += g.deletes;
    retransmissions += g.retransmissions;
    g.requests = 0;
    g.deletes = 0;
    g.retransmissions = 0;
    g.phasePeak = g.inFlight;
  }
  return { op: 'phase', peaks, requests, deletes, retransmissions, byKind };
}

process.on('message', (message: SimRequest) => {
  void (async () => {
    try {
      switch (message.op) {
        case 'start':
          send({ op: 'started', ports: await start(message.gateways, message.replyDelayMs, message.capacity, message.pcpMinLifetimeSeconds) });
          break;
        case 'phase':
          send(phase());
          break;
        case 'count':
          send({
            op: 'count',
            mappings: gateways.reduce((sum, g) => sum + g.sim.table.list().length, 0),
            inFlight: gateways.reduce((sum, g) => sum + g.inFlight, 0),
          });
          break;
        case 'close':
          await Promise.all(gateways.map((g) => g.sim.close()));
          send({ op: 'closed' });
          process.disconnect?.();
          break;
      }
    } catch (error) {
      send({ op: 'error', error: error instanceof Error ? error.message : String(error) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
