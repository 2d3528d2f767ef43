/**
 * The Callback: what we tell the client's callback URL when a job settles, signed per the
 * Standard Webhooks spec so the receiver can check it came from us and drop duplicates.
 */
import { Webhook } from 'standardwebhooks';
import { outputText, type Job } from './job.ts';

/**
 * The callback body: the seed's names (`jobId`, `status`, `job_output`…) and the structured
 * output. Never the service's request headers: they may hold the client's service credentials.
 */
export function callbackBody(job: Job): string {
  return JSON.stringify({
    jobId: job.jobId,
    clientId: job.clientId,
    status: job.status,
    created: job.created,
    lastUpdate: job.lastUpdate,
    service: job.service,
    methodtype: job.methodtype,
    attempts: job.attempts,
    job_output: outputText(job.output),
    output: job.output,
  });
}

/**
 * The Standard Webhooks headers. The id is the job's, the same on every retry, so a receiver
 * can drop duplicates; the timestamp is the attempt's, so a receiver's replay window holds.
 * Each of the client's current secrets signs (space-separated), which lets a secret rotate.
 */
export function signCallback(secrets: readonly string[], jobId: string, at: Date, body: string): Record<string, string> {
  const signatures = secrets.map((secret) => new Webhook(secret).sign(jobId, at, body));
  return {
    'webhook-id': jobId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}
