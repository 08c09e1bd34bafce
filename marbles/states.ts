import type { MappingState } from '../src/core/map-port.js';

/**
 * Turns a scenario's legend into expected mapping states: each row's fields over a state of
 * tcp/8080 on `backend` with nothing established. `error` cells name an entry of `errors`.
 */
export function state(
  legend: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
  backend: string | null,
  errors: Readonly<Record<string, Error>> = {},
  base: Partial<MappingState> = {},
): Record<string, MappingState> {
  const out: Record<string, MappingState> = {};
  for (const [key, fields] of Object.entries(legend)) {
    const error = fields['error'];
    out[key] = {
      status: 'mapping',
      protocol: 'tcp',
      internalPort: 8080,
      externalPort: 0,
      externalIp: null,
      lifetimeSeconds: null,
      backend,
      doubleNat: false,
      renewals: 0,
      error: null,
      ...base,
      ...(fields as Partial<MappingState>),
      ...(typeof error === 'string' ? { error: lookup(errors, error) } : {}),
    } as MappingState;
  }
  return out;
}

function lookup(errors: Readonly<Record<string, Error>>, name: string): Error {
  const error = errors[name];
  if (!error) throw new Error(`the legend names error '${name}' that the test does not define`);
  return error;
}
