import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Gateway } from '../../src/app/index.js';
import { createLogger } from '../../src/observability/index.js';
import { type FhirTestServer, startFhirServer } from '../helpers/fhir-server.js';
import { PEER_DOMAIN, scratchDir, testConfig, uniqueBal } from '../helpers/gateway.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { EXTRACTION_HEADER, extractionLine } from '../helpers/national-data.js';
import { type PeerOperator, startPeerOperator } from '../helpers/peer-operator.js';

/**
 * Issue #13 item 5, towards another operator: the doctor's other MSSanté address, listed by the
 * national extraction at another operator, gets the inactivity warning of his idle mailbox here
 * through the outbound relay (our certificate, the peer's MX), journaled as its own channel, once.
 */
const DAY = 86_400_000;
const N = 1 + Math.floor(Math.random() * 9_000_000_000);
// extractionLine(_, N) lists the address for national id 8 + (10000000000 + N).
const DOCTOR = `8${10_000_000_000 + N}`;
const ELSEWHERE = `dr.${N}@${PEER_DOMAIN}`;
const system = { kind: 'system', id: 'test' } as const;
let now = Date.parse('2026-03-02T10:00:00Z');
const clock = { now: () => new Date(now) };
let gw: Gateway;
let fhir: FhirTestServer;
let peer: PeerOperator;

beforeAll(async () => {
  fhir = await startFhirServer(inject('pkiDir'));
  fhir.put({
    resourceType: 'Practitioner',
    id: `pr-${randomUUID()}`,
    identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: DOCTOR }],
  });
  peer = await startPeerOperator({ leaf: 'peer-trusted' });
  const extraction = path.join(scratchDir('extraction'), 'Extraction_Correspondance_MSSante.txt');
  writeFileSync(extraction, `${EXTRACTION_HEADER}\n${extractionLine(ELSEWHERE, N)}\n`);
  const config = testConfig({
    overrides: {
      publication: {
        enabled: true,
        fhir: { baseUrl: fhir.baseUrl },
        retryInitialSeconds: 0.05,
        retryMaxSeconds: 0.2,
      },
      directory: { extraction: { source: extraction } },
      relay: { routes: { [PEER_DOMAIN]: [{ host: '127.0.0.1', port: peer.port }] }, idleSeconds: 1 },
    },
  });
  gw = await Gateway.start(config, { logger: createLogger({ level: 'silent' }), clock });
  await gw.mirrors.refresh('extraction');
});
afterAll(async () => {
  await gw?.stop();
  await peer?.stop();
  await fhir?.close();
});

async function runDailyJob(): Promise<void> {
  const finished = () =>
    journalEvents(gw.config.dataDir).filter((e) => e.event === 'lifecycle.run.finished').length;
  const before = finished();
  await gw.lifecycle.scheduler.trigger();
  await eventually(
    () => Promise.resolve(finished()),
    (n) => n > before,
  );
}

describe('the inactivity warning to the owner’s address at another operator', () => {
  it('goes through the relay to the peer operator, journaled as the owner_address channel, once', async () => {
    const idle = uniqueBal('dr-idle');
    await gw.registry.create({ address: idle, type: 'PER', owner: DOCTOR }, system);
    await eventually(
      async () => (await gw.publication!.state(idle))?.state,
      (s) => s === 'published',
    );

    now += 30 * DAY + 3_600_000;
    await runDailyJob();
    // Into the idle mailbox itself, and to the peer operator for his address there.
    await eventually(
      () => inboxMessages(idle),
      (m) => m.length === 1,
    );
    const [received] = await peer.received(1, 60_000);
    expect(received!.to).toEqual([ELSEWHERE]);
    // An automatic message: null reverse path, so that no bounce loops back.
    expect(received!.from).toBe('');
    // Our relay presented the operator certificate, and the peer verified it.
    expect(received!.clientAuthorized).toBe(true);
    const text = received!.raw.toString('latin1');
    expect(text).toMatch(new RegExp(`^To: <${ELSEWHERE.replace(/\./g, '\\.')}>`, 'm'));
    expect(text).toMatch(/^Auto-Submitted: auto-generated/m);
    // The text (quoted-printable, soft line breaks) names the mailbox about to be unpublished.
    expect(text.replace(/=\r\n/g, '')).toContain(idle);

    const sent = () =>
      journalEvents(gw.config.dataDir).filter(
        (e) => e.event === 'lifecycle.warning.sent' && e.address === idle,
      );
    expect(
      sent()
        .map((e) => `${String(e.channel)} ${String(e.recipient)}`)
        .sort(),
    ).toEqual([`mailbox ${idle}`, `owner_address ${ELSEWHERE}`].sort());

    // The next day's run sends nothing again, to either.
    now += DAY;
    await runDailyJob();
    expect(sent()).toHaveLength(2);
    await peer.quiet(30_000);
    expect(peer.messages.filter((m) => m.to.includes(ELSEWHERE))).toHaveLength(1);
  });
});
