/**
 * One job: where it stands, its request (header values redacted until asked for), every
 * attempt with its answer, its callback's outcome, and Cancel and Replay with what they did.
 * Refreshed every few seconds until nothing about it can change any more.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Attempt, JobRecord, ServiceRequest, Waas } from '@waas/client';
import { callbackOutcome, codeClass, duration, failureText, isFinal, isSettled, when } from './format.ts';
import { Body, Headers, Live, Status } from './parts.tsx';
import { usePoll } from './poll.ts';
import { hrefOf } from './route.ts';

interface Loaded {
  job: JobRecord;
  attempts: Attempt[];
}

/** What the last button press did, shown beside the buttons. */
type Outcome = { ok: true; text: string; replayId?: string } | { ok: false; text: string };

export function JobView({ waas, jobId }: { waas: Waas; jobId: string }) {
  const polled = usePoll<Loaded>(jobId, async () => {
    const [job, attempts] = await Promise.all([waas.get(jobId), waas.attempts(jobId)]);
    return { job, attempts };
  }, ({ job }) => !isSettled(job));
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [jobId]);
  const [outcome, setOutcome] = useState<Outcome>();
  const [busy, setBusy] = useState(false);

  const act = async (what: () => Promise<Outcome>) => {
    setBusy(true);
    setOutcome(undefined);
    try {
      setOutcome(await what());
    } catch (error) {
      setOutcome({ ok: false, text: failureText(error) });
    } finally {
      setBusy(false);
      polled.refresh();
    }
  };
  const cancel = () => act(async () => ({ ok: true, text: `Cancelled: the job is ${(await waas.cancel(jobId)).status}; no attempt starts after this, and it gets no callback.` }));
  const replay = () =>
    act(async () => {
      const replayed = await waas.replay(jobId);
      return { ok: true, text: 'Replayed as a new job: ', replayId: replayed.job_id };
    });

  const job = polled.value?.job;
  return (
    <article aria-labelledby="job-title">
      <p>
        <a href={hrefOf({ view: 'jobs' })}>← All jobs</a>
      </p>
      <div class="bar">
        <h1 id="job-title" tabIndex={-1} ref={heading}>
          Job <code class="id">{jobId}</code>
        </h1>
        <Live polled={polled} settled={job !== undefined && isSettled(job)} />
      </div>
      {polled.error !== undefined && (
        <p class="alert" role="alert">
          Could not load the job: {failureText(polled.error)}
        </p>
      )}
      {job && (
        <>
          <section class="card summary" aria-label="Summary">
            <dl>
              <dt>Status</dt>
              <dd>
                <Status status={job.status} />
              </dd>
              <dt>Created</dt>
              <dd>
                <time dateTime={job.created}>{when(job.created)}</time>
              </dd>
              <dt>Last update</dt>
              <dd>
                <time dateTime={job.lastUpdate}>{when(job.lastUpdate)}</time>
              </dd>
              <dt>Attempts</dt>
              <dd>
                {job.attempts} of {job.max_attempts} (timeout {duration(job.timeout_ms)} each)
              </dd>
              {job.next_attempt_at && (
                <>
                  <dt>Next attempt</dt>
                  <dd>
                    <time dateTime={job.next_attempt_at}>{when(job.next_attempt_at)}</time>
                  </dd>
                </>
              )}
              {job.replay_of && (
                <>
                  <dt>Replay of</dt>
                  <dd>
                    <a href={hrefOf({ view: 'job', jobId: job.replay_of })}>
                      <code>{job.replay_of}</code>
                    </a>
                  </dd>
                </>
              )}
            </dl>
            <div class="actions">
              <button type="button" class="danger" disabled={busy || isFinal(job.status)} onClick={cancel} title={isFinal(job.status) ? `The job is ${job.status} already` : undefined}>
                Cancel job
              </button>
              <button type="button" disabled={busy} onClick={replay}>
                Replay
              </button>
            </div>
            <div role="status" aria-live="polite" class="outcome">
              {outcome && (
                <p class={outcome.ok ? 'ok' : 'alert'}>
                  {outcome.ok ? outcome.text : `Refused: ${outcome.text}`}
                  {outcome.ok && outcome.replayId && (
                    <a href={hrefOf({ view: 'job', jobId: outcome.replayId })}>
                      <code>{outcome.replayId}</code>
                    </a>
                  )}
                </p>
              )}
            </div>
          </section>
          <RequestView waas={waas} jobId={jobId} />
          <Attempts attempts={polled.value?.attempts ?? []} />
          <Callback job={job} />
        </>
      )}
    </article>
  );
}

