/** A STUN Binding responder on loopback for tests, built on the lab's own responder (an implementation independent of rxnat's codec). */
import { createSocket } from 'node:dgram';
import { stunBindingResponse } from '../lab/stun-responder.mjs';

/** A running loopback responder: its port, how many requests it read, and how to close it. */
export interface LoopbackStunServer {
  readonly port: number;
  readonly requests: number;
  close(): Promise<void>;
}

/**
 * Starts a STUN responder on 127.0.0.1 (ephemeral port). By default every Binding request is told
 * it came from `seen` (loopback itself is no usable external address) at its own port; `answer`
 * replaces that (return `null` to stay silent).
 *
 * @example
 * ```ts
 * const server = await startLoopbackStunServer('203.0.113.9');
 * try { await firstValueFrom(stun(`127.0.0.1:${server.port}`)); } finally { await server.close(); }
 * ```
 */
export async function startLoopbackStunServer(
  seen = '203.0.113.7',
  answer?: (request: Buffer, port: number) => Buffer | null,
): Promise<LoopbackStunServer> {
  const socket = createSocket('udp4');
  let requests = 0;
  socket.on('message', (message, remote) => {
    requests++;
    const reply = answer ? answer(message, remote.port) : stunBindingResponse(message, seen, remote.port);
    if (reply) socket.send(reply, remote.port, remote.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  return {
    port,
    get requests() {
      return requests;
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
