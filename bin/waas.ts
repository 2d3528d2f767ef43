/** The CDK app: one stack, `Waas`, in the account and region the CLI resolves (if any). */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { WaasStack } from '../lib/waas-stack.ts';

const app = new App();
const account = process.env['CDK_DEFAULT_ACCOUNT'];
const region = process.env['CDK_DEFAULT_REGION'];
new WaasStack(app, 'Waas', {
  // Without credentials (an offline synth) the stack stays environment-agnostic.
  ...(account !== undefined && region !== undefined ? { env: { account, region } } : {}),
});
// An unacknowledged AWS Solutions finding stops `cdk synth` and `cdk deploy`, not just the tests.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
