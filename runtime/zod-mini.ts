import { config } from 'zod/mini';
import { en } from 'zod/locales';

/**
 * zod's functional API (zod/mini) for the schemas on the Lambda request path: the same core and
 * the same parsing as the classic API, without its method-chaining layer, which is most of zod's
 * bytes and of its import time (README, decisions). zod/mini ships no messages; the English ones
 * are installed here, as the classic API installs them, so a 400 reads the same. Import schemas'
 * builders from here, never from 'zod/mini' directly, so the messages are always installed.
 */
config(en());

export * from 'zod/mini';
