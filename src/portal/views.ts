import { html, type SafeHtml } from './html.js';
import type { ClientEndpoints } from './portal-deps.js';

/**
 * The portal's pages: French, semantic HTML (landmarks, one h1, labelled fields, table captions and
 * header cells), no script, one same-origin stylesheet, usable on a phone (viewport, one column).
 */

export interface PageFrame {
  readonly title: string;
  /** Logged-in person, for the header and the logout form. */
  readonly person?: { readonly nationalId: string; readonly name?: string };
  readonly csrf?: string;
  /** Result of the last action (shown as a status message). */
  readonly notice?: string;
  /** A refusal (shown as an alert). */
  readonly error?: string;
}

export function page(frame: PageFrame, body: SafeHtml): string {
  const { person, csrf } = frame;
  return html`<!doctype html>
    <html lang="fr">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${frame.title} — Portail MSSanté</title>
        <link rel="stylesheet" href="/static/portail.css" />
      </head>
      <body>
        <a class="skip" href="#contenu">Aller au contenu</a>
        <header>
          <p class="brand"><a href="/">Portail MSSanté des professionnels</a></p>
          ${
            person
              ? html`<nav aria-label="Menu principal">
                    <ul>
                      <li><a href="/">Mes adresses</a></li>
                      <li><a href="/utilisation">Qui a utilisé ma boîte</a></li>
                      <li><a href="/messagerie">Configurer ma messagerie</a></li>
                    </ul>
                  </nav>
                  <form method="post" action="/deconnexion" class="logout">
                    ${csrfField(csrf)}
                    <p>
                      ${person.name ?? person.nationalId} <span class="id">(${person.nationalId})</span>
                      <button type="submit">Se déconnecter</button>
                    </p>
                  </form>`
              : ''
          }
        </header>
        <main id="contenu">
          <h1>${frame.title}</h1>
          ${frame.notice ? html`<p class="notice" role="status">${frame.notice}</p>` : ''}
          ${frame.error ? html`<p class="error" role="alert">${frame.error}</p>` : ''} ${body}
        </main>
        <footer><p>Espace de confiance MSSanté — connexion par Pro Santé Connect.</p></footer>
      </body>
    </html> `.value;
}

/** The hidden CSRF field every changing form carries. */
function csrfField(csrf: string | undefined): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${csrf ?? ''}" />`;
}

/** One cell of a data table; `head` makes it the row's header cell. */
interface Cell {
  readonly content: SafeHtml | string | number;
  readonly head?: boolean;
}

/**
 * A data table: caption, column headers, rows. Each cell repeats its column's name in `data-label`,
 * which the phone layout shows before the value when the table is laid out as stacked cards.
 */
