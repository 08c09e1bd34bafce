/**
 * The shape of `bench/results/<ISO>.json`: everything a run measured, raw samples included, so
 * the report (and any later analysis) is computed from the file alone.
 *
 * @packageDocumentation
 */
import type { ContestantKind, LabGateway } from '../latency/contestants.js';
import type { Summary } from './stats.js';

/** The sections of the bench. */
export type Section = 'latency' | 'startup' | 'scale' | 'footprint' | 'teardown' | 'soak-short';
export const SECTIONS: readonly Section[] = ['latency', 'startup', 'scale', 'footprint', 'teardown', 'soak-short'];

/** Where each section's results live in {@link BenchResults}. */
export const SECTION_KEYS = {
  latency: 'latency',
  startup: 'startup',
  scale: 'scale',
  footprint: 'footprint',
  teardown: 'teardown',
  'soak-short': 'soakShort',
} as const satisfies Record<Section, string>;
export type SectionKey = (typeof SECTION_KEYS)[Section];

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly node: string;
  readonly v8: string;
  readonly os: { readonly platform: string; readonly release: string; readonly distro: string; readonly arch: string };
  readonly hostname: string;
  /** Environment variables removed before any contestant was spawned (see START_COST_VARIABLES); absent in older results. */
  readonly clearedEnv?: readonly string[];
}

export interface Versions {
  readonly rxnat: string;
  /** rxnat's git commit (and whether the tree had local changes), when known. */
  readonly git: string;
  readonly rxjs: string;
  /** JS peers as installed in the repository's node_modules. */
  readonly peers: Readonly<Record<string, string>>;
  /** Debian packages: miniupnpd, miniupnpc (upnpc), natpmpc. */
  readonly tools: Readonly<Record<string, string>>;
}

/** One contestant on one lab gateway. */
export interface LatencyContestantResult {
  /** `id@gateway`. */
  readonly key: string;
  readonly id: string;
  readonly label: string;
  readonly kind: ContestantKind;
  readonly protocol: string;
  readonly gateway: LabGateway;
  readonly span: string;
  /** The timed span of each successful run, ms, in run order (warm-up excluded). */
  readonly samplesMs: number[];
  /** The round (1..runs) of each sample, for ratios paired by round. */
  readonly samplesRound: number[];
  /** The warm-up run (first in its process), ms; `null` when it failed. */
  warmupMs: number | null;
  /** Other spans per successful run (delete, process exit), ms. */
  readonly extraMs: Record<string, number[]>;
  /** What the runs reported, counted (for example `backend pcp: 20`). */
  readonly details: Record<string, number>;
  /** Runs that failed, with the error text. */
  readonly failures: { readonly run: number; readonly error: string }[];
  /** Runs after which the gateway still held a forwarding (then removed by the bench). */
  readonly leftovers: { readonly run: number; readonly rules: readonly unknown[] }[];
  /** Why the remaining runs were skipped (every early run failed). */
  abandoned: string | null;
  summary: Summary | null;
}

export interface LatencyResults {
  /** Why the section did not run (no root, no namespaces, miniupnpd missing). */
  readonly skipped: string | null;
  readonly runsPerContestant: number;
  readonly gateways: { readonly id: LabGateway; readonly startupMs: number; readonly descriptionUrl: string }[];
  /** How `rxnat map` was started for the whole-process contestants. */
  readonly cli: { readonly command: readonly string[]; readonly source: 'compiled' | 'tsx'; readonly note: string };
  readonly contestants: LatencyContestantResult[];
  readonly durationMs: number;
}

/** One spawn → first request (or spawn → exit) contestant of the start-up section. */
export interface StartupContestantResult {
  readonly id: string;
  readonly label: string;
  /** `request`: spawn until its first datagram reached the sandbox's gateway; `exit`: spawn until exit. */
  readonly until: 'request' | 'exit';
  readonly samplesMs: number[];
  /** The round of each sample (for paired comparisons). */
  readonly samplesRound: number[];
  /**
   * `request` rows: the process's CPU time until its first datagram, and how long it waited for
   * a CPU meanwhile (`/proc/PID/schedstat`), ms. Load on the machine inflates wall time through
   * the wait; CPU time moves much less. Absent in older results.
   */
  readonly cpuMs?: number[];
  readonly runQueueMs?: number[];
  readonly failures: { readonly run: number; readonly error: string }[];
  /** What the first datagram was (`pmp:0`, `pcp:1`, `ssdp`), counted over the runs. */
  readonly firstRequest: Readonly<Record<string, number>>;
  readonly summary: Summary | null;
}

