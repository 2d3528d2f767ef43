/**
 * Whatever a target answers, the items we write stay far below DynamoDB's 400 KB item limit:
 * the worst case of every bounded field, measured by DynamoDB's own size rules.
 */
import { marshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { jobLimits } from '../../lib/definitions.ts';
import type { AttemptOutput, Job, JobRequest } from '../../lambdas/core/job.ts';

/** DynamoDB's item size: attribute names plus values (strings in UTF-8, numbers ~21 bytes). */
function valueBytes(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return 21;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.L) return 3 + value.L.reduce((sum, v) => sum + 1 + valueBytes(v), 0);
  if (value.M) return 3 + Object.entries(value.M).reduce((sum, [k, v]) => sum + 1 + Buffer.byteLength(k) + valueBytes(v), 0);
  throw new Error(`unsized attribute ${JSON.stringify(value)}`);
}
const itemBytes = (item: Record<string, unknown>) =>
  Object.entries(marshall(item, { removeUndefinedValues: true })).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + valueBytes(v), 0);

const longUrl = `https://example.com/${'p'.repeat(jobLimits.urlChars - 20)}`;
const error = 'E'.repeat(1024);

function worstOutput(): AttemptOutput {
  const headers: Record<string, string> = {};
  // Response headers are kept up to responseHeaderBytes in all.
  for (let i = 0; i < 64; i++) headers[`x-header-${i}`] = 'v'.repeat(jobLimits.responseHeaderBytes / 64 - 12);
  return {
    started: new Date().toISOString(),
    durationMs: 60_000,
    statusCode: 503,
    headers,
    // The capture limit, in base64 (binary bodies grow by a third).
    body: Buffer.alloc(jobLimits.responseBodyBytes, 0xff).toString('base64'),
    bodyEncoding: 'base64',
    bodyBytes: 100 * 1024 * 1024,
    truncated: true,
    error,
  };
}

describe('item sizes', () => {
  it('keeps the largest job state item under a third of the 400 KB limit', () => {
    const job: Job = {
      jobId: '6b7d7b4b-6d76-4fed-8306-330cb945cca0',
      clientId: '6'.repeat(128),
      created: new Date().toISOString(),
      lastUpdate: new Date().toISOString(),
      service: longUrl,
      methodtype: 'OPTIONS',
      callback: longUrl,
      status: 'running',
      attempts: 20,
      maxAttempts: 20,
      timeoutMs: 60_000,
      output: worstOutput(),
      history: Array.from({ length: jobLimits.attemptHistory }, (_, i) => ({ attempt: i + 1, started: new Date().toISOString(), durationMs: 60_000, statusCode: 599, error })),
      nextAttemptAt: Date.now(),
      leaseUntil: Date.now(),
      notified: 'notification failed',
      notifyoutput: error,
      notifyAttempts: 20,
      callbackMaxAttempts: 20,
      notifyLeaseUntil: Date.now(),
      nextNotifyAt: Date.now(),
      sweep: '6',
      expiresAt: 1_900_000_000,
    };
    const bytes = itemBytes({ pk: job.jobId, sk: 'job', ...job });
    console.log(JSON.stringify({ largestJobItemBytes: bytes }));
    expect(bytes).toBeLessThan(400_000 / 3);
  });

  it('keeps the largest request item (written once) under the 400 KB limit with room to spare', () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < jobLimits.maxHeaders; i++) headers[`x-h-${String(i).padStart(2, '0')}`] = 'v'.repeat(Math.floor(jobLimits.headerBytes / jobLimits.maxHeaders) - 12);
    const request: JobRequest = { url: longUrl, method: 'POST', headers, body: 'b'.repeat(jobLimits.requestBodyBytes) };
    const bytes = itemBytes({ pk: '6b7d7b4b-6d76-4fed-8306-330cb945cca0', sk: 'request', ...request, expiresAt: 1_900_000_000 });
    console.log(JSON.stringify({ largestRequestItemBytes: bytes }));
    expect(bytes).toBeLessThan(300_000);
  });
});
