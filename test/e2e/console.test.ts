/**
 * The console (GET /console) in a real browser (test/e2e/browser.ts) against the real local
 * stack and real targets on 127.0.0.1: sign in, jobs submitted through the API appear and
 * change on their own, a completed and a failed one, a job's request, attempts and callback, a
 * waiting job cancelled, a failed one replayed, a wrong token refused; by keyboard alone, and at
 * a phone's width. Each test saves a screenshot under test-results/, and no page reports an
 * error to its console.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { basic, call, demo, removeDir, startStack, startTarget, type RunningStack, type Target } from './harness.ts';
import { launchBrowser, openPage, phone, type WatchedPage } from './browser.ts';

let stack: RunningStack;
let browser: Browser;
/** Answers 200 with a small JSON body. */
let ok: Target;
/** Answers 500 to its first request on a path, then 422 (not retried): a job that fails on its second attempt. */
let flaky: Target;
/** Answers 503 with Retry-After: 600: a job that waits on its retry. */
let later: Target;
/** A callback receiver that answers 200. */
let receiver: Target;
const opened: WatchedPage[] = [];
/** How long a view may take to show what it was given: generous, for a machine other suites share. */
const soon = { timeout: 15_000 };
/** How long a job may take to be settled, seen through the views' refresh every 3 s. */
const settled = { timeout: 30_000 };

beforeAll(async () => {
  [stack, browser, ok, flaky, later, receiver] = await Promise.all([
    startStack(),
    launchBrowser(),
    startTarget((_, response) => {
      response.writeHead(200, { 'content-type': 'application/json', 'x-served-by': 'ok-target' });
      response.end('{"received":true}');
    }),
    startTarget((request, response) => {
      const seen = flaky.received.filter((each) => each.url === request.url).length;
      if (seen === 1) {
        response.writeHead(500, { 'content-type': 'text/plain' });
        response.end('try again');
      } else {
        response.writeHead(422, { 'content-type': 'application/json', 'x-reason': 'bad-order' });
        response.end('{"error":"order 7 is not valid"}');
      }
    }),
    startTarget((_, response) => {
      response.writeHead(503, { 'retry-after': '600' });
      response.end('later');
    }),
    startTarget((_, response) => response.end('ok')),
  ]);
}, 60_000);

afterAll(async () => {
  for (const each of opened) await each.context.close();
  await browser?.close();
  await Promise.all([ok, flaky, later, receiver].map((target) => target?.close()));
  await stack?.stop();
  if (stack) removeDir(stack.dataDir);
});

async function open(viewport?: { width: number; height: number }): Promise<WatchedPage> {
  const watched = await openPage(browser, viewport);
  opened.push(watched);
  await watched.page.goto(`${stack.url}/console`);
  return watched;
}

async function signIn(page: Page, token = demo.verifyToken): Promise<void> {
  await page.getByLabel('Client id').fill(demo.clientId);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Submits a job through the v1 API (not the console) and returns its id. */
async function submit(job: Record<string, unknown>): Promise<string> {
  const answer = await call(stack.url, 'POST', '/v1/jobs', job, basic(demo.clientId, demo.verifyToken));
  expect(answer.status).toBe(202);
  return String(answer.body['job_id']);
}

/**
 * A job that is waiting, for the cancel test: delayed ten minutes (v1's delay_s), it is
 * `accepted` with its next_attempt_at until then, and its target must never hear of it.
 */
async function submitWaitingJob(): Promise<string> {
  return submit({ url: `${later.url}/waiting`, delay_s: 600 });
}

/** The row of a job in the list. */
const rowOf = (page: Page, jobId: string) => page.locator(`tr[data-job-id="${jobId}"]`);

/**
 * Presses Tab (or `key`) until the focused element `el` makes `test` (a browser expression)
 * true, at most 40 times, as a keyboard user would.
 */
async function tabTo(page: Page, what: string, test: string, key = 'Tab'): Promise<void> {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press(key);
    if (await page.evaluate(`((el) => Boolean(el && (${test})))(document.activeElement)`)) return;
  }
  throw new Error(`${key} never reached ${what}`);
}

/** Whether the page is wider than its window (a sideways scroll on a phone). */
const overflows = (page: Page) => page.evaluate('document.documentElement.scrollWidth > window.innerWidth');

