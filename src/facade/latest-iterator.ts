/**
 * An Observable as an async iterator that keeps only the latest value: what `for await` over a
 * mapping's states uses. A slow consumer skips states that were superseded before it asked for
 * the next one; memory stays one value, however slow it is.
 *
 * @packageDocumentation
 */
import type { Observable, Subscription } from 'rxjs';

/**
 * Iterates `source$`, conflated: each `next()` resolves with the newest value not yet delivered
 * (values superseded while nobody asked are dropped), waiting for one when there is none. The
 * source is subscribed at the first `next()`. The last value before the source completes is
 * always delivered, then `done`. An error of the source rejects the pending or next `next()`,
 * once; `done` after that. `return()` (a `break` out of `for await`) unsubscribes, waits for
 * `onReturn()` and settles as it does (a rejection of `onReturn()` rejects `return()`, and so
 * surfaces at the `break`). One `next()` at a time (as `for await` does): a second one while
 * the first is pending rejects.
 *
 * @example
 * ```ts
 * const states = latestValues(mapping.state$, () => mapping.close());
 * for await (const s of states) if (s.status === 'mapped') break; // waits for the close
 * ```
 */
export function latestValues<T>(source$: Observable<T>, onReturn: () => Promise<void>): AsyncIterableIterator<T> {
  let subscription: Subscription | undefined;
  let started = false;
  let latest: { readonly value: T } | null = null;
  let failure: { readonly error: unknown } | null = null;
  let completed = false;
  let returned = false;
  let waiting: { resolve(result: IteratorResult<T>): void; reject(error: unknown): void } | null = null;

  const wake = (): void => {
    const waiter = waiting;
    if (waiter === null) return;
    const result = take();
    if (result === null) return;
    waiting = null;
    if ('error' in result) waiter.reject(result.error);
    else waiter.resolve(result);
  };

  /** What the next `next()` gets now, or `null` when it has to wait. */
  const take = (): IteratorResult<T> | { readonly error: unknown } | null => {
    if (returned) return { done: true, value: undefined };
    if (latest !== null) {
      const { value } = latest;
      latest = null;
      return { done: false, value };
    }
    if (failure !== null) {
      const { error } = failure;
      failure = null;
      completed = true; // done from now on
      return { error };
    }
    if (completed) return { done: true, value: undefined };
    return null;
  };

  const start = (): void => {
    started = true;
    subscription = source$.subscribe({
      next: (value) => {
        latest = { value };
        wake();
      },
      error: (error: unknown) => {
        failure = { error };
        wake();
      },
      complete: () => {
        completed = true;
        wake();
      },
    });
  };

  const iterator: AsyncIterableIterator<T> = {
    next() {
      if (!started && !returned) start();
      if (waiting !== null) return Promise.reject(new Error('next() called again before the previous next() settled'));
      const result = take();
      if (result === null) return new Promise<IteratorResult<T>>((resolve, reject) => (waiting = { resolve, reject }));
      return 'error' in result ? Promise.reject(result.error) : Promise.resolve(result);
    },
    async return() {
      if (returned) return { done: true, value: undefined };
      returned = true;
      latest = null;
      subscription?.unsubscribe();
      wake();
      await onReturn();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
