/**
 * Schedules' crons: what is taken (what EventBridge Scheduler can run), its EventBridge
 * expression, and the next runs, across daylight saving time as EventBridge Scheduler has it.
 */
import { Cron } from 'croner';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { instantOfWallClock, nextRun, readCron } from '../../lambdas/core/cron.ts';
import { InvalidRequest } from '../../lambdas/core/errors.ts';

const at = (text: string) => Date.parse(text);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The runs after `from`, as many as asked. */
function runs(cron: string, timezone: string, from: number, count: number): Array<string | undefined> {
  const found: Array<string | undefined> = [];
  let after = from;
  for (let i = 0; i < count; i++) {
    const next = nextRun({ cron, timezone }, after);
    found.push(iso(next));
    if (next === undefined) break;
    after = next;
  }
  return found;
}

function refusal(cron: string, timezone?: string): string {
  try {
    readCron(cron, timezone);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidRequest);
    return (error as Error).message;
  }
  throw new Error(`${cron} was taken`);
}

describe('what a schedule takes', () => {
  it('writes each cron as EventBridge Scheduler takes it: six fields, ? in one day field, days of week 1-7 from Sunday', () => {
    expect(readCron('* * * * *').expression).toBe('cron(* * * * ? *)');
    expect(readCron('*/15 9-17 * * 1-5').expression).toBe('cron(0/15 9-17 ? * 2,3,4,5,6 *)');
    expect(readCron('0 0 1,15 * *').expression).toBe('cron(0 0 1,15 * ? *)');
    expect(readCron('5 4 * * SUN').expression).toBe('cron(5 4 ? * 1 *)');
    expect(readCron('0 0 * * 7').expression).toBe('cron(0 0 ? * 1 *)');
    expect(readCron('0 12 * JAN-MAR *').expression).toBe('cron(0 12 * 1-3 ? *)');
    expect(readCron('1-3,7 */6 * * *').expression).toBe('cron(1-3,7 0/6 * * ? *)');
    expect(readCron('  0   9 * * *  ', 'Europe/Paris')).toEqual({ cron: '0 9 * * *', timezone: 'Europe/Paris', expression: 'cron(0 9 * * ? *)' });
  });

  it('refuses, naming the rule, what EventBridge Scheduler cannot run or what is not five fields', () => {
    expect(refusal('0 9 1 * MON')).toMatch(/day-of-month and day-of-week cannot both be restricted/);
    expect(refusal('0 9 */2 * 1-5')).toMatch(/cannot both be restricted/);
    expect(refusal('* * * *')).toMatch(/five fields/);
    expect(refusal('0 * * * * *')).toMatch(/five fields/);
    expect(refusal('@daily')).toMatch(/five fields/);
    expect(refusal('0 0 L * *')).toMatch(/day-of-month field "L" may hold only/);
    expect(refusal('0 0 15W * *')).toMatch(/day-of-month field/);
    expect(refusal('0 0 * * MON#2')).toMatch(/day-of-week field/);
    expect(refusal('0 0 ? * MON')).toMatch(/day-of-month field/);
    expect(refusal('0 0 * * +MON')).toMatch(/day-of-week field/);
    expect(refusal('0 MON * * *')).toMatch(/hour field "MON"/);
    expect(refusal('60 * * * *')).toMatch(/^cron: .*minute/i);
  });

  it('refuses a time zone that is not an IANA name', () => {
    expect(refusal('* * * * *', 'Mars/Olympus')).toMatch(/^timezone: "Mars\/Olympus" is not an IANA time zone name/);
    expect(refusal('* * * * *', '+02:00')).toMatch(/^timezone:/);
    expect(readCron('* * * * *', 'America/New_York').timezone).toBe('America/New_York');
  });
});

