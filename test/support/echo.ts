/**
 * A TCP echo server over the core API, for tests: whatever arrives goes back, as fast as the
 * connection's send buffer takes it, and the server closes once the client has and all is echoed.
 */
import type { Stack } from '../../src/stack/stack.js';
import type { TcpConnection } from '../../src/tcp/user.js';

export function echoServer(stack: Stack, port: number): void {
  const l = stack.tcpListen({ port });
  l.onConnection = (c: TcpConnection) => {
    const pump = (): void => {
      for (;;) {
        const space = c.writableSpace;
        if (space === 0) return;
        const d = c.read(space);
        if (d === null) break;
        c.write(d);
      }
      if (c.finReceived && c.readableLength === 0 && c.state === 'CLOSE-WAIT') c.close();
    };
    c.events = { onReadable: pump, onWritable: pump, onEnd: pump };
  };
}
