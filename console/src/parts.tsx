/** Small pieces the views share: a status badge, the live-refresh line, a table of headers. */
import type { JobStatus } from '@waas/client';
import type { Polled } from './poll.ts';

export const Status = ({ status }: { status: JobStatus }) => <span class={`status status-${status}`}>{status}</span>;

/** Whether the view refreshes itself, and when it last did. */
export function Live({ polled, settled = false }: { polled: Polled<unknown>; settled?: boolean }) {
  const text = polled.paused ? 'Paused while the tab is hidden' : settled ? 'Final: no more changes' : 'Live';
  return (
    <p class={`live${polled.paused || settled ? '' : ' on'}`} aria-live="off">
      {text}
      {polled.at && <span class="hint"> · updated {polled.at.toLocaleTimeString()}</span>}
    </p>
  );
}

/** A header table; each value shown as dots when `redacted`. */
export function Headers({ headers, redacted = false, label }: { headers: Record<string, string>; redacted?: boolean; label: string }) {
  const entries = Object.entries(headers);
  if (entries.length === 0) return <p class="hint">No headers.</p>;
  return (
    <table class="headers">
      <caption class="sr-only">{label}</caption>
      <tbody>
        {entries.map(([name, value]) => (
          <tr>
            <th scope="row">{name}</th>
            <td>{redacted ? <span class="redacted" aria-label="redacted">••••••</span> : value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A body as text, or a note of what it is when there is none to show. */
export function Body({ text, note }: { text: string | null | undefined; note?: string }) {
  if (text === null || text === undefined || text === '') return <p class="hint">{note ?? 'No body.'}</p>;
  return <pre class="body">{text}</pre>;
}