/** The start-up section: spawn → first request in a private namespace, and whole processes in the gateway lab. */
export interface StartupResults {
  /** Why the spawn → first request rows did not run. */
  readonly skipped: string | null;
  readonly runsPerContestant: number;
  readonly cli: { readonly command: readonly string[]; readonly source: 'compiled' | 'tsx'; readonly note: string };
  readonly spawn: StartupContestantResult[];
  /** The latency section's process contestants, run by this section (null: not asked). */
  readonly process: LatencyResults | null;
  readonly durationMs: number;
}

/** What one scale scenario runs: N streams over G simulated gateways. */
export interface ScenarioConfig {
  readonly name: string;
  readonly streams: number;
  readonly gateways: number;
  readonly protocol: 'pmp' | 'pcp';
  readonly lifetimeSeconds: number;
  /** `maxConcurrentRequests` of every Nat (the limit the simulator checks). */
  readonly limit: number;
  /** The simulator's artificial reply delay (a router's processing time), ms. */
  readonly replyDelayMs: number;
  /** `shared`: one discovered Nat per gateway, shared by its streams; `per-stream`: each stream discovers its own. */
  readonly nat: 'shared' | 'per-stream';
  /** `full`: every phase; `mapping`: map, then tear down (no idle/renewal phases). */
  readonly phases: 'full' | 'mapping';
}

/** One scale scenario's measurements, with the scenario it ran. */
export interface ScaleScenarioResult extends Omit<ScenarioConfig, 'phases'> {
  /** Subscribe of the first stream until every stream's first `mapped`. */
  readonly timeToAllMappedMs: number;
  /** Each stream's subscribe-to-mapped time, summarised. */
  readonly perStreamMappedMs: Summary | null;
  /** Highest number of requests one gateway had received and not yet answered, max over gateways, per phase. */
  readonly peakInFlight: { readonly mapping: number; readonly idleAndRenewals: number; readonly teardown: number; readonly overall: number };
  readonly peakInFlightPerGateway: number[];
  readonly memory: {
    readonly baseline: { readonly heapUsed: number; readonly rss: number };
    readonly mapped: { readonly heapUsed: number; readonly rss: number };
    /** (mapped - baseline) / streams; the baseline is taken after a warm-up, so this is the marginal cost of a mapping. */
    readonly heapPerMappingBytes: number;
    readonly rssPerMappingBytes: number;
  };
  readonly idle: {
    readonly windowMs: number;
    readonly cpuUserMs: number;
    readonly cpuSystemMs: number;
    /** CPU time / wall time over the window, percent of one core. */
    readonly cpuPercent: number;
    /** Requests the simulators received during the window. */
    readonly requests: number;
    /** Garbage collections during the window (V8 shrinking the heap after the burst), wall ms and count. */
    readonly gcMs?: number;
    readonly gcs?: number;
  } | null;
  readonly renewals: {
    /** From the end of the idle window until every stream renewed at least once. */
    readonly phaseMs: number;
    readonly allRenewed: boolean;
    readonly renewalsTotal: number;
    readonly cpuPercent: number;
    /** CPU time per renewal, µs (the whole process's CPU over the phase, divided by renewals). */
    readonly cpuPerRenewalUs: number;
    /** States other than `mapped` seen after the first mapping (degraded/unmapped). */
    readonly notMappedStates: number;
  };
  readonly teardown: {
    /** Unsubscribe of all streams until the simulators' tables were empty (or the bound). */
    readonly timeToEmptyMs: number;
    readonly leftOnSimulators: number;
    readonly deleteRequests: number;
  };
  /** Requests the simulators received, by kind (retransmissions included). */
  readonly requestsByKind: Readonly<Record<string, number>>;
  /** Datagrams that repeated a request already pending or answered (RFC 6886 retransmissions). */
  readonly retransmissions: number;
  /** Active handles/requests of the client process before subscribing and after teardown. */
  readonly activeResources: { readonly before: number; readonly after: number };
  readonly errors: string[];
  readonly durationMs: number;
}