function dataTable(
  caption: string,
  columns: readonly string[],
  rows: ReadonlyArray<readonly Cell[]>,
): SafeHtml {
  return html`<table>
    <caption>
      ${caption}
    </caption>
    <thead>
      <tr>
        ${columns.map((c) => html`<th scope="col">${c}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (row) =>
          html`<tr>
            ${row.map((cell, i) =>
              cell.head
                ? html`<th scope="row" data-label="${columns[i] ?? ''}">${cell.content}</th>`
                : html`<td data-label="${columns[i] ?? ''}">${cell.content}</td>`,
            )}
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export function welcomePage(frame: PageFrame): string {
  return page(
    frame,
    html`<p>
        Ce portail vous montre toutes vos adresses MSSanté, vous permet de donner accès à votre secrétariat,
        de gérer les boîtes partagées de votre structure et de voir qui a utilisé vos boîtes.
      </p>
      <p><a class="button" href="/connexion">Se connecter avec Pro Santé Connect</a></p>`,
  );
}

/** A mailbox the person owns, with what the inactivity rule says of it. */
export interface OwnedMailboxView {
  readonly address: string;
  readonly type: string;
  readonly status: string;
  readonly publication: string;
  readonly redListed: boolean;
  readonly lastUse?: string;
  readonly deadline?: string;
  readonly deadlineNear: boolean;
  readonly unpublishedInactive: boolean;
}

export interface AccessView {
  readonly address: string;
  readonly type: string;
  readonly right: string;
  readonly scopes: readonly string[];
  /** Last day the right works (dd/mm/yyyy in the operator's time zone). */
  readonly expiresAt?: string;
  readonly manageable: boolean;
  /** A managed mailbox near its unpublication for inactivity: the date (dd/mm/yyyy). */
  readonly deadlineNear?: string;
}

export interface ElsewhereView {
  readonly address: string;
  readonly type: string;
  readonly where?: string;
}

export interface HomeView {
  readonly owned: readonly OwnedMailboxView[];
  readonly others: readonly AccessView[];
  /** undefined: the national extraction is not mirrored here. */
  readonly elsewhere: readonly ElsewhereView[] | undefined;
}

const RIGHT_LABELS: Readonly<Record<string, string>> = {
  owner: 'titulaire',
  delegate: 'délégué',
  member: 'membre',
  manager: 'gestionnaire',
  application: 'application',
};

const SCOPE_LABELS: Readonly<Record<string, string>> = { read: 'lecture', send: 'envoi' };

export function rightLabel(right: string): string {
  return RIGHT_LABELS[right] ?? right;
}

export function scopesLabel(scopes: readonly string[]): string {
  return scopes.map((s) => SCOPE_LABELS[s] ?? s).join(' et ');
}

export function homePage(frame: PageFrame, view: HomeView): string {
  const owned = view.owned.map(
    (m) =>
      html`<article class="mailbox">
        <h3>${m.address}</h3>
        <dl>
          <dt>Type</dt>
          <dd>${m.type}</dd>
          <dt>État</dt>
          <dd>${m.status === 'active' ? 'active' : m.status === 'suspended' ? 'suspendue' : m.status}</dd>
          <dt>Annuaire national</dt>
          <dd>${m.publication}</dd>
          <dt>Liste rouge</dt>
          <dd>${m.redListed ? 'oui (adresse non publiée)' : 'non'}</dd>
          <dt>Dernière utilisation</dt>
          <dd>${m.lastUse ?? 'jamais'}</dd>
          ${
            m.deadline
              ? html`<dt>Retrait de l'annuaire pour inactivité</dt>
                  <dd>le ${m.deadline}</dd>`
              : ''
          }
        </dl>
        ${
          m.deadlineNear
            ? html`<p class="warning" role="note">
                <strong>Attention :</strong> sans utilisation d'ici le ${m.deadline ?? ''}, cette adresse sera
                retirée de l'annuaire national.
              </p>`
            : ''
        }
        ${
          m.unpublishedInactive
            ? html`<p class="warning" role="note">
                <strong>Cette adresse a été retirée de l'annuaire</strong> faute d'utilisation. « Je garde
                cette adresse » la republie aussitôt.
              </p>`
            : ''
        }
        <form method="post" action="/boite/garder">
          ${csrfField(frame.csrf)}
          <input type="hidden" name="adresse" value="${m.address}" />
          <button type="submit">Je garde cette adresse</button>
        </form>
        <p><a href="/boite?adresse=${encodeURIComponent(m.address)}">Gérer les accès à ${m.address}</a></p>
      </article>`,
  );
  const others = view.others.map((a): Cell[] => [
    { content: a.address, head: true },
    { content: a.type },
    { content: rightLabel(a.right) },
    { content: scopesLabel(a.scopes) },
    { content: a.expiresAt ?? 'sans fin' },
    {
      content: a.manageable ? html`<a href="/boite?adresse=${encodeURIComponent(a.address)}">Gérer</a>` : '',
    },
  ]);
  const managedNear = view.others.flatMap((a) =>
    a.deadlineNear === undefined
      ? []
      : [
          html`<p class="warning" role="note">
            <strong>Attention :</strong> sans utilisation d'ici le ${a.deadlineNear}, la boîte ${a.address}
            que vous gérez sera retirée de l'annuaire national.
          </p>`,
        ],
  );
  return page(
    frame,
    html`<section aria-labelledby="ici">
        <h2 id="ici">Chez cet opérateur</h2>
        ${owned.length === 0 ? html`<p>Vous n'êtes titulaire d'aucune boîte ici.</p>` : owned}
        ${
          others.length === 0
            ? html`<p>Aucune autre boîte ne vous est ouverte ici.</p>`
            : dataTable(
                'Boîtes que vous pouvez ouvrir',
                ['Adresse', 'Type', 'Droit', 'Portée', "Jusqu'au", 'Action'],
                others,
              )
        }
        ${managedNear}
      </section>
      <section aria-labelledby="ailleurs">
        <h2 id="ailleurs">Dans l'annuaire national</h2>
        ${
          view.elsewhere === undefined
            ? html`<p>L'extraction de l'annuaire national n'est pas disponible ici pour le moment.</p>`
            : view.elsewhere.length === 0
              ? html`<p>L'annuaire national ne liste aucune adresse pour votre identifiant.</p>`
              : html`<ul class="addresses">
                  ${view.elsewhere.map(
                    (e) =>
                      html`<li>
                        ${e.address} <span class="id">(${e.type}${e.where ? `, ${e.where}` : ''})</span>
                      </li>`,
                  )}
                </ul>`
        }
      </section>`,
  );
}

export interface GrantRowView {
  readonly person: string;
  readonly right: string;
  readonly scopes: readonly string[];
  /** Last day the right works (dd/mm/yyyy in the operator's time zone). */
  readonly expiresAt?: string;
  readonly expired: boolean;
}

export interface MailboxView {
  readonly address: string;
  readonly type: string;
  /** Rights this person may give here (delegate; member and manager for a manager). */
  readonly grantable: readonly string[];
  readonly grants: readonly GrantRowView[];
  /** Form values to show again after a refusal. */
  readonly form?: Readonly<Record<string, string>>;
  /** Today in the operator's time zone (YYYY-MM-DD): the earliest end date. */
  readonly today: string;
}

export function mailboxPage(frame: PageFrame, view: MailboxView): string {
  const csrf = frame.csrf ?? '';
  const form = view.form ?? {};
  const rows = view.grants.map((g): Cell[] => [
    { content: g.person, head: true },
    { content: rightLabel(g.right) },
    { content: scopesLabel(g.scopes) },
    { content: `${g.expiresAt ?? 'sans fin'}${g.expired ? ' (terminé)' : ''}` },
    {
      content: view.grantable.includes(g.right)
        ? html`<form method="post" action="/boite/droits/retirer">
            ${csrfField(csrf)}
            <input type="hidden" name="adresse" value="${view.address}" />
            <input type="hidden" name="personne" value="${g.person}" />
            <button type="submit" aria-label="Retirer l'accès de ${g.person}">Retirer</button>
          </form>`
        : '',
    },
  ]);
  const rightOptions = view.grantable.map(
    (r) =>
      html`<option value="${r}" ${form.droit === r ? html`selected` : ''}>
        ${r === 'delegate' ? 'délégué (secrétariat, remplaçant)' : rightLabel(r)}
      </option>`,
  );
  return page(
    frame,
    html`<p>Boîte ${view.type} <strong>${view.address}</strong>.</p>
      <section aria-labelledby="acces">
        <h2 id="acces">Accès donnés</h2>
        ${
          rows.length === 0
            ? html`<p>Personne d'autre n'a accès à cette boîte.</p>`
            : dataTable(
                `Personnes ayant accès à ${view.address}`,
                ['Identifiant national', 'Droit', 'Portée', "Jusqu'au", 'Action'],
                rows,
              )
        }
      </section>
      <section aria-labelledby="donner">
        <h2 id="donner">Donner un accès</h2>
        <form method="post" action="/boite/droits" class="grant">
          ${csrfField(csrf)}
          <input type="hidden" name="adresse" value="${view.address}" />
          <p>
            <label for="personne">Identifiant national de la personne (8 + RPPS ou 0 + ADELI)</label>
            <input
              id="personne"
              name="personne"
              required
              inputmode="text"
              autocomplete="off"
              pattern="[0-9]{12}|0[0-9A-Za-z]{9}"
              value="${form.personne ?? ''}"
              aria-describedby="personne-aide"
            />
            <span id="personne-aide" class="hint">Par exemple 810001234567.</span>
          </p>
          <p>
            <label for="droit">Droit</label>
            <select id="droit" name="droit">
              ${rightOptions}
            </select>
          </p>
          <fieldset>
            <legend>Portée (pour un délégué)</legend>
            <p>
              <input
                type="radio"
                id="portee-lecture"
                name="portee"
                value="read"
                ${form.portee === 'read' ? html`checked` : ''}
              />
              <label for="portee-lecture">Lecture seule</label>
            </p>
            <p>
              <input
                type="radio"
                id="portee-envoi"
                name="portee"
                value="read send"
                ${form.portee === 'read' ? '' : html`checked`}
              />
              <label for="portee-envoi">Lecture et envoi de la part du titulaire</label>
            </p>
          </fieldset>
          <p>
            <label for="jusqua">Jusqu'au (inclus, facultatif)</label>
            <input
              type="date"
              lang="fr"
              id="jusqua"
              name="jusqua"
              min="${view.today}"
              value="${form.jusqua ?? ''}"
              aria-describedby="jusqua-aide"
            />
            <span id="jusqua-aide" class="hint"
              >Choisissez le jour (ou écrivez-le jj/mm/aaaa) ; vide : sans fin.</span
            >
          </p>
          <p><button type="submit">Donner l'accès</button></p>
        </form>
      </section>
      <p><a href="/utilisation">Voir qui a utilisé mes boîtes</a></p>`,
  );
}

export interface UseRowView {
  readonly at: string;
  readonly bal: string;
  readonly who: string;
  readonly right: string;
  readonly action: string;
  readonly channel: string;
}

export function usagePage(
  frame: PageFrame,
  mailboxes: readonly string[],
  uses: readonly UseRowView[],
): string {
  return page(
    frame,
    html`<p>
        Connexions et envois faits par d'autres personnes que le titulaire (délégués, membres, gestionnaires)
        sur ${mailboxes.length === 0 ? 'vos boîtes' : mailboxes.join(', ')}, ces 90 derniers jours.
      </p>
      ${
        uses.length === 0
          ? html`<p>Aucune utilisation par une autre personne ces 90 derniers jours.</p>`
          : dataTable(
              'Utilisations de vos boîtes',
              ['Quand', 'Boîte', 'Qui', 'Droit', 'Action', 'Par'],
              uses.map((u) => [
                { content: u.at },
                { content: u.bal },
                { content: u.who, head: true },
                { content: rightLabel(u.right) },
                { content: u.action },
                { content: u.channel },
              ]),
            )
      }`,
  );
}

export interface ClientSettingsView extends ClientEndpoints {
  readonly mailboxes: readonly string[];
  readonly autoconfigUrl: string;
}

export function settingsPage(frame: PageFrame, v: ClientSettingsView): string {
  const services: ReadonlyArray<readonly [string, number, string]> = [
    ['Réception (IMAP)', v.imapTls, 'SSL/TLS'],
    ['Réception (IMAP)', v.imapStarttls, 'STARTTLS'],
    ['Envoi (SMTP)', v.submissionTls, 'SSL/TLS'],
    ['Envoi (SMTP)', v.submissionStarttls, 'STARTTLS'],
  ];
  return page(
    frame,
    html`<p>
        Votre logiciel de messagerie se connecte avec Pro Santé Connect (OAuth2) : aucun mot de passe à
        saisir. Thunderbird se configure seul à partir de votre adresse.
      </p>
      ${dataTable(
        'Paramètres de connexion',
        ['Service', 'Serveur', 'Port', 'Sécurité', 'Authentification'],
        services.map(([service, port, security]) => [
          { content: service, head: true },
          { content: v.host },
          { content: port },
          { content: security },
          { content: 'OAuth2' },
        ]),
      )}
      <p>
        Nom d'utilisateur : l'adresse de la boîte à
        ouvrir${v.mailboxes.length > 0 ? html` (${v.mailboxes.join(', ')})` : ''}.
      </p>
      <p>Configuration automatique : <a href="${v.autoconfigUrl}">${v.autoconfigUrl}</a></p>`,
  );
}

export function errorPage(frame: PageFrame): string {
  return page(frame, html`<p><a href="/">Retour à l'accueil</a></p>`);
}

