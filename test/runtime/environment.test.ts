import {
  environmentOrRefuse,
  environmentProblems,
  logLevelVariable,
  readEnvironment,
  variable,
} from '../../runtime/environment';
import * as z from '../../runtime/zod-mini';

/**
 * The one environment reader of every entry point: each declares its variables; a start lists
 * every problem at once, each naming its variable, and a missing required one is named as missing
 * configuration (AUTH-08: no keys, no start).
 */

const schema = {
  REGION: variable.required(),
  PORT: variable.integer(0, 65_535, 7100),
  HOST: variable.withDefault('127.0.0.1'),
  QUEUE_URL: variable.optional(),
  URL: variable.matching(/^https?:\/\/[^/]+$/, 'must be a base URL, e.g. http://127.0.0.1:7200'),
  CONFIG: variable.json(z.strictObject({ limit: z.number() }), 'the configuration'),
  LOG_LEVEL: logLevelVariable(),
};

test('reads every variable, with its default when unset', () => {
  expect(
    readEnvironment(schema, {
      REGION: 'eu-west-1',
      URL: 'http://127.0.0.1:7200',
      CONFIG: '{"limit": 3}',
      LOG_LEVEL: 'warn',
    }),
  ).toEqual({
    values: {
      REGION: 'eu-west-1',
      PORT: 7100,
      HOST: '127.0.0.1',
      QUEUE_URL: undefined,
      URL: 'http://127.0.0.1:7200',
      CONFIG: { limit: 3 },
      LOG_LEVEL: 'WARN',
    },
    missing: [],
    problems: [],
  });
});

test('lists every problem at once, each naming its variable; a blank variable is a missing one', () => {
  const reading = readEnvironment(schema, {
    REGION: '  ',
    PORT: '70000',
    URL: 'ftp://x',
    CONFIG: '{"limit": "3"}',
    LOG_LEVEL: 'TRACE',
  });
  expect(reading.values).toBeUndefined();
  expect(reading.missing).toEqual(['REGION']);
  expect(reading.problems).toEqual([
    'PORT must be an integer from 0 to 65535, got "70000"',
    'URL must be a base URL, e.g. http://127.0.0.1:7200',
    'CONFIG is not the configuration: limit: Invalid input: expected number, received string',
    'LOG_LEVEL must be one of DEBUG, INFO, WARN, ERROR, got "TRACE"',
  ]);
  expect(environmentProblems(reading)[0]).toBe('REGION is required');
});

test('AUTH-08: a Lambda start is refused naming the missing variables first, then the malformed ones', () => {
  expect(() => environmentOrRefuse('proxy', schema, { PORT: 'x' })).toThrow(
    'proxy: refusing to start, missing configuration: REGION, URL, CONFIG',
  );
  expect(() =>
    environmentOrRefuse('proxy', schema, {
      REGION: 'eu-west-1',
      URL: 'http://127.0.0.1:7200',
      CONFIG: 'not json',
    }),
  ).toThrow('proxy: refusing to start, CONFIG is not JSON');
});
