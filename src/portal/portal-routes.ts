import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, isGatewayError, toGatewayError } from '../errors/index.js';
import { DAY_MS, dayInZone, frenchDate } from '../lifecycle/index.js';
import {
  assertPersonMayManage,
  type Actor,
  type Bal,
  type GrantRight,
  type GrantView,
} from '../registry/index.js';
import { autoconfigXml } from './autoconfig.js';
import { endOfDay, isEndDateRefusal, parseEndDay } from './end-date.js';
import { readMailboxUses } from './mailbox-usage.js';
import type { OidcLogin } from './oidc-login.js';
import type { PortalDeps } from './portal-deps.js';
import { COOKIE_OPTIONS as COOKIE, LOGIN_COOKIE, SESSION_COOKIE } from './cookies.js';
import type { PortalSession, SessionStore } from './session-store.js';
import {
  STYLESHEET,
  errorPage,
  homePage,
  mailboxPage,
  settingsPage,
  usagePage,
  welcomePage,
  type OwnedMailboxView,
  type PageFrame,
} from './views.js';

/** What is known only once the listener is bound (port 0 in tests): its URL and the login client. */
export interface BoundPortal {
  readonly login: OidcLogin;
  readonly publicUrl: string;
  readonly redirectUri: string;
}

export interface PortalRouteContext {
  readonly deps: PortalDeps;
  readonly sessions: SessionStore;
  /** Routes are registered before the listener binds; they run only after. */
  readonly bound: () => BoundPortal;
}

type Form = Record<string, string | undefined>;

/** Rights a person may give in the portal (application bindings stay with the operator). */
const PORTAL_RIGHTS: readonly GrantRight[] = ['delegate', 'member', 'manager'];

const NOTICES: Readonly<Record<string, string>> = {
  accorde: "L'accès a été donné.",
  retire: "L'accès a été retiré.",
  garde: 'Cette adresse est conservée : son utilisation est enregistrée.',
  republiee: 'Cette adresse est conservée et republiée dans l’annuaire national.',
};

/** French wording of the refusals a person may meet here, by catalogue code. */
const REFUSALS: Partial<Record<string, string>> = {
  RIGHT_INVALID: 'Demande non valable',
  RIGHT_NOT_APPLICABLE: 'Ce droit ne s’applique pas à cette boîte',
  RIGHT_FORBIDDEN: 'Vous ne pouvez pas modifier les accès de cette boîte',
  RIGHT_NOT_FOUND: 'Cette personne n’a pas d’accès à cette boîte',
  BAL_NOT_FOUND: 'Boîte inconnue',
  BAL_INVALID_TRANSITION: 'Cette boîte ne peut pas recevoir de droit',
  AUTH_ISSUER_UNAVAILABLE: 'Pro Santé Connect ne répond pas ; réessayez dans quelques minutes',
  AUTH_TOKEN_INVALID: 'La connexion a échoué',
};

function refusalText(err: unknown): string {
  const e = toGatewayError(err);
  const fr = REFUSALS[e.code];
  // The domain's own message names the precise cause (in English, as the admin API gives it).
  return fr === undefined ? 'Erreur interne : réessayez plus tard.' : `${fr} : ${e.message}`;
}

