/** Small helpers the socket tests share. */
import { createSocket } from 'node:dgram';

/** A loopback UDP port with nothing bound to it (bound, then closed): sending there draws ICMP port unreachable. */
export async function closedUdpPort(host = '127.0.0.1'): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/**
 * Polls `condition` until it holds; rejects with `what` after `timeoutMs`. The default is generous
 * (10 s) because only a failing test waits that long: a loaded machine must not fail a passing one.
 */
export async function waitFor(condition: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
