import { readFileSync } from 'node:fs';

/** Reads a file of test/fixtures/upnp as text. */
export function fixture(name: string): string {
  return readFileSync(new URL(`../../fixtures/upnp/${name}`, import.meta.url), 'utf8');
}
