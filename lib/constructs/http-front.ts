/** The HTTP API: the routes of definitions.ts, all to the api function, logged and throttled. */
import { Validations } from 'aws-cdk-lib';
import { CfnStage, HttpApi, HttpMethod, PayloadFormatVersion } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { routes } from '../definitions.ts';
import type { Settings } from '../settings.ts';

/**
 * One JSON line per request. Never headers, query strings or bodies: they carry client
 * credentials (Basic auth, verify_token) and the client's own service secrets.
 */
const accessLogFormat = JSON.stringify({
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  ip: '$context.identity.sourceIp',
  routeKey: '$context.routeKey',
  status: '$context.status',
  responseLength: '$context.responseLength',
  integrationError: '$context.integrationErrorMessage',
});

export interface HttpFrontProps {
  handler: IFunction;
  throttle: Settings['throttle'];
  logRetention: RetentionDays;
}

export class HttpFront extends Construct {
  readonly api: HttpApi;

  constructor(scope: Construct, id: string, props: HttpFrontProps) {
    super(scope, id);
    this.api = new HttpApi(this, 'HttpApi', { description: 'waas: webhooks as a service' });

    const integration = new HttpLambdaIntegration('Api', props.handler, {
      payloadFormatVersion: PayloadFormatVersion.VERSION_2_0,
    });
    for (const route of routes) {
      this.api.addRoutes({ path: route.path, methods: [HttpMethod[route.method]], integration });
    }

    // The L2 default stage takes neither access logs nor throttling, so both go on its L1.
    const accessLogs = new LogGroup(this, 'AccessLogs', { retention: props.logRetention });
    const stage = this.api.defaultStage?.node.defaultChild;
    if (!(stage instanceof CfnStage)) throw new Error('the HTTP API has no default stage');
    stage.accessLogSettings = { destinationArn: accessLogs.logGroupArn, format: accessLogFormat };
    stage.defaultRouteSettings = {
      throttlingBurstLimit: props.throttle.burstLimit,
      throttlingRateLimit: props.throttle.rateLimit,
    };

    // Acknowledged on the API, so it covers each of its routes.
    Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'Clients authenticate in the api function with client_id and verify_token (JSON body or HTTP Basic), as the seed API ' +
        'requires; an API Gateway authorizer cannot read credentials from a JSON body. GET /health is public by design.',
    });
  }

  get url(): string {
    const url = this.api.url;
    if (url === undefined) throw new Error('the HTTP API has no default stage');
    return url;
  }
}
