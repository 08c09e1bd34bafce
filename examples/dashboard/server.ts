/**
 * The dashboard's server: mapping streams bound to a web page.
 *
 * It starts the gateway simulator on 127.0.0.1, maps one port through each backend (PCP,
 * NAT-PMP, UPnP — as `rxnat demo` does), and serves a page that shows every mapping's
 * {@link MappingState} live. The bridge is server-sent events: each state a stream emits is
 * pushed to every open page as an SSE `mapping` event; the gateway's own table follows as
 * `gateway` events. A POST stops one mapping (the stream deletes it on the gateway, emits a
 * last `unmapped` state and completes); another POST changes the simulator's external address.
 *
 * Network safety: the HTTP server binds 127.0.0.1 only, and every backend is pointed at the
 * loopback simulator (no discovery, nothing sent anywhere else).
 *
 * Imports: the README's examples import `from 'rxnat'` and `from 'rxnat/testing'`, which is
 * what your own project writes. Inside this repository that name would resolve to the built
 * `dist/` (the package's `exports`), so the example imports the TypeScript source instead and
 * runs with tsx, without a build.
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Subject, type Observable, type Subscription } from 'rxjs';
import { mapPort, pcp, pmp, upnp, type MappingProtocol, type MappingState, type Nat } from '../../src/index.js';
import { startGatewaySimulator, type GatewaySimulator } from '../../src/testing/index.js';

/** The loopback address the page is served on; not configurable on purpose. */
export const DASHBOARD_HOST = '127.0.0.1';
/** Lease asked for: short, so renewals (at a third of it) show on the page every 2 s. */
const LIFETIME_SECONDS = 6;
/** How often the streams re-read the external address (library default: 15 s). */
const EXTERNAL_IP_CHECK_MS = 1000;
/** Bound on each delete on the wire when a mapping is stopped. */
const TEARDOWN_TIMEOUT_MS = 3000;
/** How long {@link Dashboard.close} waits for the graceful stops before it unsubscribes. */
const CLOSE_WAIT_MS = 6000;
/** How often the simulator's table is looked at (pushed to the pages when it changed). */
const TABLE_POLL_MS = 500;

/** The three mappings, one per backend, as in `rxnat demo`. */
export type MappingId = 'pcp' | 'pmp' | 'upnp';

interface MappingSpec {
  readonly id: MappingId;
  readonly label: string;
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly nat$: (sim: GatewaySimulator) => Observable<Nat>;
}

const MAPPINGS: readonly MappingSpec[] = [
  {
    id: 'pcp',
    label: 'PCP',
    protocol: 'tcp',
    internalPort: 8080,
    nat$: (sim) => pcp(sim.address, { port: sim.pcpPort, localAddress: sim.address, fallbackToPmp: false }),
  },
  {
    id: 'pmp',
    label: 'NAT-PMP',
    protocol: 'udp',
    internalPort: 30303,
    nat$: (sim) => pmp(sim.address, { port: sim.pmpPort, localAddress: sim.address }),
  },
  {
    id: 'upnp',
    label: 'UPnP IGD',
    protocol: 'tcp',
    internalPort: 8443,
    nat$: (sim) => upnp({ ssdpTargets: [sim.ssdpTarget], localAddress: sim.address, timeoutMs: 1500 }),
  },
];

/** A {@link MappingState} as JSON: the error reduced to what the page shows. */
export type WireState = Omit<MappingState, 'error'> & {
  readonly error: { readonly name: string; readonly code: string | null; readonly message: string } | null;
};

/** One row of the page: an SSE `mapping` event's data. */
export interface MappingRow {
  readonly id: MappingId;
  readonly label: string;
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** `live` while subscribed, `stopping` after the button until the stream completes, then `stopped`. */
  readonly phase: 'live' | 'stopping' | 'stopped';
  /** The stream's last state; `null` before the first. */
  readonly state: WireState | null;
}

/** The gateway's side: an SSE `gateway` event's data. */
export interface GatewayView {
  readonly externalIp: string;
  readonly table: readonly {
    readonly protocol: MappingProtocol;
    readonly externalPort: number;
    readonly internalClient: string;
    readonly internalPort: number;
    readonly via: 'upnp' | 'pmp' | 'pcp';
    readonly remainingSeconds: number;
  }[];
}

