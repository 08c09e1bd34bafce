/**
 * Builds the STUN Binding success response (RFC 5389: MAPPED-ADDRESS, XOR-MAPPED-ADDRESS,
 * SOFTWARE) to `request`, received from `address:port`; `null` when `request` is not a STUN
 * Binding request. Implemented in stun-responder.mjs.
 *
 * @example
 * ```ts
 * const reply = stunBindingResponse(datagram, '10.77.0.2', 40001);
 * if (reply) socket.send(reply, 40001, '10.77.0.2');
 * ```
 */
export declare function stunBindingResponse(request: Buffer, address: string, port: number): Buffer | null;
