export { normalizeDomain, parseWhitelistXml } from './whitelist-parser.js';
export type { ParsedWhitelist, WhitelistEntry } from './whitelist-parser.js';
export { Whitelist, WhitelistHolder } from './whitelist.js';
export { loadWhitelistFile } from './load-whitelist.js';
