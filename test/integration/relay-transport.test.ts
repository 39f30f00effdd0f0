import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import tls, { type TLSSocket } from 'node:tls';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Whitelist, crlPem, loadWhitelistFile } from '../../src/directory/index.js';
import { createLogger } from '../../src/observability/index.js';
import {
  PEER_DOMAIN,
  type TrustMaterial,
  devPkiSettings,
  loadTrustMaterial,
  readDevPkiManifest,
} from '../../src/pki/index.js';
import {
  type OutboundTransaction,
  type RelayTransportOptions,
  type RemoteWhitelistView,
  RelayTransport,
} from '../../src/relay/index.js';
import { generateRsaKey, issueCertificate } from '../../src/pki/cert-builder.js';
import { buildCrl } from '../../src/pki/crl-builder.js';
import { AUTHORITY_PROFILES, LEAF_PROFILES } from '../../src/pki/dev-pki-profile.js';
import { type Clock, systemClock } from '../../src/shared/index.js';
import { rsaKeyFromPem } from '../helpers/auth-tls.js';
import { devCrl } from '../helpers/national-data.js';

/**
 * The relay's connections to a remote operator (issue #12, item 4), over real TLS with the
 * development PKI, against a scripted remote MX that keeps a transcript of every line it receives:
 * reuse between messages with RSET, PIPELINING, per-destination limits, and what happens when a
 * reused connection breaks, times out or asks to renegotiate.
 */

const HELO = 'mx.op.mssante.test';
const FROM = 'dr.martin@op.mssante.test';
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let trust: TrustMaterial;
let whitelist: Whitelist;
const pki = (file: string) => readFileSync(path.join(inject('pkiDir'), file));

beforeAll(async () => {
  const settings = devPkiSettings(inject('pkiDir'));
  trust = loadTrustMaterial(settings.tls).material;
  whitelist = await loadWhitelistFile(settings.whitelistFile, systemClock, 0);
});

type Turn = 'ok' | 'drop' | 'stall';

interface PeerConnection {
  readonly id: number;
  /** Every line received, plain and TLS; a message as `<message>` (its bytes in `messages`). */
  readonly transcript: string[];
  /** Lines that arrived while the reply to an earlier line was still owed (pipelined). */
  overlapping: number;
  /** Messages fully received on this connection. */
  received: number;
  tls?: TLSSocket;
  readonly closed: Promise<void>;
}

interface ScriptOptions {
  readonly pipelining: boolean;
  /** Reply line to RCPT TO for this address; default `250 2.1.5 Ok`. */
  readonly rcpt?: (address: string) => string | undefined;
  /** Whether to answer RSET (the start of a reused transaction). Default ok. */
  readonly onReset?: (c: PeerConnection) => Turn;
  /** After a whole message: answer 250, close without a reply, or never answer. Default ok. */
  readonly afterMessage?: (c: PeerConnection) => Turn;
  /** After the 250 to a message. */
  readonly afterReply?: (c: PeerConnection) => void;
  readonly maxVersion?: tls.SecureVersion;
  /** The key and chain the remote presents; default the development PKI's peer-trusted. */
  readonly identity?: { readonly key: string | Buffer; readonly cert: string | Buffer };
}

interface ScriptedPeer {
  readonly port: number;
  readonly connections: PeerConnection[];
  /** Messages received (dot-unstuffed bytes), with their recipients. */
  readonly messages: Array<{ readonly to: string[]; readonly raw: Buffer; readonly connection: number }>;
  /** Most connections open at once. */
  peak: number;
}

/**
 * A remote MX written for these tests: STARTTLS with the peer-trusted certificate, asking for our
 * client certificate. With `pipelining` it advertises PIPELINING and holds its replies to RSET,
 * MAIL and RCPT until DATA arrives, answering the group at once: a client that waited for each
 * reply would hang there. Without it, each reply comes a moment after its command, and a command
 * arriving meanwhile counts as `overlapping`.
 */