export function registerPortalRoutes(app: FastifyInstance, ctx: PortalRouteContext): void {
  const { deps, sessions } = ctx;
  const { registry, journal } = deps;
  const tz = deps.config.lifecycle.timeZone;
  const now = () => deps.clock.now();

  const sessionOf = (req: FastifyRequest) => sessions.touch(req.cookies[SESSION_COOKIE]);
  const actorOf = (req: FastifyRequest, s: PortalSession): Actor => ({
    kind: 'portal',
    id: s.nationalId,
    remote: req.ip,
  });
  const frame = (
    s: PortalSession,
    reply: FastifyReply,
    title: string,
    extra: Partial<PageFrame> = {},
  ): PageFrame => ({
    title,
    person: { nationalId: s.nationalId, ...(s.name === undefined ? {} : { name: s.name }) },
    csrf: reply.generateCsrf(),
    ...extra,
  });
  const send = (reply: FastifyReply, status: number, body: string) =>
    reply.code(status).type('text/html; charset=utf-8').send(body);

  /** Every change needs a live session first (401), then the CSRF token (403). */
  const requireSession = async (req: FastifyRequest, reply: FastifyReply) => {
    const s = await sessionOf(req);
    if (s === undefined) {
      return send(
        reply,
        401,
        errorPage({ title: 'Session expirée', error: 'Vous n’êtes pas connecté : reconnectez-vous.' }),
      );
    }
    req.portalSession = s;
  };
  const csrf = (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    app.csrfProtection(req, reply, done);
  };
  const changeGuards = { preHandler: [requireSession, csrf] };
  const me = (req: FastifyRequest): PortalSession => {
    if (req.portalSession === undefined) throw new GatewayError('UNAUTHENTICATED');
    return req.portalSession;
  };

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    if (typeof err.code === 'string' && err.code.startsWith('FST_CSRF')) {
      return send(
        reply,
        403,
        errorPage({
          title: 'Action refusée',
          error: 'Jeton de sécurité absent ou périmé : rechargez la page puis recommencez.',
        }),
      );
    }
    const status = isGatewayError(err) ? err.info.http : (err.statusCode ?? 500);
    if (status >= 500) deps.logger.error({ event: 'portal.error', err: err.message }, 'portal error');
    return send(
      reply,
      status,
      errorPage({
        title: 'Erreur',
        error: status >= 500 ? 'Erreur interne : réessayez plus tard.' : refusalText(err),
      }),
    );
  });
  app.setNotFoundHandler((_req, reply) => send(reply, 404, errorPage({ title: 'Page introuvable' })));

  // Browsers ask for it on every site; no icon is better than a 404 in their console.
  app.get('/favicon.ico', (_req, reply) =>
    reply.code(204).header('cache-control', 'public, max-age=86400').send(),
  );
  app.get('/static/portail.css', (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLESHEET),
  );

  // --- Login with Pro Santé Connect ---------------------------------------------------------
  app.get('/connexion', async (_req, reply) => {
    const { url, pending } = await ctx.bound().login.start();
    const id = await sessions.createPending(pending);
    reply.setCookie(LOGIN_COOKIE, id, { ...COOKIE, maxAge: 600 });
    return reply.redirect(url.href, 303);
  });

  app.get('/connexion/retour', async (req, reply) => {
    const pending = await sessions.takePending(req.cookies[LOGIN_COOKIE]);
    reply.clearCookie(LOGIN_COOKIE, COOKIE);
    if (pending === undefined) {
      return send(
        reply,
        400,
        errorPage({ title: 'Connexion', error: 'Connexion expirée ou déjà utilisée : recommencez.' }),
      );
    }
    const current = new URL(req.url, ctx.bound().redirectUri);
    let person;
    try {
      person = await ctx.bound().login.finish(current, pending);
    } catch (err) {
      journal.record({ event: 'portal.login.failed', code: toGatewayError(err).code, remote: req.ip });
      return send(reply, 401, errorPage({ title: 'Connexion', error: refusalText(err) }));
    }
    const id = await sessions.create({ ...person, loggedInAt: now().toISOString() });
    journal.record({ event: 'portal.login', nationalId: person.nationalId, remote: req.ip });
    reply.setCookie(SESSION_COOKIE, id, COOKIE);
    return reply.redirect('/', 303);
  });

  app.post('/deconnexion', changeGuards, async (req, reply) => {
    await sessions.destroy(req.cookies[SESSION_COOKIE]);
    journal.record({ event: 'portal.logout', nationalId: me(req).nationalId, remote: req.ip });
    reply.clearCookie(SESSION_COOKIE, COOKIE);
    return reply.redirect('/', 303);
  });

  // --- My addresses ---------------------------------------------------------------------------
  app.get<{ Querystring: { fait?: string } }>('/', async (req, reply) => {
    const s = await sessionOf(req);
    if (s === undefined) return send(reply, 200, welcomePage({ title: 'Bienvenue' }));
    const at = now();
    const bals = await registry.balsForPerson(s.nationalId, at);
    const owned = await Promise.all(bals.filter((b) => b.right === 'owner').map((b) => ownedView(b.bal, at)));
    // A mailbox he co-manages is warned to him too (lifecycle, #13 item 5): the same deadline shows.
    const managed = await Promise.all(
      bals
        .filter((b) => b.right === 'manager')
        .map(async (b) => [b.bal, await ownedView(b.bal, at)] as const),
    );
    const near = new Map(managed.filter(([, v]) => v.deadlineNear).map(([a, v]) => [a, v.deadline]));
    const others = bals
      .filter((b) => b.right !== 'owner')
      .map((b) => ({
        address: b.bal,
        type: b.type,
        right: b.right,
        scopes: b.scopes,
        ...(b.expiresAt === undefined ? {} : { expiresAt: lastDay(b.expiresAt, tz) }),
        manageable: b.right === 'manager',
        ...(near.has(b.bal) ? { deadlineNear: near.get(b.bal) ?? '' } : {}),
      }));
    const national = await deps.nationalAddresses?.(s.nationalId);
    const elsewhere = national?.map((e) => ({
      address: e.address,
      type: e.type,
      ...(deps.config.domains.some((d) => e.address.endsWith(`@${d}`))
        ? { where: 'chez cet opérateur' }
        : e.organisation === undefined
          ? {}
          : { where: e.organisation }),
    }));
    const notice = NOTICES[req.query.fait ?? ''];
    return send(
      reply,
      200,
      homePage(frame(s, reply, 'Mes adresses MSSanté', notice === undefined ? {} : { notice }), {
        owned,
        others,
        elsewhere,
      }),
    );
  });

  const ownedView = async (address: string, at: Date): Promise<OwnedMailboxView> => {
    const { inactivityDays, warningLeadDays } = deps.config.lifecycle;
    const [bal, activity, publication] = await Promise.all([
      registry.get(address),
      registry.activity(address),
      deps.publicationOf?.(address),
    ]);
    const lastMs = Date.parse(activity.lastActivityAt ?? bal?.createdAt ?? at.toISOString());
    const deadlineMs = lastMs + inactivityDays * DAY_MS;
    return {
      address,
      type: bal?.type ?? 'PER',
      status: bal?.status ?? 'active',
      publication: publicationLabel(publication),
      redListed: bal?.listeRouge === true,
      ...(activity.lastActivityAt === undefined ? {} : { lastUse: frenchDate(lastMs, tz) }),
      // Without publication nothing is unpublished (lifecycle-wiring.ts): no deadline to show.
      ...(publication === undefined ? {} : { deadline: frenchDate(deadlineMs, tz) }),
      deadlineNear:
        publication?.state === 'published' && at.getTime() >= deadlineMs - warningLeadDays * DAY_MS,
      unpublishedInactive: publication?.state === 'unpublished' && publication.reason === 'inactive',
    };
  };

  app.post<{ Body: Form }>('/boite/garder', changeGuards, async (req, reply) => {
    const s = me(req);
    const bal = await mailbox(req.body.adresse);
    if (!(bal.type === 'PER' && bal.owner === s.nationalId)) {
      throw new GatewayError('RIGHT_FORBIDDEN', `only the owner of ${bal.address} keeps it`, {
        address: bal.address,
      });
    }
    const outcome = await deps.keep(bal.address, now());
    journal.record({ event: 'portal.mailbox.kept', address: bal.address, outcome, actor: actorOf(req, s) });
    return reply.redirect(`/?fait=${outcome === 'republished' ? 'republiee' : 'garde'}`, 303);
  });

  // --- Delegations, members and managers of one mailbox ----------------------------------------
  const mailbox = async (input: string | undefined): Promise<Bal> => {
    const address = (input ?? '').trim().toLowerCase();
    const bal = address === '' ? null : await registry.get(address);
    if (bal === null) throw new GatewayError('BAL_NOT_FOUND', `no mailbox ${address}`, { address });
    return bal;
  };
  const grantableBy = (bal: Bal, grants: readonly GrantView[], nationalId: string) =>
    PORTAL_RIGHTS.filter((r) => {
      try {
        assertPersonMayManage(bal, grants, nationalId, r, now());
        return true;
      } catch {
        return false;
      }
    });

  const renderMailbox = async (
    reply: FastifyReply,
    s: PortalSession,
    bal: Bal,
    status: number,
    extra: { notice?: string; error?: string; form?: Form },
  ) => {
    const grants = await registry.grants(bal.address);
    const grantable = grantableBy(bal, grants, s.nationalId);
    if (grantable.length === 0) {
      throw new GatewayError('RIGHT_FORBIDDEN', `${s.nationalId} manages no right on ${bal.address}`, {
        address: bal.address,
      });
    }
    const rows = grants.map((g) => ({
      person: g.subject.kind === 'person' ? g.subject.nationalId : g.subject.dn,
      right: g.right,
      scopes: g.scopes,
      ...(g.expiresAt === undefined ? {} : { expiresAt: lastDay(g.expiresAt, tz) }),
      expired: g.expired,
    }));
    const { form, ...messages } = extra;
    const clean = Object.fromEntries(
      Object.entries(form ?? {}).flatMap(([k, v]) => (v === undefined ? [] : [[k, v]])),
    );
    return send(
      reply,
      status,
      mailboxPage(frame(s, reply, 'Accès à ma boîte', messages), {
        address: bal.address,
        type: bal.type,
        grantable,
        grants: rows,
        form: clean,
        today: dayInZone(now().getTime(), tz),
      }),
    );
  };

  app.get<{ Querystring: { adresse?: string; fait?: string } }>('/boite', async (req, reply) => {
    const s = await sessionOf(req);
    if (s === undefined) return reply.redirect('/', 303);
    const notice = NOTICES[req.query.fait ?? ''];
    return renderMailbox(
      reply,
      s,
      await mailbox(req.query.adresse),
      200,
      notice === undefined ? {} : { notice },
    );
  });

  app.post<{ Body: Form }>('/boite/droits', changeGuards, async (req, reply) => {
    const s = me(req);
    const bal = await mailbox(req.body.adresse);
    const form = req.body;
    let until: string | undefined;
    try {
      if (form.jusqua) until = endOfDay(parseEndDay(form.jusqua, dayInZone(now().getTime(), tz)), tz);
    } catch (err) {
      if (!isEndDateRefusal(err)) throw err;
      // Not shown again: a date picker holds only a valid date, and the alert quotes what was typed.
      const { jusqua: _typed, ...rest } = form;
      return renderMailbox(reply, s, bal, 400, { error: err.message, form: rest });
    }
    try {
      const right = PORTAL_RIGHTS.find((r) => r === form.droit);
      if (right === undefined) throw new GatewayError('RIGHT_INVALID', `unknown right "${form.droit ?? ''}"`);
      // The one rule on who may change what (registry), then the admin API's own operation.
      assertPersonMayManage(bal, await registry.grants(bal.address), s.nationalId, right, now());
      await registry.grant(
        bal.address,
        {
          right,
          person: form.personne ?? '',
          ...(right === 'delegate' ? { scopes: (form.portee ?? '').split(' ').filter((x) => x !== '') } : {}),
          ...(until === undefined ? {} : { expiresAt: until }),
        },
        actorOf(req, s),
      );
    } catch (err) {
      if (!isGatewayError(err) || err.info.side !== 'client') throw err;
      return renderMailbox(reply, s, bal, err.info.http, { error: refusalText(err), form });
    }
    return reply.redirect(`/boite?adresse=${encodeURIComponent(bal.address)}&fait=accorde`, 303);
  });

  app.post<{ Body: Form }>('/boite/droits/retirer', changeGuards, async (req, reply) => {
    const s = me(req);
    const bal = await mailbox(req.body.adresse);
    const person = (req.body.personne ?? '').trim().toUpperCase();
    try {
      const grants = await registry.grants(bal.address);
      const held = grants.find((g) => g.subject.kind === 'person' && g.subject.nationalId === person);
      if (held === undefined)
        throw new GatewayError('RIGHT_NOT_FOUND', `${person} holds no right on ${bal.address}`);
      assertPersonMayManage(bal, grants, s.nationalId, held.right, now());
      // The admin API's `rights revoke` operation: whatever it ends (open sessions included), this does.
      await registry.revoke(bal.address, { person }, actorOf(req, s));
    } catch (err) {
      if (!isGatewayError(err) || err.info.side !== 'client') throw err;
      return renderMailbox(reply, s, bal, err.info.http, { error: refusalText(err) });
    }
    return reply.redirect(`/boite?adresse=${encodeURIComponent(bal.address)}&fait=retire`, 303);
  });

  // --- Who used my mailbox -------------------------------------------------------------------
  app.get('/utilisation', async (req, reply) => {
    const s = await sessionOf(req);
    if (s === undefined) return reply.redirect('/', 303);
    const bals = await registry.balsForPerson(s.nationalId, now());
    const mine = bals.filter((b) => b.right === 'owner' || b.right === 'manager').map((b) => b.bal);
    const uses = await readMailboxUses(
      { redis: deps.redis, prefix: deps.config.redis.prefix },
      new Set(mine),
      now(),
    );
    const rows = uses.map((u) => ({
      ...u,
      at: new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short', timeStyle: 'short', timeZone: tz }).format(
        Date.parse(u.at),
      ),
      action: u.action === 'login' ? 'connexion' : 'envoi',
      channel: u.channel === 'imap' ? 'IMAP' : u.channel === 'submission' ? 'SMTP' : u.channel,
    }));
    return send(reply, 200, usagePage(frame(s, reply, 'Qui a utilisé ma boîte'), mine, rows));
  });

  // --- Mail software settings and Thunderbird autoconfiguration ---------------------------------
  app.get('/messagerie', async (req, reply) => {
    const s = await sessionOf(req);
    if (s === undefined) return reply.redirect('/', 303);
    const bals = await registry.balsForPerson(s.nationalId, now());
    const e = deps.clientEndpoints();
    return send(
      reply,
      200,
      settingsPage(frame(s, reply, 'Configurer ma messagerie'), {
        ...e,
        mailboxes: bals.map((b) => b.bal),
        autoconfigUrl: `${ctx.bound().publicUrl}/.well-known/autoconfig/mail/config-v1.1.xml`,
      }),
    );
  });

  const autoconfig = async (
    req: FastifyRequest<{ Querystring: { emailaddress?: string } }>,
    reply: FastifyReply,
  ) => {
    const asked = req.query.emailaddress?.trim().toLowerCase();
    if (asked !== undefined && !deps.config.domains.some((d) => asked.endsWith(`@${d}`))) {
      return reply
        .code(404)
        .type('text/plain; charset=utf-8')
        .send('not a mailbox domain of this operator\n');
    }
    const oauth = { ...(await ctx.bound().login.endpoints()), scopes: deps.config.portal.oidc.scopes };
    return reply
      .type('application/xml; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(autoconfigXml(deps.config.domains, deps.clientEndpoints(), oauth));
  };
  app.get('/.well-known/autoconfig/mail/config-v1.1.xml', autoconfig);
  app.get('/mail/config-v1.1.xml', autoconfig);
}

function publicationLabel(p: { state: string; reason?: string } | undefined): string {
  if (p === undefined) return 'non suivie ici (publication désactivée)';
  const why: Record<string, string> = {
    inactive: 'inactivité',
    'red-list': 'liste rouge',
    suspended: 'boîte suspendue',
    deleted: 'boîte supprimée',
    operator: "décision de l'opérateur",
  };
  switch (p.state) {
    case 'published':
      return 'publiée';
    case 'pending':
      return 'publication en cours';
    case 'unpublished':
      return `non publiée${p.reason ? ` (${why[p.reason] ?? p.reason})` : ''}`;
    default:
      return p.state;
  }
}

/** The last day a right works, as the person chose it (it stops at the next midnight). */
function lastDay(expiresAt: string, timeZone: string): string {
  return frenchDate(Date.parse(expiresAt) - 1, timeZone);
}

declare module 'fastify' {
  interface FastifyRequest {
    portalSession?: PortalSession;
  }
}
