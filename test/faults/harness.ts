/**
 * Shared pieces of the fault tests: a freezable clock for the simulator's table, a seeded PRNG,
 * a state recorder with "wait for the next state like this" and a compact status log.
 *
 * @packageDocumentation
 */
import type { MappingState, MappingStatus } from '../../src/core/map-port.js';

/** A clock for `MappingTable({ now })` that teardown can freeze: then nothing expires. */
export class FreezableClock {
  private frozenAt: number | undefined;
  private offsetMs = 0;
  readonly now = (): number => this.frozenAt ?? Date.now() + this.offsetMs;
  freeze(): void {
    this.frozenAt ??= this.now();
  }
  /**
   * Runs `make` (a `new MappingTable`) an hour in the past: the table's gateway has been up an
   * hour, so its NAT-PMP/PCP epoch starts at 3600 s and a reboot (back to 0) is unmistakable.
   * (A gateway booted a second ago that "reboots" is within the RFC's 2 s epoch tolerance.)
   */
  withUptime<T>(make: () => T): T {
    this.offsetMs = -3_600_000;
    try {
      return make();
    } finally {
      this.offsetMs = 0;
    }
  }
}

/** mulberry32, a small seeded PRNG. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 20 ms until true or `timeoutMs`; returns whether it became true. */
export async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (performance.now() >= deadline) return false;
    await sleep(20);
  }
}

/** One state as logged: status, port, address, lease, renewals, error class and code. */
export function describeState(s: MappingState): string {
  const error = s.error ? ` ${s.error.name}${(s.error as { resultCode?: number }).resultCode !== undefined ? `(${(s.error as { resultCode?: number }).resultCode})` : ''}` : '';
  return `${s.status}${s.externalPort ? ` ${s.externalIp ?? '-'}:${s.externalPort}/${s.lifetimeSeconds}s r${s.renewals}` : ''}${error}`;
}

/** Statuses with consecutive repeats collapsed: `mapping→mapped→degraded→unmapped`. */
export function statusPath(states: readonly MappingState[]): string {
  const path: MappingStatus[] = [];
  for (const s of states) if (path.at(-1) !== s.status) path.push(s.status);
  return path.join('→');
}

/** Records a stream's states and lets a test wait for the next one that matches. */
export class StateRecorder {
  readonly states: MappingState[] = [];
  completed = false;
  error: unknown;
  /** Index of the first state not consumed by `next`. */
  cursor = 0;

  readonly observer = {
    next: (state: MappingState) => void this.states.push(state),
    error: (error: unknown) => {
      this.error = error;
    },
    complete: () => {
      this.completed = true;
    },
  };

  latest(): MappingState | undefined {
    return this.states.at(-1);
  }

  /** Waits for the next state (from the cursor on) that `match`es; consumes up to it. */
  async next(match: (state: MappingState) => boolean, timeoutMs: number): Promise<MappingState | undefined> {
    let found: MappingState | undefined;
    await eventually(() => {
      for (let i = this.cursor; i < this.states.length; i++) {
        const state = this.states[i] as MappingState;
        if (match(state)) {
          this.cursor = i + 1;
          found = state;
          return true;
        }
      }
      return this.error !== undefined || this.completed;
    }, timeoutMs);
    return found;
  }

  /** The whole log, one state per line. */
  log(): string {
    return this.states.map((s, i) => `  ${i}: ${describeState(s)}`).join('\n');
  }
}
