// The rxnat command against a real router: discover, map (rule on the router while it runs, gone
// after SIGINT), list and unmap, run inside the lab's lan namespace as a user would run it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_ADDRESSES, LAB_DESCRIPTION_URL } from '../lab/lab.js';
import type { Lab, LabRule } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';

const { gateway: GW_IP, external: EXT_IP, lan: LAN_IP } = LAB_ADDRESSES;
const CLI = 'src/cli/main.ts';

const ruleFor = (rules: readonly LabRule[], protocol: string, externalPort: number): LabRule | undefined =>
  rules.find((r) => r.protocol === protocol && r.externalPort === externalPort);

async function cli(lab: Lab, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const result = await lab.runNodeIn('lan', CLI, args, { timeoutMs: 20_000 });
  return { code: result.code, stdout: result.stdout, stderr: result.stderr };
}

const skip = await labSkip();

describe('the rxnat command against miniupnpd', { skip }, () => {
  const lab = useLab();

  it('discover finds the router (any: the race; upnp via SSDP) and reports its external address', async () => {
    for (const spec of ['any', 'upnp']) {
      const result = await cli(lab(), ['discover', '--nat', spec, '--json']);
      assert.equal(result.code, 0, result.stderr);
      const found = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { backend: string; gateway: string; externalIp: string };
      assert.equal(found.externalIp, EXT_IP, spec);
      assert.match(found.backend, /^(pcp|pmp|upnp)$/, spec);
      assert.match(found.gateway, /192\.168\.77\.1/, spec);
    }
  });

  for (const [spec, port] of [[`pmp:${GW_IP}`, 44100], [`pcp:${GW_IP}`, 44200], [`upnp:${LAB_DESCRIPTION_URL}`, 44300]] as const) {
    it(`map --nat ${spec.replace(/:.*/, '')}: the rule is on the router while map runs and gone after SIGINT`, async () => {
      const l = lab();
      const map = l.spawnNodeIn('lan', CLI, ['map', 'tcp', String(port), '--nat', spec, '--json']);
      try {
        for (;;) {
          const state = await map.next<{ status: string; externalPort: number; externalIp: string }>(15_000);
          if (state.status === 'mapped') {
            assert.equal(state.externalIp, EXT_IP);
            break;
          }
        }
        const rule = ruleFor(await l.rules(), 'tcp', port);
        assert.deepEqual(rule && [rule.internalClient, rule.internalPort], [LAN_IP, port], 'DNAT rule while map runs');
        assert.ok(map.pid !== undefined, 'map runs');
        process.kill(map.pid, 'SIGINT');
        const done = await map.done(15_000);
        assert.equal(done.code, 0, done.stderr);
        assert.equal(ruleFor(await l.rules(), 'tcp', port), undefined, 'rule gone after SIGINT');
      } finally {
        map.kill();
      }
    });
  }

  it('list shows the router table (UPnP) and unmap deletes an entry from it', async () => {
    const l = lab();
    const add = await l.execInLan('upnpc', ['-u', LAB_DESCRIPTION_URL, '-e', 'made by upnpc', '-a', LAN_IP, '44400', '44400', 'UDP']);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    const listed = await cli(l, ['list', '--nat', `upnp:${LAB_DESCRIPTION_URL}`, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /44400/);
    assert.ok(ruleFor(await l.rules(), 'udp', 44400), 'upnpc made the rule');
    const unmapped = await cli(l, ['unmap', 'udp', '44400', '--nat', `upnp:${LAB_DESCRIPTION_URL}`]);
    assert.equal(unmapped.code, 0, unmapped.stderr);
    assert.equal(ruleFor(await l.rules(), 'udp', 44400), undefined, 'rule gone after unmap');
  });
});
