/** The SDK clients' failures, as the API tells them apart: unavailable for a moment (503), or a mistake (500). */
import { ConditionalCheckFailedException, DynamoDBServiceException, InternalServerError, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { isUnavailable } from '../../lambdas/adapters/aws.ts';
import { callApi } from '../support/api.ts';
import { ManualClock, MemoryClientStore, memoryApiDeps, testClient } from '../support/memory.ts';

const metadata = { $metadata: { httpStatusCode: 400, attempts: 3 } };

describe('isUnavailable', () => {
  it('is true of what the store or the queue does when down, slow, throttled or failing on its side', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4566'), { code: 'ECONNREFUSED', ...metadata });
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const timedOut = Object.assign(new Error('Connection timed out after 1000 ms'), { name: 'TimeoutError' });
    const throttled = new ProvisionedThroughputExceededException({ message: 'slow down', ...metadata });
    const failing = new InternalServerError({ message: 'oops', $metadata: { httpStatusCode: 500 } });
    for (const error of [refused, reset, timedOut, throttled, failing]) expect(isUnavailable(error), String(error)).toBe(true);
  });

  it('is false of a refused condition, a malformed call and errors of our own', () => {
    for (const error of [new ConditionalCheckFailedException({ message: 'no', ...metadata }), new DynamoDBServiceException({ name: 'ValidationException', $fault: 'client', message: 'bad expression', ...metadata }), new Error('a bug'), undefined, 'text']) {
      expect(isUnavailable(error), String(error)).toBe(false);
    }
  });
});

describe('the API while its store is unavailable', () => {
  it('answers 503 with Retry-After, not 500, and keeps nothing', async () => {
    const clock = new ManualClock();
    const clients = new MemoryClientStore();
    const alice = testClient('11111111111111');
    await clients.put(alice.client);
    clients.get = async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4567'), { code: 'ECONNREFUSED' });
    };
    const { deps, jobs, queue } = memoryApiDeps(clock, clients);
    const basic = `Basic ${Buffer.from(`${alice.client.clientId}:${alice.token}`).toString('base64')}`;
    const answer = await callApi(deps, { method: 'POST', path: '/webhook', query: {}, headers: { authorization: basic }, body: JSON.stringify({ service: 'https://service.example.com' }) });
    expect(answer.statusCode).toBe(503);
    expect(answer.headers?.['retry-after']).toBe('1');
    expect(answer.body).toMatchObject({ status: 'failed' });
    expect(jobs.jobs.size).toBe(0);
    expect(queue.sent).toEqual([]);
  });
});
