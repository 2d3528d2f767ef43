/**
 * A real HTTP server on a loopback port that records what reaches it: for the tests of our
 * HTTP clients (the outbound one and the AWS one). Closed by the caller, connections and all.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** Filled in as it arrives: complete once the request has ended. */
  body: string;
}

export interface RecordingServer {
  url: string;
  port: number;
  connections: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * Starts a server whose `handler` sees each request as soon as it arrives (recorded before its
 * body, so a request that never gets an answer is still seen), with its record.
 */
export async function startRecordingServer(
  handler: (req: IncomingMessage, res: ServerResponse, record: RecordedRequest, index: number) => void,
  host = '127.0.0.1',
  port = 0,
): Promise<RecordingServer> {
  const server = createServer();
  const recording: RecordingServer = {
    url: '',
    port: 0,
    connections: 0,
    requests: [],
    close: async () => {
      server.closeAllConnections();
      if (server.listening) await new Promise((resolve) => server.close(resolve));
    },
  };
  server.on('connection', () => recording.connections++);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' };
    const index = recording.requests.push(record) - 1;
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (record.body += chunk));
    handler(req, res, record, index);
  });
  server.listen(port, host);
  await once(server, 'listening');
  recording.port = (server.address() as AddressInfo).port;
  recording.url = `http://${host}:${recording.port}`;
  return recording;
}
