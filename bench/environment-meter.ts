/**
 * Meters one local Lambda environment from inside it. The local stack runs each function in a
 * worker thread of its own (local/runtime.ts), whose AWS clients the bench's process cannot
 * reach; the stack loads this module into every environment before the handler (its `preload`
 * option), and it adds the bench's SDK middleware (meter.ts) to that environment's clients.
 *
 * Snapshots go to the stack process on the BroadcastChannel `meterChannel`: every second while
 * calls happen (so that an environment the runtime retires — idle, timed out — has told what it
 * did), and at once when the bench asks for one.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { tables } from '../lib/definitions.ts';
import { services } from '../lambdas/adapters/wiring.ts';
import { localTableNames } from '../local/provision.ts';
import { CallMeter, indexKeysOf } from './meter.ts';
import { meterChannel, type MeterMessage } from './protocol.ts';

// Every index of the jobs table (lib/definitions.ts). A job is made in the api's environment
// and settled in another: what this one has not seen written had no key of the sparse indexes
// (see CallMeterOptions.unseenItemsIndexed).
const meter = new CallMeter({ indexKeys: { [localTableNames.jobs]: indexKeysOf(tables.jobs) }, unseenItemsIndexed: false });
meter.attach(services().aws.dynamodb, 'handlers');
meter.attach(services().aws.sqs, 'handlers');

const channel = new BroadcastChannel(meterChannel);
channel.unref();
let told = 0;
function tell(request?: number): void {
  if (request === undefined && meter.recorded === told) return;
  told = meter.recorded;
  channel.postMessage({ type: 'meter', threadId, request, meter: meter.snapshot() } satisfies MeterMessage);
}
channel.onmessage = (event) => {
  const message = (event as { data: MeterMessage }).data;
  if (message.type === 'ask') tell(message.request);
};
setInterval(() => tell(), 1_000).unref();
