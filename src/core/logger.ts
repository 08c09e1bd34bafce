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

/**
 * How {@link createDebugLogger} is wired. Every field has a default; tests and embedders inject
 * their own (a virtual clock, a sink that is not stderr, a compile hook that counts).
 */
export interface DebugLoggerOptions {
  /**
   * Where the namespace list is read from on first use and on every `enable()` without an
   * argument. Default: `process.env.DEBUG`.
   */
  readonly source?: () => string | undefined;
  /** Where a finished line goes. Default: `console.error`. */
  readonly write?: (line: string) => void;
  /** Milliseconds on any monotonic origin, for the `+12ms` deltas. Default: `performance.now()`. */
  readonly now?: () => number;
  /** Builds the include and exclude matchers from a regular-expression source. Default: `new RegExp(source)`. */
  readonly compile?: (source: string) => RegExp;
}

/** A {@link Logger} filtered by `debug`-style namespace patterns, as built by {@link createDebugLogger}. */
export interface DebugLogger extends Logger {
  /**
   * Switches to a new namespace list (`'rxnat:*,-rxnat:pmp'`); without an argument, re-reads the
   * source (`process.env.DEBUG`). Patterns are recompiled only when the list actually changed.
   */
  enable(namespaces?: string): void;
  /** Whether a line in `namespace` would be written, for callers that want to skip building costly messages. */
  enabled(namespace: string): boolean;
  /** The namespace list in force (`''` when nothing is enabled). */
  readonly namespaces: string;
}

/** Past this many distinct namespaces the verdict cache starts over, so arbitrary names cannot grow it without bound. */
const MAX_CACHED_NAMESPACES = 512;

