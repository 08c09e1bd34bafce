import type { Observable } from 'rxjs';
import type { MappingProtocol, Nat } from '../core/nat.js';
import type { MappingState } from '../core/map-port.js';
import { natService, type NatServiceOptions } from './nat-service.js';

/**
 * go-ethereum's `nat.Map`: adds a mapping and keeps it alive until `signal` aborts, then deletes
 * it. Resolves once the mapping is deleted. Gateway errors are retried, never thrown; an invalid
 * request rejects.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * const done = natMap(extIp('203.0.113.7'), controller.signal, 'udp', 30303, 30303, 'ethereum p2p');
 * // on shutdown
 * controller.abort();
 * await done;
 * ```
 */
export async function natMap(
  nat: Nat | Observable<Nat>,
  signal: AbortSignal,
  protocol: MappingProtocol,
  externalPort: number,
  internalPort: number,
  description: string,
  options: NatServiceOptions & { readonly lifetimeSeconds?: number; readonly onState?: (state: MappingState) => void } = {},
): Promise<void> {
  const service = natService(nat, options);
  const mapping = service.newMapping(protocol, internalPort, {
    externalPort,
    description,
    ...(options.lifetimeSeconds !== undefined ? { lifetimeSeconds: options.lifetimeSeconds } : {}),
  });
  let failure: unknown;
  const watching = mapping.state$.subscribe({ next: (s) => options.onState?.(s), error: (e: unknown) => (failure = e) });
  try {
    if (!signal.aborted) {
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => resolve(), { once: true });
        // An invalid request ends the stream at once: stop waiting.
        mapping.state$.subscribe({ error: () => resolve() });
      });
    }
    await service.close();
  } finally {
    watching.unsubscribe();
  }
  if (failure) throw failure;
}
