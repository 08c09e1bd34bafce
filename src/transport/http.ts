/**
 * The only HTTP client of rxnat: one request as a cold Observable over `node:http`, its deadline
 * on a scheduler. The I/O is an {@link HttpSend}, so tests run the same checks and deadline over
 * an in-memory server in virtual time.
 *
 * @packageDocumentation
 */
import type { IncomingHttpHeaders, request as NodeHttpRequest } from 'node:http';
import { asyncScheduler, Observable, throwError, timeout, type SchedulerLike } from 'rxjs';
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
  /** Scheduler of the deadline. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
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
 * The I/O of one request, without deadline: `url` is the request's URL, already checked to be
 * `http:`. Emits the response once and completes; unsubscribing aborts. {@link nodeHttpSend} is
 * the real one; a test passes an in-memory one to {@link createHttp}.
 *
 * @example
 * ```ts
 * const send: HttpSend = (request, url) => of({ status: 200, headers: {}, body: Buffer.from('<root/>'), localAddress: '192.168.1.10', remoteAddress: url.hostname });
 * ```
 */
export type HttpSend = (request: HttpRequest, url: URL) => Observable<HttpResponse>;

/**
 * Builds {@link http} over another {@link HttpSend}: the URL check, the deadline (on
 * `request.scheduler`) and the typed errors are the same.
 *
 * @example
 * ```ts
 * const fakeHttp = createHttp((request, url) => timer(50, scheduler).pipe(map(() => response)));
 * ```
 */
export function createHttp(send: HttpSend): (request: HttpRequest) => Observable<HttpResponse> {
  return (request) =>
    new Observable<HttpResponse>((subscriber) => {
      const protocol = request.protocol ?? 'upnp';
      const timeoutMs = request.timeoutMs ?? HTTP_DEFAULT_TIMEOUT_MS;
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
      return send(request, url)
        .pipe(
          timeout({
            first: timeoutMs,
            scheduler: request.scheduler ?? asyncScheduler,
            with: () => throwError(() => new GatewayTimeoutError(protocol, gateway, timeoutMs)),
          }),
        )
        .subscribe(subscriber);
    });
}

/**
 * One request over `node:http`, without deadline ({@link createHttp} adds it): the
 * {@link HttpSend} behind {@link http}.
 *
 * @example
 * ```ts
 * nodeHttpSend({ method: 'GET', url }, new URL(url)).subscribe((res) => console.log(res.status));
 * ```
 */
export const nodeHttpSend: HttpSend = (request, url) =>
  new Observable<HttpResponse>((subscriber) => {
    const protocol = request.protocol ?? 'upnp';
    const maxBodyBytes = request.maxBodyBytes ?? HTTP_DEFAULT_MAX_BODY_BYTES;
    const gateway = url.href;
    let done = false;
    let localAddress = '';
    let remoteAddress = '';
    const body = request.body === undefined ? undefined : typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : Buffer.from(request.body);
    const headers: Record<string, string> = { Host: url.host, Connection: 'close', ...request.headers };
    if (body !== undefined) headers['Content-Length'] = String(body.length);

    // node:http is loaded on the first request, not at import: NAT-PMP and PCP never need it,
    // and the whole HTTP stack costs the CLI ~8 ms of start-up (bench startup section).
    const httpRequestRaw = (process.getBuiltinModule('node:http') as { request: typeof NodeHttpRequest }).request;
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
      req.destroy();
      subscriber.error(error);
    };
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
        subscriber.next({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), localAddress, remoteAddress });
        subscriber.complete();
      });
    });
    req.end(body);
    return () => {
      if (!done) {
        done = true;
        req.destroy();
      }
    };
  });

/**
 * Sends one HTTP request when subscribed; emits the response once and completes. Unsubscribing
 * aborts the request and closes the connection. Errors are typed: refused/reset/unroutable →
 * {@link GatewayUnreachableError}; deadline (on `request.scheduler`) → {@link GatewayTimeoutError};
 * non-`http:` URL, oversized body or unparsable HTTP → {@link ProtocolError} (reasons `scheme`,
 * `too-large`, `http`). Connections are not kept alive.
 *
 * @example
 * ```ts
 * http({ method: 'POST', url: controlUrl, headers, body, timeoutMs: 3000, maxBodyBytes: 65536 })
 *   .subscribe({ next: (res) => console.log(res.status), error: (e) => console.error(e) });
 * ```
 */
export const http: (request: HttpRequest) => Observable<HttpResponse> = createHttp(nodeHttpSend);

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
