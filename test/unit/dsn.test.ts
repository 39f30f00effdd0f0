import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { buildDsn, dsnWanted, type DsnInput, type DsnRecipientReport } from '../../src/delivery/dsn.js';
import { isGatewayError } from '../../src/errors/index.js';

const ORIGINAL = Buffer.from(
  [
    'From: Dr Émile Durand <emile.durand@op.mssante.test>',
    'To: <bob@peer.mssante.test>',
    'Subject: =?UTF-8?Q?R=C3=A9sultats_d=27analyse_=E2=80=94_urgent?=',
    'Message-ID: <orig-1@op.mssante.test>',
    'X-MSS-NIL: LPS-1.0',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Bonjour, voici les résultats.',
    'SECRET-BODY-LINE',
    '',
  ].join('\r\n'),
  'utf8',
);

const NOW = new Date('2025-03-04T10:00:00Z');

function report(over: Partial<DsnRecipientReport> = {}): DsnRecipientReport {
  return {
    recipient: { address: 'bob@peer.mssante.test' },
    status: '5.1.1',
    diagnostic: '550 5.1.1 No such user',
    remoteMta: 'mx.peer.mssante.test',
    lastAttemptAt: new Date('2025-03-04T09:59:00Z'),
    ...over,
  };
}

function input(over: Partial<DsnInput> = {}): DsnInput {
  return {
    action: 'failed',
    envelope: { mailFrom: 'emile.durand@op.mssante.test', receivedAt: '2025-03-04T09:58:00.000Z' },
    recipients: [report()],
    hostname: 'mx.op.mssante.test',
    original: ORIGINAL,
    date: NOW,
    ...over,
  };
}

function build(over: Partial<DsnInput> = {}): Buffer {
  const dsn = buildDsn(input(over));
  if (dsn === undefined) throw new Error('expected a DSN');
  return dsn.raw;
}

/** The raw body of the part with this Content-Type, from the multipart/report. */
function rawPart(raw: Buffer, contentType: string): string {
  const text = raw.toString('utf8');
  const boundary = /boundary="([^"]+)"/.exec(text)?.[1];
  if (!boundary) throw new Error('no boundary');
  const part = text
    .split(`\r\n--${boundary}`)
    .find((p) => p.startsWith(`\r\nContent-Type: ${contentType}\r\n`));
  if (part === undefined) throw new Error(`no ${contentType} part`);
  return part.slice(part.indexOf('\r\n\r\n') + 4);
}

function expectWellFormedLines(raw: Buffer): void {
  const text = raw.toString('latin1');
  expect(text.endsWith('\r\n')).toBe(true);
  expect(/(^|[^\r])\n/.test(text)).toBe(false);
  expect(/\r(?!\n)/.test(text)).toBe(false);
  for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
}

