/**
 * What Linux's /proc says about a process, read from outside: its CPU time, its resident and
 * peak resident memory, and its child processes. Every reader answers undefined (or nothing)
 * where /proc is not there or the process is gone.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** /proc/<pid>/stat's times are in clock ticks of USER_HZ, which Linux fixes at 100 for user space. */
export const ticksPerSecond = 100;

export interface ProcStat {
  pid: number;
  comm: string;
  ppid: number;
  /** User and system CPU time, in clock ticks, of every thread, the exited ones included. */
  utime: number;
  stime: number;
}

/**
 * Parses /proc/<pid>/stat. The command name is in parentheses and may hold spaces and
 * parentheses itself, so the fields are counted from the last ')'.
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return undefined;
  // After ')': state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8) flags(9) minflt(10)
  // cminflt(11) majflt(12) cmajflt(13) utime(14) stime(15) ...
  const fields = text.slice(close + 2).trim().split(/\s+/);
  const field = (n: number) => Number(fields[n - 3]);
  const stat = { pid: Number(text.slice(0, open).trim()), comm: text.slice(open + 1, close), ppid: field(4), utime: field(14), stime: field(15) };
  return [stat.pid, stat.ppid, stat.utime, stat.stime].every(Number.isFinite) ? stat : undefined;
}

export function readStat(pid: number): ProcStat | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The CPU a process has used, in nanoseconds: the sum of its threads' run time from
 * /proc/<pid>/task/<tid>/schedstat (nanosecond resolution: 0.3% of 10 s is only 3 clock ticks),
 * or, where schedstat is missing, utime + stime from /proc/<pid>/stat (10 ms ticks).
 * `threads` is per thread, so that a delta can count each thread once (see cpuDelta).
 */
export interface CpuSample {
  pid: number;
  /** performance.now() when read. */
  at: number;
  /** Nanoseconds per thread id, from schedstat; undefined where there is none. */
  threads?: Record<number, number>;
  /** utime + stime, in nanoseconds (10 ms resolution). */
  statNs: number;
}

export function readCpu(pid: number): CpuSample | undefined {
  const at = performance.now();
  const stat = readStat(pid);
  if (!stat) return undefined;
  const sample: CpuSample = { pid, at, statNs: ((stat.utime + stat.stime) * 1e9) / ticksPerSecond };
  try {
    const threads: Record<number, number> = {};
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
        if (Number.isFinite(ns)) threads[Number(tid)] = ns;
      } catch {
        // the thread ended meanwhile
      }
    }
    if (Object.keys(threads).length > 0) sample.threads = threads;
  } catch {
    // no task directory: stat's ticks alone
  }
  return sample;
}

/**
 * CPU used between two samples of one process, in nanoseconds. From schedstat when both have it:
 * each thread's growth, a thread born meanwhile counted whole (one that ended meanwhile is lost:
 * few do in an idle process). Else from stat's ticks.
 */
export function cpuDelta(before: CpuSample, after: CpuSample): number {
  if (before.threads && after.threads) {
    let ns = 0;
    for (const [tid, total] of Object.entries(after.threads)) ns += Math.max(0, total - (before.threads[Number(tid)] ?? 0));
    return ns;
  }
  return Math.max(0, after.statNs - before.statNs);
}

/** CPU between two samples as a percentage of one core over the wall time between them (as top shows it). */
export function cpuPercent(before: CpuSample, after: CpuSample): number {
  const wallNs = (after.at - before.at) * 1e6;
  return wallNs > 0 ? (cpuDelta(before, after) / wallNs) * 100 : 0;
}

/** A process's children: /proc/<pid>/task/<tid>/children where the kernel has it, else every /proc/<n>/stat whose ppid is `pid`. */
export function childrenOf(pid: number): number[] {
  const found = new Set<number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
      for (const child of text.split(/\s+/).filter(Boolean)) found.add(Number(child));
    }
    return [...found].sort((a, b) => a - b);
  } catch {
    // no children files (CONFIG_PROC_CHILDREN off): scan
  }
  try {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      if (readStat(Number(entry))?.ppid === pid) found.add(Number(entry));
    }
  } catch {
    // no /proc
  }
  return [...found].sort((a, b) => a - b);
}

/** A process's command line, its arguments joined by spaces, or '' if it is gone. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

function statusKb(pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm'));
    return match?.[1] ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) in bytes. */
export const readPeakRss = (pid: number | 'self'): number | undefined => statusKb(pid, 'VmHWM');

/** Resident set size now (VmRSS) in bytes. */
export const readRss = (pid: number | 'self'): number | undefined => statusKb(pid, 'VmRSS');

/** Resets the peak RSS counter (Linux: clear_refs 5), so a phase measures its own peak. */
export function resetPeakRss(pid: number | 'self'): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** A sum of figures that may be missing: undefined only when every one is. */
export function total(values: Array<number | undefined>): number | undefined {
  const known = values.filter((value): value is number => value !== undefined);
  return known.length ? known.reduce((sum, value) => sum + value, 0) : undefined;
}
