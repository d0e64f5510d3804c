/**
 * The seam between the CDK app and the code it deploys: the only module of lib/ that imports from
 * lambda/, runtime/ or tigerbeetle/ (test/architecture/imports.test.ts holds it to that). What crosses it
 * are values both sides must agree on: the metric catalogue the alarms read, the proxy's
 * configuration as its function receives it (and the limits derived from it), the client key set's
 * format version and the API key's pattern for the web ACL.
 */
export {
  metricDefinitions,
  metricsNamespace,
  type MetricName,
  type MetricsService,
} from '../lambda/shared/metrics';
export {
  proxyConfigDefaults,
  proxyConfigFromStage,
  proxyRequestMillisecondsMax,
  splitProxyConfig,
} from '../lambda/proxy/config';
export { clientKeySetVersion } from '../lambda/shared/client-keys';
export { apiKeyPatternSource } from '../runtime/api-key-format';