export interface ScaleResults {
  readonly skipped: string | null;
  /** Which rxnat build was measured. */
  readonly rxnat: string;
  readonly scenarios: ScaleScenarioResult[];
  readonly durationMs: number;
}

/** One package set installed alone in a temp directory. */
export interface FootprintEntry {
  readonly name: string;
  /** What was installed (`npm install` arguments). */
  readonly install: readonly string[];
  /** The module(s) imported for the import time. */
  readonly imports: readonly string[];
  /** Production packages installed (`npm ls --all --parseable --omit=dev`, minus the root). */
  readonly packages: number | null;
  /** Their names (scoped names keep their scope). */
  readonly packageNames: readonly string[];
  /** du of node_modules, bytes (apparent size) and disk usage (blocks). */
  readonly installBytes: number | null;
  readonly diskBytes: number | null;
  /** `node -e "import(...)"` wall times, ms (10 samples). */
  readonly importMs: number[];
  readonly importSummary: Summary | null;
  /** Median of (import - bare node start-up of the same round), ms. */
  readonly netImportMs: number | null;
  /** Advisories from `npm audit` (production), by severity, when it answered. */
  readonly audit: Readonly<Record<string, number>> | null;
  /** Why `npm audit` gave nothing, when it did not answer. */
  readonly auditError: string | null;
  readonly error: string | null;
}

export interface FootprintResults {
  readonly skipped: string | null;
  /** A bare `node` started the same way in each round, ms: the floor of every import time. */
  readonly nodeStartupMs: number[];
  readonly nodeStartup: Summary | null;
  readonly entries: FootprintEntry[];
  readonly durationMs: number;
}

/** The bulk-teardown scenario: N UPnP mappings stopped at once on a gateway that takes `deleteDelayMs` per delete. */
export interface TeardownConfig {
  readonly mappings: number;
  /** The gateway's time per DeletePortMapping (a persistent delay fault on that action), ms. */
  readonly deleteDelayMs: number;
  /** Requested lease: long, so that nothing leaves the table by expiring while it is measured. */
  readonly lifetimeSeconds: number;
  /** How long the streams get to complete after the stop, ms (then the rest are unsubscribed). */
  readonly completionBoundMs: number;
}

/** How a process-per-scenario child ended: on its own (nothing left running) or killed. */
export interface ChildExit {
  /** The child exited on its own within a few seconds of reporting (no handle or timer kept it alive). */
  readonly exitedOnItsOwn: boolean;
  /** Handles and requests the child still had after closing everything (`process.getActiveResourcesInfo()`, its IPC channel and stdio excluded). */
  readonly activeResourcesAfter: readonly string[];
}

export interface TeardownResults extends TeardownConfig, ChildExit {
  readonly skipped: string | null;
  /** Which rxnat build was measured. */
  readonly rxnat: string;
  /** The UPnP Nat's `maxConcurrentRequests` (the backend's default). */
  readonly maxConcurrentRequests: number;
  readonly allMapped: boolean;
  /** First subscribe until every stream's first `mapped`. */
  readonly timeToAllMappedMs: number;
  /** mappings x deleteDelayMs: the gateway's own time to delete them one after another. */
  readonly serialDeleteMs: number;
  /** Streams that completed within the bound. */
  readonly completed: number;
  /** Stop until the last stream completed; when not all completed, until the bound. */
  readonly stopToCompletedMs: number;
  /** stopToCompletedMs / serialDeleteMs. */
  readonly ratioToSerial: number;
  /** Each stream's stop-to-complete time, summarised. */
  readonly perStreamCompletedMs: Summary | null;
  /** UPnP mappings in the gateway's table when the last stream completed (or at the bound). */
  readonly leftAtCompletion: number;
  /** ... and `graceMs` later (a delete still arriving after its stream completed shows here). */
  readonly leftAfterGrace: number;
  readonly graceMs: number;
  /** The streams' last states: by status, and how many carry a non-null `error` (unconfirmed deletes). */
  readonly lastStates: { readonly byStatus: Readonly<Record<string, number>>; readonly withError: number; readonly errorSamples: readonly string[] };
  /** DeletePortMapping requests the gateway received after the stop (until the grace ended). */
  readonly deleteRequests: number;
  /** Requests the gateway received during the whole scenario, by SOAP action. */
  readonly requestsByAction: Readonly<Record<string, number>>;
  readonly errors: readonly string[];
  readonly durationMs: number;
}