async function startScriptedPeer(o: ScriptOptions): Promise<ScriptedPeer> {
  const peer: ScriptedPeer = { port: 0, connections: [], messages: [], peak: 0 };
  let open = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((plain) => {
    sockets.add(plain);
    open += 1;
    peer.peak = Math.max(peer.peak, open);
    let ended!: () => void;
    const c: PeerConnection = {
      id: peer.connections.length,
      transcript: [],
      overlapping: 0,
      received: 0,
      closed: new Promise<void>((resolve) => (ended = resolve)),
    };
    peer.connections.push(c);
    plain.on('error', () => {});
    plain.on('close', () => {
      sockets.delete(plain);
      open -= 1;
      ended();
    });
    let buffer = '';
    const onPlain = (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (let eol = buffer.indexOf('\r\n'); eol >= 0; eol = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        c.transcript.push(line);
        if (line.startsWith('EHLO ')) plain.write('250-peer.test\r\n250 STARTTLS\r\n');
        else if (line === 'STARTTLS') {
          plain.off('data', onPlain);
          plain.write('220 2.0.0 Ready to start TLS\r\n');
          secure(plain, c);
          return;
        } else plain.write('503 5.5.1 Not now\r\n');
      }
    };
    plain.on('data', onPlain);
    plain.write('220 peer.test ESMTP\r\n');
  });

  const secure = (plain: net.Socket, c: PeerConnection) => {
    const socket = new tls.TLSSocket(plain, {
      isServer: true,
      secureContext: tls.createSecureContext({
        key: o.identity?.key ?? pki('peer-trusted.key'),
        cert: o.identity?.cert ?? pki('peer-trusted.chain.pem'),
        ca: [pki('ca/root.crt'), pki('ca/org.crt')],
        ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      }),
      requestCert: true,
      rejectUnauthorized: false,
    });
    c.tls = socket;
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let inData = false;
    let mailOk = false;
    let accepted: string[] = [];
    let held: string[] = [];
    let owed = 0;
    const say = (reply: string) => {
      if (o.pipelining) {
        held.push(reply);
        return;
      }
      owed += 1;
      setTimeout(() => {
        owed -= 1;
        if (!socket.destroyed) socket.write(reply);
      }, 5);
    };
    const flush = (last: string) => {
      const group = [...held, last].join('');
      held = [];
      if (o.pipelining) socket.write(group);
      else say(last);
    };
    const turn = (t: Turn, reply: string) => {
      if (t === 'drop') socket.destroy();
      else if (t === 'ok') flush(reply);
    };
    const line = (text: string) => {
      c.transcript.push(text);
      if (owed > 0) c.overlapping += 1;
      const verb = text.slice(0, 4).toUpperCase();
      if (verb === 'EHLO') {
        const keywords = [
          'peer.test',
          ...(o.pipelining ? ['PIPELINING'] : []),
          '8BITMIME',
          'ENHANCEDSTATUSCODES',
        ];
        flush(keywords.map((k, i) => `250${i === keywords.length - 1 ? ' ' : '-'}${k}\r\n`).join(''));
      } else if (verb === 'RSET') {
        mailOk = false;
        accepted = [];
        const t = o.onReset?.(c) ?? 'ok';
        if (t === 'drop') socket.destroy();
        else if (t === 'ok') say('250 2.0.0 Ok\r\n');
      } else if (verb === 'MAIL') {
        mailOk = true;
        say('250 2.1.0 Ok\r\n');
      } else if (verb === 'RCPT') {
        const address = /<([^>]*)>/.exec(text)?.[1] ?? '';
        const reply = o.rcpt?.(address) ?? '250 2.1.5 Ok\r\n';
        if (reply.startsWith('2')) accepted.push(address);
        say(reply);
      } else if (verb === 'DATA') {
        if (mailOk && accepted.length > 0) {
          inData = true;
          flush('354 End data with <CR><LF>.<CR><LF>\r\n');
        } else flush(mailOk ? '554 5.5.1 No valid recipients\r\n' : '503 5.5.1 MAIL first\r\n');
      } else if (verb === 'QUIT') {
        socket.end('221 2.0.0 Bye\r\n');
      } else flush('502 5.5.2 Unknown command\r\n');
    };
    const message = (raw: Buffer) => {
      c.transcript.push('<message>');
      const unstuffed = Buffer.from(raw.toString('latin1').replace(/^\.\./gm, '.'), 'latin1');
      peer.messages.push({ to: accepted, raw: unstuffed, connection: c.id });
      c.received += 1;
      mailOk = false;
      accepted = [];
      const t = o.afterMessage?.(c) ?? 'ok';
      turn(t, '250 2.0.0 Ok: queued\r\n');
      if (t === 'ok') o.afterReply?.(c);
    };
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (inData) {
          const start = buffer.subarray(0, 3).toString('latin1') === '.\r\n' ? 0 : -1;
          const at = start === 0 ? 0 : buffer.indexOf('\r\n.\r\n');
          if (at < 0) return;
          const body = start === 0 ? Buffer.alloc(0) : buffer.subarray(0, at + 2);
          buffer = buffer.subarray(start === 0 ? 3 : at + 5);
          inData = false;
          message(body);
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const text = buffer.subarray(0, eol).toString('latin1');
        buffer = buffer.subarray(eol + 2);
        line(text);
        if (socket.destroyed) return;
      }
    });
  };

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return Object.assign(peer, { port: (server.address() as AddressInfo).port });
}

