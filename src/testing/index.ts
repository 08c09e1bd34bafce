/**
 * `rxnat/testing`: the gateway simulator for your own tests. NAT-PMP, PCP and UPnP IGD
 * servers on loopback over one mapping table, with faults you can switch at runtime, so code
 * that maps ports can be tested without a router and without sending anything off the machine.
 *
 * @example
 * ```ts
 * import { startGatewaySimulator } from 'rxnat/testing';
 * import { parseNat, mapPort } from 'rxnat';
 *
 * const sim = await startGatewaySimulator();
 * const subscription = mapPort(parseNat('any', sim.discoverOptions)!, { protocol: 'udp', internalPort: 4001 })
 *   .subscribe((state) => console.log(state.status, state.externalPort));
 * // ... assert on sim.table.list(), sim.pmpPcp.counters, sim.upnp.requests
 * subscription.unsubscribe();
 * await sim.close();
 * ```
 *
 * @packageDocumentation
 * @module rxnat/testing
 */
export { startGatewaySimulator, type GatewaySimulator, type GatewaySimulatorOptions } from './simulator.js';
export { MappingTable, type MappingTableOptions, type SimulatedAddRequest, type SimulatedAddResult, type SimulatedMapping, type TableEvent } from './table.js';
export { Ipv6MappingTable, type Ipv6MappingTableOptions, type SimulatedIpv6Mapping } from './ipv6-table.js';
export { PinholeTable, type PinholeTableOptions, type SimulatedPinhole, type SimulatedPinholeRequest } from './pinhole-table.js';
export {
  startPmpPcpServer,
  type DropFault,
  type PmpPcpFaults,
  type PmpPcpRequestKind,
  type PmpPcpServer,
  type PmpPcpServerCounters,
  type PmpPcpServerOptions,
  type PmpPcpServerRequest,
  type RefuseFault,
} from './pmp-pcp-server.js';
export {
  startUpnpServer,
  UpnpFaults,
  type RecordedUpnpRequest,
  type UpnpAnswerFault,
  type UpnpFault,
  type UpnpFaultTarget,
  type UpnpServer,
  type UpnpServerOptions,
} from './upnp-server.js';
export type { UpnpAction } from '../protocols/upnp/soap.js';
export type { FirewallAction } from '../protocols/upnp/firewall-soap.js';
