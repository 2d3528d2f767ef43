/**
 * The api function as middy composes it: API Gateway's HTTP event in, the core's routes, the
 * seed API's answers out. The plumbing is middlewares, each one thing: the official header
 * normaliser and JSON serialiser, ours where the seed's exact answers need it.
 *
 * ```ts
 * export const handler = apiFunction(() => deps);
 * ```
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import httpResponseSerializer from '@middy/http-response-serializer';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { routeApi, type ApiDeps } from '../core/api.ts';
import { answerFor as seedAnswerFor, NotJson, problemFor, Unavailable, type Answer } from '../core/errors.ts';
import { isV1Path } from '../core/v1.ts';
import { isUnavailable } from './aws.ts';
import { tracing } from './tracing.ts';
import { logger, metrics, type WaasMetrics } from './wiring.ts';

type Event = APIGatewayProxyEventV2;
type Result = APIGatewayProxyStructuredResultV2;

/**
 * How long before the function's timeout a request still running is answered 503 (with
 * Retry-After), so the client hears what API Gateway would otherwise say less clearly. Whatever
 * the cut-off submit had done is safe to leave: see core/submit.ts.
 */
export const apiTimeoutMarginMs = 1_000;

/**
 * Decodes strictly: bytes that are not UTF-8 would otherwise become U+FFFD, a body the client
 * never sent. A BOM is kept, so that it is refused as the text body's would be.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * API Gateway hands over text bodies as they are and others in base64: the routes read text.
 * A body that is not UTF-8 is not JSON text (RFC 8259): the seed's 422.
 */
export function textBody(): MiddlewareObj<Event, Result> {
  return {
    before: ({ event }) => {
      if (event.isBase64Encoded && event.body !== undefined) {
        try {
          event.body = utf8.decode(Buffer.from(event.body, 'base64'));
        } catch {
          throw new NotJson();
        }
        event.isBase64Encoded = false;
      }
    },
  };
}

/**
 * Every failure becomes the seed API's answer for it (core/errors.ts maps them, in one place);
 * one that is not the API's own is a 500 that says nothing inside, and is logged.
 */
export function seedAnswers(): MiddlewareObj<Event, Result> {
  return {
    onError: (request) => {
      // v1 answers problems (RFC 9457); the seed's paths keep the seed's bodies.
      const answerFor = isV1Path(request.event.rawPath ?? '') ? problemFor : seedAnswerFor;
      // The store or the queue unavailable (down, throttled, timing out) is the contract's 503.
      const answer = answerFor(isUnavailable(request.error) ? new Unavailable('the service is unavailable for a moment; try again', { cause: request.error }) : request.error);
      // Never headers or bodies: they carry credentials and the clients' secrets.
      if (answer.statusCode >= 500) logger.error('request failed', { error: request.error instanceof Error ? `${request.error.name}: ${request.error.message}` : String(request.error) });
      request.response = asResult(answer);
    },
  };
}

/** JSON answers: an answer's body is an object, serialised once, here. */
const json = httpResponseSerializer({ serializers: [{ regex: /^application\/json$/, serializer: ({ body }) => JSON.stringify(body) }], defaultContentType: 'application/json' });

/**
 * Publishes what the request counted, once it is answered (or cut off). Powertools' logMetrics
 * would warn on each request that counted nothing (a GET /status): a line per request, paid for
 * in CloudWatch Logs.
 */
export function publishCounted(target: WaasMetrics = metrics): MiddlewareObj<Event, Result> {
  const flush = () => {
    if (target.hasStoredMetrics()) target.publishStoredMetrics();
  };
  return { after: flush, onError: flush };
}

/**
 * The answer as API Gateway takes it. A JSON body is left to the serialiser (`json`, above),
 * unless the answer names its own content-type (a problem's, a page's): then it is sent as it is.
 */
const asResult = (answer: Answer): Result => {
  const headers = { ...answer.headers };
  if (answer.text !== undefined) return { statusCode: answer.statusCode, headers, body: answer.text };
  return { statusCode: answer.statusCode, headers, body: (headers['content-type'] ? JSON.stringify(answer.body) : answer.body) as unknown as string };
};

export function apiFunction(deps: () => ApiDeps): middy.MiddyfiedHandler<Event, Result, Error, Context> {
  // The path of the request in hand (an instance takes one at a time), for the early answer's style.
  let path = '';
  const tooLong = new Unavailable('the request took too long; nothing half-done is kept, try again');
  // A batch stops starting writes in time (core/submit.ts, acceptBatch); one still in its SDK's
  // retries at the deadline may yet land, so this answer cannot say that none did.
  const batchTooLong = new Unavailable(
    'the batch took too long to answer; a job whose write was under way may have been stored: send the batch again with an idempotency_key on each job, and none is made twice',
  );
  const early = () => {
    if (!isV1Path(path)) return seedAnswerFor(tooLong);
    return problemFor(path.replace(/\/+$/, '') === '/v1/jobs/batch' ? batchTooLong : tooLong);
  };
  return middy<Event, Result, Error, Context>({
    timeoutEarlyInMillis: apiTimeoutMarginMs,
    timeoutEarlyResponse: () => asResult(early()),
  })
    .use({ before: ({ event }) => void (path = event.rawPath ?? '') })
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(tracing())
    .use(metrics.publishing ? publishCounted() : [])
    .use(httpHeaderNormalizer())
    .use(textBody())
    .use(json)
    .use(seedAnswers())
    .handler(async (event, context) => {
      const answer = await routeApi(deps(), {
        remainingMs: context.getRemainingTimeInMillis() - apiTimeoutMarginMs,
        method: event.requestContext.http.method,
        path: event.rawPath,
        query: event.queryStringParameters ?? {},
        headers: event.headers ?? {},
        body: event.body,
        sourceIp: event.requestContext.http.sourceIp,
      });
      logger.debug('answered', { method: event.requestContext.http.method, path: event.rawPath, status: answer.statusCode });
      return asResult(answer);
    });
}