function relay(peer: ScriptedPeer, options: Partial<RelayTransportOptions> = {}): RelayTransport {
  const transport = new RelayTransport({
    trust: () => trust,
    profile: { minVersion: 'TLSv1.2', allowCbc: false },
    whitelist: () => whitelist,
    heloName: HELO,
    routes: { [PEER_DOMAIN]: [{ host: '127.0.0.1', port: peer.port }] },
    port: 25,
    connectTimeoutMs: 20_000,
    commandTimeoutMs: 20_000,
    maxConnectionsPerDestination: 20,
    maxMessagesPerConnection: 100,
    idleMs: 60_000,
    maxConnectionAgeMs: 300_000,
    ...options,
  });
  cleanups.push(() => transport.close());
  return transport;
}

function message(
  to: readonly string[],
  body = 'Compte rendu.\r\n.ligne qui commence par un point\r\n',
): OutboundTransaction {
  const raw = Buffer.from(`From: <${FROM}>\r\nSubject: CR\r\n\r\n${body}`);
  return {
    from: FROM,
    recipients: to.map((address) => ({ address })),
    size: raw.length,
    message: () => Readable.from([raw]),
  };
}

const rcpt = (local: string) => `${local}@${PEER_DOMAIN}`;
const tlsPart = (c: PeerConnection) => c.transcript.slice(c.transcript.indexOf('STARTTLS') + 1);