describe('buildDsn', () => {
  it('comes from the configured address, not MAILER-DAEMON at the host name', async () => {
    const mail = await simpleParser(build({ hostname: 'localhost', from: 'postmaster@op.mssante.test' }));
    expect(mail.from?.value[0]).toMatchObject({
      name: 'Mail Delivery System',
      address: 'postmaster@op.mssante.test',
    });
  });

  it('reports a failure with RET=HDRS: headers only, as text/rfc822-headers', async () => {
    const dsn = buildDsn(input({ envelope: { ...input().envelope, dsn: { ret: 'HDRS' } } }));
    expect(dsn?.envelope).toEqual({ from: '', to: 'emile.durand@op.mssante.test' });
    expect(dsn?.recipients).toEqual(['bob@peer.mssante.test']);
    const raw = dsn?.raw ?? Buffer.alloc(0);
    const mail = await simpleParser(raw);
    expect(mail.subject).toBe('Échec de remise / Delivery failure');
    expect(mail.from?.value[0]?.address).toBe('MAILER-DAEMON@mx.op.mssante.test');
    expect(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : '').toBe(
      'emile.durand@op.mssante.test',
    );
    expect(mail.headers.get('auto-submitted')).toBe('auto-replied');
    expect(mail.messageId).toMatch(/@mx\.op\.mssante\.test>$/);
    expect(mail.date?.toISOString()).toBe(NOW.toISOString());
    expect(mail.headers.get('content-type')).toMatchObject({
      value: 'multipart/report',
      params: { 'report-type': 'delivery-status' },
    });
    expect(mail.text).toContain("Votre message n'a pas pu être remis");
    expect(mail.text).toContain('Your message could not be delivered');
    expect(mail.text).toContain('bob@peer.mssante.test [5.1.1] : 550 5.1.1 No such user');
    expect(mail.text!.indexOf('Votre message')).toBeLessThan(mail.text!.indexOf('Your message'));

    const status = rawPart(raw, 'message/delivery-status');
    expect(status).toBe(
      [
        'Reporting-MTA: dns; mx.op.mssante.test',
        'Arrival-Date: Tue, 04 Mar 2025 09:58:00 +0000',
        '',
        'Final-Recipient: rfc822; bob@peer.mssante.test',
        'Action: failed',
        'Status: 5.1.1',
        'Remote-MTA: dns; mx.peer.mssante.test',
        'Diagnostic-Code: smtp; 550 5.1.1 No such user',
        'Last-Attempt-Date: Tue, 04 Mar 2025 09:59:00 +0000',
        '',
      ].join('\r\n'),
    );
    const headers = mail.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    expect(headers?.content.toString('utf8')).toBe(ORIGINAL.toString('utf8').split('\r\n\r\n')[0] + '\r\n');
    expect(raw.includes('SECRET-BODY-LINE')).toBe(false);
    expect(mail.attachments.some((a) => a.contentType === 'message/rfc822')).toBe(false);
    expectWellFormedLines(raw);
  });

  it('attaches the whole original, byte-identical, with RET=FULL', async () => {
    const dsn = buildDsn(input({ envelope: { ...input().envelope, dsn: { ret: 'FULL' } } }));
    const mail = await simpleParser(dsn?.raw ?? Buffer.alloc(0));
    const attached = mail.attachments.find((a) => a.contentType === 'message/rfc822');
    expect(attached?.content.equals(ORIGINAL)).toBe(true);
    // The original carries 8-bit octets: the part says so and the relay must use BODY=8BITMIME.
    expect(dsn?.eightBit).toBe(true);
    const raw = dsn?.raw ?? Buffer.alloc(0);
    expect(raw.includes('Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n')).toBe(
      true,
    );
    expect(rawPart(raw, 'message/rfc822')).toBe(ORIGINAL.toString('utf8'));
    expectWellFormedLines(raw);
  });

  it('reads the original lazily, and only when a DSN is built', () => {
    let reads = 0;
    const original = (): Buffer => {
      reads++;
      return ORIGINAL;
    };
    expect(
      buildDsn(input({ original, action: 'delivered', recipients: [report({ status: '2.0.0' })] })),
    ).toBe(undefined);
    expect(reads).toBe(0);
    expect(buildDsn(input({ original }))).toBeDefined();
    expect(reads).toBe(1);
  });

  it('falls back to headers when RET=FULL cannot travel unchanged (line over 998 octets)', async () => {
    const long = Buffer.concat([ORIGINAL, Buffer.from('x'.repeat(1200) + '\r\n')]);
    const raw = build({ original: long, envelope: { ...input().envelope, dsn: { ret: 'FULL' } } });
    const mail = await simpleParser(raw);
    expect(mail.attachments.map((a) => a.contentType)).toEqual(['text/rfc822-headers']);
    expectWellFormedLines(raw);
  });

  it('reports a delay with Will-Retry-Until', async () => {
    const until = new Date('2025-03-09T09:58:00Z');
    const raw = build({
      action: 'delayed',
      recipients: [
        report({ status: '4.4.1', diagnostic: 'smtp; 421 4.4.1 Try later', willRetryUntil: until }),
      ],
    });
    const mail = await simpleParser(raw);
    expect(mail.subject).toBe('Remise retardée / Delivery delayed');
    expect(mail.text).toContain("jusqu'au Sun, 09 Mar 2025 09:58:00 +0000");
    expect(mail.text).toContain('until Sun, 09 Mar 2025 09:58:00 +0000');
    const status = rawPart(raw, 'message/delivery-status');
    expect(status).toContain('\r\nAction: delayed\r\nStatus: 4.4.1\r\n');
    expect(status).toContain('\r\nDiagnostic-Code: smtp; 421 4.4.1 Try later\r\n');
    expect(status).toContain('\r\nWill-Retry-Until: Sun, 09 Mar 2025 09:58:00 +0000\r\n');
    expectWellFormedLines(raw);
  });

  it('reports a success to a recipient who asked for it', async () => {
    const raw = build({
      action: 'delivered',
      recipients: [
        report({
          recipient: { address: 'bob@peer.mssante.test', dsn: { notify: ['SUCCESS', 'FAILURE'] } },
          status: '2.0.0',
          diagnostic: '250 2.0.0 Ok: queued as ABC',
        }),
      ],
    });
    const mail = await simpleParser(raw);
    expect(mail.subject).toBe('Remis / Delivered');
    expect(mail.text).toContain('Votre message a bien été remis');
    const status = rawPart(raw, 'message/delivery-status');
    expect(status).toContain('\r\nAction: delivered\r\nStatus: 2.0.0\r\n');
    expect(status).not.toContain('Will-Retry-Until');
    expectWellFormedLines(raw);
  });

  it('echoes ENVID as Original-Envelope-Id and ORCPT as Original-Recipient', () => {
    const raw = build({
      envelope: { ...input().envelope, dsn: { envid: 'QQ314159', ret: 'HDRS' } },
      recipients: [
        report({
          recipient: { address: 'bob@peer.mssante.test', dsn: { orcpt: 'rfc822;Bob@Peer.mssante.test' } },
        }),
        report({
          recipient: { address: 'carol@peer.mssante.test' },
          status: '5.2.2',
          diagnostic: '552 5.2.2 Full',
        }),
      ],
    });
    const status = rawPart(raw, 'message/delivery-status');
    expect(status).toMatch(
      /^Reporting-MTA: dns; mx\.op\.mssante\.test\r\nOriginal-Envelope-Id: QQ314159\r\n/,
    );
    const groups = status.split('\r\n\r\n');
    expect(groups).toHaveLength(3); // per-message fields, then one group per recipient
    expect(groups[1]).toContain('Final-Recipient: rfc822; bob@peer.mssante.test\r\n');
    expect(groups[1]).toContain('Original-Recipient: rfc822;Bob@Peer.mssante.test\r\n');
    expect(groups[2]).toContain('Final-Recipient: rfc822; carol@peer.mssante.test\r\n');
    expect(groups[2]).not.toContain('Original-Recipient');
    expect(groups[2]).toContain('Status: 5.2.2');
  });

  it('keeps only the recipients whose NOTIFY asks for this action', () => {
    const dsn = buildDsn(
      input({
        recipients: [
          report({ recipient: { address: 'never@peer.mssante.test', dsn: { notify: ['NEVER'] } } }),
          report({ recipient: { address: 'success@peer.mssante.test', dsn: { notify: ['SUCCESS'] } } }),
          report({ recipient: { address: 'default@peer.mssante.test' } }),
        ],
      }),
    );
    expect(dsn?.recipients).toEqual(['default@peer.mssante.test']);
    expect(dsn?.raw.includes('never@peer')).toBe(false);
    expect(
      buildDsn(
        input({ recipients: [report({ recipient: { address: 'n@x.test', dsn: { notify: ['NEVER'] } } })] }),
      ),
    ).toBeUndefined();
  });

  it('never answers a null sender', () => {
    expect(
      buildDsn(input({ envelope: { mailFrom: '', receivedAt: '2025-03-04T09:58:00Z' } })),
    ).toBeUndefined();
  });

  it('refuses a status code that does not fit the action', () => {
    for (const [action, status] of [
      ['failed', '2.0.0'],
      ['delayed', '5.1.1'],
      ['delivered', '4.4.1'],
      ['failed', '550'],
    ] as const) {
      let caught: unknown;
      try {
        buildDsn(
          input({
            action,
            recipients: [
              report({
                status,
                recipient: { address: 'a@x.test', dsn: { notify: ['SUCCESS', 'FAILURE', 'DELAY'] } },
              }),
            ],
          }),
        );
      } catch (err) {
        caught = err;
      }
      expect(isGatewayError(caught) && caught.code).toBe('INTERNAL');
    }
  });

  it('keeps the non-ASCII subject of the original readable in the returned headers', async () => {
    const mail = await simpleParser(build());
    const headers = mail.attachments.find((a) => a.contentType === 'text/rfc822-headers');
    const returned = await simpleParser(
      Buffer.concat([headers?.content ?? Buffer.alloc(0), Buffer.from('\r\n')]),
    );
    expect(returned.subject).toBe("Résultats d'analyse — urgent");
    expect(returned.from?.value[0]?.name).toBe('Dr Émile Durand');
  });

  it('keeps delivery-status ASCII and every line within 998 octets, whatever the remote said', () => {
    const raw = build({
      recipients: [report({ diagnostic: `550 5.1.1 Adresse inconnue\r\n${'é'.repeat(2000)}` })],
    });
    const status = rawPart(raw, 'message/delivery-status');
    expect(/^[\x20-\x7e\r\n]*$/.test(status)).toBe(true);
    expect(status).toContain('Diagnostic-Code: smtp; 550 5.1.1 Adresse inconnue ???');
    expectWellFormedLines(raw);
  });
});

