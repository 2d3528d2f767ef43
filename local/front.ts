/**
 * The local stand-in for API Gateway's HTTP API: each HTTP request becomes a payload-format-2.0
 * event for the api function, and its result becomes the HTTP response. Like API Gateway it
 * routes only the stack's routes, refuses bodies over its own payload limit, and answers 503
 * for an invocation that timed out and 500 for one that failed. `GET /health` answers 503 while
 * the local storage is down, so that nothing looks ready that cannot accept a job.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { randomUUID } from 'node:crypto';
import { functions, jobLimits, routes } from '../lib/definitions.ts';
import { FunctionTimedOut } from './runtime.ts';

/** An invocation of the api function (a LocalFunction's `invoke`). */
export type InvokeApi = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

export interface FrontOptions {
  invoke: InvokeApi;
  host: string;
  port: number;
  /** Whether the stack can take jobs now (its storage is up); `/health` says so. */
  healthy?: () => boolean;
  onError?: (error: unknown) => void;
}

/** API Gateway's own limit on a request payload. */
const gatewayPayloadBytes = 10 * 1024 * 1024;

class TooLarge extends Error {}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > gatewayPayloadBytes) throw new TooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export function toEvent(request: IncomingMessage, body: Buffer, routeKey: string): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? '/', 'http://local');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = query[name] === undefined ? value : `${query[name]},${value}`;
  const now = Date.now();
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers['host'] ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: request.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: new Date(now).toUTCString(),
      timeEpoch: now,
    },
    isBase64Encoded: false,
  };
  if (Object.keys(query).length > 0) event.queryStringParameters = query;
  if (body.length > 0) {
    // API Gateway passes text bodies as they are and anything else base64-encoded.
    const text = body.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(body)) event.body = text;
    else {
      event.body = body.toString('base64');
      event.isBase64Encoded = true;
    }
  }
  return event;
}

/**
 * API Gateway's route selection over the stack's routes: a route of the path and method, else a
 * greedy `{proxy+}` route whose prefix the path extends by at least one segment (of the method,
 * or ANY). The route key it matched, or undefined (the gateway's 404).
 */
export function gatewayRoutes(table: ReadonlyArray<{ method: string; path: string }> = routes): (method: string, path: string) => string | undefined {
  const exact = new Set(table.filter((route) => !route.path.endsWith('/{proxy+}')).map((route) => `${route.method} ${route.path}`));
  const greedy = table.filter((route) => route.path.endsWith('/{proxy+}')).map((route) => ({ ...route, prefix: route.path.slice(0, -'{proxy+}'.length) }));
  return (method, path) => {
    if (exact.has(`${method} ${path}`)) return `${method} ${path}`;
    const found = greedy.find((route) => (route.method === method || route.method === 'ANY') && path.startsWith(route.prefix) && path.length > route.prefix.length);
    return found ? `${found.method} ${found.path}` : undefined;
  };
}

export interface Front {
  server: Server;
  url: string;
  close(): Promise<void>;
}

export async function startFront(options: FrontOptions): Promise<Front> {
  const { invoke, host, port, onError } = options;
  const routeOf = gatewayRoutes();
  const server = createServer(async (request, response) => {
    const send = (status: number, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
      response.writeHead(status, headers);
      response.end(body);
    };
    try {
      const path = new URL(request.url ?? '/', 'http://local').pathname;
      const routeKey = routeOf(request.method ?? 'GET', path);
      let body: Buffer;
      try {
        body = await readBody(request);
      } catch (error) {
        if (error instanceof TooLarge) return send(413, JSON.stringify({ status: 'failed', message: `request body must be at most ${jobLimits.requestBodyBytes} bytes` }));
        throw error;
      }
      if (routeKey === undefined) return send(404, JSON.stringify({ message: 'Not Found' }));
      if (routeKey === 'GET /health' && options.healthy && !options.healthy()) return send(503, JSON.stringify({ status: 'unavailable' }), { 'content-type': 'application/json', 'retry-after': '1' });
      let result: APIGatewayProxyStructuredResultV2;
      try {
        result = await invoke(toEvent(request, body, routeKey));
      } catch (error) {
        // What API Gateway answers when the function timed out.
        if (error instanceof FunctionTimedOut) return send(503, JSON.stringify({ message: 'Service Unavailable' }));
        throw error;
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
      send(result.statusCode ?? 200, result.body ?? '', headers);
    } catch (error) {
      onError?.(error);
      // What API Gateway answers when the integration fails.
      if (!response.headersSent) send(500, JSON.stringify({ message: 'Internal Server Error' }));
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${shownHost}:${address.port}`,
    // Takes no new request; those in flight are answered (within the api function's timeout), then every connection closes.
    close: () =>
      new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), (functions.api.timeoutSeconds + 1) * 1_000);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
