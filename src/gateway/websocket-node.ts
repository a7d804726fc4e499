/**
 * The WebSocket for Node 20, which has none built in: the `ws` package's, typed as the
 * WebSocket-like constructor the Wisp client takes (same shape as the browser's, plus
 * pause()/resume(), which the client uses to bound memory while streams are paused).
 * Node only; core code takes a WebSocketConstructor instead of importing this.
 */
import { WebSocket } from 'ws';
import type { WebSocketConstructor } from './wisp.js';

export const NodeWebSocket: WebSocketConstructor = WebSocket;
