/**
 * One state scenario in a process of its own (forked by `index.ts`, rxnat as the parent chose
 * through the environment): `teardown` or `soak`. Reports over IPC, then lets go of the channel
 * and does not call `process.exit`: the parent checks that the process then ends on its own,
 * which it cannot while a timer, socket or other handle is left.
 *
 * Usage (from index.ts): node --import tsx bench/states/child.ts '<json job>'
 *
 * @packageDocumentation
 */
import type { TeardownConfig } from '../lib/types.js';
import { runShortLeaseSoak, type SoakRun } from './soak.js';
import type { FaultySoakConfig } from './soak-faults.js';
import { runTeardown, type TeardownRun } from './teardown.js';

export type StateJob = { readonly kind: 'teardown'; readonly config: TeardownConfig } | { readonly kind: 'soak'; readonly config: FaultySoakConfig };
export type StateReply = { readonly ok: true; readonly result: TeardownRun | SoakRun } | { readonly ok: false; readonly error: string };

async function run(job: StateJob): Promise<TeardownRun | SoakRun> {
  return job.kind === 'teardown' ? runTeardown(job.config) : runShortLeaseSoak(job.config);
}

if (process.argv[2] !== undefined && import.meta.filename === process.argv[1]) {
  const job = JSON.parse(process.argv[2]) as StateJob;
  const reply = (message: StateReply): void => {
    if (process.send) process.send(message, () => process.disconnect());
    else if (message.ok) console.log(JSON.stringify(message.result));
    else {
      console.error(message.error);
      process.exitCode = 1;
    }
  };
  run(job).then(
    (result) => reply({ ok: true, result }),
    (error: unknown) => reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
}
