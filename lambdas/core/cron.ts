/**
 * A schedule's cron: five fields (minute hour day-of-month month day-of-week) in an IANA time
 * zone, as POST /v1/schedules takes it, read by croner (the library parses the fields and walks
 * the calendar: nothing of that is written here), then held to what EventBridge Scheduler can
 * run, since on AWS it is EventBridge Scheduler that fires it. What it cannot run is a 400
 * naming the rule:
 * - EventBridge's cron has six fields (a year last) and needs `?` in day-of-month or in
 *   day-of-week: one of the two must be `*` here (classic cron ORs them when both are
 *   restricted, which EventBridge cannot say);
 * - numbers, names (JAN-DEC, SUN-SAT), `*`, ranges, steps and lists only: no `L`, `W`, `#`, `?`
 *   or `+` (croner would take them, in its own meaning), no `@daily` nicknames;
 * - its days of week are 1-7 from Sunday: ours (0-7, 0 and 7 both Sunday) are converted.
 *
 * Daylight saving time, as EventBridge Scheduler has it (and so locally too, so that the two
 * stacks run a schedule at the same instants): a run whose wall-clock time does not exist (the
 * hour skipped in spring: 02:30 on a spring-forward day in America/New_York) is skipped, that
 * day has none; a wall-clock time that happens twice (the hour repeated in autumn) runs once, at
 * its first occurrence. croner, left to itself, would run a fixed-time job after the gap and an
 * interval job twice in the repeated hour: so croner matches wall-clock times (in UTC, where no
 * time is skipped or repeated) and `nextRun` maps each to its instant in the zone.
 */
import { Cron, CronPattern } from 'croner';
import { InvalidRequest } from './errors.ts';

export const defaultTimeZone = 'UTC';

/** EventBridge Scheduler's longest ScheduleExpression. */
const expressionMaxChars = 256;

/** A cron as both stacks run it: the client's text, and EventBridge Scheduler's expression of it. */
export interface CronSchedule {
  cron: string;
  timezone: string;
  /** `cron(minutes hours day-of-month month day-of-week year)`, as EventBridge Scheduler takes it. */
  expression: string;
}

const fieldNames = ['minute', 'hour', 'day-of-month', 'month', 'day-of-week'] as const;

/** What a field may hold: numbers, `*`, `-`, `/` and `,`; names in the month and day-of-week fields alone. */
const fieldPattern = /^[0-9A-Za-z*,/-]+$/;
const namesOf: Readonly<Record<number, readonly string[]>> = {
  3: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'],
  4: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'],
};
/** Whether every run of letters in field `i` is one of its names (no L, W or other letter croner would read its own way). */
const namesKnown = (field: string, i: number) => (field.match(/[A-Za-z]+/g) ?? []).every((name) => namesOf[i]?.includes(name.toUpperCase()));

/** A zone database name as it spells them: UTC, or Area/Location with each part capitalised (no offsets such as +02:00). */
const zoneName = /^(?:UTC|GMT|[A-Z][A-Za-z0-9_+-]*(?:\/[A-Z0-9][A-Za-z0-9_+-]*)+)$/;

/** Whether the runtime's zone database (ICU's copy of IANA's) knows the name. */
function knownZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/** An IANA time zone name (as the zone database spells it), or a 400. */
export function validTimeZone(timezone: string): string {
  if (!zoneName.test(timezone) || !knownZone(timezone)) throw new InvalidRequest(`timezone: ${JSON.stringify(timezone.slice(0, 64))} is not an IANA time zone name (such as UTC, Europe/Paris or America/New_York)`);
  return timezone;
}

/** croner's reading of the five fields, or a 400 with its reason. */
function pattern(cron: string): CronPattern {
  try {
    return new CronPattern(cron, defaultTimeZone, { mode: '5-part' });
  } catch (error) {
    throw new InvalidRequest(`cron: ${error instanceof Error ? error.message.replace(/^CronPattern: /, '') : 'does not parse'}`);
  }
}

/**
 * The client's cron, checked, with EventBridge Scheduler's expression of it; a 400 naming the
 * rule it breaks.
 */