export interface DashboardOptions {
  /** TCP port on 127.0.0.1; 0 (the default) picks a free one. */
  readonly port?: number;
}

/** A running dashboard. */
export interface Dashboard {
  /** The page, e.g. `http://127.0.0.1:41234/`. */
  readonly url: string;
  /** The embedded gateway simulator (for tests: its table). */
  readonly sim: GatewaySimulator;
  /** The rows as the page sees them. */
  rows(): MappingRow[];
  /** Stops one mapping, as its button does; resolves when its stream has completed. */
  unmap(id: MappingId): Promise<void>;
  /** Changes the simulator's external address (`ip`, or the next of 198.51.100.10, .11, …). */
  changeExternalIp(ip?: string): string;
  /** Stops every mapping (waiting for the deletes, bounded), then closes the pages, server and simulator. */
  close(): Promise<void>;
}

/** One mapping stream and what the page knows of it. */
class LiveMapping {
  row: MappingRow;
  /** Resolves when the stream has completed (or errored). */
  readonly done: Promise<void>;
  private readonly stop$ = new Subject<void>();
  private readonly subscription: Subscription;

  constructor(
    spec: MappingSpec,
    sim: GatewaySimulator,
    private readonly publish: (row: MappingRow) => void,
  ) {
    this.row = { id: spec.id, label: spec.label, protocol: spec.protocol, internalPort: spec.internalPort, phase: 'live', state: null };
    let finish = (): void => {};
    this.done = new Promise((resolve) => (finish = resolve));
    this.subscription = mapPort(
      spec.nat$(sim),
      { protocol: spec.protocol, internalPort: spec.internalPort, lifetimeSeconds: LIFETIME_SECONDS, description: `rxnat dashboard ${spec.id}` },
      { stop: this.stop$, externalIpCacheMs: EXTERNAL_IP_CHECK_MS, teardownTimeoutMs: TEARDOWN_TIMEOUT_MS },
    ).subscribe({
      next: (state) => this.update({ state: toWire(state) }),
      complete: () => {
        this.update({ phase: 'stopped' });
        finish();
      },
      // Only a request the caller got wrong ends a stream with an error: show it, as unmapped.
      error: (error: unknown) => {
        const last = this.row.state;
        const state: WireState = {
          status: 'unmapped',
          protocol: spec.protocol,
          internalPort: spec.internalPort,
          externalPort: 0,
          externalIp: null,
          lifetimeSeconds: null,
          backend: last?.backend ?? null,
          doubleNat: false,
          renewals: last?.renewals ?? 0,
          error: wireError(error),
        };
        this.update({ phase: 'stopped', state });
        finish();
      },
    });
  }

  /** Graceful stop: the stream deletes the mapping on the gateway, emits `unmapped`, completes. */
  stop(): Promise<void> {
    if (this.row.phase === 'live') {
      this.update({ phase: 'stopping' });
      this.stop$.next();
    }
    return this.done;
  }

  /** Plain unsubscribe (the library still sends the delete, in the background). */
  unsubscribe(): void {
    this.subscription.unsubscribe();
  }

  private update(change: Partial<MappingRow>): void {
    this.row = { ...this.row, ...change };
    this.publish(this.row);
  }
}

function wireError(error: unknown): WireState['error'] {
  if (!(error instanceof Error)) return { name: 'Error', code: null, message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { name: error.name, code: typeof code === 'string' ? code : null, message: error.message };
}

function toWire(state: MappingState): WireState {
  return { ...state, error: state.error ? wireError(state.error) : null };
}

/** The page's files, served from this folder; nothing else is. */
const STATIC_FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
};

/**
 * Starts the simulator, the three mapping streams and the page's server on 127.0.0.1.
 *
 * @example
 * ```ts
 * const dashboard = await startDashboard();
 * console.log(dashboard.url);
 * await dashboard.close();
 * ```
 */
