// One Lambda execution environment of the local stack, in a worker thread of its own (see
// local/runtime.ts): it loads its function's handler module once (the cold start), then runs the
// invocations the runtime gives it, each in a context of its own. The local runtime terminates
// the thread when an invocation outlives its function's timeout: the work in it is abandoned, as
// on Lambda.
// Plain JavaScript, so that it can register the TypeScript loader before it imports the handler.
import { parentPort, workerData } from 'node:worker_threads';
import { InvokeStore, InvokeStoreBase } from '@aws/lambda-invoke-store';
import { register } from 'tsx/esm/api';

register();
// As Lambda's runtime client does, before any handler code: each invocation in a context of its
// own, which the libraries (Powertools) read when the environment runs several at once
// (AWS_LAMBDA_MAX_CONCURRENCY).
const store = await InvokeStore.getInstanceAsync();
for (const module of workerData.preload) await import(module);
const { handler } = await import(workerData.entry);

/** The Lambda context of one invocation: its request id and the time left before its deadline. */
function context(message) {
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: workerData.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${workerData.functionName}`,
    memoryLimitInMB: String(workerData.memoryMb),
    awsRequestId: message.requestId,
    logGroupName: `/aws/lambda/${workerData.functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

parentPort.on('message', async (message) => {
  try {
    const result = await store.run({ [InvokeStoreBase.PROTECTED_KEYS.REQUEST_ID]: message.requestId }, () => handler(message.event, context(message)));
    parentPort.postMessage({ id: message.id, result });
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: { name: error?.name ?? 'Error', message: error?.message ?? String(error) } });
  }
});
parentPort.postMessage({ ready: true });
