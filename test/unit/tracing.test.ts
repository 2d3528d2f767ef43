/** Powertools Tracer, behind the stack's `tracing` flag (POWERTOOLS_TRACE_ENABLED in the functions' environment). */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { awsClients, closeAwsClients } from '../../lambdas/adapters/aws.ts';

const original = { trace: process.env['POWERTOOLS_TRACE_ENABLED'], runtime: process.env['AWS_EXECUTION_ENV'] };
const restore = (name: string, value: string | undefined) => (value === undefined ? delete process.env[name] : (process.env[name] = value));
afterEach(() => {
  restore('POWERTOOLS_TRACE_ENABLED', original.trace);
  restore('AWS_EXECUTION_ENV', original.runtime);
  vi.resetModules();
});

const load = async (enabled: string | undefined) => {
  if (enabled === undefined) delete process.env['POWERTOOLS_TRACE_ENABLED'];
  else process.env['POWERTOOLS_TRACE_ENABLED'] = enabled;
  vi.resetModules();
  return import('../../lambdas/adapters/tracing.ts');
};

describe('tracing', () => {
  it('off: no Tracer, no middleware, and the SDK clients are left as they are', async () => {
    const tracing = await load(undefined);
    expect(tracing.tracer).toBeUndefined();
    expect(tracing.tracing()).toEqual([]);
    const clients = awsClients({ region: 'us-east-1' });
    const before = clients.dynamodb.middlewareStack.identify().length;
    tracing.traceClients(clients);
    expect(clients.dynamodb.middlewareStack.identify()).toHaveLength(before);
    closeAwsClients(clients);
  });

  it('on: a segment per invocation without the response, and a subsegment per DynamoDB and SQS call', async () => {
    // The Tracer traces only inside Lambda, which says so in AWS_EXECUTION_ENV.
    process.env['AWS_EXECUTION_ENV'] = 'AWS_Lambda_nodejs24.x';
    const tracing = await load('true');
    expect(tracing.tracer?.isTracingEnabled()).toBe(true);
    expect(tracing.tracing()).toHaveLength(1);
    const clients = awsClients({ region: 'us-east-1' });
    const before = { dynamodb: clients.dynamodb.middlewareStack.identify().length, sqs: clients.sqs.middlewareStack.identify().length };
    tracing.traceClients(clients);
    expect(clients.dynamodb.middlewareStack.identify().length).toBeGreaterThan(before.dynamodb);
    expect(clients.sqs.middlewareStack.identify().length).toBeGreaterThan(before.sqs);
    closeAwsClients(clients);
  });
});
