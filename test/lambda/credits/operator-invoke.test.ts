import { handler } from '../../../lambda/credits/handler';
import {
  operatorInvocationVersion,
  type OperatorOperation,
  type OperatorResult,
} from '../../../lambda/credits/operator-invoke';
import { generateApiKey } from '../../../runtime/keys';
import {
  startCreditsFunctionWorld,
  type CreditsFunctionWorld,
} from '../../support/credits-function';

/**
 * Operators' direct invocations of the credits function (npm run credits): through the real
 * handler, with its keys from Secrets Manager (a local stand-in speaking its JSON protocol, checking every signature) and a real local gateway over the
 * embedded ledger. The answers must be those of the HTTP API (NET-09: no network path needed).
 */

const adminKey = generateApiKey();
const proxyKey = generateApiKey();

let world: CreditsFunctionWorld;
let stdout: jest.SpyInstance;

beforeAll(async () => {
  // The function writes its EMF documents to stdout; keep the test output readable.
  stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  world = await startCreditsFunctionWorld();
  world.aws.secret(world.secrets.admin, { current: adminKey });
  world.aws.secret(world.secrets.proxy, { current: proxyKey });
});

afterAll(async () => {
  stdout.mockRestore();
  await world.close();
});

function invoke(
  operation: OperatorOperation,
  options: { key?: string; requestId?: string } = {},
): Promise<OperatorResult> {
  const event = {
    operatorInvocation: operatorInvocationVersion,
    adminKey: options.key ?? adminKey,
    operation,
    ...(options.requestId ? { requestId: options.requestId } : {}),
  };
  return handler(event) as Promise<OperatorResult>;
}

type AlbResult = { statusCode: number; body: string };

describe('NET-09: operators invoke the credits function directly, authenticated with the admin key', () => {
  test('a top-up, its replay, a balance and the history, as the HTTP API answers them', async () => {
    const topUp = {
      action: 'topup',
      userId: 'operator-user',
      amount: '12.50',
      idempotencyKey: 'operator-topup-0001',
    } as const;
    const first = await invoke(topUp, { requestId: 'operator-request-0001' });
    // The service always names the request itself (LOG-02); the operator's id is only logged beside it.
    expect(first).toMatchObject({
      status: 201,
      replayed: false,
      requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(first.requestId).not.toBe('operator-request-0001');
    expect(first.body).toMatchObject({
      user_id: 'operator-user',
      amount: '12.500000',
      amount_micros: '12500000',
      balance: { available_micros: '12500000' },
    });

    const replay = await invoke(topUp);
    expect(replay).toMatchObject({ status: 200, replayed: true });
    expect((replay.body as { transfer_id: string }).transfer_id).toBe(
      (first.body as { transfer_id: string }).transfer_id,
    );

    const balance = await invoke({ action: 'balance', userId: 'operator-user' });
    expect(balance).toMatchObject({
      status: 200,
      body: { available: '12.500000', available_micros: '12500000' },
    });

    const history = await invoke({ action: 'history', userId: 'operator-user', limit: 10 });
    expect(history.status).toBe(200);
    expect(history.body).toMatchObject({
      user_id: 'operator-user',
      transfers: [{ kind: 'top_up', amount_micros: '12500000' }],
    });
  });

  test('an adjustment either way; a debit cannot overdraw', async () => {
    await invoke({
      action: 'topup',
      userId: 'adjusted-user',
      amount: '1.00',
      idempotencyKey: 'operator-topup-adjusted',
    });
    const debit = {
      action: 'adjust',
      userId: 'adjusted-user',
      direction: 'debit',
      reason: 'refund of a duplicate charge',
    } as const;
    const applied = await invoke({
      ...debit,
      amount: '0.25',
      idempotencyKey: 'operator-adjust-0001',
    });
    expect(applied).toMatchObject({
      status: 201,
      body: { balance: { available_micros: '750000' } },
    });
    const overdraw = await invoke({
      ...debit,
      amount: '5.00',
      idempotencyKey: 'operator-adjust-0002',
    });
    expect(overdraw.status).toBe(402);
    expect(overdraw.body).toMatchObject({
      error: { code: 'insufficient_credits', available_micros: '750000' },
    });
  });

  test('AUTH-01: a wrong admin key is refused with 401, a proxy key with 403', async () => {
    const wrong = await invoke(
      { action: 'balance', userId: 'operator-user' },
      { key: generateApiKey() },
    );
    expect(wrong).toMatchObject({ status: 401, body: { error: { code: 'invalid_api_key' } } });
    const proxy = await invoke(
      {
        action: 'topup',
        userId: 'operator-user',
        amount: '1.00',
        idempotencyKey: 'operator-topup-proxy',
      },
      { key: proxyKey },
    );
    expect(proxy).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
  });

  test("the app's own rules apply: an exponent amount is a 400 naming the rule, an unknown user a 404", async () => {
    const exponent = await invoke({
      action: 'topup',
      userId: 'operator-user',
      amount: '1e3',
      idempotencyKey: 'operator-topup-exp1',
    });
    expect(exponent).toMatchObject({ status: 400, body: { error: { code: 'invalid_amount' } } });
    const unknown = await invoke({ action: 'balance', userId: 'nobody-here' });
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'user_not_found' } } });
  });

  test('the same request over the ALB path gets the same answer', async () => {
    const viaAlb = (await handler({
      requestContext: {
        elb: {
          targetGroupArn:
            'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/credits/0123456789abcdef',
        },
      },
      httpMethod: 'GET',
      path: '/api/v1/balance/operator-user',
      queryStringParameters: {},
      headers: { host: 'credits.internal', authorization: `Bearer ${adminKey}` },
      body: '',
      isBase64Encoded: false,
    })) as AlbResult;
    const viaOperator = await invoke({ action: 'balance', userId: 'operator-user' });
    expect(viaOperator.status).toBe(viaAlb.statusCode);
    expect(viaOperator.body).toEqual(JSON.parse(viaAlb.body));
  });

  test.each([
    [
      'no version marker',
      { adminKey: 'x', operation: { action: 'balance', userId: 'u' } },
      /operatorInvocation/,
    ],
    [
      'an unknown action',
      { operatorInvocation: 1, adminKey: 'x', operation: { action: 'hold', userId: 'u' } },
      /operation\.action/,
    ],
    [
      'an unknown field',
      {
        operatorInvocation: 1,
        adminKey: 'x',
        operation: { action: 'balance', userId: 'u' },
        path: '/api/v1/holds',
      },
      /Unrecognized key/,
    ],
    [
      'a number amount',
      {
        operatorInvocation: 1,
        adminKey: 'x',
        operation: { action: 'topup', userId: 'u', amount: 12.5, idempotencyKey: 'k-12345678' },
      },
      /operation\.amount/,
    ],
    ['not an object', 'top up alice', /expected object/],
  ])(
    'an event with %s is a 400 naming the problem, never an error',
    async (_name, event, message) => {
      const result = (await handler(event)) as OperatorResult;
      expect(result.status).toBe(400);
      expect(result.body).toMatchObject({
        error: { code: 'invalid_operator_event', type: 'invalid_request_error' },
        request_id: expect.any(String),
      });
      expect((result.body as { error: { message: string } }).error.message).toMatch(message);
    },
  );
});