describe('dsnWanted (RFC 3461 §4.1)', () => {
  const F = 'failed';
  const D = 'delayed';
  const S = 'delivered';
  it.each([
    [undefined, F, true],
    [undefined, D, true],
    [undefined, S, false],
    [['NEVER'], F, false],
    [['NEVER'], D, false],
    [['NEVER'], S, false],
    [['FAILURE'], F, true],
    [['FAILURE'], D, false],
    [['FAILURE'], S, false],
    [['DELAY'], D, true],
    [['DELAY'], F, false],
    [['SUCCESS'], S, true],
    [['SUCCESS'], F, false],
    [['success', 'failure', 'delay'], S, true],
    [['SUCCESS', 'FAILURE', 'DELAY'], D, true],
    [[], F, true],
  ] as const)('NOTIFY=%j, %s → %s', (notify, action, wanted) => {
    const recipient = notify === undefined ? {} : { dsn: { notify } };
    expect(dsnWanted(action, recipient)).toBe(wanted);
  });

  it('sends no delay notice by default when the policy says so', () => {
    expect(dsnWanted('delayed', {}, { delayByDefault: false })).toBe(false);
    expect(dsnWanted('delayed', { dsn: { notify: ['DELAY'] } }, { delayByDefault: false })).toBe(true);
  });
});
