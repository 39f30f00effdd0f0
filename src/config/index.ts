export { ConfigSchema, TLS_PROFILE_CIPHERS_TLS12, TLS_PROFILE_CIPHERS_TLS12_CBC } from './schema.js';
export type { Config, ConfigInput } from './schema.js';
export { ConfigError, environmentVariables, loadConfig, readSecretFile } from './load-config.js';
export type { ConfigIssue, LoadConfigOptions } from './load-config.js';
export { publicClientAccess } from './client-access.js';
export type { PublicClientAccess, PublicService } from './client-access.js';
