/**
 * What the transport logs through: the one method it calls. The core's `Logger` has this shape,
 * so a caller passes its logger down unchanged, while `src/transport` imports nothing from
 * `src/core`.
 *
 * @packageDocumentation
 */

/**
 * A debug sink: `namespace` is `rxnat:<protocol>` (`rxnat:pmp`, `rxnat:pcp`, `rxnat:upnp`).
 *
 * @example
 * ```ts
 * const logger: TransportLogger = { debug: (namespace, message) => console.error(namespace, message) };
 * ```
 */
export interface TransportLogger {
  /** Records one debug message of `namespace`, with structured `data` where there is some. */
  debug(namespace: string, message: string, data?: Record<string, unknown>): void;
}