export async function startDashboard(options: DashboardOptions = {}): Promise<Dashboard> {
  const sim = await startGatewaySimulator({ pmpPcp: { pcpMinLifetimeSeconds: 1 } });
  const pages = new Set<ServerResponse>();
  const send = (event: 'mapping' | 'gateway', data: unknown, to: Iterable<ServerResponse> = pages): void => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const page of to) page.write(frame);
  };

  const gatewayView = (): GatewayView => ({
    externalIp: sim.table.externalIp,
    table: sim.table.list().map((m) => ({
      protocol: m.protocol,
      externalPort: m.externalPort,
      internalClient: m.internalClient,
      internalPort: m.internalPort,
      via: m.via,
      remainingSeconds: sim.table.remainingSeconds(m),
    })),
  });
  let lastGateway = '';
  const pushGatewayIfChanged = (): void => {
    const view = gatewayView();
    const json = JSON.stringify(view);
    if (json !== lastGateway) {
      lastGateway = json;
      send('gateway', view);
    }
  };
  const poll = setInterval(pushGatewayIfChanged, TABLE_POLL_MS);

  const mappings = new Map<MappingId, LiveMapping>();
  for (const spec of MAPPINGS) mappings.set(spec.id, new LiveMapping(spec, sim, (row) => send('mapping', row)));

  let ipChanges = 0;
  const changeExternalIp = (ip?: string): string => {
    const next = ip ?? `198.51.100.${10 + (ipChanges++ % 240)}`;
    if (isIP(next) !== 4) throw new RangeError(`not an IPv4 address: ${JSON.stringify(next)}`);
    sim.setExternalIp(next);
    pushGatewayIfChanged();
    return next;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: error instanceof Error ? error.message : String(error) });
      else res.end();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'GET' && path === '/events') return openEvents(req, res);
    if (req.method === 'GET' && path === '/api/state') return json(res, 200, { mappings: rows(), gateway: gatewayView() });
    if (req.method === 'GET' && STATIC_FILES[path]) {
      const { file, type } = STATIC_FILES[path];
      const body = await readFile(join(import.meta.dirname, file));
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
      return;
    }
    if (req.method === 'POST') {
      // A page of another origin may not press our buttons.
      if (req.headers.origin !== undefined && req.headers.origin !== `http://${req.headers.host}`) return json(res, 403, { error: 'cross-origin request' });
      const unmap = /^\/api\/mappings\/([a-z]+)\/unmap$/.exec(path);
      if (unmap) {
        const mapping = mappings.get(unmap[1] as MappingId);
        if (!mapping) return json(res, 404, { error: `no mapping ${unmap[1]}` });
        void mapping.stop(); // the page learns the outcome from the stream's states
        return json(res, 202, mapping.row);
      }
      if (path === '/api/external-ip') {
        const body = await readBody(req); // optional: {"ip": "198.51.100.99"}
        try {
          const ip = body === '' ? undefined : (JSON.parse(body) as { ip?: string }).ip;
          return json(res, 200, { externalIp: changeExternalIp(ip) });
        } catch (error) {
          return json(res, 400, { error: error instanceof Error ? error.message : String(error) });
        }
      }
    }
    json(res, 404, { error: `not found: ${req.method} ${path}` });
  }

  /** An SSE stream: the current rows and gateway at once, then every change. */
  function openEvents(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 1000\n\n'); // the page reconnects after 1 s if the connection drops
    for (const row of rows()) send('mapping', row, [res]);
    send('gateway', gatewayView(), [res]);
    pages.add(res);
    req.on('close', () => pages.delete(res));
  }

  const rows = (): MappingRow[] => [...mappings.values()].map((m) => m.row);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, DASHBOARD_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch(async (error: unknown) => {
    clearInterval(poll);
    for (const m of mappings.values()) m.unsubscribe();
    await sim.close();
    throw error;
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      const stops = Promise.all([...mappings.values()].map((m) => m.stop()));
      await Promise.race([stops, new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref())]);
      for (const m of mappings.values()) m.unsubscribe();
      clearInterval(poll);
      pushGatewayIfChanged();
      for (const page of pages) page.end();
      pages.clear();
      await closeServer(server);
      await sim.close();
    })());

  return {
    url: `http://${DASHBOARD_HOST}:${port}/`,
    sim,
    rows,
    unmap: (id) => mappings.get(id)?.stop() ?? Promise.reject(new Error(`no mapping ${id}`)),
    changeExternalIp,
    close,
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > 10_000) throw new Error('request body too large');
  }
  return body;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
