/**
 * The local stack, in a process of its own, metered from outside: every AWS call the handlers
 * (and the local event source pollers) make, by SDK middleware the bench adds to their clients
 * (meter.ts; in the handlers' environments, which are worker threads, by environment-meter.ts,
 * which the stack preloads there), and every handler invocation with its duration, from the
 * diagnostics channel the local stack publishes them on (local/invocations.ts). The bench asks
 * for snapshots over IPC and diffs them per phase.
 *
 * Why a child process: the load generator, the target and the callback receiver must not share
 * an event loop with the stack, or the bench would measure its own queueing; and a process of its
 * own gives the stack's peak RSS (/proc/<pid>/status) and CPU profile (--cpu-prof) alone.
 */
import '../local/quiet.ts';
import { subscribe } from 'node:diagnostics_channel';
import { BroadcastChannel } from 'node:worker_threads';
import type { InvocationReport } from '../local/invocations.ts';
import { meterChannel, type FromChild, type Invocations, type ItemSize, type MeterMessage, type ToChild } from './protocol.ts';
import { billedMs } from './cost.ts';
import { CallMeter, indexKeysOf, mergeSnapshots, type MeterSnapshot } from './meter.ts';

// The handlers log as they would on Lambda, where nothing sets a level (Powertools: INFO), so the
// log volume measured is the one CloudWatch would ingest.
process.env['POWERTOOLS_LOG_LEVEL'] ??= 'INFO';

const send = (message: FromChild) => process.send?.(message);

const { GetCommand } = await import('@aws-sdk/lib-dynamodb');
const { awsClients, closeAwsClients } = await import('../lambdas/adapters/aws.ts');
const { tables } = await import('../lib/definitions.ts');
const { localTableNames } = await import('../local/provision.ts');
const { invocationChannel } = await import('../local/invocations.ts');
const { startLocalStack } = await import('../local/stack.ts');

// Application log lines: Powertools writes one JSON object per line to stdout/stderr.
let logBytes = 0;
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString() : '';
    for (const line of text.split('\n')) if (line.startsWith('{') && line.includes('"level"')) logBytes += Buffer.byteLength(line) + 1;
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

// Lambda's REPORT line, locally: the stack publishes each invocation's function and duration.
const invocations: Invocations = {};
subscribe(invocationChannel, (message) => {
  const { functionName, durationMs } = message as InvocationReport;
  const stats = (invocations[functionName] ??= { invocations: 0, totalMs: 0, billedMs: 0, maxMs: 0 });
  stats.invocations++;
  stats.totalMs += durationMs;
  stats.billedMs += billedMs(durationMs);
  stats.maxMs = Math.max(stats.maxMs, durationMs);
});

let errors = 0;
const stack = await startLocalStack({
  dataDir: process.env['DATA_DIR'] ?? '',
  // As on AWS: a job enters the sweeper's index only to wait on a retry.
  indexEveryJob: false,
  host: '127.0.0.1',
  port: 0,
  egressAllowCidrs: process.env['EGRESS_ALLOW_CIDRS'] ?? '127.0.0.0/8,::1/128',
  preload: [new URL('./environment-meter.ts', import.meta.url).href],
  onError: (error) => {
    errors++;
    if (errors <= 20) send({ type: 'error', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  },
});

// The handlers' clients are in their environments (worker threads), metered there: each tells
// its meter on a BroadcastChannel, every second and when asked; the latest word of each counts,
// so an environment the runtime has retired still does. The event source mappings' own SQS
// client is here: ReceiveMessage and DeleteMessageBatch, what Lambda's event source mapping
// makes on AWS, billed to the account. The stack's start-up calls (provisioning, the demo
// client, re-queueing) came before: unmetered.
// Every index of the jobs table (lib/definitions.ts), as AWS bills its writes: dynalite does not.
const meter = new CallMeter({ indexKeys: { [localTableNames.jobs]: indexKeysOf(tables.jobs) } });
meter.attach(stack.eventSource, 'event source');
const environments = new Map<number, MeterSnapshot>();
const channel = new BroadcastChannel(meterChannel);
channel.unref();
let asked = 0;
const answered = new Set<number>();
channel.onmessage = (event) => {
  const message = (event as { data: MeterMessage }).data;
  if (message.type !== 'meter') return;
  environments.set(message.threadId, message.meter);
  if (message.request === asked) answered.add(message.threadId);
};

/** Every environment's meter and the event source's, as they are now (each environment asked, for at most 500 ms). */
async function meterSnapshot(): Promise<MeterSnapshot> {
  asked++;
  answered.clear();
  channel.postMessage({ type: 'ask', request: asked } satisfies MeterMessage);
  const deadline = Date.now() + 500;
  const alive = stack.threadIds();
  while (Date.now() < deadline && alive.some((thread) => !answered.has(thread))) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return mergeSnapshots([meter.snapshot(), ...environments.values()]);
}

// The bench's own reads, to size items: a client of its own, not metered. Built once the stack
// has set the environment (endpoint, credentials).
const own = awsClients();
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    const force = setTimeout(() => process.exit(code || 1), 10_000);
    force.unref();
    try {
      await stack.stop();
      closeAwsClients(own);
    } catch {
      // exiting anyway
    }
  }
  process.exit(code);
}

process.on('message', (raw: ToChild) => {
  if (raw.type === 'snapshot') {
    void meterSnapshot().then((snapshot) =>
      send({ type: 'snapshot', id: raw.id, meter: snapshot, invocations: structuredClone(invocations), logBytes, errors, hrtimeUs: Number(process.hrtime.bigint() / 1000n) }),
    );
  } else if (raw.type === 'itemSizes') {
    void (async () => {
      const { dynamoItemSize, itemBreakdown } = await import('./cost.ts');
      const items: ItemSize[] = [];
      for (const jobId of raw.jobIds) {
        for (const sk of ['job', 'request']) {
          const found = await own.documents.send(new GetCommand({ TableName: localTableNames.jobs, Key: { pk: jobId, sk }, ConsistentRead: true }));
          if (found.Item) items.push({ sk, bytes: dynamoItemSize(found.Item), attributes: itemBreakdown(found.Item) });
        }
      }
      send({ type: 'itemSizes', id: raw.id, items });
    })().catch(() => send({ type: 'itemSizes', id: raw.id, items: [] }));
  } else if (raw.type === 'stop') {
    void stop(0);
  }
});
// The bench is gone (crashed or killed): nothing would ever stop us.
process.on('disconnect', () => void stop(1));

send({ type: 'ready', url: stack.url, pid: process.pid });
