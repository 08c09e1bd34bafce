/**
 * What the lab tests share: a client for a driver process in the lab's lan namespace
 * (rxnat-driver.ts or pinhole-driver.ts: JSON-line commands with replies, and stream events),
 * and the router's IPv6 accept rules as miniupnpd's nftables backend writes them.
 */
import assert from 'node:assert/strict';
import type { Lab, LabProcess } from '../lab/lab.js';
import type { DriverError } from './driver-wire.js';
import { bytesToIp } from '../../src/core/address.js';
import type { MappingState } from '../../src/index.js';

/** A driver's reply to a command (`id`), or an event of a stream it runs (`key`). */
export interface Reply {
  readonly id?: number;
  readonly ok?: unknown;
  readonly error?: DriverError;
  /** How long the driver took over the command, in ms. */
  readonly ms?: number;
  readonly event?: 'state' | 'complete' | 'error';
  readonly key?: string;
  readonly state?: MappingState;
}

/** One driver process in the lan namespace: commands with replies, and stream events. */
export class DriverClient {
  private nextId = 1;
  private readonly events: Reply[] = [];
  constructor(private readonly process: LabProcess) {}

  /** Starts `driver` (a path from the repository root) in the lab's lan namespace. */
  static start(lab: Lab, driver: string): DriverClient {
    return new DriverClient(lab.spawnNodeIn('lan', driver));
  }

  async reply(command: Record<string, unknown>, timeoutMs = 15_000): Promise<Reply> {
    const id = this.nextId++;
    this.process.send({ ...command, id });
    for (;;) {
      const message = await this.process.next<Reply>(timeoutMs);
      if (message.id === id) return message;
      if (message.event) this.events.push(message);
    }
  }

  async call<T = unknown>(command: Record<string, unknown>, timeoutMs = 15_000): Promise<T> {
    const reply = await this.reply(command, timeoutMs);
    if (reply.error) throw Object.assign(new Error(`${String(command.op)}: ${reply.error.name}: ${reply.error.message}`), { driver: reply.error });
    return reply.ok as T;
  }

  /** The first event of stream `key` (kept or to come) that matches `predicate`. */
  async event(key: string, predicate: (event: Reply) => boolean, timeoutMs = 20_000): Promise<Reply> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const index = this.events.findIndex((e) => e.key === key && predicate(e));
      if (index >= 0) return this.events.splice(index, 1)[0]!;
      const message = await this.process.next<Reply>(Math.max(1, deadline - performance.now()));
      if (message.event) this.events.push(message);
    }
  }

  async close(): Promise<void> {
    const result = await this.process.done();
    assert.equal(result.code, 0, `driver exited ${result.code}: ${result.stderr}`);
  }
}

/** An IPv6 accept rule on the router: port, next header, and the address (RFC 5952) it lets traffic reach. */
export interface RouterPinhole {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly address: string;
}

/**
 * The router's IPv6 accept rules in `inet filter miniupnpd`: `iif "gw-wan" th dport 18080
 * @nh,192,128 0xfd77…10 @nh,48,8 0x6 accept` (destination at bit 192 of the IPv6 header, next
 * header at bit 48).
 */
export async function routerPinholes(lab: Lab): Promise<RouterPinhole[]> {
  const result = await lab.execIn('gw', 'nft', ['list', 'chain', 'inet', 'filter', 'miniupnpd']);
  assert.equal(result.code, 0, result.stderr);
  return [...result.stdout.matchAll(/dport (\d+) @nh,192,128 0x([0-9a-f]{32}) @nh,48,8 0x([0-9a-f]+) accept/g)].map(([, port, hex, next]) => ({
    protocol: parseInt(next!, 16) === 6 ? 'tcp' : 'udp',
    port: Number(port),
    address: bytesToIp(Uint8Array.from(Buffer.from(hex!, 'hex'))),
  }));
}
