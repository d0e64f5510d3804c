/**
 * The shape of a client API key: `sk-` followed by 43 base64url characters (256 random bits).
 * Shared by the key generator, the proxy's auth middleware and the WAF rule that throttles requests
 * without a well-formed key (RATE-05), so all three agree.
 */
export const apiKeyPrefix = 'sk-';
export const apiKeyRandomBytes = 32;
/** base64url of 32 bytes, unpadded. */
export const apiKeyBodyLength = 43;
export const apiKeyPatternSource = `${apiKeyPrefix}[A-Za-z0-9_-]{${apiKeyBodyLength}}`;
export const apiKeyPattern = new RegExp(`^${apiKeyPatternSource}$`);
