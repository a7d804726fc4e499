/**
 * synack core entry: runs unchanged in a browser (no Node built-ins, no dependencies).
 * Node users get the same plus `stack.net` from the package's Node entry (index.node.ts).
 */
export { Stack, type StackCounters } from './stack/stack.js';
export type { StackOptions, ConnectOptions, ListenOptions } from './stack/options.js';
export { MemoryLink, MemoryLinkEnd, type MemoryLinkOptions, type MemoryLinkStats } from './link/memory.js';
export { impair, impairEthernet, ImpairedLinkEnd, ImpairedWire, type ImpairOptions, type WireImpairments, type WireStats, type LinkDropReason } from './link/impair.js';
export { EthernetSwitch, EthernetPort, type EthernetSwitchOptions, type EthernetSwitchStats, type EthernetPortStats, type SwitchDropReason, type MacTableEntry } from './link/switch.js';
export { VirtualClock, RealClock, type Clock, type TimerHandle } from './link/clock.js';
export type { LinkEnd } from './link/link.js';
export { isEthernetLink, type EthernetLinkEnd } from './link/link.js';
export { EthernetInterface, type EthernetInterfaceOptions, type InterfaceHost, type InterfaceAddress, type InterfaceCounters, type AdvertiseOptions, type OwnAddressState } from './net/interface.js';
export { parseMac, formatMac } from './wire/ethernet.js';
export { TcpError, type TcpErrorCode, type TcpConnection, type TcpListener, type TcpInfo, type ConnectionEvents } from './tcp/user.js';
export { TCP_STATES, type TcpState } from './tcp/state.js';
export type { TraceEvent, TraceListener, SegmentInfo, Endpoints } from './trace/events.js';
export { PcapWriter } from './trace/pcap.js';
export type { StreamConnection, StreamListener } from './socket/streams.js';
export { UdpError, type UdpSocket, type UdpBindOptions, type UdpErrorCode, type UdpRemote, type UdpLocal, type UdpMessageHandler } from './udp/socket.js';
export type { UdpStream, UdpStreamOptions, UdpStreamMessage, UdpStreamOutgoing } from './socket/udp-streams.js';
export type { DropReason } from './wire/drop.js';
// Ladder diagrams: recorded from stacks (DiagramRecorder) or inferred from any pcap/pcapng capture
// (readCapture → extractTcp → splitStreams → inferStream), drawn by the renderers `synack demo` and
// `synack draw` use.
export { DiagramRecorder, type DiagramModel, type DiagramEndpoint, type DiagramSegment, type DiagramState, type SegmentMark } from './diagram/model.js';
export { readCapture, CaptureError, type CapturedPacket, type CaptureReadResult } from './trace/capture.js';
export { extractTcp, splitStreams, listStreams, inferStream, defaultStream, type StreamSummary, type CapturedSegment } from './diagram/infer.js';
export { renderText, type TextOptions } from './diagram/text.js';
export { renderSvg, type SvgOptions } from './diagram/svg.js';
export { renderHtml, type HtmlOptions } from './diagram/html.js';
export { renderMermaid } from './diagram/mermaid.js';
// DNS: the message codec, a server for a gateway (static names, forwarding with a cache), DNS over
// HTTPS as an upstream, and the stub resolver behind stack.lookup / net.connect({ host: name }).
export {
  parseDns, writeDns, dnsQuery, dnsNameEquals, dnsNameKey, dnsNameIsUnder, reverseName, txtStrings, dnsTypeName,
  dnsTypeFromName, dnsRcodeName, DnsType, DnsClass, DnsRcode,
  type DnsMessage, type DnsQuestion, type DnsRecord, type DnsRdata, type DnsEdns, type DnsOption, type DnsDropReason,
  type WriteDnsOptions,
} from './wire/dns.js';
export {
  DnsServer, serveDns, type DnsUpstream, type DnsServerOptions, type DnsStaticEntry, type DnsStaticRecords,
  type DnsQueryEvent, type DnsServerCounters, type ServeDnsOptions, type DnsService,
} from './services/dns-server.js';
export { DohUpstream, type DohUpstreamOptions } from './services/dns-upstream-doh.js';
export { DnsStub, DnsStubError, dnsLookup, type LookupOptions, type LookupAddress, type DnsStubOptions } from './services/dns-stub.js';
// DHCPv4: the message codec, the server and client cores (sans I/O), and both attached to a stack.
export {
  parseDhcp, writeDhcp, emptyDhcpMessage, dhcpTypeName, maskToPrefix, prefixToMask, DhcpType, DhcpOption,
  DHCP_FLAG_BROADCAST, type DhcpMessage, type DhcpOptions, type DhcpRawOption, type DhcpDropReason,
} from './wire/dhcp.js';
export {
  DhcpServer, type DhcpServerOptions, type DhcpServerEvent, type DhcpServerCounter, type DhcpReply, type DhcpLeaseInfo,
  type DhcpStaticLease,
} from './services/dhcp-server.js';
export { DhcpClient, type DhcpClientOptions, type DhcpClientAction, type DhcpClientState, type DhcpLease } from './services/dhcp-client.js';
export { serveDhcp, runDhcpClient, type DhcpHost, type DhcpServerHandle, type DhcpClientHandle, type RunDhcpClientOptions } from './services/dhcp.js';
// The gateway's LAN half: a synack router on an Ethernet segment (ARP/NDP, RAs, DHCP, DNS) in
// QEMU's user-mode layout; `synack gateway` runs it on a TAP device.
export { LanGateway, lanLayout, type LanGatewayOptions, type LanGatewayEvent, type LanLayout } from './gateway/lan.js';
// The gateway (issue 15): every connection and flow of the guest relayed through an upstream.
export { Gateway, type GatewayOptions, type GatewayEvent, type GatewayCounters } from './gateway/gateway.js';
export {
  UpstreamError, type Upstream, type UpstreamErrorCode, type UpstreamStream, type UpstreamDatagrams, type UpstreamTarget,
} from './gateway/upstream.js';
export { TcpRelay, relayTcp, type RelayStats, type RelayOptions } from './gateway/relay.js';
export { UdpFlows, type UdpFlowsOptions, type UdpFlowInfo, type UdpFlowClosed } from './gateway/udp-flows.js';
export {
  WispUpstream, WispClient, WispProtocolError, WispCloseReason, encodeWispPacket, decodeWispPacket, wispCloseReasonName,
  type WispUpstreamOptions, type WispClientOptions, type WispPacket, type WebSocketLike, type WebSocketConstructor,
} from './gateway/wisp.js';
export {
  LocalUpstream, type LocalUpstreamOptions, type LocalTcpConnection, type LocalUdpFlow, type LocalTcpHandler, type LocalUdpHandler,
} from './gateway/upstream-local.js';
export {
  Policy, parseRule, DEFAULT_DENY, describeDefaultDeny, type PolicyOptions, type PolicyDecision, type PolicyRule,
  type PolicyAction, type PolicyProtocol, type PolicyCounters, type DefaultDeny,
} from './gateway/policy.js';
export { FakeIpDns, type FakeIpOptions, type FakeIpCounters } from './gateway/fake-ip.js';
export { parseHostForward, formatHostForward, type HostForwardSpec } from './gateway/hostfwd.js';
export {
  type TcpForwardRequest, type TcpForwardHandler, type TcpForwardOptions, type ForwardRejection,
  type UdpForwardDatagram, type UdpForwardHandler, type UdpForwardVerdict,
} from './stack/forward.js';
