import type { SMTPServer } from 'smtp-server';

/** smtp-server's connection, as far as its start goes (library internals, read and replaced here). */
interface StartingConnection {
  readonly name: string;
  init(): void;
  _setListeners(ready: () => void): void;
  connectionReady(): void;
  send(code: number, data: string, context?: unknown): void;
}

interface ServerInternals {
  readonly connections: Set<StartingConnection>;
  readonly options: { readonly maxClients?: number };
}

/**
 * smtp-server holds every new connection 100 ms before its 220 greeting, to catch clients that
 * talk first ("early talkers", a spam heuristic for open MXs). Our listeners serve only peers and
 * clients that must complete TLS with a trusted certificate, or authenticate, before they may send
 * anything: the pause bought nothing here and added 100 ms to every connection (a peer opening one
 * connection per message waited it each time; Postfix's smtpd greets at once). Connections of
 * `server` start as smtp-server's own `init` starts them — the same socket listeners, the same
 * "too many connected clients" refusal — then greet at once; the early-talker refusal goes with the
 * pause. Installed per server (never on the library's prototype); the greeting test pins it.
 */
export function greetAtOnce(server: SMTPServer): void {
  const internals = server as unknown as ServerInternals;
  const { connections } = internals;
  const add = connections.add.bind(connections);
  connections.add = (connection: StartingConnection) => {
    connection.init = () =>
      connection._setListeners(() => {
        const max = internals.options.maxClients;
        if (max && connections.size > max) {
          connection.send(421, `${connection.name} Too many connected clients, try again in a moment`, false);
          return;
        }
        connection.connectionReady();
      });
    return add(connection);
  };
}