describe('relay connections: reuse, RSET and PIPELINING', () => {
  it('carries consecutive messages over one connection, each reused transaction pipelined from RSET to DATA', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const transport = relay(peer);
    for (let i = 0; i < 3; i += 1) {
      const attempt = await transport.send(PEER_DOMAIN, message([rcpt('a'), rcpt('b')]));
      expect(attempt.failure).toBeUndefined();
      expect(attempt.replies.map((r) => [r.outcome, r.code])).toEqual([
        ['delivered', 250],
        ['delivered', 250],
      ]);
    }
    expect(peer.connections).toHaveLength(1);
    const size = message([]).size;
    const group = [
      `MAIL FROM:<${FROM}> SIZE=${size} BODY=8BITMIME`,
      `RCPT TO:<${rcpt('a')}>`,
      `RCPT TO:<${rcpt('b')}>`,
      'DATA',
    ];
    expect(tlsPart(peer.connections[0]!)).toEqual([
      `EHLO ${HELO}`,
      ...group,
      '<message>',
      'RSET',
      ...group,
      '<message>',
      'RSET',
      ...group,
      '<message>',
    ]);
    expect(peer.messages.map((m) => m.raw.toString())).toEqual(
      Array(3).fill(
        `From: <${FROM}>\r\nSubject: CR\r\n\r\nCompte rendu.\r\n.ligne qui commence par un point\r\n`,
      ),
    );
  });

  it('reads one reply per recipient from a pipelined group: refused, deferred, accepted; all refused sends no message', async () => {
    const peer = await startScriptedPeer({
      pipelining: true,
      rcpt: (a) =>
        a.startsWith('inconnu')
          ? '550 5.1.1 No such user\r\n'
          : a.startsWith('plein')
            ? '452 4.2.2 Mailbox full\r\n'
            : undefined,
    });
    const transport = relay(peer);
    const mixed = await transport.send(PEER_DOMAIN, message([rcpt('inconnu'), rcpt('ok'), rcpt('plein')]));
    expect(mixed.replies.map((r) => [r.recipient, r.outcome, r.code, r.enhancedCode, r.text])).toEqual([
      [rcpt('inconnu'), 'permanent', 550, '5.1.1', 'No such user'],
      [rcpt('ok'), 'delivered', 250, '2.0.0', 'Ok: queued'],
      [rcpt('plein'), 'temporary', 452, '4.2.2', 'Mailbox full'],
    ]);
    expect(peer.messages.map((m) => m.to)).toEqual([[rcpt('ok')]]);

    const none = await transport.send(PEER_DOMAIN, message([rcpt('inconnu'), rcpt('plein')]));
    expect(none.replies.map((r) => [r.outcome, r.code])).toEqual([
      ['permanent', 550],
      ['temporary', 452],
    ]);
    // The pipelined DATA was refused (554): no message, and the connection stays in step.
    const after = await transport.send(PEER_DOMAIN, message([rcpt('ok')]));
    expect(after.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.messages).toHaveLength(2);
    expect(peer.connections).toHaveLength(1);
    expect(
      tlsPart(peer.connections[0]!).filter((l) => l === 'DATA' || l === 'RSET' || l === '<message>'),
    ).toEqual(['DATA', '<message>', 'RSET', 'DATA', 'RSET', 'DATA', '<message>']);
  });

  it('waits for each reply when the remote does not offer PIPELINING, and skips DATA when nobody is accepted', async () => {
    const peer = await startScriptedPeer({
      pipelining: false,
      rcpt: (a) => (a.startsWith('inconnu') ? '550 5.1.1 No such user\r\n' : undefined),
    });
    const transport = relay(peer);
    const first = await transport.send(PEER_DOMAIN, message([rcpt('inconnu')]));
    expect(first.replies.map((r) => r.code)).toEqual([550]);
    const second = await transport.send(PEER_DOMAIN, message([rcpt('a'), rcpt('inconnu')]));
    expect(second.replies.map((r) => r.code)).toEqual([250, 550]);
    const c = peer.connections[0]!;
    expect(peer.connections).toHaveLength(1);
    expect(c.overlapping).toBe(0);
    expect(tlsPart(c).map((l) => l.split(/[ :]/)[0])).toEqual([
      'EHLO',
      'MAIL',
      'RCPT',
      'RSET',
      'MAIL',
      'RCPT',
      'RCPT',
      'DATA',
      '<message>',
    ]);
  });

  it('keeps at most maxConnectionsPerDestination open, and a connection for maxMessagesPerConnection messages', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const transport = relay(peer, { maxConnectionsPerDestination: 3, maxMessagesPerConnection: 4 });
    const attempts = await Promise.all(
      Array.from({ length: 12 }, (_, i) => transport.send(PEER_DOMAIN, message([rcpt(`p${i}`)]))),
    );
    expect(attempts.every((a) => a.replies[0]?.outcome === 'delivered')).toBe(true);
    expect(peer.messages).toHaveLength(12);
    expect(peer.peak).toBeLessThanOrEqual(3);
    // Twelve messages, four per connection: three connections, each ended with QUIT after its fourth.
    expect(peer.connections.map((c) => c.received)).toEqual([4, 4, 4]);
    expect(transport.stats()).toEqual({
      opened: 3,
      transactions: 12,
      reused: 9,
      pipelined: 12,
      peakPerDestination: new Map([[PEER_DOMAIN, 3]]),
    });
    await Promise.all(peer.connections.map((c) => c.closed));
    expect(peer.connections.every((c) => c.transcript.at(-1) === 'QUIT')).toBe(true);
  });

  it('closes an idle connection after idleMs (QUIT), and opens a new one for the next message', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const transport = relay(peer, { idleMs: 300 });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    await peer.connections[0]!.closed;
    expect(peer.connections[0]!.transcript.at(-1)).toBe('QUIT');
    expect(transport.connections().size).toBe(0);
    const next = await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    expect(next.replies[0]?.outcome).toBe('delivered');
    expect(peer.connections).toHaveLength(2);
  });

  it('stops using a pooled connection once its DN leaves the whitelist for the domain', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    let view: RemoteWhitelistView = whitelist;
    const transport = relay(peer, { whitelist: () => view });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    view = { dnsOf: (domain) => (domain === PEER_DOMAIN ? new Set<string>() : whitelist.dnsOf(domain)) };
    const refused = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(refused.failure?.reason).toBe('domain_not_whitelisted');
    expect(peer.messages.map((m) => m.to[0])).toEqual([rcpt('a')]);
    await peer.connections[0]!.closed;
  });
});

