import { defer, from, type Observable } from 'rxjs';
import { DefaultGatewayError } from '../errors.js';

/** The router on this machine's default IPv4 route. */
export interface DefaultGateway {
  /** The router's address, for example `192.168.1.1`. */
  readonly gateway: string;
  /** The interface the route goes out of, where known. */
  readonly interface: string | null;
}

/** How long a looked-up default gateway is reused before `ip route` is asked again. */
const CACHE_MS = 30_000;
let cached: { readonly at: number; readonly value: DefaultGateway } | undefined;

/**
 * The default IPv4 gateway, looked up with the `default-gateway` package (which spawns
 * `ip -4 route` on Linux) and cached for 30 s. Its failures become a {@link DefaultGatewayError}
 * whose `reason` says what to do: `no-default-route`, `ip-missing`, `unsupported-route`.
 *
 * @example
 * ```ts
 * defaultGateway().subscribe(({ gateway }) => console.log('router at', gateway));
 * ```
 */
export function defaultGateway(): Observable<DefaultGateway> {
  return defer(() => {
    if (cached && Date.now() - cached.at < CACHE_MS) return [cached.value];
    return from(lookup());
  });
}

/** Forgets the cached default gateway (after a network change). */
export function clearDefaultGatewayCache(): void {
  cached = undefined;
}

async function lookup(): Promise<DefaultGateway> {
  try {
    // Loaded on first use: it brings most of rxnat's installed packages and is only needed when
    // no gateway address is given.
    const { gateway4async } = await import('default-gateway');
    const result = await gateway4async();
    const value: DefaultGateway = { gateway: result.gateway, interface: result.int ?? null };
    cached = { at: Date.now(), value };
    return value;
  } catch (error) {
    throw toDefaultGatewayError(error);
  }
}

/** Maps what `default-gateway` throws to a typed error. Exported for tests. */
export function toDefaultGatewayError(error: unknown): DefaultGatewayError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') {
    return new DefaultGatewayError('ip-missing', 'cannot find the default gateway: the `ip` command is not installed; pass the gateway address explicitly', { cause: error });
  }
  if (error instanceof TypeError) {
    // default-gateway 7 throws a TypeError on `default dev tun0` routes (VPN, PPP): no router address.
    return new DefaultGatewayError('unsupported-route', 'the default route names no router address (VPN or point-to-point link?); pass the gateway address explicitly', { cause: error });
  }
  if (error instanceof Error && /Unable to determine default gateway/.test(error.message)) {
    return new DefaultGatewayError('no-default-route', 'this machine has no default IPv4 route; pass the gateway address explicitly', { cause: error });
  }
  return new DefaultGatewayError('failed', `cannot find the default gateway: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
