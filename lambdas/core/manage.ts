/** Placeholder until branch `store` merges: the agreed signatures of the v1 job operations. */
import type { AttemptOutput, Job, JobStatus } from './job.ts';
import type { Client } from './ports.ts';
import type { Accepted, SubmitDeps } from './submit.ts';

const pending = (): never => {
  throw new Error('not merged yet');
};
export async function getJob(_deps: SubmitDeps, _client: Client, _jobId: string): Promise<Job> {
  return pending();
}
export async function listJobs(_deps: SubmitDeps, _client: Client, _query: { status?: JobStatus; limit: number; cursor?: string }): Promise<{ jobs: Job[]; nextCursor: string | null }> {
  return pending();
}
export async function jobAttempts(_deps: SubmitDeps, _client: Client, _jobId: string): Promise<Array<AttemptOutput & { attempt: number }>> {
  return pending();
}
export async function cancelJob(_deps: SubmitDeps, _client: Client, _jobId: string): Promise<Job> {
  return pending();
}
export async function replayJob(_deps: SubmitDeps, _client: Client, _jobId: string): Promise<Accepted & { replay_of: string }> {
  return pending();
}
