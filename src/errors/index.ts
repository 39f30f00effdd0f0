export { ERROR_CODES, type ErrorCode, type ErrorCodeInfo, type FaultSide } from './error-codes.js';
export { GatewayError, isGatewayError, toGatewayError } from './gateway-error.js';
export { redisErrorKind } from './redis-reply.js';
export { loginOutcomeLabel } from './outcome-label.js';
