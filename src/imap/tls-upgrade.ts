import type net from 'node:net';
import tls from 'node:tls';
import type { TlsFacts } from '../auth/index.js';
import type { TlsProfileOptions, TrustMaterial } from '../pki/index.js';
import { tlsProfile } from '../pki/index.js';

/** Our certificate and the authorities we trust, with the MSSanté TLS profile options. */
export type ImapTlsMaterial = TrustMaterial & TlsProfileOptions;

/**
 * The server TLS settings of both IMAP ports (MSSANTE.md "TLS profile"): our IGC-Santé certificate,
 * the trusted authorities and their CRLs, so that a client certificate (SASL EXTERNAL, RFC 4422
 * Appendix A) is verified with revocation. The certificate is asked for, never required: OpenSSL's
 * verdict (`socket.authorized`) goes to the authenticator, which judges it.
 */
export function imapContextOptions(material: ImapTlsMaterial): tls.SecureContextOptions {
  return {
    key: material.key,
    cert: material.cert,
    ca: [...material.ca],
    crl: [...material.crl],
    ...tlsProfile(material),
    sessionIdContext: 'mssgw-imap',
  };
}

export function imapServerOptions(material: ImapTlsMaterial, handshakeTimeoutMs: number): tls.TlsOptions {
  return {
    ...imapContextOptions(material),
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: handshakeTimeoutMs,
    // Not half-open during the handshake: a client that connects and closes (a port scan, a load
    // balancer's health check) must release its socket at once, not hold it in CLOSE-WAIT.
    // `secured` makes the session half-open once TLS is up.
    allowHalfOpen: false,
  };
}

/**
 * A socket whose handshake succeeded becomes half-open: when a client ends its side, what the store
 * still sends reaches it (the property is read when the client's FIN arrives).
 */
export function secured(socket: tls.TLSSocket): tls.TLSSocket {
  socket.allowHalfOpen = true;
  return socket;
}

/**
 * A handshake that failed or timed out: Node reports it ('tlsClientError') but leaves the socket
 * open, so it is destroyed here, whatever the state it stopped in.
 */
export function discardFailedHandshake(socket: tls.TLSSocket): void {
  socket.on('error', () => {});
  socket.destroy();
}

/**
 * Ends a handshake in flight on a raw socket that a tls.Server has wrapped, from the top. The raw
 * socket is never destroyed under its TLSSocket: tearing a TLS wrap down from below leaves the
 * TLSSocket on a freed SSL, and a later call on it dereferences NULL (the SIGSEGV SMTP's guard hit).
 * Instead the failure is reported on the raw socket, the path a reset from the network takes: the
 * TLSSocket forwards it, the server emits 'tlsClientError' with the TLSSocket, and its handler
 * (discardFailedHandshake) destroys that, which closes the raw socket under it in order.
 */
export function abortHandshake(raw: net.Socket): void {
  raw.on('error', () => {});
  // eslint-disable-next-line no-restricted-syntax -- never thrown: it stands for the network reset it mimics
  raw.emit('error', Object.assign(new Error('handshake aborted by the server'), { code: 'ECONNABORTED' }));
}

/** A live TCP connection is one remote address and port: how a TLS socket is matched to its raw one. */
export function peerKey(socket: net.Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? ''}`;
}

export type HandshakeResult =
  | { readonly ok: true; readonly socket: tls.TLSSocket; readonly resumed: boolean }
  | { readonly ok: false; readonly reason: string };

/** Bounded label: `full`, `resumed`, or the error code of a failed handshake. */
export function handshakeDetail(result: HandshakeResult): string {
  if (!result.ok) return result.reason;
  return result.resumed ? 'resumed' : 'full';
}

/** What TLS proved about the client, for the authenticator (TlsFacts) and the journal. */
export function tlsFactsOf(socket: tls.TLSSocket): {
  tls: TlsFacts;
  tlsInfo: { protocol: string; cipher: string };
} {
  const cert = socket.getPeerX509Certificate();
  // Typed as an Error, but Node sets the OpenSSL verification code (a string) here.
  const raw = socket.authorizationError as unknown;
  const error = typeof raw === 'string' ? raw : raw instanceof Error ? raw.message : undefined;
  return {
    tls: {
      secure: true,
      authorized: socket.authorized,
      ...(cert ? { peerCertificate: cert } : {}),
      ...(error ? { authorizationError: error } : {}),
    },
    tlsInfo: { protocol: socket.getProtocol() ?? 'unknown', cipher: socket.getCipher().name },
  };
}

/**
 * STARTTLS (RFC 9051 §6.2.1) on an accepted plain socket. The socket is handed to a tls.Server that
 * never listens (net.Server's documented connection injection), so that the client certificate gets
 * the same verdict (`authorized`, `authorizationError`) as on the implicit-TLS port.
 */
export class StartTlsUpgrader {
  readonly #server: tls.Server;
  readonly #waiting = new Map<string, { resolve: (r: HandshakeResult) => void; cleanup: () => void }>();

  constructor(options: tls.TlsOptions) {
    this.#server = tls.createServer(options);
    this.#server.on('secureConnection', (socket: tls.TLSSocket) =>
      this.#settle(peerKey(socket), { ok: true, socket: secured(socket), resumed: socket.isSessionReused() }),
    );
    this.#server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      this.#settle(peerKey(socket), { ok: false, reason: err.code ?? 'error' });
      discardFailedHandshake(socket);
    });
  }

  setSecureContext(options: tls.SecureContextOptions): void {
    this.#server.setSecureContext(options);
  }

  /**
   * Ends the handshake of `socket` if one is running (the session is closed meanwhile: deadline,
   * shutdown), from the TLS side; false when none is, and the plain socket can be closed as such.
   */
  abort(socket: net.Socket): boolean {
    if (!this.#waiting.has(peerKey(socket)) || socket.destroyed) return false;
    abortHandshake(socket);
    return true;
  }

  /** Resolves once the handshake is done or failed (the server's handshake timeout applies). */
  upgrade(socket: net.Socket): Promise<HandshakeResult> {
    // A client that already closed its side cannot send a ClientHello: do not wait for one. Its FIN
    // may have been read and not yet emitted (the socket was paused right after STARTTLS), which
    // only the stream state tells; the TLS layer would never see it and wait for the deadline.
    const state = (socket as unknown as { _readableState?: { ended?: boolean } })._readableState;
    if (socket.destroyed || socket.readableEnded || state?.ended === true)
      return Promise.resolve({ ok: false, reason: 'closed' });
    const key = peerKey(socket);
    return new Promise((resolve) => {
      const onClose = () => this.#settle(key, { ok: false, reason: 'closed' });
      socket.once('close', onClose);
      this.#waiting.set(key, { resolve, cleanup: () => socket.off('close', onClose) });
      // During the handshake a client's FIN ends the connection (half-open again once secured).
      // Resumed so the TLS layer reads on; plaintext sent after STARTTLS is discarded on the way.
      socket.allowHalfOpen = false;
      socket.resume();
      this.#server.emit('connection', socket);
    });
  }

  #settle(key: string, result: HandshakeResult): void {
    const waiting = this.#waiting.get(key);
    this.#waiting.delete(key);
    if (waiting) {
      waiting.cleanup();
      waiting.resolve(result);
    } else if (result.ok) {
      result.socket.destroy();
    }
  }
}
