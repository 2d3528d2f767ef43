/**
 * Where the console is, in the URL's fragment, so that the back button, a reload and a link to a
 * job work, and the server sees one page: `#/jobs` (with `?status=`), `#/jobs/<id>`.
 */
import { useEffect, useState } from 'preact/hooks';
import type { JobStatus } from '@waas/client';
import { statuses } from './format.ts';

export type Route = { view: 'jobs'; status?: JobStatus } | { view: 'job'; jobId: string };

function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?');
  const job = /^\/jobs\/([0-9a-fA-F-]{36})$/.exec(path);
  if (job?.[1]) return { view: 'job', jobId: job[1].toLowerCase() };
  const status = new URLSearchParams(query).get('status');
  const known = statuses.find((each) => each === status);
  return known ? { view: 'jobs', status: known } : { view: 'jobs' };
}

export const hrefOf = (route: Route): string =>
  route.view === 'job' ? `#/jobs/${route.jobId}` : route.status ? `#/jobs?status=${route.status}` : '#/jobs';

export const go = (route: Route): void => {
  location.hash = hrefOf(route);
};

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}
