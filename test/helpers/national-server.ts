import { readFileSync } from 'node:fs';
import { type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server, createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';

/**
 * A real HTTPS server playing the national side for the directory mirrors: it serves the whitelist
 * XML, the extraction (ZIP or text) and CRLs at paths the test chooses, with a certificate of the
 * development PKI (the `peer-trusted` leaf and its chain, valid for localhost and 127.0.0.1). Each path
 * can be switched between behaviours while the test runs: serve bytes, answer an HTTP error, drop
 * the connection, send part of the body then close, or send slowly. It records each request and the
 * client certificate presented.
 */
export type NationalBehaviour =
  | { readonly kind: 'serve'; readonly body: Buffer }
  | { readonly kind: 'status'; readonly status: number }
  /** Close the connection without an answer. */
  | { readonly kind: 'drop' }
  /** Announce the whole length, send `bytes` of the body, then close the connection. */
  | { readonly kind: 'truncate'; readonly body: Buffer; readonly bytes: number }
  /** Send the body in `chunks` pieces, `intervalMs` apart. */
  | { readonly kind: 'slow'; readonly body: Buffer; readonly chunks: number; readonly intervalMs: number };

export interface NationalRequest {
  readonly path: string;
  /** Subject CN of the client certificate presented, if any. */
  readonly clientCn?: string;
}

export class NationalServer {
  readonly requests: NationalRequest[] = [];
  readonly #routes = new Map<string, NationalBehaviour>();
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #port = 0;

  private constructor(pkiDir: string, leaf: string) {
    const read = (f: string) => readFileSync(path.join(pkiDir, f), 'utf8');
    this.#server = createServer(
      {
        cert: read(`${leaf}.chain.pem`),
        key: read(`${leaf}.key`),
        // Ask for (and record) a client certificate; the mirror presents ours when configured to.
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
      },
      (req, res) => this.#handle(req, res),
    );
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
  }

  /** `leaf`: the development certificate to present (peer-foreign: one we must not trust). */
  static async start(
    pkiDir: string,
    leaf: 'peer-trusted' | 'peer-foreign' = 'peer-trusted',
  ): Promise<NationalServer> {
    const server = new NationalServer(pkiDir, leaf);
    await new Promise<void>((resolve, reject) => {
      server.#server.once('error', reject);
      server.#server.listen(0, '127.0.0.1', () => resolve());
    });
    server.#port = (server.#server.address() as AddressInfo).port;
    return server;
  }

  /** https://localhost:<port><path> (the certificate names localhost). */
  url(urlPath: string): string {
    return `https://localhost:${this.#port}${urlPath}`;
  }

  set(urlPath: string, behaviour: NationalBehaviour): void {
    this.#routes.set(urlPath, behaviour);
  }

  serve(urlPath: string, body: Buffer | string): void {
    this.set(urlPath, { kind: 'serve', body: Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8') });
  }

  requestsFor(urlPath: string): NationalRequest[] {
    return this.requests.filter((r) => r.path === urlPath);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const urlPath = new URL(req.url ?? '/', 'https://localhost').pathname;
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    const cn = peer && typeof peer.subject === 'object' ? peer.subject.CN : undefined;
    this.requests.push({ path: urlPath, ...(typeof cn === 'string' ? { clientCn: cn } : {}) });
    const route = this.#routes.get(urlPath) ?? { kind: 'status', status: 404 };
    switch (route.kind) {
      case 'serve':
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': route.body.length,
        });
        res.end(route.body);
        return;
      case 'status':
        res.writeHead(route.status, { 'content-type': 'text/plain' });
        res.end(`status ${route.status}\n`);
        return;
      case 'drop':
        req.socket.destroy();
        return;
      case 'truncate':
        res.writeHead(200, { 'content-length': route.body.length });
        res.write(route.body.subarray(0, route.bytes), () => req.socket.destroy());
        return;
      case 'slow': {
        res.writeHead(200, { 'content-length': route.body.length });
        const size = Math.ceil(route.body.length / route.chunks);
        let offset = 0;
        const tick = () => {
          if (res.destroyed) return;
          res.write(route.body.subarray(offset, offset + size));
          offset += size;
          if (offset >= route.body.length) {
            res.end();
            return;
          }
          const t = setTimeout(() => {
            this.#timers.delete(t);
            tick();
          }, route.intervalMs);
          this.#timers.add(t);
        };
        tick();
        return;
      }
    }
  }

  /** Stops listening and cuts every connection (the national side is down). */
  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
