/**
 * The wire of the lab drivers (rxnat-driver.ts, pinhole-driver.ts): JSON lines on stdout, and
 * errors as the drivers report them.
 */

/** An error as a driver reports it. */
export interface DriverError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly protocol?: string;
  readonly resultCode?: number;
  readonly resultName?: string;
}

/** An error as a driver writes it: its name, message and rxnat's typed fields. */
export function driverError(error: unknown): DriverError {
  if (!(error instanceof Error)) return { name: 'NonError', message: String(error) };
  const e = error as Error & Partial<Omit<DriverError, 'name' | 'message'>>;
  return { name: e.name, message: e.message, code: e.code, protocol: e.protocol, resultCode: e.resultCode, resultName: e.resultName };
}

/** Writes one JSON line on stdout. */
export function out(message: unknown): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}