export function readCron(cron: string, timezone: string = defaultTimeZone): CronSchedule {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5 || cron.length > 200) throw new InvalidRequest('cron: must be five fields separated by spaces: minute hour day-of-month month day-of-week (e.g. "*/15 9-17 * * 1-5")');
  for (const [i, field] of fields.entries()) {
    if (!fieldPattern.test(field) || !namesKnown(field, i)) {
      throw new InvalidRequest(`cron: the ${fieldNames[i]} field ${JSON.stringify(field)} may hold only numbers, names (JAN-DEC, SUN-SAT), *, ranges (a-b), steps (*/n, a-b/n) and lists (a,b): EventBridge Scheduler runs no other`);
    }
  }
  const [, , dayOfMonth, , dayOfWeek] = fields;
  if (dayOfMonth !== '*' && dayOfWeek !== '*') {
    throw new InvalidRequest('cron: day-of-month and day-of-week cannot both be restricted: one of them must be * (EventBridge Scheduler needs ? in one of the two)');
  }
  const parsed = pattern(cron);
  const minutes = toField(parsed.minute, 0);
  const hours = toField(parsed.hour, 0);
  const days = dayOfMonth === '*' ? '*' : toField(parsed.day, 1);
  const months = toField(parsed.month, 1);
  // croner's days of week are 0-6 from Sunday (7 folded into 0); EventBridge's 1-7 from Sunday.
  // A list: EventBridge's steps in this field are not ours to guess at.
  const weekdays = dayOfWeek === '*' ? '?' : parsed.dayOfWeek.flatMap((on, day) => (on ? [String(day + 1)] : [])).join(',');
  const expression = `cron(${minutes} ${hours} ${days === '*' && weekdays === '?' ? '*' : days === '*' ? '?' : days} ${months} ${weekdays} *)`;
  if (expression.length > expressionMaxChars) throw new InvalidRequest(`cron: too many separate values: EventBridge Scheduler takes an expression of at most ${expressionMaxChars} characters`);
  return { cron: fields.join(' '), timezone: validTimeZone(timezone), expression };
}

/**
 * A field's values (croner's array: nonzero where the field matches, index + `first` the value)
 * written as EventBridge takes them: `*` for all, `a/n` for every n-th from a to the end, else
 * ranges and single values in a list.
 */
function toField(matches: readonly number[], first: number): string {
  const values = matches.flatMap((on, i) => (on ? [i + first] : []));
  if (values.length === matches.length) return '*';
  const [start = first, next] = values;
  const step = next === undefined ? 0 : next - start;
  const last = matches.length - 1 + first;
  const isProgression = values.length >= 3 && step > 1 && values.every((value, i) => value === start + i * step) && start + values.length * step > last;
  if (isProgression) return `${start}/${step}`;
  const parts: string[] = [];
  for (let i = 0; i < values.length; ) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === (values[j] ?? 0) + 1) j++;
    parts.push(j > i ? `${values[i]}-${values[j]}` : String(values[i]));
    i = j + 1;
  }
  return parts.join(',');
}

const offsetFormats = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at `instant`, in ms (wall clock minus UTC). */
function offsetAt(timezone: string, instant: number): number {
  let format = offsetFormats.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    offsetFormats.set(timezone, format);
  }
  const part = Object.fromEntries(format.formatToParts(new Date(instant)).map(({ type, value }) => [type, Number(value)]));
  const wall = Date.UTC(part['year'] ?? 0, (part['month'] ?? 1) - 1, part['day'] ?? 1, part['hour'] ?? 0, part['minute'] ?? 0, part['second'] ?? 0);
  return wall - Math.floor(instant / 1000) * 1000;
}

/**
 * The first instant at which the zone's clock shows `wall` (a wall-clock time, as epoch ms read
 * in UTC), or undefined when it never does (skipped by a change to summer time).
 */
export function instantOfWallClock(timezone: string, wall: number): number | undefined {
  // The offsets in force within a day either side: a change of offset is never closer to another.
  const offsets = new Set([offsetAt(timezone, wall - 86_400_000), offsetAt(timezone, wall), offsetAt(timezone, wall + 86_400_000)]);
  const instants = [...offsets].map((offset) => wall - offset).filter((instant) => offsetAt(timezone, instant) === wall - instant);
  return instants.length > 0 ? Math.min(...instants) : undefined;
}

/** Candidates looked at for one next run at most: a skipped or repeated hour holds 60 of them. */
const candidatesAtMost = 500;

/**
 * The first run strictly after `after` (epoch ms), as EventBridge Scheduler would fire it (see
 * the header: daylight saving time), or undefined when the cron never matches again (31 February).
 */
export function nextRun(schedule: Pick<CronSchedule, 'cron' | 'timezone'>, after: number): number | undefined {
  const walls = new Cron(schedule.cron, { timezone: defaultTimeZone, mode: '5-part' });
  let wall = new Date(after + offsetAt(schedule.timezone, after));
  for (let looked = 0; looked < candidatesAtMost; looked++) {
    const candidate = walls.nextRun(wall);
    if (!candidate) return undefined;
    const instant = instantOfWallClock(schedule.timezone, candidate.getTime());
    if (instant !== undefined && instant > after) return instant;
    wall = candidate;
  }
  return undefined;
}
