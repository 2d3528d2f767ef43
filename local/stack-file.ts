import type { localTableNames } from './provision.ts';

/** What a running local stack writes to DATA_DIR, so the clients CLI can find it. */
export interface StackFile {
  pid: number;
  url: string;
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  tables: typeof localTableNames;
}

export const stackFileName = 'stack.json';
