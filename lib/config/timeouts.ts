import { proxyConfigDefaults, proxyRequestMillisecondsMax } from '../deployed-code';
import type { StageConfig } from './schema';

/**
 * The timeouts along the streaming path, and how they must relate. A request waits on each hop in
 * turn: the proxy's provider calls, the proxy function, API Gateway's integration, the public ALB.
 * Each outer hop must outlast the inner one, so that the innermost limit that fires answers the
 * client (a JSON error or an SSE error event from the proxy, a 504 from API Gateway) instead of a
 * connection cut by an outer hop that gave up first:
 *
 *   provider budget < Lambda timeout <= API Gateway integration timeout (<= 900 s when streaming) < ALB idle timeout
 *
 * and the Lambda timeout also covers the whole request around the provider budget: admission before
 * it, inline settlement and the hand-off to the retry queue after it (proxyRequestMillisecondsMax).
 */

/** API Gateway's most an integration may take when its response is streamed (15 minutes). */
export const apiGatewayStreamingIntegrationTimeoutSecondsMax = 900;
/**
 * API Gateway closes a streamed response of a regional or private API after this long without a
 * byte. The proxy's keep-alive comments keep a slow model's stream under it; documented here
 * because it is a limit of the path, not a setting.
 */
export const apiGatewayStreamingIdleTimeoutSeconds = 300;

export interface TimeoutChain {
  readonly providerBudgetSeconds: number;
  /** The provider budget plus admission, inline settlement and the queue hand-off. */
  readonly proxyRequestSeconds: number;
  readonly lambdaTimeoutSeconds: number;
  readonly integrationTimeoutSeconds: number;
  readonly albIdleTimeoutSeconds: number;
}

/** The chain of a stage: the provider budget is the proxy's own (lambda/proxy/config.ts). */
export function timeoutChainOf(config: StageConfig): TimeoutChain {
  return {
    providerBudgetSeconds: proxyConfigDefaults.providerBudgetMilliseconds / 1000,
    proxyRequestSeconds: proxyRequestMillisecondsMax(proxyConfigDefaults) / 1000,
    lambdaTimeoutSeconds: config.api.proxyTimeoutSeconds,
    integrationTimeoutSeconds: config.api.gateway.integrationTimeoutSeconds,
    albIdleTimeoutSeconds: config.edge.idleTimeoutSeconds,
  };
}

/** Every broken link of the chain, worded for the platform team; empty when the chain holds. */
export function timeoutChainProblems(chain: TimeoutChain): string[] {
  const problems: string[] = [];
  const expected =
    'the streaming path needs provider budget < api.proxyTimeoutSeconds <= api.gateway.integrationTimeoutSeconds < edge.idleTimeoutSeconds';
  if (chain.providerBudgetSeconds >= chain.lambdaTimeoutSeconds) {
    problems.push(
      `api.proxyTimeoutSeconds (${chain.lambdaTimeoutSeconds} s) must exceed the proxy's provider budget (${chain.providerBudgetSeconds} s): ${expected}`,
    );
  }
  if (
    chain.providerBudgetSeconds < chain.lambdaTimeoutSeconds &&
    chain.proxyRequestSeconds >= chain.lambdaTimeoutSeconds
  ) {
    problems.push(
      `api.proxyTimeoutSeconds (${chain.lambdaTimeoutSeconds} s) must exceed the longest request (${chain.proxyRequestSeconds} s: ` +
        'admission, the provider budget, inline settlement and the hand-off to the settlement queue), or a settlement could be cut off unqueued',
    );
  }
  if (chain.lambdaTimeoutSeconds > chain.integrationTimeoutSeconds) {
    problems.push(
      `api.proxyTimeoutSeconds (${chain.lambdaTimeoutSeconds} s) exceeds api.gateway.integrationTimeoutSeconds (${chain.integrationTimeoutSeconds} s): ` +
        `API Gateway would give up on a function still running; ${expected}`,
    );
  }
  if (chain.integrationTimeoutSeconds > apiGatewayStreamingIntegrationTimeoutSecondsMax) {
    problems.push(
      `api.gateway.integrationTimeoutSeconds (${chain.integrationTimeoutSeconds} s) exceeds API Gateway's ${apiGatewayStreamingIntegrationTimeoutSecondsMax} s limit for streamed responses`,
    );
  }
  if (chain.integrationTimeoutSeconds >= chain.albIdleTimeoutSeconds) {
    problems.push(
      `api.gateway.integrationTimeoutSeconds (${chain.integrationTimeoutSeconds} s) must be below edge.idleTimeoutSeconds (${chain.albIdleTimeoutSeconds} s): ` +
        `the ALB would cut the connection before API Gateway answers its timeout; ${expected}`,
    );
  }
  return problems;
}
