/** Lambda: the HTTP API (API Gateway HTTP API, payload format 2.0). */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { logger, refusalAtSubmit, services } from './adapters/wiring.ts';
import { handleApi, type ApiDeps } from './core/api.ts';

let deps: ApiDeps | undefined;

function apiDeps(): ApiDeps {
  const s = services();
  deps ??= {
    jobs: s.jobs,
    queue: s.queue,
    clock: s.clock,
    auth: s.auth,
    limiter: s.limiter,
    retentionDays: s.config.retentionDays,
    indexEveryJob: s.config.indexEveryJob,
    refuse: refusalAtSubmit(s.egress),
    report: (error) => logger.error('request failed', { error: error instanceof Error ? error.message : String(error) }),
  };
  return deps;
}

export async function handler(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) headers[name.toLowerCase()] = value;
  const body = event.body === undefined ? undefined : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  const answer = await handleApi(apiDeps(), {
    method: event.requestContext.http.method,
    path: event.rawPath,
    query: event.queryStringParameters ?? {},
    headers,
    body,
    sourceIp: event.requestContext.http.sourceIp,
  });
  // Never headers or bodies: they carry credentials and the clients' secrets.
  logger.debug('answered', { method: event.requestContext.http.method, path: event.rawPath, status: answer.statusCode, requestId: event.requestContext.requestId });
  return {
    statusCode: answer.statusCode,
    headers: { 'content-type': 'application/json', ...answer.headers },
    body: JSON.stringify(answer.body),
  };
}
