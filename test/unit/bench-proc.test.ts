/**
 * The bench's /proc readers: CPU time, memory and child processes of a process, read from
 * outside (bench/proc.ts), and the idle target's verdict.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { childrenOf, commandLine, cpuDelta, cpuPercent, parseStat, readCpu, readPeakRss, readRss, total, type CpuSample } from '../../bench/proc.ts';
import { idleCpuPass, targets } from '../../bench/report.ts';
import { byRole } from '../../bench/stack-process.ts';

describe('parseStat', () => {
  it('reads pid, ppid and the CPU ticks, counting fields from the last parenthesis', () => {
    const line = '4242 (node (a) b) S 4200 4242 4200 0 -1 4194560 10 0 0 0 731 129 0 0 20 0 11 0 5000 100000 2000 18446744073709551615';
    expect(parseStat(line)).toEqual({ pid: 4242, comm: 'node (a) b', ppid: 4200, utime: 731, stime: 129 });
  });

  it('refuses what is not a stat line', () => {
    expect(parseStat('')).toBeUndefined();
    expect(parseStat('12 (x) S')).toBeUndefined();
  });
});

describe('cpuDelta and cpuPercent', () => {
  const sample = (at: number, statNs: number, threads?: Record<number, number>): CpuSample => ({ pid: 1, at, statNs, ...(threads ? { threads } : {}) });

  it('adds each thread growth, a thread born in between counted whole, one gone not at all', () => {
    const before = sample(0, 0, { 1: 1_000_000, 2: 5_000_000, 3: 9_000_000 });
    const after = sample(10_000, 0, { 1: 4_000_000, 2: 5_000_000, 4: 2_000_000 });
    expect(cpuDelta(before, after)).toBe(3_000_000 + 0 + 2_000_000);
    // 5 ms of CPU over 10 s of wall time: 0.05% of a core.
    expect(cpuPercent(before, after)).toBeCloseTo(0.05, 10);
  });

  it('falls back to utime + stime where a sample has no threads', () => {
    const before = sample(0, 100_000_000);
    const after = sample(10_000, 130_000_000, { 1: 1 });
    expect(cpuDelta(before, after)).toBe(30_000_000);
    expect(cpuPercent(before, after)).toBeCloseTo(0.3, 10);
    expect(cpuPercent(before, sample(0, 200_000_000))).toBe(0);
  });
});

describe('the idle target', () => {
  it('passes at or under 0.3% of a core in total, and says nothing without a total', () => {
    expect(targets.idleCpuPercent).toBe(0.3);
    expect(idleCpuPass({ stack: 0.2, storage: 0.1, total: 0.3 })).toBe(true);
    expect(idleCpuPass({ stack: 0.9, storage: 0.6, total: 1.5 })).toBe(false);
    expect(idleCpuPass({})).toBeUndefined();
  });

  it('adds what is known', () => {
    expect(total([1, undefined, 2])).toBe(3);
    expect(total([undefined, undefined])).toBeUndefined();
  });

  it('adds the processes up by role, two of tsx\'s esbuild services as one "others"', () => {
    expect(
      byRole([
        { role: 'stack', value: 0.1 },
        { role: 'storage', value: 0.05 },
        { role: 'others', value: 0.02 },
        { role: 'others', value: 0.03 },
        { role: 'others', value: undefined },
      ]),
    ).toEqual({ stack: 0.1, storage: 0.05, others: 0.05, total: 0.2 });
    expect(byRole([{ role: 'stack', value: undefined }])).toEqual({});
  });
});

describe('reading a live process from /proc (Linux)', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    child = undefined;
  });

  it('finds a child process, its command line, its memory and its CPU time', async () => {
    // A child that waits on its stdin, doing nothing, until it is killed.
    child = spawn(process.execPath, ['-e', 'process.stdin.resume(); process.send?.("up")', 'waas-bench-proc-test'], { stdio: ['pipe', 'ignore', 'ignore', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      child?.once('message', () => resolve());
      child?.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    const pid = child.pid ?? 0;
    expect(childrenOf(process.pid)).toContain(pid);
    expect(commandLine(pid)).toContain('waas-bench-proc-test');
    expect(readRss(pid)).toBeGreaterThan(1024 * 1024);
    expect(readPeakRss(pid)).toBeGreaterThanOrEqual(readRss(pid) ?? Infinity);

    const first = readCpu(pid);
    expect(first?.statNs).toBeGreaterThan(0);
    const second = readCpu(pid);
    if (!first || !second) throw new Error('no CPU sample');
    expect(cpuDelta(first, second)).toBeGreaterThanOrEqual(0);
    // Its start-up took some CPU: its own thread's total is more than nothing.
    expect(Object.values(second.threads ?? { 0: second.statNs }).reduce((sum, ns) => sum + ns, 0)).toBeGreaterThan(0);
  });

  it('reads nothing of a process that is not there', () => {
    expect(readCpu(2 ** 22 + 1)).toBeUndefined();
    expect(readRss(2 ** 22 + 1)).toBeUndefined();
    expect(childrenOf(2 ** 22 + 1)).toEqual([]);
    expect(commandLine(2 ** 22 + 1)).toBe('');
  });
});
