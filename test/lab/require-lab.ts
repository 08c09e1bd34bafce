/**
 * The skip policy of lab tests, and a `before`/`after` helper.
 *
 * - Lab available: lab tests run.
 * - Lab unavailable (not root, not Linux, miniupnpd missing, no netns): lab tests are skipped
 *   and the reason is printed, so `npm test` stays green on a laptop.
 * - `RXNAT_REQUIRE_LAB=1` (CI): unavailability is a failure, never a silent skip.
 *
 * @packageDocumentation
 */
import { fail } from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Lab, startLab } from './lab.js';
import type { LabOptions } from './lab.js';

/** Whether unavailability of the lab must fail the run (`RXNAT_REQUIRE_LAB=1`). */
export function labRequired(): boolean {
  return process.env.RXNAT_REQUIRE_LAB === '1';
}

/**
 * Resolves the skip reason for a lab test file: `false` when the lab is available, else a
 * reason to pass as `{ skip }`. When `RXNAT_REQUIRE_LAB=1` and the lab is unavailable, it also
 * registers a failing test carrying the reason. `tools` lists extra binaries the file needs
 * (for example `upnpc`, `natpmpc`).
 *
 * @example
 * ```ts
 * const skip = await labSkip(['upnpc']);
 * describe('against miniupnpd', { skip }, () => {
 *   const lab = useLab();
 *   it('maps', async () => { await lab().rules(); });
 * });
 * ```
 */
export async function labSkip(tools: readonly string[] = []): Promise<string | false> {
  const status = await Lab.available();
  let reason = status.available ? undefined : status.reason;
  if (reason === undefined) {
    const missing = tools.filter((tool) => !Lab.hasBinary(tool));
    if (missing.length > 0) reason = `${missing.join(', ')} not installed (see .ci/run)`;
  }
  if (reason === undefined) return false;
  const message = `gateway lab unavailable: ${reason}`;
  if (labRequired()) {
    test('gateway lab is available (RXNAT_REQUIRE_LAB=1)', () => fail(message));
  } else {
    console.log(`# skipping lab tests: ${message} (set RXNAT_REQUIRE_LAB=1 to make this a failure)`);
  }
  return message;
}

/**
 * Starts a lab in a `before` hook of the enclosing suite and stops it in an `after` hook;
 * returns an accessor for the running lab (it throws if called before the hook ran).
 *
 * @example
 * ```ts
 * describe('IGDv1', { skip }, () => {
 *   const lab = useLab({ igdV1: true });
 *   it('serves IGD:1', async () => assert.equal((await lab().rules()).length, 0));
 * });
 * ```
 */
export function useLab(options: LabOptions = {}): () => Lab {
  let lab: Lab | undefined;
  before(async () => {
    lab = await startLab(options);
  });
  after(async () => {
    await lab?.stop();
  });
  return () => {
    if (!lab) throw new Error('lab not started (useLab must be called inside a describe, and the before hook failed?)');
    return lab;
  };
}
