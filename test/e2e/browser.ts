/**
 * A real browser for the end-to-end tests: Debian's Chromium (/usr/bin/chromium, which .ci/run
 * installs when it is missing) driven by playwright-core, which downloads no browser of its
 * own. Headless, with nothing that reaches outside this machine (no background networking,
 * component updates, sync or QUIC), in a profile of its own that Playwright makes fresh for
 * each launch and removes at close.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { root } from './harness.ts';

const chromiumPath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const laptop = { width: 1280, height: 800 };
export const phone = { width: 390, height: 844 };

/** A page in a context of its own (its own sessionStorage), and every error the page reported. */
export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught exceptions, as the browser reported them. */
  errors: string[];
  /** Saves a screenshot as test-results/<name>.png (git-ignored), and returns its path. */
  screenshot(name: string): Promise<string>;
}

const resultsDir = join(root, 'test-results');

export async function openPage(browser: Browser, viewport = laptop): Promise<WatchedPage> {
  // One locale and time zone, so that a screenshot reads the same on every machine.
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'UTC' });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.message}`));
  return {
    context,
    page,
    errors,
    screenshot: async (name) => {
      mkdirSync(resultsDir, { recursive: true });
      const path = join(resultsDir, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
  };
}
