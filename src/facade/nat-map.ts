import type { Observable, Subscription } from 'rxjs';
import type { MappingProtocol, Nat } from '../core/nat.js';
import type { MappingState } from '../core/map-port.js';
import { natService, type NatServiceOptions } from './nat-service.js';

/**
 * Options of {@link natMap}: those of {@link natService}, the lease, and a state callback.
 *
 * @example
 * ```ts
 * const options: NatMapOptions = { lifetimeSeconds: 120, onState: (s) => console.log(s.status) };
 * ```
 */
export interface NatMapOptions extends Omit<NatServiceOptions, 'signal'> {
  /** Lease to ask for; default 60 s. */
  readonly lifetimeSeconds?: number;
  /** Called with every state of the mapping, the last one (`unmapped`) included. */
  readonly onState?: (state: MappingState) => void;
}

/**
 * go-ethereum's `nat.Map`: adds a mapping and keeps it alive until `signal` aborts, then deletes
 * it. Gateway errors while it runs are retried, never thrown. Resolves once the gateway
 * confirmed the delete (or there was nothing to delete; a signal already aborted: at once, with
 * nothing sent to the gateway). Rejects with:
 * - {@link InvalidMappingRequestError} or {@link InvalidOptionError}, at once, for an invalid
 *   request or option;
 * - {@link UnconfirmedDeleteError}, after the abort, when the delete was not confirmed (refused,
 *   unanswered within `teardownTimeoutMs`, or still unsettled after `closeTimeoutMs`), exactly as
 *   {@link NatMapping.close} does: the mapping may stay until its lease ends.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const done = natMap(extIp('203.0.113.7'), controller.signal, 'udp', 30303, 30303, 'ethereum p2p');
 * // on shutdown
 * controller.abort();
 * await done; // rejects with UnconfirmedDeleteError if the gateway did not confirm the delete
 * ```
 */
export async function natMap(
  nat: Nat | Observable<Nat>,
  signal: AbortSignal,
  protocol: MappingProtocol,
  externalPort: number,
  internalPort: number,
  description: string,
  options: NatMapOptions = {},
): Promise<void> {
  const { lifetimeSeconds, onState, ...serviceOptions } = options;
  const service = natService(nat, serviceOptions);
  // The mapping's own signal: an abort closes it (already aborted: at once, nothing sent).
  const mapping = service.newMapping(protocol, internalPort, {
    externalPort,
    description,
    signal,
    ...(lifetimeSeconds !== undefined ? { lifetimeSeconds } : {}),
  });
  let failure: unknown;
  let failed = false;
  let wake: (() => void) | undefined;
  // Replays the latest state at once; an invalid request or option errors it at once.
  const watching: Subscription = mapping.state$.subscribe({
    next: (s) => onState?.(s),
    error: (e: unknown) => {
      failed = true;
      failure = e;
      wake?.();
    },
  });
  try {
    if (!failed) await Promise.race([mapping.closed, new Promise<void>((resolve) => (wake = resolve))]);
  } finally {
    watching.unsubscribe();
    // Nothing left open after an abort; after a failure, the mapping that never started.
    await service.close().catch(() => undefined);
  }
  if (failed) throw failure;
}