const readDebugEnv = (): string | undefined =>
  (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DEBUG;

const writeStderr = (line: string): void => console.error(line);

// A monotonic clock for deltas only; nothing in the streams depends on it, and `now` replaces it.
const monotonicMs = (): number => globalThis.performance?.now() ?? 0;

/** One anchored alternation for a list of `*` patterns; every other character is literal. */
const anyOf = (patterns: readonly string[]): string =>
  `^(?:${patterns.map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')).join('|')})$`;

const humanize = (ms: number): string => {
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
};

/** JSON of `data` that never throws: errors become their fields, bigints strings, cycles a note. */
const serialise = (data: Record<string, unknown>): string => {
  const seen = new Set<Error>();
  try {
    return (
      JSON.stringify(data, (_key, value: unknown) => {
        if (typeof value === 'bigint') return value.toString();
        if (!(value instanceof Error)) return value;
        if (seen.has(value)) return `[repeated ${value.name}: ${value.message}]`;
        seen.add(value);
        return errorFields(value);
      }) ?? String(data)
    );
  } catch (error) {
    // First line only: V8's circular-structure message spans several, and a log line must not.
    return `[unserialisable data: ${(error instanceof Error ? error.message : String(error)).split('\n', 1)[0]}]`;
  }
};

/** `name`, `message`, `code` first, then the error's own fields (`errno`, `syscall`, `field`…), `cause`, `errors`. */
const errorFields = (error: Error): Record<string, unknown> => {
  const fields: Record<string, unknown> = { name: error.name, message: error.message };
  const { code } = error as { code?: unknown };
  if (code !== undefined) fields.code = code;
  for (const [key, value] of Object.entries(error)) if (!Object.hasOwn(fields, key)) fields[key] = value;
  if (error.cause !== undefined) fields.cause = error.cause;
  if (error instanceof AggregateError) fields.errors = error.errors;
  return fields;
};

/**
 * Builds a logger that follows the conventions of the `debug` package: the namespace list is
 * comma- or space-separated, `*` matches any run of characters, a leading `-` excludes and an
 * exclusion wins over any inclusion (`DEBUG='rxnat:*,-rxnat:pmp'` is everything but NAT-PMP).
 * Each line reads `namespace message {"data":…} +12ms`, the delta since the previous line in the
 * same namespace; `Error`s in `data` keep their `name`, `message`, `code`, own fields and `cause`.
 *
 * The list is read once, on the first call, and compiled into two regular expressions; each
 * namespace's verdict is then cached, so a disabled call is one `Map` lookup. Reading
 * `process.env` costs far more than that (it calls into the runtime), so a later change to
 * `process.env.DEBUG` is picked up by `enable()`, not by polling; `debug` behaves the same way.
 *
 * @example
 * ```ts
 * const logger = createDebugLogger({ write: (line) => lines.push(line) });
 * logger.enable('rxnat:*,-rxnat:pmp');
 * mapPort(nat, request, { logger });
 * ```
 */
export function createDebugLogger(options: DebugLoggerOptions = {}): DebugLogger {
  const source = options.source ?? readDebugEnv;
  const write = options.write ?? writeStderr;
  const now = options.now ?? monotonicMs;
  const compile = options.compile ?? ((pattern: string) => new RegExp(pattern));
  /** `undefined` until the first call or `enable()`: the source is read lazily. */
  let current: string | undefined;
  let include: RegExp | undefined;
  let exclude: RegExp | undefined;
  const verdicts = new Map<string, boolean>();
  const previous = new Map<string, number>();

  const use = (namespaces: string): void => {
    if (namespaces === current) return;
    current = namespaces;
    const names: string[] = [];
    const skips: string[] = [];
    for (const pattern of namespaces.split(/[\s,]+/)) {
      if (pattern === '' || pattern === '-') continue;
      if (pattern.startsWith('-')) skips.push(pattern.slice(1));
      else names.push(pattern);
    }
    include = names.length > 0 ? compile(anyOf(names)) : undefined;
    exclude = skips.length > 0 ? compile(anyOf(skips)) : undefined;
    verdicts.clear();
  };

  const decide = (namespace: string): boolean => {
    if (current === undefined) use(source() ?? '');
    const verdict = include !== undefined && include.test(namespace) && !(exclude !== undefined && exclude.test(namespace));
    if (verdicts.size >= MAX_CACHED_NAMESPACES) verdicts.clear();
    verdicts.set(namespace, verdict);
    return verdict;
  };

  return {
    debug(namespace, message, data) {
      if (!(verdicts.get(namespace) ?? decide(namespace))) return;
      const at = now();
      const delta = at - (previous.get(namespace) ?? at);
      previous.set(namespace, at);
      write(`${namespace} ${message}${data === undefined ? '' : ` ${serialise(data)}`} +${humanize(delta)}`);
    },
    enable(namespaces) {
      use(namespaces ?? source() ?? '');
    },
    enabled(namespace) {
      return verdicts.get(namespace) ?? decide(namespace);
    },
    get namespaces() {
      if (current === undefined) use(source() ?? '');
      return current ?? '';
    },
  };
}

const defaultLogger = createDebugLogger();

/**
 * The default logger: writes to stderr the namespaces enabled by the `DEBUG` environment
 * variable (`DEBUG=rxnat:*`, `DEBUG='rxnat:*,-rxnat:pmp'`), the conventions of the `debug`
 * package; see {@link createDebugLogger} for the format. `DEBUG` is read on the first call;
 * call {@link enableDebug} after changing it at run time.
 *
 * @example
 * ```ts
 * // DEBUG=rxnat:* node app.js
 * mapPort(nat, request, { logger: debugLogger });
 * ```
 */
export const debugLogger: Logger = defaultLogger;

/**
 * Changes what {@link debugLogger} prints: `enableDebug('rxnat:upnp,rxnat:map')` switches to that
 * list, `enableDebug('')` silences it, `enableDebug()` re-reads `process.env.DEBUG`.
 *
 * @example
 * ```ts
 * process.env.DEBUG = 'rxnat:*,-rxnat:pmp';
 * enableDebug();
 * ```
 */
export function enableDebug(namespaces?: string): void {
  defaultLogger.enable(namespaces);
}
