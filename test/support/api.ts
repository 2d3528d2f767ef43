/**
 * The API as a client meets it in a unit test: the api function itself (its middlewares and the
 * core's routes) on an API Gateway HTTP API event, over fakes of the core's ports.
 */
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { apiFunction } from '../../lambdas/adapters/api-function.ts';
import type { ApiDeps, ApiRequest } from '../../lambdas/core/api.ts';
import type { Answer } from '../../lambdas/core/errors.ts';

/** A Lambda context with time to spare: the function's early-timeout answer never fires. */
export function testContext(remainingMs = 60_000): Context {
  return { getRemainingTimeInMillis: () => remainingMs, awsRequestId: 'test-request', functionName: 'api' } as unknown as Context;
}

/** An API Gateway v2 event for `request`, as the gateway (or the local front) builds one. */
export function gatewayEvent(request: ApiRequest): APIGatewayProxyEventV2 {
  const query = Object.fromEntries(Object.entries(request.query).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const headers = Object.fromEntries(Object.entries(request.headers).filter((entry): entry is [string, string] => entry[1] !== undefined));
  return {
    version: '2.0',
    routeKey: `${request.method} ${request.path}`,
    rawPath: request.path,
    rawQueryString: new URLSearchParams(query).toString(),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'test',
      domainName: 'test',
      domainPrefix: 'test',
      http: { method: request.method, path: request.path, protocol: 'HTTP/1.1', sourceIp: request.sourceIp ?? '198.51.100.7', userAgent: 'test' },
      requestId: 'test',
      routeKey: `${request.method} ${request.path}`,
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
    ...(request.body !== undefined ? { body: request.body } : {}),
    isBase64Encoded: false,
  };
}

/** The api function's answer to `request`, its JSON body parsed back. */
export async function callApi(deps: ApiDeps, request: ApiRequest, context: Context = testContext()): Promise<Answer> {
  const result = await apiFunction(() => deps)(gatewayEvent(request), context);
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]));
  return { statusCode: result.statusCode ?? 200, headers, body: JSON.parse(result.body ?? 'null') as Record<string, unknown> };
}

/** The api function's answer to a GET of `request.path` (or `request`), its body as the text it is: a page's, a file's. */
export async function callApiRaw(deps: ApiDeps, request: Partial<ApiRequest>): Promise<{ statusCode: number; headers: Record<string, string>; text: string }> {
  const result = await apiFunction(() => deps)(gatewayEvent({ method: 'GET', path: '/', query: {}, headers: {}, body: undefined, ...request }), testContext());
  const headers = Object.fromEntries(Object.entries(result.headers ?? {}).map(([name, value]) => [name.toLowerCase(), String(value)]));
  return { statusCode: result.statusCode ?? 200, headers, text: result.body ?? '' };
}