describe('relay connections: a reused connection that fails', () => {
  it('sends again at once over a new connection when the reused one breaks before the final dot: one copy', async () => {
    const peer = await startScriptedPeer({
      pipelining: true,
      // The remote closes the first connection when its second transaction begins.
      onReset: (c) => (c.id === 0 ? 'drop' : 'ok'),
    });
    const transport = relay(peer);
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    const again = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(again.failure).toBeUndefined();
    expect(again.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.connections).toHaveLength(2);
    expect(peer.messages.map((m) => [m.to, m.connection])).toEqual([
      [[rcpt('a')], 0],
      [[rcpt('b')], 1],
    ]);
  });

  it('sends again over a new connection when the reused one times out before the final dot', async () => {
    const peer = await startScriptedPeer({
      pipelining: true,
      onReset: (c) => (c.id === 0 ? 'stall' : 'ok'),
    });
    const transport = relay(peer, { commandTimeoutMs: 1500 });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    const again = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(again.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.messages.map((m) => m.connection)).toEqual([0, 1]);
    await peer.connections[0]!.closed; // the stalled connection was torn down, not kept
  });

  it('after the final dot the outcome is unknown: a temporary failure, not sent again by the transport (the duplicate window)', async () => {
    const peer = await startScriptedPeer({
      pipelining: true,
      // The remote takes the second message whole, then closes without a reply.
      afterMessage: (c) => (c.id === 0 && c.received === 2 ? 'drop' : 'ok'),
    });
    const transport = relay(peer);
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    const lost = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(lost.replies).toEqual([]);
    expect(lost.failure?.reason).toBe('protocol_error');
    expect(lost.failure?.temporary).toBe(true);
    expect(peer.connections).toHaveLength(1);
    // The queue retries later: the remote then has the message twice (at-least-once, README).
    const retried = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(retried.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.messages.map((m) => m.to[0])).toEqual([rcpt('a'), rcpt('b'), rcpt('b')]);
  });

  it('fails with timeout when the remote never answers the final dot, and does not reuse that connection', async () => {
    const peer = await startScriptedPeer({
      pipelining: true,
      afterMessage: (c) => (c.id === 0 ? 'stall' : 'ok'),
    });
    const transport = relay(peer, { commandTimeoutMs: 1500 });
    const stalled = await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    expect(stalled.failure?.reason).toBe('timeout');
    expect(stalled.failure?.temporary).toBe(true);
    await peer.connections[0]!.closed;
    const next = await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    expect(next.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.connections).toHaveLength(2);
  });

  it('refuses a TLS renegotiation asked on a pooled connection, and relays the next message over a new one', async () => {
    let renegotiated!: (outcome: string) => void;
    const renegotiation = new Promise<string>((resolve) => (renegotiated = resolve));
    const peer = await startScriptedPeer({
      pipelining: true,
      maxVersion: 'TLSv1.2', // TLS 1.3 has no renegotiation
      afterReply: (c) => {
        if (c.id !== 0) return;
        const asked = c.tls!.renegotiate({ requestCert: true, rejectUnauthorized: false }, (err) =>
          renegotiated(err ? `refused: ${err.message}` : 'renegotiated'),
        );
        if (!asked) renegotiated('not asked');
      },
    });
    const transport = relay(peer);
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    // The pool drops the connection at once (its TLS session failed): the remote sees it close,
    // and the renegotiation never completed.
    await peer.connections[0]!.closed;
    renegotiated('connection closed');
    expect(await renegotiation).not.toBe('renegotiated');
    expect(transport.connections().size).toBe(0);
    const next = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(next.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.messages.map((m) => m.connection)).toEqual([0, 1]);
  });
});

/** A clock the test moves by hand. */
function movableClock(): Clock & { advance(ms: number): void } {
  let at = Date.now();
  return { now: () => new Date(at), advance: (ms) => void (at += ms) };
}

/** The material in service with one authority's list replaced (as a mirror refresh does). */
async function revoking(authority: 'org' | 'root', serial: string): Promise<TrustMaterial> {
  const file = [...trust.crlByFile.keys()].find((f) => f.endsWith(`${authority}.crl`))!;
  const crlByFile = new Map(trust.crlByFile);
  const kept =
    authority === 'org' ? [(await readDevPkiManifest(inject('pkiDir')))!.leaves['peer-revoked'].serial] : [];
  crlByFile.set(
    file,
    crlPem(await devCrl(inject('pkiDir'), authority, { revokedSerials: [...kept, serial], crlNumber: 9 })),
  );
  return { ...trust, crlByFile, crl: [...crlByFile.values()] };
}

