import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filter, firstValueFrom } from 'rxjs';
import { mapPort } from '../../src/core/map-port.js';
import type { Logger } from '../../src/core/logger.js';
import { pmp } from '../../src/protocols/pmp/client.js';
import { pcp } from '../../src/protocols/pcp/client.js';
import { upnp } from '../../src/protocols/upnp/client.js';
import { startGatewaySimulator } from '../../src/testing/simulator.js';

test('every backend logs its requests and replies under rxnat:<protocol>, and the stream its steps under rxnat:map', async () => {
  const sim = await startGatewaySimulator();
  const lines: string[] = [];
  const logger: Logger = { debug: (namespace, message) => lines.push(`${namespace} ${message}`) };
  try {
    for (const nat$ of [
      pmp('127.0.0.1', { port: sim.pmpPort, logger }),
      pcp('127.0.0.1', { port: sim.pmpPort, logger }),
      upnp({ descriptionUrl: sim.descriptionUrl, logger }),
    ]) {
      const state = await firstValueFrom(mapPort(nat$, { protocol: 'tcp', internalPort: 8080 }, { logger }).pipe(filter((s) => s.status === 'mapped')));
      assert.equal(state.externalPort, 8080, 'mapped');
    }
  } finally {
    await sim.close();
  }
  for (const expected of [/^rxnat:pmp send to 127\.0\.0\.1:\d+: 0000$/, /^rxnat:pmp reply from 127\.0\.0\.1:\d+: 0080/, /^rxnat:pcp send to /, /^rxnat:pcp reply from /, /^rxnat:upnp AddPortMapping .*: sent$/, /^rxnat:upnp AddPortMapping .*: answered/, /^rxnat:map .*granted external port 8080/]) {
    assert.ok(lines.some((line) => expected.test(line)), `no log line matches ${expected}:\n${lines.join('\n')}`);
  }
});
