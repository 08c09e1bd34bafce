/**
 * What the state scenarios (bulk teardown, short-lease soak) share: loopback only, clocks,
 * counters, the resource check that proves a scenario left nothing running.
 *
 * @packageDocumentation
 */

/** Every simulator binds it and every client is pointed at it: nothing leaves the machine. */
export const ADDRESS = '127.0.0.1';

/** Internal ports of the streams: BASE_PORT + i (distinct, unprivileged). */
export const BASE_PORT = 20000;

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
export const now = (): number => performance.now();

/** Polls `condition` every `stepMs` until it holds or `timeoutMs` passed; true when it held. */
export async function waitFor(condition: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (!condition()) {
    if (now() > deadline) return false;
    await sleep(stepMs);
  }
  return true;
}

/** `after - before` per key (counters only grow), zero entries dropped. */
export function counterDelta(after: Readonly<Record<string, number>>, before: Readonly<Record<string, number>>): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const d = value - (before[key] ?? 0);
    if (d > 0) delta[key] = d;
  }
  return delta;
}

/** Handles and requests still alive, without the IPC channel to the parent and stdio. */
export function activeResources(): string[] {
  return process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
}

/** After everything was closed: waits a little for sockets to finish closing, then lists what is left. */
export async function leftoverResources(): Promise<string[]> {
  for (let i = 0; i < 20 && activeResources().length > 0; i++) await sleep(50);
  return activeResources();
}

/** Unsubscribes every stream, closes the simulator, then lists what is still alive. */
export async function closeAll(subscriptions: Iterable<{ unsubscribe(): void }>, sim: { close(): Promise<void> }): Promise<string[]> {
  for (const subscription of subscriptions) subscription.unsubscribe();
  await sim.close();
  return leftoverResources();
}

export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
