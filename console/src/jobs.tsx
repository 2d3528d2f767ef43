/**
 * The client's jobs, newest first, a page at a time (v1's list and its cursor), filtered by
 * status, refreshed every few seconds while the tab is visible.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JobStatus, Waas } from '@waas/client';
import { failureText, statuses, when } from './format.ts';
import { usePoll } from './poll.ts';
import { go, hrefOf } from './route.ts';
import { Live, Status } from './parts.tsx';

const pageSize = 20;

export function JobsList({ waas, status }: { waas: Waas; status: JobStatus | undefined }) {
  // The cursors of the pages before this one, and this one's: "Newer" goes back along them.
  // Kept with the status they page through: another status starts at its first page.
  const [paging, setPaging] = useState<{ status: JobStatus | undefined; cursors: Array<string | undefined> }>({ status, cursors: [undefined] });
  const cursors = paging.status === status ? paging.cursors : [undefined];
  const setCursors = (next: Array<string | undefined>) => setPaging({ status, cursors: next });
  const cursor = cursors.at(-1);
  const page = usePoll(`${status ?? ''} ${cursor ?? ''}`, () => waas.listPage({ limit: pageSize, ...(status ? { status } : {}), ...(cursor ? { cursor } : {}) }));
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  const jobs = page.value?.jobs;
  const next = page.value?.next_cursor ?? null;

  return (
    <section aria-labelledby="jobs-title">
      <div class="bar">
        <h1 id="jobs-title" tabIndex={-1} ref={heading}>
          Jobs
        </h1>
        <label class="filter">
          Status{' '}
          <select value={status ?? ''} onChange={(e) => go({ view: 'jobs', ...(e.currentTarget.value ? { status: e.currentTarget.value as JobStatus } : {}) })}>
            <option value="">all</option>
            {statuses.map((each) => (
              <option value={each}>{each}</option>
            ))}
          </select>
        </label>
        <Live polled={page} />
      </div>
      {page.error !== undefined && (
        <p class="alert" role="alert">
          Could not load the jobs: {failureText(page.error)}
        </p>
      )}
      {jobs === undefined ? (
        page.error === undefined && <p class="hint">Loading…</p>
      ) : jobs.length === 0 ? (
        <p class="hint">{status ? `No ${status} jobs on this page.` : 'No jobs yet.'}</p>
      ) : (
        <table class="jobs">
          <caption class="sr-only">Jobs, newest first{status ? `, ${status}` : ''}</caption>
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Created</th>
              <th scope="col">Service URL</th>
              <th scope="col">Attempts</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => (
              <tr key={job.jobId} data-job-id={job.jobId}>
                <td data-label="Status">
                  <Status status={job.status} />
                </td>
                <td data-label="Created">
                  <time dateTime={job.created}>{when(job.created)}</time>
                </td>
                <td data-label="Service URL" class="url">
                  <a href={hrefOf({ view: 'job', jobId: job.jobId })} title={`Job ${job.jobId}`}>
                    <span class="method">{job.methodtype}</span> {job.service}
                  </a>
                </td>
                <td data-label="Attempts">
                  {job.attempts} of {job.max_attempts}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          ← Newer
        </button>
        <span class="hint">Page {cursors.length}</span>
        <button type="button" disabled={next === null} onClick={() => next !== null && setCursors([...cursors, next])}>
          Older →
        </button>
      </nav>
    </section>
  );
}