/** The material in service with the org authority's list replaced by one current until `nextUpdate`. */
async function orgListUntil(nextUpdate: Date): Promise<TrustMaterial> {
  const file = [...trust.crlByFile.keys()].find((f) => f.endsWith('org.crl'))!;
  const crlByFile = new Map(trust.crlByFile);
  const revoked = (await readDevPkiManifest(inject('pkiDir')))!.leaves['peer-revoked'].serial;
  crlByFile.set(
    file,
    crlPem(await devCrl(inject('pkiDir'), 'org', { revokedSerials: [revoked], crlNumber: 9, nextUpdate })),
  );
  return { ...trust, crlByFile, crl: [...crlByFile.values()] };
}

/**
 * A chain the development PKI does not hold: an intermediate under the dev root that ends in an
 * hour, and under it a leaf with peer-trusted's DN (whitelisted for the peer domain) valid for a
 * year. Returns the remote's identity and the material that trusts it (the intermediate's CRL
 * added: with CRLs configured OpenSSL wants one for every link).
 */
async function shortIntermediate(): Promise<{
  identity: { key: string; cert: string };
  material: TrustMaterial;
  intermediateNotAfter: number;
}> {
  const now = Date.now();
  const root = {
    subject: AUTHORITY_PROFILES.root.subject,
    key: rsaKeyFromPem(pki('ca/root.key').toString('utf8')),
  };
  const subject = [
    ...AUTHORITY_PROFILES.org.subject.filter((a) => a.type !== 'CN'),
    { type: 'CN' as const, value: 'TEST AC COURTE MSSGW-DEV' },
  ];
  const intermediate = issueCertificate({
    subject,
    key: await generateRsaKey(),
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 3_600_000),
    issuer: root,
    ca: { pathLength: 0 },
  });
  const leaf = issueCertificate({
    subject: LEAF_PROFILES['peer-trusted'].subject,
    key: await generateRsaKey(),
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 365 * 86_400_000),
    issuer: { subject, key: intermediate.key },
    extKeyUsage: ['serverAuth', 'clientAuth'],
  });
  const crl = buildCrl({
    issuer: { subject, key: intermediate.key },
    thisUpdate: new Date(now - 60_000),
    nextUpdate: new Date(now + 7 * 86_400_000),
    crlNumber: 1,
    revoked: [],
  });
  return {
    identity: { key: leaf.key.pem, cert: leaf.pem + intermediate.pem },
    material: { ...trust, crl: [...trust.crl, crl.pem] },
    intermediateNotAfter: intermediate.notAfter.getTime(),
  };
}

