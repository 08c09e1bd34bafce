/**
 * Bulk teardown: N UPnP mappings stopped at once on a gateway that takes `deleteDelayMs` per
 * DeletePortMapping. Does every stream's last `unmapped` mean the mapping is gone?
 *
 * One gateway simulator on 127.0.0.1 in this process (its table is read synchronously, at the
 * instant the last stream completes), one UPnP Nat found through its description URL (no SSDP),
 * with the backend's default `maxConcurrentRequests`. Every stream gets the same `stop` Subject;
 * mapPort's other options are its defaults.
 *
 * Measured: the wall time from the stop until every stream completed, against the gateway's own
 * serial time (N x delay); the UPnP mappings left in the table at that instant (and a little
 * later); the last states that carry an error (deletes not confirmed).
 *
 * @packageDocumentation
 */
import { firstValueFrom, Subject, type Subscription } from 'rxjs';
import type { MappingState } from '../../src/index.js';
import { loadRxnat, loadRxnatTesting } from '../lib/build.js';
import { summarize } from '../lib/stats.js';
import type { TeardownConfig, TeardownResults } from '../lib/types.js';
import { ADDRESS, BASE_PORT, counterDelta, errorText, closeAll, now, sleep, waitFor } from './common.js';

/** What the child reports; the parent adds the build, `skipped` and how the child exited. */
export type TeardownRun = Omit<TeardownResults, 'skipped' | 'rxnat' | 'exitedOnItsOwn'>;

const GRACE_MS = 2000;

export async function runTeardown(config: TeardownConfig): Promise<TeardownRun> {
  const started = now();
  const { mapPort, upnp } = await loadRxnat();
  const { MappingTable, startGatewaySimulator } = await loadRxnatTesting();
  const errors: string[] = [];
  const n = config.mappings;
  const sim = await startGatewaySimulator({ address: ADDRESS, table: new MappingTable({ capacity: n + 64 }) });
  const subscriptions: Subscription[] = [];
  try {
    const nat = await firstValueFrom(upnp({ descriptionUrl: sim.descriptionUrl, localAddress: ADDRESS }));
    // Every delete, and only deletes, takes the gateway deleteDelayMs (answered after it; the
    // mapping leaves the table when the answer is made).
    sim.upnp.faults.inject({ kind: 'delay', ms: config.deleteDelayMs }, { action: 'DeletePortMapping', times: Infinity });
    const upnpLeft = (): number => sim.table.list().filter((m) => m.via === 'upnp').length;

    const stop$ = new Subject<void>();
    const latest: (MappingState | undefined)[] = new Array<MappingState | undefined>(n);
    const completedAt = new Float64Array(n).fill(NaN);
    let mappedOnce = 0;
    let completed = 0;
    let stoppedAt = NaN;
    let leftAtCompletion = -1;
    const seenMapped = new Uint8Array(n);
    const t0 = now();
    for (let i = 0; i < n; i++) {
      const request = { protocol: 'tcp', internalPort: BASE_PORT + i, description: `rxnat bench teardown ${i}`, lifetimeSeconds: config.lifetimeSeconds } as const;
      subscriptions.push(
        mapPort(nat, request, { stop: stop$ }).subscribe({
          next: (state) => {
            latest[i] = state;
            if (state.status === 'mapped' && seenMapped[i] === 0) {
              seenMapped[i] = 1;
              mappedOnce++;
            }
          },
          error: (error: unknown) => errors.push(`stream ${i} errored: ${errorText(error)}`),
          complete: () => {
            completedAt[i] = now();
            completed++;
            // The instant the last stream says it is done: what does the router still hold?
            if (completed === n) leftAtCompletion = upnpLeft();
            if (Number.isNaN(stoppedAt)) errors.push(`stream ${i} completed before the stop`);
          },
        }),
      );
    }
    const allMapped = await waitFor(() => mappedOnce === n, 120_000, 10);
    const timeToAllMappedMs = now() - t0;
    if (!allMapped) errors.push(`only ${mappedOnce} of ${n} streams mapped within 120 s`);

    const before = { ...sim.upnp.counters };
    stoppedAt = now();
    stop$.next();
    const allCompleted = await waitFor(() => completed === n, config.completionBoundMs, 2);
    const stopToCompletedMs = allCompleted ? Math.max(...completedAt) - stoppedAt : now() - stoppedAt;
    if (!allCompleted) {
      leftAtCompletion = upnpLeft();
      errors.push(`only ${completed} of ${n} streams completed within ${Math.round(config.completionBoundMs / 1000)} s of the stop`);
    }
    await sleep(GRACE_MS);
    const leftAfterGrace = upnpLeft();
    const during = counterDelta(sim.upnp.counters, before);

    const byStatus: Record<string, number> = {};
    let withError = 0;
    const errorSamples: string[] = [];
    latest.forEach((state) => {
      const status = state?.status ?? 'none';
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      if (state?.error) {
        withError++;
        if (errorSamples.length < 5) errorSamples.push(errorText(state.error));
      }
    });
    const perStream = Array.from(completedAt, (at) => at - stoppedAt).filter((v) => Number.isFinite(v));

    return {
      ...config,
      maxConcurrentRequests: nat.maxConcurrentRequests ?? 1,
      allMapped,
      timeToAllMappedMs,
      serialDeleteMs: n * config.deleteDelayMs,
      completed,
      stopToCompletedMs,
      ratioToSerial: stopToCompletedMs / (n * config.deleteDelayMs),
      perStreamCompletedMs: summarize(perStream) ?? null,
      leftAtCompletion,
      leftAfterGrace,
      graceMs: GRACE_MS,
      lastStates: { byStatus, withError, errorSamples },
      deleteRequests: during.DeletePortMapping ?? 0,
      requestsByAction: { ...sim.upnp.counters },
      errors,
      activeResourcesAfter: await closeAll(subscriptions, sim),
      durationMs: now() - started,
    };
  } catch (error) {
    await closeAll(subscriptions, sim);
    throw error;
  }
}
