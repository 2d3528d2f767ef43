/**
 * The Callback: what we tell the client's callback URL when a job settles, signed per the
 * Standard Webhooks spec so the receiver can check it came from us and drop duplicates.
 */
import { Webhook } from 'standardwebhooks';
import { outputText, type Job } from './job.ts';
import type { Client } from './ports.ts';

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

/** How long a rotated-out signing secret keeps signing, so receivers can switch over. */
export const secretOverlapMs = 24 * 60 * 60 * 1000;

/** The secrets that sign now: the newest, and the older ones until their overlap ends. */
export function activeSecrets(client: Pick<Client, 'signingSecrets' | 'secretsRetireAt'>, now: number): string[] {
  const [newest, ...older] = client.signingSecrets;
  if (newest === undefined) return [];
  const retire = client.secretsRetireAt === undefined ? Number.POSITIVE_INFINITY : Date.parse(client.secretsRetireAt);
  return now < retire ? [newest, ...older] : [newest];
}

/** A client with a new newest secret; the current one keeps signing for `secretOverlapMs`. */
export function rotateSecret<C extends Pick<Client, 'signingSecrets' | 'secretsRetireAt'>>(client: C, secret: string, now: number): C {
  const current = activeSecrets(client, now)[0];
  return {
    ...client,
    signingSecrets: current === undefined ? [secret] : [secret, current],
    secretsRetireAt: new Date(now + secretOverlapMs).toISOString(),
  };
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