/** One second's comparison of the router's table with the streams' latest states. */
export interface SoakSample {
  /** Seconds since the streams were subscribed. */
  readonly t: number;
  /** Streams whose latest state is each status. */
  readonly mapped: number;
  readonly degraded: number;
  readonly unmapped: number;
  readonly mapping: number;
  /** Streams reading `mapped` or `degraded` while the table holds no unexpired entry for their protocol/external port (to their internal port). */
  readonly lies: number;
  /** Of which `degraded`. */
  readonly liesDegraded: number;
  /** Unexpired entries of this protocol (upnp/pcp) in the table. */
  readonly table: number;
}

export interface SoakConfig {
  readonly protocol: 'upnp' | 'pcp';
  readonly mappings: number;
  readonly lifetimeSeconds: number;
  /** Length of the sampled window after every stream was mapped once, s. */
  readonly windowSeconds: number;
  /** Longest wait for every stream's first `mapped` before the window starts anyway, ms. */
  readonly rampBoundMs: number;
}

/** One short-lease soak run (one protocol). */
export interface SoakRunResult extends SoakConfig, ChildExit {
  /** The Nat's `maxConcurrentRequests` (the backend's default). */
  readonly maxConcurrentRequests: number;
  /** Subscribe until every stream had been `mapped` once; `null` when some never were within the bound. */
  readonly timeToAllMappedMs: number | null;
  /** Samples before the window (while streams were still being mapped the first time). */
  readonly rampSamples: readonly SoakSample[];
  /** The window's samples, one a second. */
  readonly samples: readonly SoakSample[];
  readonly lies: {
    /** Most lies in one sample, ramp and window. */
    readonly max: number;
    /** Sum over all samples. */
    readonly total: number;
    readonly samplesWithLies: number;
    readonly samples: number;
    /** Distinct streams caught lying at least once. */
    readonly streams: number;
    /** `t` of the first sample with a lie. */
    readonly firstAtSeconds: number | null;
    /** Samples with a lie although the event loop ran no later than the grace since the previous sample (optional: older results lack it). */
    readonly samplesWithLiesOnTime?: number;
  };
  /** `mapped` streams per window sample. */
  readonly mappedPerSample: { readonly min: number; readonly median: number; readonly max: number } | null;
  /** Lifetimes of the latest `mapped` states at the end of the window (granted lease, s: count). */
  readonly grantedLifetimes: Readonly<Record<string, number>>;
  /** Requests the gateway received during the window, by kind, and per second. */
  readonly windowRequests: { readonly total: number; readonly perSecond: number; readonly byKind: Readonly<Record<string, number>> };
  /** Requests the gateway received during the whole run (mapping, window, teardown), by kind. */
  readonly requestsByKind: Readonly<Record<string, number>>;
  /** The process's CPU over the window (client and simulator share it), percent of one core. */
  readonly cpuPercent: number;
  /** Event-loop delay over the window (a saturated loop makes renewals late: the bench's fault, not the core's). */
  readonly eventLoopDelayMs: { readonly p99: number; readonly max: number };
  /** After the window: stop, until every stream completed. */
  readonly teardown: { readonly ms: number; readonly completed: number; readonly leftOnGateway: number };
  readonly errors: readonly string[];
  readonly durationMs: number;
}

export interface ShortSoakResults {
  readonly skipped: string | null;
  readonly rxnat: string;
  /** Where the window length came from (`RXNAT_BENCH_SOAK_SECONDS`, `--quick`, default). */
  readonly windowSource: string;
  readonly runs: SoakRunResult[];
  readonly durationMs: number;
}

export interface BenchResults {
  readonly schema: 1;
  readonly startedAt: string;
  finishedAt: string;
  durationMs: number;
  readonly argv: readonly string[];
  readonly options: { readonly only: readonly Section[]; readonly runs: number };
  readonly machine: MachineInfo;
  readonly versions: Versions;
  /** 1/5/15-minute load averages at the start and the end: other work on the machine skews timings. */
  readonly load: { readonly start: readonly number[]; end: readonly number[] };
  latency: LatencyResults | null;
  /** Absent in results written before this section existed. */
  startup?: StartupResults | null;
  scale: ScaleResults | null;
  footprint: FootprintResults | null;
  /** Absent in results written before these sections existed. */
  teardown?: TeardownResults | null;
  soakShort?: ShortSoakResults | null;
}