export const STYLESHEET = `
:root { font-family: system-ui, sans-serif; line-height: 1.5; color: #1a1a1a; background: #fff; }
*, *::before, *::after { box-sizing: border-box; }
body { margin: 0 auto; max-width: 60rem; padding: 0 1rem; overflow-wrap: anywhere; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; }
header { border-bottom: 2px solid #000091; padding: .5rem 0; }
header nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: .5rem 1rem; padding: 0; margin: .5rem 0; }
.brand a { font-weight: bold; color: #000091; text-decoration: none; }
a { color: #000091; }
.id, .hint { color: #3a3a3a; font-size: .9em; }
.hint { display: block; }
.button, button { display: inline-block; background: #000091; color: #fff; border: 0; padding: .6rem 1rem;
  font: inherit; text-decoration: none; border-radius: 4px; cursor: pointer; min-height: 44px; }
button:focus, a:focus, input:focus, select:focus { outline: 3px solid #0a76f6; outline-offset: 2px; }
.mailbox { border: 1px solid #ccc; border-radius: 4px; padding: 0 1rem 1rem; margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: bold; }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
caption { text-align: left; font-weight: bold; }
th, td { border: 1px solid #ccc; padding: .4rem; text-align: left; vertical-align: top; }
.notice { background: #e8f5e9; border-left: 4px solid #18753c; padding: .5rem 1rem; }
.error { background: #fdecea; border-left: 4px solid #ce0500; padding: .5rem 1rem; }
.warning { background: #fff4e5; border-left: 4px solid #b34000; padding: .5rem 1rem; }
input, select { font: inherit; padding: .4rem; max-width: 100%; }
input[type="date"], #personne, select { width: 100%; max-width: 20rem; min-height: 44px; }
label { display: block; font-weight: bold; }
fieldset { min-width: 0; }
fieldset p label { display: inline; font-weight: normal; }
footer { border-top: 1px solid #ccc; margin-top: 2rem; color: #3a3a3a; }
@media (max-width: 40rem) {
  dl { grid-template-columns: 1fr; }
  /* A phone: each table row becomes a card, each cell preceded by its column's name. */
  table, thead, tbody, tr, th, td, caption { display: block; }
  thead tr { position: absolute; left: -999px; }
  tr { border: 1px solid #ccc; border-radius: 4px; margin: .5rem 0; }
  th, td { border: 0; }
  th[data-label]::before, td[data-label]::before { content: attr(data-label) " : "; font-weight: bold; }
}
`;