describe('next runs', () => {
  it('follows the cron in its zone', () => {
    expect(runs('30 9 * * 1-5', 'Europe/Paris', at('2026-12-04T12:00:00Z'), 2)).toEqual(['2026-12-07T08:30:00.000Z', '2026-12-08T08:30:00.000Z']);
    expect(runs('* * * * *', 'UTC', at('2026-12-02T10:00:00Z'), 2)).toEqual(['2026-12-02T10:01:00.000Z', '2026-12-02T10:02:00.000Z']);
    // Strictly after: a run at the very instant given is not the next.
    expect(runs('0 * * * *', 'UTC', at('2026-12-02T10:00:00Z'), 1)).toEqual(['2026-12-02T11:00:00.000Z']);
  });

  it('skips a 02:30 run on a spring-forward day (the time does not exist), as EventBridge Scheduler does', () => {
    // America/New_York, 8 March 2026: 02:00 EST is followed by 03:00 EDT.
    expect(instantOfWallClock('America/New_York', at('2026-03-08T02:30:00Z'))).toBeUndefined();
    expect(runs('30 2 * * *', 'America/New_York', at('2026-03-07T12:00:00Z'), 2)).toEqual(['2026-03-09T06:30:00.000Z', '2026-03-10T06:30:00.000Z']);
    // An interval cron loses the skipped hour's runs alone.
    expect(runs('*/30 * * * *', 'America/New_York', at('2026-03-08T06:40:00Z'), 3)).toEqual(['2026-03-08T07:00:00.000Z', '2026-03-08T07:30:00.000Z', '2026-03-08T08:00:00.000Z']);
  });

  it('runs a time repeated by falling back once, at its first occurrence', () => {
    // 1 November 2026: 01:00-01:59 happen twice in New York, at EDT (05:xxZ) then at EST (06:xxZ).
    expect(runs('30 1 * * *', 'America/New_York', at('2026-11-01T04:00:00Z'), 2)).toEqual(['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
    expect(runs('*/30 * * * *', 'America/New_York', at('2026-11-01T04:50:00Z'), 4)).toEqual([
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T05:30:00.000Z',
      '2026-11-01T07:00:00.000Z',
      '2026-11-01T07:30:00.000Z',
    ]);
  });

  it('has none for a cron that never matches', () => {
    expect(nextRun({ cron: '0 0 31 2 *', timezone: 'UTC' }, at('2026-01-01T00:00:00Z'))).toBeUndefined();
  });
});

/** An accepted cron's field, as a client might write it. */
const field = (min: number, max: number) => {
  const value = fc.integer({ min, max });
  const item = fc.oneof(
    value.map(String),
    fc.tuple(value, value).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
    fc.integer({ min: 1, max: max - min + 1 }).map((step) => `*/${step}`),
    fc.tuple(value, value, fc.integer({ min: 1, max: max - min + 1 })).map(([a, b, step]) => `${Math.min(a, b)}-${Math.max(a, b)}/${step}`),
  );
  return fc.oneof({ weight: 1, arbitrary: fc.constant('*') }, { weight: 4, arbitrary: fc.array(item, { minLength: 1, maxLength: 3 }).map((items) => items.join(',')) });
};
const acceptedCron = fc
  .tuple(field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 7), fc.boolean())
  // One of the two day fields is *, as EventBridge Scheduler needs.
  .map(([minute, hour, day, month, weekday, byDay]) => [minute, hour, byDay ? day : '*', month, byDay ? '*' : weekday].join(' '))
  .filter((cron) => {
    try {
      readCron(cron);
      return true;
    } catch {
      return false;
    }
  });

/** EventBridge Scheduler's expression as croner reads Quartz-style fields (seconds first, days of week 1-7 from Sunday, a year). */
function eventBridgeRun(expression: string, timezone: string, after: number): number | undefined {
  const fields = expression.replace(/^cron\((.*)\)$/, '$1');
  return new Cron(`0 ${fields}`, { timezone, mode: '7-part', alternativeWeekdays: true, sloppyRanges: true }).nextRun(new Date(after))?.getTime();
}

describe('over arbitrary accepted crons (fast-check)', () => {
  it("our next run is croner's for the cron, and croner's for its EventBridge expression, in zones without daylight saving time", () => {
    fc.assert(
      fc.property(acceptedCron, fc.constantFrom('UTC', 'Asia/Tokyo', 'Asia/Kolkata'), fc.integer({ min: at('2024-01-01T00:00:00Z'), max: at('2030-12-31T00:00:00Z') }), (cron, timezone, after) => {
        const schedule = readCron(cron, timezone);
        const ours = nextRun(schedule, after);
        const library = new Cron(cron, { timezone, mode: '5-part' }).nextRun(new Date(after))?.getTime();
        expect(iso(ours)).toBe(iso(library));
        expect(iso(eventBridgeRun(schedule.expression, timezone, after))).toBe(iso(ours));
      }),
      { numRuns: 300 },
    );
  });
});
