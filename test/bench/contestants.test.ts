// Run counts per contestant and router: the pairs whose targets sit within a few percent get
// enough runs to average out miniupnpd's two speeds of AddPortMapping.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CONTESTANTS, UPNP_FLOOR_PAIRS, runsOn, upnpOnlyRuns } from '../../bench/latency/contestants.js';

describe('bench latency run counts', () => {
  it('the UPnP floor pairs get the UPnP-only count on every router; the rest the count asked for', () => {
    for (const gateway of ['igdv2', 'igdv1'] as const) {
      for (const id of UPNP_FLOOR_PAIRS) assert.equal(runsOn(id, gateway, 30), 100, `${id}@${gateway}`);
      assert.equal(runsOn('rxnat.pmp', gateway, 30), 30);
      assert.equal(runsOn('peer.nat-upnp', gateway, 30), 30);
    }
    assert.equal(runsOn('rxnat.discover', 'upnp-only', 30), upnpOnlyRuns(30));
    assert.equal(runsOn('floor.upnp', 'igdv2', 5), 20, 'four times a short run');
    assert.equal(runsOn('floor.upnp', 'igdv2', 200), 200, 'never fewer than asked');
  });

  it('every floor pair names a contestant on both IGD routers', () => {
    for (const id of UPNP_FLOOR_PAIRS) {
      const spec = CONTESTANTS.find((c) => c.id === id);
      assert.ok(spec, id);
      assert.ok(spec.gateways.includes('igdv2') && spec.gateways.includes('igdv1'), id);
    }
  });
});
