import { GatewayError, isGatewayError } from '../errors/index.js';

/**
 * A listener that cannot bind, told in one line an operator can act on: which listener, which
 * address and port, why, and the setting to change (`npm start` then exits 78, EX_CONFIG).
 * `portKey` is the setting of the port (`smtp.mx.port`); the host setting is its sibling.
 */
export function listenError(
  listener: string,
  portKey: string,
  host: string,
  port: number,
  err: NodeJS.ErrnoException,
): GatewayError {
  const hostKey = portKey.replace(/\.[A-Za-z]+$/, '.host');
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const why =
    err.code === 'EADDRINUSE'
      ? `${where} is already in use by another process: stop that process, or set ${portKey} to a free port`
      : err.code === 'EACCES'
        ? `${where} needs a privilege this process lacks (ports below 1024): grant CAP_NET_BIND_SERVICE, or set ${portKey} to a port above 1023`
        : err.code === 'EADDRNOTAVAIL'
          ? `${where}: this machine has no address ${host}; set ${hostKey} to one of its addresses`
          : `${where} cannot be listened on (${err.code ?? err.message}); check ${hostKey} and ${portKey}`;
  return new GatewayError(
    'CONFIG_INVALID',
    `the ${listener} listener cannot start: ${why}`,
    { key: portKey, host, port, reason: err.code },
    { cause: err },
  );
}

/** For `.catch` on a listen promise: rethrows the failure as listenError. */
export function explainListen(listener: string, portKey: string, host: string, port: number) {
  return (err: unknown): never => {
    throw isGatewayError(err)
      ? err
      : listenError(listener, portKey, host, port, err as NodeJS.ErrnoException);
  };
}