describe('the console, in a browser, on the local stack', () => {
  it('refuses a wrong token, saying so, and signs in with the right one; the token is in the session only', async () => {
    const { page, errors, screenshot } = await open();
    await signIn(page, 'not-the-token');
    await expect.poll(() => page.getByRole('alert').textContent(), soon).toMatch(/^Those credentials were refused: /);
    expect(await page.locator('#jobs-title').count()).toBe(0);
    await screenshot('console-wrong-token');
    // The browser itself logs the refused request (a 401 is a failed load): that, and nothing else.
    expect(errors).toEqual([expect.stringMatching(/^console: Failed to load resource: the server responded with a status of 401/)]);
    errors.length = 0;

    await signIn(page);
    await page.locator('#jobs-title').waitFor();
    const stored = (await page.evaluate('({ session: JSON.stringify(sessionStorage), local: localStorage.length, cookies: document.cookie })')) as { session: string; local: number; cookies: string };
    expect(stored.session).toContain(demo.verifyToken);
    expect(stored.local).toBe(0);
    expect(stored.cookies).toBe('');
    expect(errors).toEqual([]);
  });

  it('shows jobs submitted through the API as they come and as they end, one completed and one failed, and filters them by status', async () => {
    const { page, errors, screenshot } = await open();
    await signIn(page);
    await page.locator('#jobs-title').waitFor();
    // Submitted once the list is shown: it learns of them by itself.
    const done = await submit({ url: `${ok.url}/list-ok` });
    const failed = await submit({ url: `${flaky.url}/list-fail` });
    await expect.poll(() => rowOf(page, done).locator('.status').textContent(), settled).toBe('completed');
    await expect.poll(() => rowOf(page, failed).locator('.status').textContent(), settled).toBe('failed');
    const row = rowOf(page, failed);
    expect(await row.textContent()).toContain(`${flaky.url}/list-fail`);
    expect(await row.locator('td[data-label="Attempts"]').textContent()).toBe('2 of 5');

    await page.getByLabel('Status').selectOption('failed');
    await expect.poll(() => rowOf(page, failed).count(), soon).toBe(1);
    expect(await rowOf(page, done).count()).toBe(0);
    for (const status of await page.locator('tbody .status').allTextContents()) expect(status).toBe('failed');
    expect(page.url()).toMatch(/#\/jobs\?status=failed$/);
    await screenshot('console-jobs-failed');
    expect(errors).toEqual([]);
  });

  it("shows a failed job's request (header values redacted until asked for), each attempt's answer and its callback, and replays it", async () => {
    const { page, errors, screenshot } = await open();
    await signIn(page);
    const jobId = await submit({
      url: `${flaky.url}/order`,
      method: 'PUT',
      headers: { Authorization: 'Bearer service-secret', 'X-Order': '7' },
      body: { order: 7 },
      callback: `${receiver.url}/done`,
    });
    await page.goto(`${stack.url}/console#/jobs/${jobId}`);
    await expect.poll(() => page.locator('.summary .status').textContent(), settled).toBe('failed');
    await expect.poll(() => page.locator('[data-notified]').getAttribute('data-notified'), settled).toBe('true');

    const request = page.locator('section[aria-labelledby="request-title"]');
    expect(await request.textContent()).toContain(`PUT ${flaky.url}/order`);
    expect(await request.textContent()).not.toContain('service-secret');
    await request.getByRole('button', { name: 'Show header values' }).click();
    expect(await request.textContent()).toContain('Bearer service-secret');
    expect(await request.locator('pre.body').textContent()).toBe('{"order":7}');
    await request.getByRole('button', { name: 'Redact header values' }).click();
    expect(await request.textContent()).not.toContain('service-secret');

    const attempts = page.locator('.timeline > li');
    expect(await attempts.count()).toBe(2);
    expect(await attempts.nth(0).locator('summary .code').textContent()).toBe('500');
    expect(await attempts.nth(1).locator('summary .code').textContent()).toBe('422');
    expect(await attempts.nth(1).locator('summary').textContent()).toMatch(/\d+ ms/);
    await attempts.nth(1).locator('summary').click();
    const second = await attempts.nth(1).textContent();
    expect(second).toContain('x-reason');
    expect(second).toContain('bad-order');
    expect(second).toContain('{"error":"order 7 is not valid"}');
    expect(await page.locator('section[aria-labelledby="callback-title"]').textContent()).toContain('Delivered');
    expect(await page.getByRole('button', { name: 'Cancel job' }).isDisabled()).toBe(true);
    // The job view the README shows.
    await screenshot('console-job');

    await page.getByRole('button', { name: 'Replay' }).click();
    const outcome = page.getByRole('status');
    await expect.poll(() => outcome.textContent(), soon).toMatch(/^Replayed as a new job: [0-9a-f-]{36}$/);
    const replayId = (await outcome.locator('code').textContent()) ?? '';
    await outcome.getByRole('link').click();
    await expect.poll(() => page.locator('#job-title code').textContent(), soon).toBe(replayId);
    await expect.poll(() => page.locator('.summary').textContent(), soon).toContain(jobId);
    await expect.poll(() => page.locator('.summary .status').textContent(), settled).toBe('failed');
    await screenshot('console-replayed');
    expect(errors).toEqual([]);
  });

  it('cancels a waiting job, shows what the cancel did, and offers no cancel of a final job', async () => {
    const { page, errors, screenshot } = await open();
    await signIn(page);
    const jobId = await submitWaitingJob();
    await page.goto(`${stack.url}/console#/jobs/${jobId}`);
    await expect.poll(() => page.locator('.summary').textContent(), settled).toContain('Next attempt');
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await expect.poll(() => page.getByRole('status').textContent(), soon).toMatch(/^Cancelled: the job is cancelled/);
    await expect.poll(() => page.locator('.summary .status').textContent(), soon).toBe('cancelled');
    expect(await page.getByRole('button', { name: 'Cancel job' }).isDisabled()).toBe(true);
    const record = await call(stack.url, 'GET', `/v1/jobs/${jobId}`, undefined, basic(demo.clientId, demo.verifyToken));
    expect(record.body['status']).toBe('cancelled');
    expect(later.received.filter((request) => request.url === '/waiting')).toEqual([]);
    await screenshot('console-cancelled');
    expect(errors).toEqual([]);
  });

  it('pages through the jobs, 20 a page, older and back to newer', async () => {
    const { page, errors, screenshot } = await open();
    await signIn(page);
    await page.locator('#jobs-title').waitFor();
    // 21 jobs newer than any other of this file's: the first page holds 20 of them, the next the last one.
    const batch = await call(stack.url, 'POST', '/v1/jobs/batch', { jobs: Array.from({ length: 21 }, (_, i) => ({ url: `${ok.url}/page/${i}` })) }, basic(demo.clientId, demo.verifyToken));
    expect(batch.status).toBe(200);
    const ids = (batch.body['results'] as Array<{ job_id: string }>).map((result) => result.job_id);
    const shown = async () => page.locator('tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-job-id')));
    await expect.poll(async () => (await shown()).filter((id) => ids.includes(id ?? '')).length, soon).toBe(20);
    expect(await page.getByRole('button', { name: '← Newer' }).isDisabled()).toBe(true);
    const first = await shown();
    expect(first).toHaveLength(20);

    await page.getByRole('button', { name: 'Older →' }).click();
    await expect.poll(() => page.locator('.pager').textContent(), soon).toContain('Page 2');
    await expect.poll(async () => (await shown()).filter((id) => ids.includes(id ?? '')).length, soon).toBe(1);
    const missing = ids.filter((id) => !first.includes(id));
    expect(missing).toHaveLength(1);
    expect(await shown()).toContain(missing[0]);
    await screenshot('console-page-2');

    await page.getByRole('button', { name: '← Newer' }).click();
    await expect.poll(shown, soon).toEqual(first);
    expect(errors).toEqual([]);
  });

  it('polls the list every 3 s while the tab is visible, and not at all while it is hidden', async () => {
    const watched = await openPage(browser);
    opened.push(watched);
    const { page, context, errors, screenshot } = watched;
    // The page's timers on a clock of the test's, and its calls to the API counted where it makes them.
    await context.clock.install();
    await context.addInitScript({
      content: `window.listCalls = 0;
        const original = window.fetch.bind(window);
        window.fetch = (input, init) => {
          if (String(input instanceof Request ? input.url : input).includes('/v1/jobs?')) window.listCalls++;
          return original(input, init);
        };`,
    });
    await page.goto(`${stack.url}/console`);
    await signIn(page);
    await page.locator('#jobs-title').waitFor();
    const listCalls = () => page.evaluate('window.listCalls') as Promise<number>;
    const setVisibility = (state: 'visible' | 'hidden') =>
      page.evaluate(`Object.defineProperty(document, 'visibilityState', { value: '${state}', configurable: true }); document.dispatchEvent(new Event('visibilitychange'))`);
    await expect.poll(() => page.locator('.live').textContent(), soon).toContain('updated');
    const before = await listCalls();
    await page.clock.runFor(3_100);
    await expect.poll(listCalls, soon).toBe(before + 1);

    await setVisibility('hidden');
    await expect.poll(() => page.locator('.live').textContent(), soon).toContain('Paused while the tab is hidden');
    const hidden = await listCalls();
    await page.clock.runFor(60_000);
    expect(await listCalls()).toBe(hidden);
    await screenshot('console-paused');

    await setVisibility('visible');
    await expect.poll(listCalls, soon).toBe(hidden + 1);
    await expect.poll(() => page.locator('.live').textContent(), soon).toMatch(/^Live/);
    expect(errors).toEqual([]);
  });

  it('works by keyboard alone and fits a phone’s width: sign in, open a job, show its headers, go back', async () => {
    const jobId = await submit({ url: `${ok.url}/keyboard`, headers: { 'X-Key': 'board' } });
    const { page, errors, screenshot } = await open(phone);
    await tabTo(page, 'the client id', "el.id === 'client-id'");
    await page.keyboard.type(demo.clientId);
    await page.keyboard.press('Tab');
    await page.keyboard.type(demo.verifyToken);
    await page.keyboard.press('Enter');
    await page.locator('#jobs-title').waitFor();
    await rowOf(page, jobId).waitFor();
    expect(await overflows(page)).toBe(false);
    await screenshot('console-phone-jobs');

    await tabTo(page, "the job's link", `el.tagName === 'A' && el.closest('tr')?.dataset.jobId === '${jobId}'`);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate('document.activeElement?.id'), soon).toBe('job-title');
    await tabTo(page, 'Show header values', "el.textContent === 'Show header values'");
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('section[aria-labelledby="request-title"]').textContent(), soon).toContain('board');
    expect(await overflows(page)).toBe(false);
    await screenshot('console-phone-job');

    await tabTo(page, 'the link back to the jobs', "el.textContent === '← All jobs'", 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.locator('#jobs-title').waitFor();
    expect(errors).toEqual([]);
  });
});
