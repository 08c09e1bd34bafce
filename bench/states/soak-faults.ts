/**
 * The gateway faults of the short-lease soak, and the figures that show the router did lose
 * mappings (so that "0 lies" means something). Pure: no sockets, no rxnat; the report and the
 * targets read it too.
 *
 * A gateway that answers at once never lets a 3 s lease lapse (each renewal arrives long before
 * the lease ends), so a soak against it cannot show a lie. During the window the gateway cannot
 * keep up instead:
 *
 * - UPnP: every AddPortMapping is answered, and performed, `upnpAddDelayMs` late (the
 *   simulator's `delay` fault on that action, `times: Infinity`). The client sends one request at
 *   a time (its default `maxConcurrentRequests` 1), so at most 1000 / delay adds a second are
 *   served: with 5 ms, at most 200/s, and as a 3 s lease needs one add every 3 s, at most 600 of
 *   the 1,000 leases can be live at any instant, whatever the client's renewal schedule. The
 *   router must lose at least 400; the streams must say which.
 * - PCP: the server answers nothing (`faults.silent`: no reply, nothing done) for `seconds`
 *   every `everySeconds`, the first time `afterSeconds` into the window. A silence longer than
 *   the lease lets every lease lapse on the router (the table's clock drops it); every stream must
 *   read `unmapped` (or `mapping`) until its mapping is made again after the silence.
 *
 * The faults start with the window (the ramp meets a healthy gateway) and are removed when it
 * ends, before the teardown.
 *
 * @packageDocumentation
 */
import { median } from '../lib/stats.js';
import type { SoakConfig, SoakRunResult, SoakSample } from '../lib/types.js';

/** The gateway's faults during a soak window (none given: it answers at once). */
export interface SoakFaults {
  /** UPnP: every AddPortMapping answered, and performed, this many ms late, for the whole window. */
  readonly upnpAddDelayMs?: number;
  /** PCP: no reply (nothing done) for `seconds`, every `everySeconds`, the first time `afterSeconds` into the window. */
  readonly pcpSilence?: { readonly afterSeconds: number; readonly everySeconds: number; readonly seconds: number };
}

/** A soak run's configuration with its faults. */
export interface FaultySoakConfig extends SoakConfig {
  readonly faults: SoakFaults;
  /**
   * A stream still reading `mapped`/`degraded` less than this many ms after its entry expired on
   * the router is not counted as a lie (it is counted in `withinGrace`). The sample and the
   * router's expiry are different instants; a state that turns `unmapped` that close to it is
   * truthful. A stream still lying then is caught by the next sample, a second later.
   */
  readonly lieGraceMs: number;
}

/** One sample of a faulty soak. */
export interface FaultySoakSample extends SoakSample {
  /** Streams reading `mapped`/`degraded` whose entry expired on the router less than `lieGraceMs` before the sample (not in `lies`). */
  readonly withinGrace: number;
  /** The PCP server was silent at the sample's instant. */
  readonly silent: boolean;
  /** The event loop's largest delay since the previous sample, in ms (node:perf_hooks, 10 ms resolution). */
  readonly loopDelayMaxMs: number;
  /** Up to five of the sample's liars: their latest state and how long ago it arrived. */
  readonly liars: readonly SoakLiar[];
}

/** One stream caught lying in a sample. */
export interface SoakLiar {
  readonly internalPort: number;
  readonly status: string;
  readonly externalPort: number;
  readonly renewals: number;
  /** How long before the sample the stream's latest state arrived. */
  readonly stateAgeMs: number;
  /** With RXNAT_SOAK_TRACE=1: the stream's last log lines and the router's adds for it, ms since the subscribe. */
  readonly trace?: readonly string[];
}

/** What a faulty soak run adds to {@link SoakRunResult}. */
export interface SoakRunFaults {
  readonly faults: SoakFaults;
  readonly lieGraceMs: number;
  /** The silent phases as they happened: seconds since the subscribe (as a sample's `t`). */
  readonly silentPhases: readonly { readonly from: number; readonly to: number }[];
  /** Streams reading `mapped`/`degraded` within `lieGraceMs` of their entry's expiry (not lies): most in one sample, samples with any. */
  readonly withinGrace: { readonly max: number; readonly samples: number };
}

/** The soak's faults per protocol. */
export const SOAK_FAULTS: Readonly<Record<SoakConfig['protocol'], SoakFaults>> = {
  upnp: { upnpAddDelayMs: 5 },
  pcp: { pcpSilence: { afterSeconds: 5, everySeconds: 20, seconds: 5 } },
};

/** See {@link FaultySoakConfig.lieGraceMs}. */
export const LIE_GRACE_MS = 100;

/** The faults in words (for the log, the report and the targets). */
export function describeSoakFaults(faults: SoakFaults | undefined): string {
  const parts: string[] = [];
  if (faults?.upnpAddDelayMs) {
    parts.push(`every AddPortMapping answered (and done) ${faults.upnpAddDelayMs} ms late: at most ${Math.floor(1000 / faults.upnpAddDelayMs)} adds/s one at a time`);
  }
  if (faults?.pcpSilence) {
    const s = faults.pcpSilence;
    parts.push(`silent ${s.seconds} s every ${s.everySeconds} s, from ${s.afterSeconds} s into the window`);
  }
  return parts.length > 0 ? parts.join('; ') : 'none (answers at once)';
}

/** The same, short (the target's text). */
export function shortSoakFaults(faults: SoakFaults | undefined): string {
  const parts: string[] = [];
  if (faults?.upnpAddDelayMs) parts.push(`adds ${faults.upnpAddDelayMs} ms late`);
  if (faults?.pcpSilence) parts.push(`silent ${faults.pcpSilence.seconds} s/${faults.pcpSilence.everySeconds} s`);
  return parts.length > 0 ? parts.join(', ') : 'no fault';
}

/** The silent phases that start before `windowSeconds` (ms from the window's start). */
export function silencePhases(faults: SoakFaults, windowSeconds: number): { readonly startMs: number; readonly endMs: number }[] {
  const s = faults.pcpSilence;
  if (!s) return [];
  const phases: { startMs: number; endMs: number }[] = [];
  for (let at = s.afterSeconds; at < windowSeconds; at += s.everySeconds) phases.push({ startMs: at * 1000, endMs: (at + s.seconds) * 1000 });
  return phases;
}

/** The window's figures that show whether the router lost mappings, and what the streams said. */
export interface SoakWindowFigures {
  /** Unexpired entries of the protocol in the router's table per window sample. */
  readonly table: { readonly min: number; readonly median: number; readonly max: number };
  /** Streams reading `unmapped` per window sample. */
  readonly unmapped: { readonly min: number; readonly max: number };
  /** The table held fewer entries than there are streams at some sample: there was something to lie about. */
  readonly routerLost: boolean;
}

/** {@link SoakWindowFigures} of a run (results files without faults included); `null` without window samples. */
export function soakWindowFigures(run: Pick<SoakRunResult, 'samples' | 'mappings'>): SoakWindowFigures | null {
  const samples = run.samples;
  if (samples.length === 0) return null;
  const table = samples.map((s) => s.table);
  const unmapped = samples.map((s) => s.unmapped);
  const min = Math.min(...table);
  return {
    table: { min, median: median(table), max: Math.max(...table) },
    unmapped: { min: Math.min(...unmapped), max: Math.max(...unmapped) },
    routerLost: min < run.mappings,
  };
}

/** The fault fields of a run, when its results file has them. */
export function soakRunFaults(run: SoakRunResult): Partial<SoakRunFaults> {
  return run as SoakRunResult & Partial<SoakRunFaults>;
}
