/**
 * How failed requests are retried: capped exponential backoff with jitter.
 *
 * @example
 * ```ts
 * mapPort(nat, request, { retry: { initialDelayMs: 500, maxDelayMs: 30_000, jitter: 0.1 } });
 * ```
 */
export interface RetryOptions {
  /** Delay before the first retry. Default 1000 ms. */
  readonly initialDelayMs?: number;
  /** The delay doubles per failure up to this cap. Default 60 000 ms. */
  readonly maxDelayMs?: number;
  /** Each delay is spread by ± this fraction so that many clients don't retry in step. Default 0.2. */
  readonly jitter?: number;
}

/**
 * The delay before retry number `attempt` (1 for the first retry).
 * `random` returns a number in [0, 1); 0.5 gives the delay without jitter.
 *
 * @example
 * ```ts
 * backoffDelayMs(3, {}, () => 0.5); // 4000
 * ```
 */
export function backoffDelayMs(attempt: number, options: RetryOptions, random: () => number): number {
  const initial = options.initialDelayMs ?? 1000;
  const max = options.maxDelayMs ?? 60_000;
  const jitter = options.jitter ?? 0.2;
  const base = Math.min(max, initial * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}
