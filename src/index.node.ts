/**
 * The package's Node entry: everything the core entry exports, with `Stack` given a `net` property
 * (a `node:net` look-alike bound to that stack). Browsers get './index.js' (package.json `browser`
 * condition), where `stack.net` is absent.
 */
import { Stack as CoreStack } from './index.js';
import { Net } from './socket/net.js';
import { Dgram } from './socket/dgram.js';

export * from './index.js';
export { Net, Socket, Server } from './socket/net.js';
export type {
  AddressInfo,
  NetError,
  NetStack,
  ReadyState,
  ServerOpts,
  SocketConstructorOpts,
  TcpSocketConnectOpts,
  ListenOptions as NetListenOptions,
} from './socket/net.js';
export { Dgram, Socket as DgramSocket } from './socket/dgram.js';
export type { DgramError, DgramStack, RemoteInfo, BindOptions as DgramBindOptions, SocketOptions as DgramSocketOptions, SocketType as DgramSocketType } from './socket/dgram.js';

/** The core Stack plus `net`: one `Net` per stack, made on first use. */
export class Stack extends CoreStack {
  #net: Net | undefined;
  get net(): Net {
    return (this.#net ??= new Net(this));
  }
  #dgram: Dgram | undefined;
  /** A `node:dgram` look-alike over this stack's UDP: `stack.dgram.createSocket('udp4')`. */
  get dgram(): Dgram {
    return (this.#dgram ??= new Dgram(this));
  }
}
// The host's resolver as a DNS upstream (node:dgram / node:net to the resolv.conf servers).
export { NodeDnsUpstream, type NodeDnsUpstreamOptions } from './services/dns-upstream-node.js';
// Linux TUN devices (Node only: opens /dev/net/tun through koffi; never imported by the core).
export { TunLink, TunError } from './link/tun.js';
export type { TunOptions, TunStats, TunErrorCode } from './link/tun.js';
// Linux TAP devices (Ethernet frames; the kernel side may serve another network namespace).
export { TapLink } from './link/tap.js';
export type { TapOptions, TapStats } from './link/tap.js';
// The gateway's Node pieces: the direct upstream (node:net, node:dgram), host listeners for port
// forwarding, and the `ws` package's WebSocket for a Wisp upstream in Node 20.
export { DirectUpstream, socketStream, type DirectUpstreamOptions } from './gateway/upstream-direct.js';
export { startHostForward, type HostForward, type HostForwardGuest, type HostForwardOptions, type HostForwardCounters } from './gateway/hostfwd-node.js';
export { NodeWebSocket } from './gateway/websocket-node.js';
