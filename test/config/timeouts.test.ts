import { stageNames } from '../../lib/config';
import { deployableConfig, deployableProblems } from '../support/synth';
import {
  apiGatewayStreamingIntegrationTimeoutSecondsMax,
  timeoutChainOf,
  timeoutChainProblems,
} from '../../lib/config/timeouts';
import { proxyConfigDefaults } from '../../lambda/proxy/config';

const problemsOf = deployableProblems;

describe('the timeout chain of the streaming path: provider budget < Lambda <= API Gateway integration < ALB idle', () => {
  test.each(stageNames)('%s ships a chain that holds', (stage) => {
    const chain = timeoutChainOf(deployableConfig(stage));
    expect(chain.providerBudgetSeconds).toBe(proxyConfigDefaults.providerBudgetMilliseconds / 1000);
    expect(chain.providerBudgetSeconds).toBeLessThan(chain.lambdaTimeoutSeconds);
    expect(chain.lambdaTimeoutSeconds).toBeLessThanOrEqual(chain.integrationTimeoutSeconds);
    expect(chain.integrationTimeoutSeconds).toBeLessThanOrEqual(
      apiGatewayStreamingIntegrationTimeoutSecondsMax,
    );
    expect(chain.integrationTimeoutSeconds).toBeLessThan(chain.albIdleTimeoutSeconds);
    expect(timeoutChainProblems(chain)).toEqual([]);
  });

  test('a Lambda timeout at or under the provider budget is refused at synth', () => {
    const problems = problemsOf('production', { api: { proxyTimeoutSeconds: 100 } });
    expect(problems).toEqual([
      expect.stringMatching(
        /^api\.proxyTimeoutSeconds \(100 s\) must exceed the proxy's provider budget \(110 s\)/,
      ),
    ]);
  });

  test('a Lambda timeout above the API Gateway integration timeout is refused', () => {
    const problems = problemsOf('staging', { api: { proxyTimeoutSeconds: 160 } });
    expect(problems).toEqual([
      expect.stringMatching(
        /exceeds api\.gateway\.integrationTimeoutSeconds \(150 s\): API Gateway would give up on a function still running/,
      ),
    ]);
  });

  test('an integration timeout that the ALB idle timeout does not outlast is refused', () => {
    const problems = problemsOf('dev', { edge: { idleTimeoutSeconds: 150 } });
    expect(problems).toEqual([
      expect.stringMatching(
        /integrationTimeoutSeconds \(150 s\) must be below edge\.idleTimeoutSeconds \(150 s\): the ALB would cut/,
      ),
    ]);
  });

  test("an integration timeout beyond API Gateway's streaming limit is refused (the relation, not only the schema)", () => {
    const problems = timeoutChainProblems({
      providerBudgetSeconds: 110,
      proxyRequestSeconds: 135.25,
      lambdaTimeoutSeconds: 140,
      integrationTimeoutSeconds: 901,
      albIdleTimeoutSeconds: 1000,
    });
    expect(problems).toEqual([
      expect.stringMatching(/exceeds API Gateway's 900 s limit for streamed responses/),
    ]);
  });

  test('a function timeout that does not cover the whole request (admission, budget, settlement, queue hand-off) is refused', () => {
    const chain = timeoutChainOf(deployableConfig('production'));
    expect(chain.proxyRequestSeconds).toBe(135.25);
    expect(chain.proxyRequestSeconds).toBeLessThan(chain.lambdaTimeoutSeconds);
    expect(problemsOf('production', { api: { proxyTimeoutSeconds: 130 } })).toEqual([
      expect.stringMatching(
        /^api\.proxyTimeoutSeconds \(130 s\) must exceed the longest request \(135\.25 s: admission, the provider budget, inline settlement and the hand-off/,
      ),
    ]);
  });

  test('every broken link is listed at once', () => {
    const problems = timeoutChainProblems({
      providerBudgetSeconds: 110,
      proxyRequestSeconds: 135.25,
      lambdaTimeoutSeconds: 100,
      integrationTimeoutSeconds: 90,
      albIdleTimeoutSeconds: 60,
    });
    expect(problems).toHaveLength(3);
  });
});