/** The request, read once (it never changes); header values redacted until "Show" is pressed. */
function RequestView({ waas, jobId }: { waas: Waas; jobId: string }) {
  const polled = usePoll<ServiceRequest>(`${jobId} request`, () => waas.request(jobId), () => false);
  const [shown, setShown] = useState(false);
  const request = polled.value;
  return (
    <section class="card" aria-labelledby="request-title">
      <div class="bar">
        <h2 id="request-title">Request</h2>
        <button type="button" class="quiet" aria-pressed={shown} onClick={() => setShown(!shown)}>
          {shown ? 'Redact header values' : 'Show header values'}
        </button>
      </div>
      {polled.error !== undefined && <p class="alert">Could not load the request: {failureText(polled.error)}</p>}
      {request && (
        <>
          <p class="url">
            <span class="method">{request.method}</span> <code>{request.url}</code>
          </p>
          <Headers headers={request.headers} redacted={!shown} label="Request headers" />
          <Body text={request.body_base64 ?? request.body} />
          {request.body_base64 !== undefined && <p class="hint">The body is bytes, shown as base64.</p>}
        </>
      )}
    </section>
  );
}

function Attempts({ attempts }: { attempts: Attempt[] }) {
  return (
    <section class="card" aria-labelledby="attempts-title">
      <h2 id="attempts-title">Attempts</h2>
      {attempts.length === 0 ? (
        <p class="hint">No attempt has finished yet.</p>
      ) : (
        <ol class="timeline">
          {attempts.map((attempt) => (
            <li key={attempt.attempt} data-attempt={attempt.attempt}>
              <details>
                <summary>
                  <span class="n">#{attempt.attempt}</span>
                  <time dateTime={attempt.started}>{when(attempt.started)}</time>
                  <span>{duration(attempt.durationMs)}</span>
                  {attempt.statusCode !== undefined ? <span class={codeClass(attempt.statusCode)}>{attempt.statusCode}</span> : <span class="code code-error">{attempt.error ?? 'no answer'}</span>}
                </summary>
                {attempt.statusCode !== undefined ? (
                  <>
                    <h3>Answer headers</h3>
                    <Headers headers={attempt.headers ?? {}} label={`Attempt ${attempt.attempt}'s answer headers`} />
                    <h3>Answer body{attempt.bodyBytes !== undefined ? ` (${attempt.bodyBytes} bytes${attempt.truncated ? ', cut' : ''})` : ''}</h3>
                    <Body text={attempt.body} note={attempt.body === undefined ? 'Not kept for this attempt.' : 'Empty.'} />
                    {attempt.bodyEncoding === 'base64' && <p class="hint">The body is bytes, shown as base64.</p>}
                  </>
                ) : (
                  <p>No answer: {attempt.error}</p>
                )}
              </details>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Callback({ job }: { job: JobRecord }) {
  return (
    <section class="card" aria-labelledby="callback-title">
      <h2 id="callback-title">Callback</h2>
      <dl>
        <dt>URL</dt>
        <dd>{job.callback ? <code>{job.callback}</code> : 'none'}</dd>
        <dt>Outcome</dt>
        <dd data-notified={job.notified}>{callbackOutcome[job.notified]}</dd>
        {job.callback && (
          <>
            <dt>Attempts</dt>
            <dd>
              {job.notify_attempts} of {job.callback_max_attempts}
            </dd>
            <dt>Last answer</dt>
            <dd>{job.notifyoutput ?? 'none yet'}</dd>
          </>
        )}
      </dl>
    </section>
  );
}
