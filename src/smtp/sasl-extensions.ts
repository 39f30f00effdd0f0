// smtp-server looks AUTH mechanisms up on its exported SASL table (`SASL_<NAME>`, called with the
// connection as `this`) and offers only those listed in a server's `authMethods`. It implements
// XOAUTH2 but not OAUTHBEARER (RFC 7628) nor EXTERNAL (RFC 4422 appendix A), which MSSanté clients
// use; this file adds them. The handlers pass the raw initial response to `onAuth` (the auth module
// decodes it) and follow the library's own XOAUTH2 flow for failures with an error challenge.
// Internal API: the exact-transcript tests of submission catch a library change that breaks it.
import SASL from 'smtp-server/lib/sasl.js';

interface Connection {
  session: { user?: unknown; transmissionType?: string; mssgwAuthFailure?: FinalFailure } & Record<
    string,
    unknown
  >;
  _server: {
    onAuth(
      auth: Record<string, unknown>,
      session: unknown,
      cb: (err: AuthError | null, response?: AuthResponse) => void,
    ): void;
  };
  _nextHandler: ((data: string | Buffer, cb: () => void) => void) | false;
  _transmissionType(): string;
  send(code: number, data?: string): void;
}

interface AuthError extends Error {
  responseCode?: number;
}

/** What onAuth answers: the user, or a SASL error challenge followed by `final`. */
export interface AuthResponse {
  user?: unknown;
  data?: unknown;
  final?: FinalFailure;
}

export interface FinalFailure {
  readonly responseCode: number;
  /** Starts with the enhanced status code, e.g. `5.7.8 Token expired`. */
  readonly message: string;
}

type Handler = (this: Connection, args: string[], callback: () => void) => void;
const table = SASL as unknown as Record<string, Handler | ((this: Connection, ...a: never[]) => void)>;

function runMechanism(
  this: Connection,
  method: 'OAUTHBEARER' | 'EXTERNAL',
  raw: string,
  callback: () => void,
): void {
  const line = raw.trim();
  if (line === '*') {
    this.send(501, '5.7.0 Authentication aborted');
    return callback();
  }
  this._server.onAuth({ method, initialResponse: line }, this.session, (err, response) => {
    if (err) {
      this.send(err.responseCode ?? 535, err.message);
      return callback();
    }
    if (!response?.user) {
      // RFC 7628 §3.2.3: send the error status as a challenge, the client answers %x01, then fail.
      this.session.mssgwAuthFailure = response?.final ?? {
        responseCode: 535,
        message: '5.7.8 Authentication failed',
      };
      this._nextHandler = (_data, cb) => finalFailure.call(this, cb);
      this.send(334, Buffer.from(JSON.stringify(response?.data ?? {})).toString('base64'));
      return callback();
    }
    this.session.user = response.user;
    this.session.transmissionType = this._transmissionType();
    this.send(235, '2.7.0 Authentication successful');
    callback();
  });
}

function finalFailure(this: Connection, callback: () => void): void {
  const f = this.session.mssgwAuthFailure ?? { responseCode: 535, message: '5.7.8 Authentication failed' };
  delete this.session.mssgwAuthFailure;
  this.send(f.responseCode, f.message);
  callback();
}

function withInitialResponse(method: 'OAUTHBEARER' | 'EXTERNAL'): Handler {
  return function (this: Connection, args, callback) {
    if (args.length > 1) {
      this.send(501, `5.5.4 Syntax: AUTH ${method} [initial-response]`);
      return callback();
    }
    if (args.length === 0) {
      this._nextHandler = (data, cb) => runMechanism.call(this, method, data.toString(), cb);
      this.send(334, '');
      return callback();
    }
    runMechanism.call(this, method, args[0]!, callback);
  };
}

let installed = false;

/** Adds OAUTHBEARER and EXTERNAL, and makes XOAUTH2's final failure carry our reply. Idempotent. */
export function installSaslExtensions(): void {
  if (installed) return;
  installed = true;
  table.SASL_OAUTHBEARER = withInitialResponse('OAUTHBEARER');
  table.SASL_EXTERNAL = withInitialResponse('EXTERNAL');
  table.XOAUTH2_error = function (this: Connection, _data: never, callback: () => void) {
    finalFailure.call(this, callback);
  };
}
