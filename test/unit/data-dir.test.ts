/**
 * DATA_DIR checked before the local stack starts: one line naming the real cause of a DATA_DIR
 * that cannot hold data. Real files and directories under a temporary directory where the case
 * can be made (tests run as root here, which writes through any mode bits), an injected file
 * system error where it cannot (read-only, permission denied, full).
 */
import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkDataDir, DataDirError, type DataDirFs } from '../../local/data-dir.ts';

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'waas-data-dir-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** The error checkDataDir throws for `path`, checked to be a one-line DataDirError. */
function refusalOf(path: string, with_: DataDirFs = fs): string {
  try {
    checkDataDir(path, with_);
  } catch (error) {
    expect(error).toBeInstanceOf(DataDirError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error(`checkDataDir accepted ${path}`);
}

const errno = (code: string, message: string) => Object.assign(new Error(`${code}: ${message}, open '/somewhere'`), { code });

/** The real file system, but `name` throws `code`. */
function failing(name: 'mkdirSync' | 'writeFileSync' | 'unlinkSync' | 'readdirSync', code: string, message: string): DataDirFs {
  return {
    ...fs,
    [name]: () => {
      throw errno(code, message);
    },
  } as DataDirFs;
}

describe('checkDataDir', () => {
  it('makes a DATA_DIR that is not there yet, every missing level of it, and leaves no probe behind', () => {
    const dataDir = join(root, 'a', 'b', '.waas');
    checkDataDir(dataDir);
    expect(fs.statSync(dataDir).isDirectory()).toBe(true);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('accepts a DATA_DIR that exists, leaving what it holds as it is', () => {
    writeFileSync(join(root, 'store-layout'), '2');
    checkDataDir(root);
    expect(readdirSync(root)).toEqual(['store-layout']);
  });

  it('names a DATA_DIR that is a file', () => {
    const file = join(root, 'data');
    writeFileSync(file, 'not a directory');
    expect(refusalOf(file)).toBe(`DATA_DIR ${file} is a file, not a directory`);
  });

  it('names the parent that is a file, however far up', () => {
    const file = join(root, 'data');
    writeFileSync(file, '');
    expect(refusalOf(join(file, '.waas'))).toBe(`DATA_DIR ${file}/.waas cannot be created: ${file} is a file, not a directory`);
    expect(refusalOf(join(file, 'a', 'b'))).toBe(`DATA_DIR ${file}/a/b cannot be created: ${file} is a file, not a directory`);
    expect(readdirSync(root)).toEqual(['data']);
  });

  it('resolves a relative DATA_DIR and names it absolute', () => {
    const file = join(root, 'data');
    writeFileSync(file, '');
    const relative = join(root, 'x', '..', 'data');
    expect(refusalOf(relative)).toBe(`DATA_DIR ${file} is a file, not a directory`);
  });

  it('names a place where no directory can be made, rather than looping (mkdir -p does under /proc)', () => {
    // /proc (Linux) refuses new entries with ENOENT, even to root; elsewhere the root directory refuses them.
    const message = refusalOf('/proc/waas-data-dir-test/.waas');
    expect(message).toMatch(/^DATA_DIR \/proc\/waas-data-dir-test\/\.waas cannot be created: /);
    if (fs.existsSync('/proc/self')) expect(message).toBe('DATA_DIR /proc/waas-data-dir-test/.waas cannot be created: /proc takes no new directories (ENOENT)');
  });

  it('names a read-only or unwritable DATA_DIR that exists', () => {
    expect(refusalOf(root, failing('writeFileSync', 'EROFS', 'read-only file system'))).toBe(`DATA_DIR ${root} is on a read-only file system (EROFS)`);
    expect(refusalOf(root, failing('writeFileSync', 'EACCES', 'permission denied'))).toBe(`DATA_DIR ${root} is not writable (EACCES: permission denied)`);
    expect(refusalOf(root, failing('writeFileSync', 'EPERM', 'operation not permitted'))).toBe(`DATA_DIR ${root} is not writable (EPERM: operation not permitted)`);
    expect(refusalOf(root, failing('writeFileSync', 'ENOSPC', 'no space left on device'))).toBe(`DATA_DIR ${root} is on a full file system (ENOSPC)`);
    expect(refusalOf(root, failing('readdirSync', 'EACCES', 'permission denied'))).toBe(`DATA_DIR ${root} is not readable (EACCES)`);
    expect(refusalOf(root, failing('writeFileSync', 'EIO', 'i/o error'))).toBe(`DATA_DIR ${root} cannot hold data: EIO: i/o error`);
  });

  it('names the read-only or unwritable parent of a DATA_DIR that cannot be made', () => {
    const dataDir = join(root, '.waas');
    expect(refusalOf(dataDir, failing('mkdirSync', 'EROFS', 'read-only file system'))).toBe(`DATA_DIR ${dataDir} cannot be created: ${root} is on a read-only file system (EROFS)`);
    expect(refusalOf(dataDir, failing('mkdirSync', 'EACCES', 'permission denied'))).toBe(`DATA_DIR ${dataDir} cannot be created: ${root} is not writable (EACCES: permission denied)`);
  });

  it('names a symbolic link to nothing', () => {
    const link = join(root, 'link');
    fs.symlinkSync(join(root, 'gone'), link);
    expect(refusalOf(link, failing('mkdirSync', 'EEXIST', 'file already exists'))).toBe(`DATA_DIR ${link} cannot be created: ${link} is a symbolic link to nothing`);
    // For real: mkdir on a dangling link says EEXIST too.
    expect(refusalOf(link)).toBe(`DATA_DIR ${link} cannot be created: ${link} is a symbolic link to nothing`);
  });
});
