/**
 * The PCP client's memory of the nonce it last sent in an add, per mapping: PCP servers delete
 * (and renew) a mapping only for the nonce that created it (miniupnpd answers NOT_AUTHORIZED
 * otherwise), and an add whose answer never came leaves no token to delete with.
 *
 * @packageDocumentation
 */
import type { MappingProtocol } from '../../core/nat.js';

/** Default bound of a {@link NonceMemory}. */
export const DEFAULT_REMEMBERED_NONCES = 1024;

/**
 * Nonces by (protocol, internal port), bounded: past `capacity` entries the least recently
 * remembered is dropped. Remembering a key again refreshes it.
 *
 * @example
 * ```ts
 * const nonces = new NonceMemory();
 * nonces.remember('udp', 30303, nonce);
 * nonces.get('udp', 30303);             // nonce
 * nonces.forget('udp', 30303, nonce);   // after the delete completed
 * ```
 */
export class NonceMemory {
  private readonly nonces = new Map<string, { readonly nonce: Uint8Array; readonly source: string | undefined }>();

  /** @param capacity Most entries kept (at least 1). Default {@link DEFAULT_REMEMBERED_NONCES}. */
  constructor(private readonly capacity: number = DEFAULT_REMEMBERED_NONCES) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /** How many entries are held. */
  get size(): number {
    return this.nonces.size;
  }

  /**
   * Records `nonce` as the last one sent for the mapping, and the local address it was sent from
   * when the add was bound to one (an IPv6 internal address: the delete must come from it too);
   * drops the oldest entry past capacity.
   */
  remember(protocol: MappingProtocol, internalPort: number, nonce: Uint8Array, source?: string): void {
    const key = nonceKey(protocol, internalPort);
    this.nonces.delete(key); // re-inserted last: the most recent
    this.nonces.set(key, { nonce: nonce.slice(), source });
    while (this.nonces.size > this.capacity) {
      const oldest = this.nonces.keys().next();
      if (oldest.done === true) break;
      this.nonces.delete(oldest.value);
    }
  }

  /** The last nonce sent for the mapping, if still remembered. */
  get(protocol: MappingProtocol, internalPort: number): Uint8Array | undefined {
    return this.nonces.get(nonceKey(protocol, internalPort))?.nonce.slice();
  }

  /** The local address the last add for the mapping was bound to, if it was bound and is still remembered. */
  source(protocol: MappingProtocol, internalPort: number): string | undefined {
    return this.nonces.get(nonceKey(protocol, internalPort))?.source;
  }

  /**
   * Forgets the mapping's nonce once a delete with it completed. With `nonce`, only when it is
   * the one remembered: a newer add's nonce (sent while the delete was in flight) is kept.
   */
  forget(protocol: MappingProtocol, internalPort: number, nonce?: Uint8Array): void {
    const key = nonceKey(protocol, internalPort);
    const held = this.nonces.get(key)?.nonce;
    if (held === undefined) return;
    if (nonce === undefined || (held.length === nonce.length && held.every((b, i) => b === nonce[i]))) this.nonces.delete(key);
  }
}

const nonceKey = (protocol: MappingProtocol, internalPort: number): string => `${protocol}/${internalPort}`;
