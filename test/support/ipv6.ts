/** Whether this host has IPv6 loopback (`::1`): IPv6 socket tests skip cleanly without it. */
import { createSocket } from 'node:dgram';

/**
 * `false` when a UDP socket can bind `::1`, else the reason to skip (for `test(name, { skip })`).
 */
export async function ipv6LoopbackSkip(): Promise<string | false> {
  const socket = createSocket('udp6');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '::1', () => resolve());
    });
    return false;
  } catch (error) {
    return `this host has no IPv6 loopback (::1): ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    try {
      socket.close();
    } catch {
      // never bound
    }
  }
}
