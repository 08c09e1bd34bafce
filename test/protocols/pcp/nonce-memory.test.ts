/**
 * The PCP client's memory of the nonces it sent (src/protocols/pcp/nonce-memory.ts), on its own:
 * the client tests (client.test.ts) show the memory at work against the simulator.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_REMEMBERED_NONCES, NonceMemory } from '../../../src/protocols/pcp/nonce-memory.js';

describe('NonceMemory', () => {
  it('the nonce memory is bounded (oldest dropped), refreshed by a new add, and forgets only its own nonce', () => {
    const memory = new NonceMemory();
    const nonceOf = (n: number): Uint8Array => Uint8Array.from({ length: 12 }, (_, i) => (i === 0 ? n >> 8 : i === 1 ? n & 0xff : 0));
    for (let port = 1; port <= DEFAULT_REMEMBERED_NONCES; port++) memory.remember('udp', port, nonceOf(port));
    memory.remember('udp', 1, nonceOf(7777)); // refreshed: now the newest
    memory.remember('tcp', 1, nonceOf(1));
    assert.equal(memory.size, DEFAULT_REMEMBERED_NONCES);
    assert.equal(memory.get('udp', 2), undefined, 'the oldest was dropped');
    assert.deepEqual(memory.get('udp', 1), nonceOf(7777));
    memory.forget('udp', 1, nonceOf(1));
    assert.deepEqual(memory.get('udp', 1), nonceOf(7777), 'another nonce\'s delete does not forget it');
    memory.forget('udp', 1, nonceOf(7777));
    assert.equal(memory.get('udp', 1), undefined);
    assert.throws(() => new NonceMemory(0), RangeError);
  });

  it('remembers the source address an add was bound to (IPv6), until a new add or the delete', () => {
    const memory = new NonceMemory();
    const nonce = new Uint8Array(12).fill(1);
    memory.remember('tcp', 8080, nonce, '2001:db8::10');
    memory.remember('udp', 8080, nonce);
    assert.equal(memory.source('tcp', 8080), '2001:db8::10');
    assert.equal(memory.source('udp', 8080), undefined, 'not bound: the kernel picks');
    memory.remember('tcp', 8080, nonce, '2001:db8::11');
    assert.equal(memory.source('tcp', 8080), '2001:db8::11');
    memory.forget('tcp', 8080, nonce);
    assert.equal(memory.source('tcp', 8080), undefined);
  });
});