/** A real pino logger whose JSON lines the test reads. */
function capturedLogger(): {
  logger: ReturnType<typeof createLogger>;
  lines: Array<Record<string, unknown>>;
} {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

describe('relay connections: age and trust checked again before reuse', () => {
  it('gives no message to a connection older than maxConnectionAgeMs: QUIT, and the next goes over a new one', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const clock = movableClock();
    const transport = relay(peer, { clock, maxConnectionAgeMs: 300_000 });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    clock.advance(299_000);
    await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(peer.connections).toHaveLength(1);
    clock.advance(1_000);
    const old = await transport.send(PEER_DOMAIN, message([rcpt('c')]));
    expect(old.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.messages.map((m) => m.connection)).toEqual([0, 0, 1]);
    await peer.connections[0]!.closed;
    expect(peer.connections[0]!.transcript.at(-1)).toBe('QUIT');
  });

  it('closes an idle connection with QUIT when it reaches its age limit before its idle limit', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const transport = relay(peer, { maxConnectionAgeMs: 400, idleMs: 600_000 });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    await peer.connections[0]!.closed;
    expect(peer.connections[0]!.transcript.at(-1)).toBe('QUIT');
    expect(transport.connections().size).toBe(0);
  });

  it('closes a pooled connection whose certificate a refreshed CRL revokes: the next message is refused afresh, not sent', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const { logger, lines } = capturedLogger();
    let material = trust;
    const transport = relay(peer, { trust: () => material, logger });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    // A reload that revokes nothing keeps the connection.
    material = { ...trust };
    await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(peer.connections).toHaveLength(1);
    const serial = (await readDevPkiManifest(inject('pkiDir')))!.leaves['peer-trusted'].serial;
    material = await revoking('org', serial);
    const refused = await transport.send(PEER_DOMAIN, message([rcpt('c')]));
    expect(refused.failure?.reason).toBe('cert_revoked');
    expect(refused.replies).toEqual([]);
    expect(peer.messages.map((m) => m.to[0])).toEqual([rcpt('a'), rcpt('b')]);
    await peer.connections[0]!.closed;
    expect(peer.connections[0]!.transcript.at(-1)).toBe('QUIT');
    // The new connection was judged by OpenSSL against the new list: refused after the handshake.
    expect(peer.connections).toHaveLength(2);
    expect(tlsPart(peer.connections[1]!).filter((l) => /^(MAIL|RCPT|DATA)/.test(l))).toEqual([]);
    expect(lines.filter((l) => l.event === 'relay.connection.retired')).toEqual([
      expect.objectContaining({ reason: 'cert_revoked', destination: PEER_DOMAIN, messages: 2 }),
    ]);
  });

  it('closes a pooled connection once the remote certificate has passed its end of validity', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const { logger, lines } = capturedLogger();
    const clock = movableClock();
    // An age limit longer than the certificate's life, so that only its expiry can close it.
    const transport = relay(peer, { clock, logger, maxConnectionAgeMs: 100 * 365 * 86_400_000 });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    const notAfter = (await readDevPkiManifest(inject('pkiDir')))!.leaves['peer-trusted'].notAfter;
    clock.advance(Date.parse(notAfter) + 1000 - clock.now().getTime());
    // The new connection is judged by OpenSSL on the real time: the certificate is valid there.
    const next = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(next.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.messages.map((m) => m.connection)).toEqual([0, 1]);
    await peer.connections[0]!.closed;
    expect(peer.connections[0]!.transcript.at(-1)).toBe('QUIT');
    expect(lines.filter((l) => l.event === 'relay.connection.retired').map((l) => l.reason)).toEqual([
      'cert_expired',
    ]);
  });

  it('closes a pooled connection whose issuing authority the root authority has revoked since', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const { logger, lines } = capturedLogger();
    let material = trust;
    const transport = relay(peer, { trust: () => material, logger });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    const org = (await readDevPkiManifest(inject('pkiDir')))!.authorities.org.serial;
    material = await revoking('root', org);
    const refused = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(refused.failure?.reason).toBe('cert_revoked');
    expect(peer.messages.map((m) => m.to[0])).toEqual([rcpt('a')]);
    await peer.connections[0]!.closed;
    // Found on the chain kept from the handshake, not merely because the lists changed.
    expect(lines.filter((l) => l.event === 'relay.connection.retired').map((l) => l.reason)).toEqual([
      'cert_revoked',
    ]);
  });

  it('closes a pooled connection whose root authority is no longer configured: the next message is refused afresh', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const { logger, lines } = capturedLogger();
    let material = trust;
    const transport = relay(peer, { trust: () => material, logger });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    // A reload whose tls.caFiles no longer hold the root (the intermediate alone anchors nothing).
    const kept = trust.authorities.map((a) => !a.checkIssued(a));
    material = {
      ...trust,
      ca: trust.ca.filter((_, i) => kept[i]),
      authorities: trust.authorities.filter((_, i) => kept[i]),
    };
    expect(material.authorities.length).toBeLessThan(trust.authorities.length);
    const refused = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(refused.replies).toEqual([]);
    expect(refused.failure).toMatchObject({ reason: 'cert_untrusted', code: 'RELAY_ATTEMPT_REFUSED' });
    expect(peer.messages.map((m) => m.to[0])).toEqual([rcpt('a')]);
    await peer.connections[0]!.closed;
    expect(peer.connections[0]!.transcript.at(-1)).toBe('QUIT');
    expect(lines.filter((l) => l.event === 'relay.connection.retired').map((l) => l.reason)).toEqual([
      'authority_untrusted',
    ]);
    // The new connection was judged by OpenSSL without the root (no anchor): nothing sent over it.
    expect(peer.connections).toHaveLength(2);
    expect(tlsPart(peer.connections[1]!).filter((l) => /^(MAIL|RCPT|DATA)/.test(l))).toEqual([]);
  });

  it('refuses a new connection to a peer whose root authority is no longer configured as cert_untrusted, not crl_unavailable', async () => {
    // The peer presents its usual chain (peer-trusted, issued by org, issued by root); our
    // tls.caFiles keep org but no longer the root, and our lists still include the root's. OpenSSL
    // finds no anchor, then no issuer for the root's list: its last error reads as "our CRL is
    // missing", a temporary failure retried for days, when what the operator must fix is trust.
    const peer = await startScriptedPeer({ pipelining: true });
    const kept = trust.authorities.map((a) => !a.checkIssued(a));
    const material: TrustMaterial = {
      ...trust,
      ca: trust.ca.filter((_, i) => kept[i]),
      authorities: trust.authorities.filter((_, i) => kept[i]),
    };
    expect(material.authorities.length).toBeGreaterThan(0);
    const transport = relay(peer, { trust: () => material });
    const refused = await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    expect(refused.replies).toEqual([]);
    expect(refused.failure).toMatchObject({ reason: 'cert_untrusted', code: 'RELAY_ATTEMPT_REFUSED' });
    // The DN says which operator's chain to look at.
    expect(refused.failure?.details.dn).toMatch(/CN=/);
    expect(peer.messages).toEqual([]);
    expect(peer.connections.length).toBeGreaterThan(0);
    for (const c of peer.connections) {
      await c.closed;
      expect(tlsPart(c).filter((l) => /^(MAIL|RCPT|DATA)/.test(l))).toEqual([]);
    }
  });

  it('still calls a chain we anchor but hold no revocation list for crl_unavailable, a temporary failure', async () => {
    // The counterpart of the test above: here trust is fine, and our side lacks the org's list.
    const peer = await startScriptedPeer({ pipelining: true });
    const orgList = [...trust.crlByFile.keys()].find((f) => f.endsWith('org.crl'))!;
    const crlByFile = new Map(trust.crlByFile);
    crlByFile.delete(orgList);
    const material: TrustMaterial = { ...trust, crlByFile, crl: [...crlByFile.values()] };
    const transport = relay(peer, { trust: () => material });
    const refused = await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    expect(refused.replies).toEqual([]);
    expect(refused.failure).toMatchObject({ reason: 'crl_unavailable', code: 'RELAY_ATTEMPT_FAILED' });
    expect(peer.messages).toEqual([]);
  });

  it('closes a pooled connection once a revocation list of its chain has passed its nextUpdate', async () => {
    const peer = await startScriptedPeer({ pipelining: true });
    const { logger, lines } = capturedLogger();
    const clock = movableClock();
    const material = await orgListUntil(new Date(Date.now() + 3_600_000));
    const transport = relay(peer, {
      trust: () => material,
      clock,
      logger,
      maxConnectionAgeMs: 100 * 365 * 86_400_000,
    });
    await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    clock.advance(3_500_000);
    await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(peer.connections).toHaveLength(1);
    clock.advance(200_000);
    // The new connection is judged by OpenSSL on the real time: the list is current there.
    const next = await transport.send(PEER_DOMAIN, message([rcpt('c')]));
    expect(next.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.messages.map((m) => m.connection)).toEqual([0, 0, 1]);
    await peer.connections[0]!.closed;
    expect(peer.connections[0]!.transcript.at(-1)).toBe('QUIT');
    expect(lines.filter((l) => l.event === 'relay.connection.retired').map((l) => l.reason)).toEqual([
      'crl_expired',
    ]);
  });

  it('closes a pooled connection once an intermediate authority of its chain has passed its end of validity', async () => {
    const { identity, material, intermediateNotAfter } = await shortIntermediate();
    const peer = await startScriptedPeer({ pipelining: true, identity });
    const { logger, lines } = capturedLogger();
    const clock = movableClock();
    const transport = relay(peer, {
      trust: () => material,
      clock,
      logger,
      maxConnectionAgeMs: 100 * 365 * 86_400_000,
    });
    const first = await transport.send(PEER_DOMAIN, message([rcpt('a')]));
    expect(first.replies.map((r) => r.outcome)).toEqual(['delivered']);
    // The leaf is valid for a year; its issuer ends first.
    clock.advance(intermediateNotAfter + 1000 - clock.now().getTime());
    const next = await transport.send(PEER_DOMAIN, message([rcpt('b')]));
    expect(next.replies.map((r) => r.outcome)).toEqual(['delivered']);
    expect(peer.messages.map((m) => m.connection)).toEqual([0, 1]);
    await peer.connections[0]!.closed;
    expect(lines.filter((l) => l.event === 'relay.connection.retired').map((l) => l.reason)).toEqual([
      'cert_expired',
    ]);
  });
});
