/**
 * `node:dgram` sockets adapted to udp.ts's {@link DatagramSocket}, without rxjs: the CLI's
 * early search (early-datagrams.ts) opens one before the command's bundle, and rxjs, are loaded.
 *
 * @packageDocumentation
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import type { DatagramSocket, OpenDatagramSocket } from './udp.js';

/**
 * A `node:dgram` socket as a {@link DatagramSocket}.
 *
 * @example
 * ```ts
 * const socket = adaptNodeSocket(createSocket('udp4'));
 * ```
 */
export function adaptNodeSocket(socket: Socket): DatagramSocket {
  return {
    bind: (port, address, done) => socket.bind({ port, address, exclusive: true }, done),
    connect: (port, address, done) => socket.connect(port, address, done),
    send: (message, to, done) => (to === undefined ? socket.send(message, done) : socket.send(message, to.port, to.address, done)),
    local: () => {
      const address = socket.address();
      return { address: address.address, port: address.port };
    },
    setMulticast: (ttl, interfaceAddress) => {
      socket.setMulticastTTL(ttl);
      if (interfaceAddress !== undefined) socket.setMulticastInterface(interfaceAddress);
    },
    addMembership: (group, interfaceAddress) => socket.addMembership(group, interfaceAddress),
    onMessage: (listener) => socket.on('message', (data: Buffer, rinfo: RemoteInfo) => listener(data, { address: rinfo.address, port: rinfo.port })),
    onError: (listener) => socket.on('error', listener),
    close: () => {
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  };
}

/**
 * A real socket from `node:dgram`, adapted to {@link DatagramSocket}.
 *
 * @example
 * ```ts
 * const socket = openNodeDatagramSocket('udp6');
 * ```
 */
export const openNodeDatagramSocket: OpenDatagramSocket = (type, options) => adaptNodeSocket(createSocket({ type, reuseAddr: options?.reuseAddr === true }));
