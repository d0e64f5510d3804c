import { creditsLambdaSettings, handler } from '../../../lambda/credits/handler';
import { generateApiKey } from '../../../runtime/keys';
import {
  startCreditsFunctionWorld,
  type CreditsFunctionWorld,
} from '../../support/credits-function';

/**
 * The credits Lambda behind the internal ALB: ALB events in, ALB results out; its keys and the
 * gateway token come from Secrets Manager (a local stand-in speaking its JSON protocol, checking every signature), the ledger is a real local gateway.
 */

const adminCurrent = generateApiKey();
const adminPrevious = generateApiKey();
const proxyCurrent = generateApiKey();

let world: CreditsFunctionWorld;
/** What the function wrote to stdout: its EMF documents. */
const stdoutLines: string[] = [];
let stdout: jest.SpyInstance;

function albEvent(
  method: string,
  path: string,
  key: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return {
    requestContext: {
      elb: {
        targetGroupArn:
          'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/credits/0123456789abcdef',
      },
    },
    httpMethod: method,
    path,
    queryStringParameters: {},
    headers: {
      host: 'credits.internal',
      authorization: `Bearer ${key}`,
      'content-type': 'application/json',
      ...headers,
    },
    body: body === undefined ? '' : JSON.stringify(body),
    isBase64Encoded: false,
  };
}

beforeAll(async () => {
  stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdoutLines.push(String(chunk));
    return true;
  });
  world = await startCreditsFunctionWorld({ environment: { CREDITS_CURRENCY: 'EUR' } });
  world.aws.secret(world.secrets.admin, {
    current: adminCurrent,
    previous: JSON.stringify({ key: adminPrevious }),
  });
  world.aws.secret(world.secrets.proxy, { current: proxyCurrent });
});

afterAll(async () => {
  stdout.mockRestore();
  await world.close();
});

type AlbResult = { statusCode: number; body: string; headers?: Record<string, string> };

describe('credits Lambda behind the ALB', () => {
  test('CFG-02: settings hold only secret ARNs and the gateway address', () => {
    const settings = creditsLambdaSettings(process.env);
    for (const value of Object.values(settings)) {
      for (const secret of [adminCurrent, adminPrevious, proxyCurrent, world.gatewayToken])
        expect(String(value)).not.toContain(secret);
    }
  });

  test('answers ALB events: a top-up, then a balance, through the gateway', async () => {
    const topUp = (await handler(
      albEvent(
        'POST',
        '/api/v1/topup',
        adminCurrent,
        { user_id: 'lambda-user', amount: '5.00' },
        { 'idempotency-key': 'lambda-topup-0001' },
      ),
    )) as AlbResult;
    expect(topUp.statusCode).toBe(201);
    const balance = (await handler(
      albEvent('GET', '/api/v1/balance/lambda-user', proxyCurrent),
    )) as AlbResult;
    expect(balance.statusCode).toBe(200);
    expect(JSON.parse(balance.body)).toMatchObject({ available_micros: '5000000' });
  });

  test("answers in the stage's currency (CREDITS_CURRENCY, set by the stack from the stage config)", async () => {
    expect(creditsLambdaSettings(process.env).currency).toBe('EUR');
    const topUp = (await handler(
      albEvent(
        'POST',
        '/api/v1/topup',
        adminCurrent,
        { user_id: 'euro-user', amount: '1.00' },
        { 'idempotency-key': 'lambda-topup-euro' },
      ),
    )) as AlbResult;
    expect(JSON.parse(topUp.body)).toMatchObject({ balance: { currency: 'EUR' } });
    const balance = (await handler(
      albEvent('GET', '/api/v1/balance/euro-user', proxyCurrent),
    )) as AlbResult;
    expect(JSON.parse(balance.body)).toMatchObject({ currency: 'EUR' });
    expect(() => creditsLambdaSettings({ ...process.env, CREDITS_CURRENCY: 'euro' })).toThrow(
      /CREDITS_CURRENCY must be an ISO 4217 code/,
    );
  });

  test('MON-02: every invocation flushes its metrics as EMF in the AiProxy namespace', async () => {
    stdoutLines.length = 0;
    const topUp = (await handler(
      albEvent(
        'POST',
        '/api/v1/topup',
        adminCurrent,
        { user_id: 'emf-user', amount: '1.00' },
        { 'idempotency-key': 'lambda-topup-emf1' },
      ),
    )) as AlbResult;
    expect(topUp.statusCode).toBe(201);
    const documents = stdoutLines
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(documents).toContainEqual(
      expect.objectContaining({ service: 'credits', stage: 'test', TopUps: 1 }),
    );
    expect(
      documents.every((document) => JSON.stringify(document).includes('"Namespace":"AiProxy"')),
    ).toBe(true);
  });

  test('AUTH-04: the previous admin key still works during a rotation; an unknown key gets 401', async () => {
    const previous = (await handler(
      albEvent('GET', '/api/v1/balance/lambda-user', adminPrevious),
    )) as AlbResult;
    expect(previous.statusCode).toBe(200);
    const unknown = (await handler(
      albEvent('GET', '/api/v1/balance/lambda-user', generateApiKey()),
    )) as AlbResult;
    expect(unknown.statusCode).toBe(401);
    expect(JSON.parse(unknown.body)).toMatchObject({ error: { code: 'invalid_api_key' } });
  });

  test('AUTH-08: without its configuration the function refuses to start, with a clear message', () => {
    expect(() => creditsLambdaSettings({ AWS_REGION: 'eu-west-1' })).toThrow(
      'credits: refusing to start, missing configuration: CREDITS_ADMIN_KEY_SECRET_ARN, CREDITS_PROXY_KEY_SECRET_ARN, GATEWAY_URL, GATEWAY_TOKEN_SECRET_ARN',
    );
  });
});
