/**
 * DATA_DIR, checked before anything starts: it must be a directory this process can create (if
 * it is not there yet) and write. What is wrong is said in one line naming the real cause — a
 * file where the directory should be, a file among its parents, a read-only or unwritable place,
 * a place where nothing can be made — instead of the storage process's stack trace later.
 *
 * The directories are made one at a time, not with `mkdir -p` (`recursive: true`): on Node 20,
 * that loops forever on a path whose parent refuses new entries with ENOENT (as /proc does).
 * Writability is tried, not read from the mode bits: root writes through 0555.
 */
import * as nodeFs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';

/** The local stack's DATA_DIR: the variable's, or the contract's default (an empty one counts as unset). */
export function dataDirFromEnv(env: Record<string, string | undefined> = process.env): string {
  return env['DATA_DIR'] || './.waas';
}

/** The file-system calls the check makes (a test can inject failures). */
export type DataDirFs = Pick<typeof nodeFs, 'statSync' | 'lstatSync' | 'mkdirSync' | 'writeFileSync' | 'unlinkSync' | 'readdirSync'>;

/** DATA_DIR cannot hold the local stack's data; `message` is one line naming why. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

const code = (error: unknown): string => (error as NodeJS.ErrnoException | undefined)?.code ?? '';

/** Why `place` refuses a write, in words, or undefined for an error that is not about the place. */
function refusal(place: string, error: unknown): string | undefined {
  switch (code(error)) {
    case 'EACCES':
      return `${place} is not writable (EACCES: permission denied)`;
    case 'EPERM':
      return `${place} is not writable (EPERM: operation not permitted)`;
    case 'EROFS':
      return `${place} is on a read-only file system (EROFS)`;
    case 'ENOSPC':
      return `${place} is on a full file system (ENOSPC)`;
    case 'EDQUOT':
      return `${place} is over its disk quota (EDQUOT)`;
    default:
      return undefined;
  }
}

/** The error's own words without the path and call Node adds ("ENOENT: no such file or directory"). */
const words = (error: unknown): string => {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/, \w+ '.*'$/, '');
};

type Found = { path: string; kind: 'directory' | 'file' | 'other' } | { path: string; error: unknown };

/** The nearest of `path` and its parents that exists, with what it is, or the error that stopped the search. */
function nearestExisting(path: string, fs: DataDirFs): Found {
  for (let at = path; ; at = dirname(at)) {
    try {
      const stats = fs.statSync(at);
      return { path: at, kind: stats.isDirectory() ? 'directory' : stats.isFile() ? 'file' : 'other' };
    } catch (error) {
      // ENOENT: not there; ENOTDIR: a parent further up is a file. Go up either way.
      if ((code(error) !== 'ENOENT' && code(error) !== 'ENOTDIR') || dirname(at) === at) return { path: at, error };
    }
  }
}

/**
 * Throws a DataDirError unless `dataDir` is (or could be made, and now is) a directory this
 * process can write. Synchronous, and quick: a stat per missing level, one probe file.
 */
export function checkDataDir(dataDir: string, fs: DataDirFs = nodeFs): void {
  const path = resolve(dataDir);
  const named = `DATA_DIR ${path}`;
  const fail = (why: string): never => {
    throw new DataDirError(why.replace(/\s*\n\s*/g, ' '));
  };

  const found = nearestExisting(path, fs);
  if ('error' in found) {
    const denied = code(found.error) === 'EACCES' || code(found.error) === 'EPERM';
    fail(`${named} cannot be reached: ${denied ? `a directory above ${found.path} may not be searched (${code(found.error)})` : `${found.path}: ${words(found.error)}`}`);
  } else if (found.path === path) {
    if (found.kind !== 'directory') fail(`${named} is ${found.kind === 'file' ? 'a file, not a directory' : 'not a directory'}`);
  } else if (found.kind !== 'directory') {
    fail(`${named} cannot be created: ${found.path} is ${found.kind === 'file' ? 'a file, not a directory' : 'not a directory'}`);
  } else {
    // Make the missing levels, the nearest first.
    const missing: string[] = [];
    for (let at = path; at !== found.path; at = dirname(at)) missing.unshift(at);
    for (const level of missing) {
      try {
        fs.mkdirSync(level);
      } catch (error) {
        const parent = dirname(level);
        if (code(error) === 'EEXIST') {
          // Something appeared there, or a symbolic link points nowhere.
          const link = (() => {
            try {
              return fs.lstatSync(level).isSymbolicLink();
            } catch {
              return false;
            }
          })();
          fail(`${named} cannot be created: ${level} ${link ? 'is a symbolic link to nothing' : 'is in the way'}`);
        }
        if (code(error) === 'ENOENT') fail(`${named} cannot be created: ${parent} takes no new directories (ENOENT)`);
        fail(`${named} cannot be created: ${refusal(parent, error) ?? `${level}: ${words(error)}`}`);
      }
    }
  }

  // It is a directory: read it, then write and remove a probe file in it.
  try {
    fs.readdirSync(path);
  } catch (error) {
    fail(`${named} is not readable (${code(error) || words(error)})`);
  }
  const probe = join(path, `.write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(probe, '', { flag: 'wx' });
  } catch (error) {
    const why = refusal(path, error);
    fail(why ? `DATA_DIR ${why}` : `${named} cannot hold data: ${words(error)}`);
  }
  try {
    fs.unlinkSync(probe);
  } catch (error) {
    fail(`${named} keeps what is written in it: the probe file ${probe} could not be removed (${code(error) || words(error)})`);
  }
}
