/**
 * rxnat: open ports on NAT gateways (UPnP IGD v1/v2, NAT-PMP, PCP) as RxJS streams.
 *
 * @packageDocumentation
 * @module rxnat
 */
export { mapPort, type MappingState, type MappingStatus, type MapPortOptions } from './core/map-port.js';
export { raceNats, type NatProbe } from './core/race-nats.js';
export { extIp } from './core/ext-ip.js';
export { classifyAddress, classifyIpv4, isIpAddress, isUsableExternalAddress, type AddressKind } from './core/address.js';
export { backoffDelayMs, type RetryOptions } from './core/backoff.js';
export { debugLogger, enableDebug, silentLogger, type Logger } from './core/logger.js';
export { createGatewayRegistry, type GatewayRegistry } from './core/gateway-context.js';
export { DEFAULT_LIFETIME_SECONDS } from './core/validate.js';
export type {
  AddressFamily,
  BackendKind,
  MappingGrant,
  MappingProtocol,
  MappingRequest,
  Nat,
  NatMappingRequest,
  PortMappingEntry,
} from './core/nat.js';
export { discoverNat, type BackendName, type DiscoverNatOptions } from './discover.js';
export { parseNat } from './parse-nat.js';
export { followNetwork, type FollowNetworkOptions } from './follow-network.js';
export { localAddressFacing, networkWatch, snapshotKey, systemNetworkReader, type InterfaceAddress, type NetworkReader, type NetworkSnapshot, type NetworkWatchOptions } from './transport/network-watch.js';
export { pmp, type PmpOptions } from './protocols/pmp/client.js';
export type { PortControlOptions } from './protocols/pmp-pcp-shared.js';
export { pcp, type PcpMappingToken, type PcpOptions } from './protocols/pcp/client.js';
export { DEFAULT_STUN_SERVERS, parseStunServer, stun, type StunOptions, type StunServer } from './protocols/stun/client.js';
export type { DeviceDescription, UpnpDevice, UpnpService, WanConnectionService } from './protocols/upnp/description.js';
export type { StatusInfo } from './protocols/upnp/soap.js';
export type { SsdpTarget } from './protocols/upnp/ssdp-search.js';
export type { UdpCollectOptions, UdpDatagram, UdpEndpoint, UdpExchangeOptions, UdpListenOptions, UdpReply, UdpStats, RetransmitSchedule } from './transport/udp.js';
export type { HttpRequest, HttpResponse } from './transport/http.js';
export type { TransportLogger } from './transport/logger.js';
export { createTransport, nodeTransport, type Transport } from './transport/transport.js';
export { upnp, type UpnpNat, type UpnpOptions } from './protocols/upnp/client.js';
export {
  MAX_PINHOLE_PROBES,
  PINHOLE_SEARCH_TARGETS,
  pinholeTokenOf,
  SSDP_IPV6_LINK_LOCAL_TARGET,
  upnpPinhole,
  upnpPinholeVia,
  type PinholeToken,
  type UpnpPinholeCommonOptions,
  type UpnpPinholeNat,
  type UpnpPinholeOptions,
} from './protocols/upnp/firewall-client.js';
export { firewallControlService, WAN_IPV6_FIREWALL_CONTROL_1, type FirewallControlService } from './protocols/upnp/description.js';
export { FIREWALL_ERROR_NAMES, firewallErrorName, type FirewallStatus, type PinholeFilter } from './protocols/upnp/firewall-soap.js';
export { CloseTimeoutError, natService, type NatMapping, type NatService, type NatServiceOptions, type NewMappingOptions } from './facade/nat-service.js';
export { natMap, type NatMapOptions } from './facade/nat-map.js';
export { mappingStates, type MappingStatesOptions } from './facade/mapping-states.js';
export { defaultGateway, clearDefaultGatewayCache, type DefaultGateway } from './transport/default-gateway.js';
export { defaultIpv6Gateway, clearDefaultIpv6GatewayCache } from './transport/default-gateway6.js';
export { globalIpv6Addresses, listGlobalIpv6Addresses, type InterfaceAddressInfo } from './transport/local-addresses.js';
export {
  DefaultGatewayError,
  GatewayError,
  GatewayLostError,
  GatewayResetError,
  InvalidOptionError,
  LeaseExpiredError,
  ListenError,
  MappingMissingError,
  NOT_HERE_CODES,
  UnconfirmedDeleteError,
  type UnconfirmedDelete,
  GatewayTimeoutError,
  GatewayUnreachableError,
  InvalidMappingRequestError,
  NatSpecError,
  NoGatewayError,
  NoMappingError,
  ProtocolError,
  RxnatError,
  serializeError,
  type SerializedError,
  type BackendFailure,
  type GatewayProtocol,
} from './errors.js';
