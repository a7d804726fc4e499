/** node's own http client and server, running over synack sockets instead of the kernel's. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { Socket } from '../../src/socket/net.js';
import { FAMILIES, MODES, collect, twoStacks } from './harness.js';
import type { Net2 } from './harness.js';

interface Served {
  connections: Socket[];
  requests: Array<{ method: string | undefined; url: string | undefined; body: string }>;
}

/** An http.Server fed by a synack listener on stack b, port 80. */
function serveHttp(n: Net2): Served {
  const served: Served = { connections: [], requests: [] };
  const httpServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      served.requests.push({ method: req.method, url: req.url, body });
      const reply = `you asked for ${req.url}${body ? ` with ${body}` : ''}`;
      res.writeHead(200, { 'content-type': 'text/plain', 'x-served-by': 'synack' });
      res.end(reply);
    });
  });
  n.b.net
    .createServer((sock) => {
      served.connections.push(sock);
      httpServer.emit('connection', sock);
    })
    .listen(80);
  return served;
}

function get(
  options: http.RequestOptions,
  body?: string,
): Promise<{ status: number | undefined; headers: http.IncomingHttpHeaders; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request(options, (res) => {
      collect(res).then(
        (b) =>
          resolve({ status: res.statusCode, headers: res.headers, body: b.toString(), reused: req.reusedSocket }),
        reject,
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (const mode of MODES) {
  for (const fam of FAMILIES) {
    describe(`http over synack sockets (${mode} time, ${fam.name})`, () => {
      test('http.get with createConnection: status, headers and body', async () => {
        const n = twoStacks(mode);
        const served = serveHttp(n);
        const res = await n.run(
          new Promise<{ status: number | undefined; body: string }>((resolve, reject) => {
            http
              .get(
                {
                  host: fam.b,
                  port: 80,
                  path: '/hello',
                  createConnection: () => n.a.net.connect({ host: fam.b, port: 80 }),
                },
                (r) => {
                  collect(r).then((b) => resolve({ status: r.statusCode, body: b.toString() }), reject);
                },
              )
              .on('error', reject);
          }),
        );
        assert.equal(res.status, 200);
        assert.equal(res.body, 'you asked for /hello');
        assert.equal(served.requests.length, 1);
        assert.equal(served.connections.length, 1);
        assert.equal(served.connections[0]!.remoteAddress, fam.a);
      });

      test('keep-alive: two requests on one synack connection', async () => {
        const n = twoStacks(mode);
        const served = serveHttp(n);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const created: Socket[] = [];
        agent.createConnection = () => {
          const s = n.a.net.connect({ host: fam.b, port: 80 });
          created.push(s);
          return s;
        };
        const opts = { host: fam.b, port: 80, agent };
        const first = await n.run(get({ ...opts, path: '/one' }));
        const second = await n.run(get({ ...opts, path: '/two', method: 'POST' }, 'a body'));
        assert.equal(first.status, 200);
        assert.equal(first.body, 'you asked for /one');
        assert.equal(first.headers['x-served-by'], 'synack');
        assert.equal(first.reused, false);
        assert.equal(second.status, 200);
        assert.equal(second.body, 'you asked for /two with a body');
        assert.equal(second.reused, true);
        assert.equal(created.length, 1, 'the agent opened a second connection');
        assert.equal(served.connections.length, 1);
        assert.deepEqual(
          served.requests.map((r) => `${r.method} ${r.url}`),
          ['GET /one', 'POST /two'],
        );
        agent.destroy();
        await n.run(new Promise((r) => served.connections[0]!.once('close', r)));
      });
    });
  }
}
