/**
 * The only HTTP client of rxnat: one request as a cold Observable over `node:http`.
 *
 * @packageDocumentation
 */
import { request as httpRequestRaw, type IncomingHttpHeaders } from 'node:http';
import { Observable } from 'rxjs';
import { GatewayTimeoutError, GatewayUnreachableError, ProtocolError, type GatewayProtocol } from '../errors.js';

/**
 * One HTTP request.
 *
 * @example
 * ```ts
 * const req: HttpRequest = { method: 'GET', url: 'http://192.168.1.1:5000/rootDesc.xml', timeoutMs: 3000 };
 * ```
 */
export interface HttpRequest {
  readonly method: 'GET' | 'POST';
  /** An `http:` URL (anything else is refused). */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Deadline for the whole exchange (connect, send, headers and body), in ms. Default 3000. */
  readonly timeoutMs?: number;
  /** Largest response body accepted, in bytes. Default 262 144 (256 KiB). */
  readonly maxBodyBytes?: number;
  /** Local address to bind the connection to. */
  readonly localAddress?: string;
  /** Protocol named in the typed errors. Default `upnp`. */
  readonly protocol?: GatewayProtocol;
}

/**
 * A complete HTTP response. Redirects are returned as they are, never followed.
 *
 * @example
 * ```ts
 * http({ method: 'GET', url }).subscribe((res) => console.log(res.status, res.body.toString('utf8')));
 * ```
 */
export interface HttpResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The local address of the connection: the address this host uses to reach the server. */
  readonly localAddress: string;
  /** The server's address as connected. */
  readonly remoteAddress: string;
}

/**
 * Default deadline of an HTTP exchange (go-ethereum's SOAP timeout).
 *
 * @example
 * ```ts
 * http({ method: 'GET', url, timeoutMs: HTTP_DEFAULT_TIMEOUT_MS });
 * ```
 */
export const HTTP_DEFAULT_TIMEOUT_MS = 3000;
/**
 * Default largest response body.
 *
 * @example
 * ```ts
 * http({ method: 'GET', url, maxBodyBytes: HTTP_DEFAULT_MAX_BODY_BYTES });
 * ```
 */
export const HTTP_DEFAULT_MAX_BODY_BYTES = 256 * 1024;

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Sends one HTTP request when subscribed; emits the response once and completes. Unsubscribing
 * aborts the request and closes the connection. Errors are typed: refused/reset/unroutable →
 * {@link GatewayUnreachableError}; deadline → {@link GatewayTimeoutError}; non-`http:` URL,
 * oversized body or unparsable HTTP → {@link ProtocolError} (reasons `scheme`, `too-large`,
 * `http`). Connections are not kept alive.
 *
 * @example
 * ```ts
 * http({ method: 'POST', url: controlUrl, headers, body, timeoutMs: 3000, maxBodyBytes: 65536 })
 *   .subscribe({ next: (res) => console.log(res.status), error: (e) => console.error(e) });
 * ```
 */
export function http(request: HttpRequest): Observable<HttpResponse> {
  return new Observable<HttpResponse>((subscriber) => {
    const protocol = request.protocol ?? 'upnp';
    const timeoutMs = request.timeoutMs ?? HTTP_DEFAULT_TIMEOUT_MS;
    const maxBodyBytes = request.maxBodyBytes ?? HTTP_DEFAULT_MAX_BODY_BYTES;
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      subscriber.error(new ProtocolError(protocol, 'scheme', `invalid URL ${JSON.stringify(request.url)}`));
      return;
    }
    const gateway = url.href;
    if (url.protocol !== 'http:') {
      subscriber.error(new ProtocolError(protocol, 'scheme', `refusing to fetch ${url.protocol} URL ${gateway}`, gateway));
      return;
    }
    let done = false;
    let localAddress = '';
    let remoteAddress = '';
    const body = request.body === undefined ? undefined : typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : Buffer.from(request.body);
    const headers: Record<string, string> = { Host: url.host, Connection: 'close', ...request.headers };
    if (body !== undefined) headers['Content-Length'] = String(body.length);

    const req = httpRequestRaw({
      method: request.method,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port === '' ? 80 : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers,
      agent: false,
      ...(request.localAddress !== undefined ? { localAddress: request.localAddress } : {}),
    });
    const fail = (error: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      subscriber.error(error);
    };
    const timer = setTimeout(() => fail(new GatewayTimeoutError(protocol, gateway, timeoutMs)), timeoutMs);
    req.on('socket', (socket) => {
      const remember = (): void => {
        localAddress = socket.localAddress ?? localAddress;
        remoteAddress = socket.remoteAddress ?? remoteAddress;
      };
      if (socket.connecting) socket.once('connect', remember);
      else remember();
    });
    req.on('error', (error: NodeJS.ErrnoException) => fail(toHttpError(error, protocol, gateway)));
    req.on('response', (res) => {
      localAddress = res.socket?.localAddress ?? localAddress;
      remoteAddress = res.socket?.remoteAddress ?? remoteAddress;
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBodyBytes) {
        fail(new ProtocolError(protocol, 'too-large', `response body of ${declared} bytes exceeds ${maxBodyBytes}`, gateway));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBodyBytes) {
          fail(new ProtocolError(protocol, 'too-large', `response body exceeds ${maxBodyBytes} bytes`, gateway));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error: NodeJS.ErrnoException) => fail(toHttpError(error, protocol, gateway)));
      res.on('aborted', () => fail(new GatewayUnreachableError(protocol, gateway, 'connection reset while reading the response')));
      res.on('end', () => {
        if (done) return;
        if (!res.complete) {
          fail(new GatewayUnreachableError(protocol, gateway, 'connection closed before the response was complete'));
          return;
        }
        done = true;
        clearTimeout(timer);
        subscriber.next({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), localAddress, remoteAddress });
        subscriber.complete();
      });
    });
    req.end(body);
    return () => {
      clearTimeout(timer);
      if (!done) {
        done = true;
        req.destroy();
      }
    };
  });
}

/**
 * Maps a socket or parser error of `node:http` to a typed error. Exported for tests.
 *
 * @example
 * ```ts
 * toHttpError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }), 'upnp', url); // GatewayUnreachableError
 * ```
 */
export function toHttpError(error: NodeJS.ErrnoException, protocol: GatewayProtocol, gateway: string): Error {
  const code = error.code ?? '';
  if (UNREACHABLE_CODES.has(code) || error.message === 'socket hang up') {
    return new GatewayUnreachableError(protocol, gateway, code || error.message, { cause: error });
  }
  if (code.startsWith('HPE_')) return new ProtocolError(protocol, 'http', `malformed HTTP response (${code})`, gateway);
  return new GatewayUnreachableError(protocol, gateway, error.message, { cause: error });
}
