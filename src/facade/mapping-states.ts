import type { Observable } from 'rxjs';
import type { MappingState } from '../core/map-port.js';
import type { MappingRequest, Nat } from '../core/nat.js';
import { natService, type NatMapping, type NatServiceOptions } from './nat-service.js';

/**
 * Options of {@link mappingStates}: those of {@link mapPort} (but `stop`: use `signal`), the
 * close bound of {@link NatServiceOptions.closeTimeoutMs}, and the signal that ends it.
 *
 * @example
 * ```ts
 * const options: MappingStatesOptions = { signal: AbortSignal.timeout(60_000), teardownTimeoutMs: 2_000 };
 * ```
 */
export interface MappingStatesOptions extends Omit<NatServiceOptions, 'signal'> {
  /**
   * Aborting it stops the mapping gracefully: it is deleted, the loop gets the last `unmapped`
   * state (its `error` `null` when the gateway confirmed the delete, else an
   * {@link UnconfirmedDeleteError}) and ends; nothing is thrown. Already aborted: the loop gets
   * one `unmapped` state and ends, and nothing is sent to the gateway.
   */
  readonly signal?: AbortSignal;
}

/**
 * A mapping as an async iterator of its states, for `for await`: {@link mapPort} for code that
 * is not reactive. Nothing is sent before the first step of the loop; then the mapping is added
 * and renewed, and every change of its state is yielded.
 *
 * - **Only the latest state is kept**: a loop body slower than the mapping skips the states
 *   superseded while it was busy (memory stays one state, however slow), but always sees the
 *   last one before the end.
 * - **Aborting `signal`** deletes the mapping; the loop ends after the last `unmapped` state,
 *   whose `error` says whether the gateway confirmed the delete. Nothing is thrown.
 * - **Leaving the loop** (`break`, `return`, an exception: the iterator's `return()`) deletes
 *   the mapping and waits for it. When the gateway did not confirm the delete, the `break`
 *   throws the {@link UnconfirmedDeleteError}; when the loop body threw, its error propagates
 *   instead (the delete still happens).
 * - Gateway errors never end the loop (they are states, as in {@link mapPort}); an invalid
 *   request or option throws from the loop at its first step.
 *
 * One iteration only (an iterator, not a reusable iterable): call it again for another mapping.
 *
 * @example
 * ```ts
 * import { discoverNat, mappingStates } from 'rxnat';
 * const controller = new AbortController();
 * process.once('SIGINT', () => controller.abort());
 * for await (const state of mappingStates(discoverNat(), { protocol: 'udp', internalPort: 4001 }, { signal: controller.signal })) {
 *   console.log(state.status, state.externalIp, state.externalPort);
 * }
 * // here the mapping is deleted (or the last state's error says what may remain)
 * ```
 */
export function mappingStates(nat: Nat | Observable<Nat>, request: MappingRequest, options: MappingStatesOptions = {}): AsyncIterableIterator<MappingState> {
  let states: AsyncIterableIterator<MappingState> | undefined;
  let returned = false;
  const start = (): AsyncIterableIterator<MappingState> => {
    if (states === undefined) {
      const { signal, ...serviceOptions } = options;
      const { protocol, internalPort, ...mappingOptions } = request ?? ({} as MappingRequest);
      const mapping: NatMapping = natService(nat, serviceOptions).newMapping(protocol, internalPort, { ...mappingOptions, ...(signal ? { signal } : {}) });
      states = mapping[Symbol.asyncIterator]();
    }
    return states;
  };
  const iterator: AsyncIterableIterator<MappingState> = {
    async next() {
      if (returned) return { done: true, value: undefined };
      return start().next();
    },
    async return() {
      if (returned) return { done: true, value: undefined };
      returned = true;
      // Never stepped: nothing was started, nothing to delete.
      return states?.return?.() ?? { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
