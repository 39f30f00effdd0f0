import { GatewayError } from '../errors/index.js';

/** Turns a listen failure into a message naming the setting to change. */
export function explainListen(key: string, host: string, port: number) {
  return (err: NodeJS.ErrnoException): never => {
    const why =
      err.code === 'EADDRINUSE'
        ? 'is already in use'
        : err.code === 'EACCES'
          ? 'needs privileges this process lacks'
          : err.code === 'EADDRNOTAVAIL'
            ? 'names an address this machine does not have'
            : `cannot be listened on (${err.code ?? err.message})`;
    throw new GatewayError(
      'CONFIG_INVALID',
      `${host}:${port} (${key}.host/${key}.port) ${why}`,
      { key },
      { cause: err },
    );
  };
}
