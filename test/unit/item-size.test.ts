/**
 * Whatever a target answers, the items we write stay far below DynamoDB's 400 KB item limit:
 * the worst case of every bounded field, in noise that no compression shrinks, stored as the
 * jobs store stores it and measured by DynamoDB's own size rules.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { dynamoItemSize } from '../../lambdas/adapters/item-size.ts';
import { newJobItems, storedChanges } from '../../lambdas/adapters/job-items.ts';
import { acceptedJob } from '../support/memory.ts';
import { jobLimits } from '../../lib/definitions.ts';
import type { AttemptOutput, Job, JobRequest } from '../../lambdas/core/job.ts';

/** Noise no compression shrinks: what makes a stored item largest. */
const noise = (chars: number) => randomBytes(Math.ceil((chars * 3) / 4)).toString('base64').slice(0, chars);

const longUrl = `https://example.com/${'p'.repeat(jobLimits.urlChars - 20)}`;
const error = noise(1024);

function worstOutput(): AttemptOutput {
  const headers: Record<string, string> = {};
  // Response headers are kept up to responseHeaderBytes in all.
  for (let i = 0; i < 64; i++) headers[`x-header-${i}`] = noise(jobLimits.responseHeaderBytes / 64 - 12);
  return {
    started: new Date().toISOString(),
    durationMs: 60_000,
    statusCode: 503,
    headers,
    // The capture limit, in base64 (binary bodies grow by a third).
    body: randomBytes(jobLimits.responseBodyBytes).toString('base64'),
    bodyEncoding: 'base64',
    bodyBytes: 100 * 1024 * 1024,
    truncated: true,
    error,
  };
}

const smallJob = acceptedJob({ jobId: '6b7d7b4b-6d76-4fed-8306-330cb945cca0', service: longUrl });

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
    // As stored: written at submit, then every limit reached by one attempt's write.
    const { output, history, ...submitted } = job;
    const [item = {}] = newJobItems({ ...submitted, output: null, history: [] }, { url: longUrl, method: 'OPTIONS', headers: {}, body: null });
    const { set, remove } = storedChanges({ output, history });
    const stored: Record<string, unknown> = { ...item, ...set };
    for (const name of remove) delete stored[name];
    const bytes = dynamoItemSize(stored);
    console.log(JSON.stringify({ largestJobItemBytes: bytes }));
    expect(bytes).toBeLessThan(400_000 / 3);
  });

  it('keeps the largest request item (written once) under the 400 KB limit with room to spare', () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < jobLimits.maxHeaders; i++) headers[`x-h-${String(i).padStart(2, '0')}`] = noise(Math.floor(jobLimits.headerBytes / jobLimits.maxHeaders) - 12);
    const request: JobRequest = { url: longUrl, method: 'POST', headers, body: noise(jobLimits.requestBodyBytes) };
    const items = newJobItems(smallJob, request);
    expect(items).toHaveLength(2);
    const bytes = dynamoItemSize(items[1] ?? {});
    console.log(JSON.stringify({ largestRequestItemBytes: bytes }));
    expect(bytes).toBeLessThan(300_000);
  });
});
