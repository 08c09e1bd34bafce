/**
 * Where rxnat reports what it does: discovery, every request and reply, retries, teardown.
 * Pass one in the options, or set `DEBUG=rxnat:*` to get the default one on stderr.
 *
 * @example
 * ```ts
 * const logger: Logger = { debug: (ns, msg, data) => console.log(`[${ns}] ${msg}`, data ?? '') };
 * mapPort(nat, request, { logger });
 * ```
 */
export interface Logger {
  /** `namespace` is one of `rxnat:map`, `rxnat:discover`, `rxnat:pmp`, `rxnat:pcp`, `rxnat:upnp`, `rxnat:cli`. */
  debug(namespace: string, message: string, data?: Record<string, unknown>): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug: () => undefined };

const patterns = (): RegExp[] => {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DEBUG ?? '';
  return env
    .split(/[\s,]+/)
    .filter((p) => p && !p.startsWith('-'))
    .map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
};

/**
 * The default logger: writes to stderr the namespaces enabled by the `DEBUG` environment
 * variable (`DEBUG=rxnat:*`, `DEBUG=rxnat:upnp,rxnat:map`), the ecosystem's convention.
 *
 * @example
 * ```ts
 * // DEBUG=rxnat:* node app.js
 * mapPort(nat, request, { logger: debugLogger });
 * ```
 */
export const debugLogger: Logger = {
  debug(namespace, message, data) {
    const enabled = patterns();
    if (!enabled.some((p) => p.test(namespace))) return;
    console.error(`${namespace} ${message}${data ? ` ${JSON.stringify(data, errorReplacer)}` : ''}`);
  },
};

const errorReplacer = (_key: string, value: unknown): unknown =>
  value instanceof Error ? { name: value.name, message: value.message } : value;
