import { html, type SafeHtml } from './html.js';

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
                    <input type="hidden" name="_csrf" value="${csrf ?? ''}" />
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
          <input type="hidden" name="_csrf" value="${frame.csrf ?? ''}" />
          <input type="hidden" name="adresse" value="${m.address}" />
          <button type="submit">Je garde cette adresse</button>
        </form>
        <p><a href="/boite?adresse=${encodeURIComponent(m.address)}">Gérer les accès à ${m.address}</a></p>
      </article>`,
  );
  const others = view.others.map(
    (a) =>
      html`<tr>
        <th scope="row">${a.address}</th>
        <td>${a.type}</td>
        <td>${rightLabel(a.right)}</td>
        <td>${scopesLabel(a.scopes)}</td>
        <td>${a.expiresAt ?? 'sans fin'}</td>
        <td>
          ${a.manageable ? html`<a href="/boite?adresse=${encodeURIComponent(a.address)}">Gérer</a>` : ''}
        </td>
      </tr>`,
  );
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
            : html`<table>
                <caption>
                  Boîtes que vous pouvez ouvrir
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Adresse</th>
                    <th scope="col">Type</th>
                    <th scope="col">Droit</th>
                    <th scope="col">Portée</th>
                    <th scope="col">Jusqu'au</th>
                    <th scope="col">Action</th>
                  </tr>
                </thead>
                <tbody>
                  ${others}
                </tbody>
              </table>`
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
}

export function mailboxPage(frame: PageFrame, view: MailboxView): string {
  const csrf = frame.csrf ?? '';
  const form = view.form ?? {};
  const rows = view.grants.map(
    (g) =>
      html`<tr>
        <th scope="row">${g.person}</th>
        <td>${rightLabel(g.right)}</td>
        <td>${scopesLabel(g.scopes)}</td>
        <td>${g.expiresAt ?? 'sans fin'}${g.expired ? ' (terminé)' : ''}</td>
        <td>
          ${
            view.grantable.includes(g.right)
              ? html`<form method="post" action="/boite/droits/retirer">
                  <input type="hidden" name="_csrf" value="${csrf}" />
                  <input type="hidden" name="adresse" value="${view.address}" />
                  <input type="hidden" name="personne" value="${g.person}" />
                  <button type="submit" aria-label="Retirer l'accès de ${g.person}">Retirer</button>
                </form>`
              : ''
          }
        </td>
      </tr>`,
  );
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
            : html`<table>
                <caption>
                  Personnes ayant accès à ${view.address}
                </caption>
                <thead>
                  <tr>
                    <th scope="col">Identifiant national</th>
                    <th scope="col">Droit</th>
                    <th scope="col">Portée</th>
                    <th scope="col">Jusqu'au</th>
                    <th scope="col">Action</th>
                  </tr>
                </thead>
                <tbody>
                  ${rows}
                </tbody>
              </table>`
        }
      </section>
      <section aria-labelledby="donner">
        <h2 id="donner">Donner un accès</h2>
        <form method="post" action="/boite/droits" class="grant">
          <input type="hidden" name="_csrf" value="${csrf}" />
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
            <input type="date" id="jusqua" name="jusqua" value="${form.jusqua ?? ''}" />
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
          : html`<table>
              <caption>
                Utilisations de vos boîtes
              </caption>
              <thead>
                <tr>
                  <th scope="col">Quand</th>
                  <th scope="col">Boîte</th>
                  <th scope="col">Qui</th>
                  <th scope="col">Droit</th>
                  <th scope="col">Action</th>
                  <th scope="col">Par</th>
                </tr>
              </thead>
              <tbody>
                ${uses.map(
                  (u) =>
                    html`<tr>
                      <td>${u.at}</td>
                      <td>${u.bal}</td>
                      <th scope="row">${u.who}</th>
                      <td>${rightLabel(u.right)}</td>
                      <td>${u.action}</td>
                      <td>${u.channel}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }`,
  );
}

export interface ClientSettingsView {
  readonly host: string;
  readonly imapTls: number;
  readonly imapStarttls: number;
  readonly submissionTls: number;
  readonly submissionStarttls: number;
  readonly mailboxes: readonly string[];
  readonly autoconfigUrl: string;
}

export function settingsPage(frame: PageFrame, v: ClientSettingsView): string {
  return page(
    frame,
    html`<p>
        Votre logiciel de messagerie se connecte avec Pro Santé Connect (OAuth2) : aucun mot de passe à
        saisir. Thunderbird se configure seul à partir de votre adresse.
      </p>
      <table>
        <caption>
          Paramètres de connexion
        </caption>
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">Serveur</th>
            <th scope="col">Port</th>
            <th scope="col">Sécurité</th>
            <th scope="col">Authentification</th>
          </tr>
        </thead>
        <tbody>
          <tr>
            <th scope="row">Réception (IMAP)</th>
            <td>${v.host}</td>
            <td>${v.imapTls}</td>
            <td>SSL/TLS</td>
            <td>OAuth2</td>
          </tr>
          <tr>
            <th scope="row">Réception (IMAP)</th>
            <td>${v.host}</td>
            <td>${v.imapStarttls}</td>
            <td>STARTTLS</td>
            <td>OAuth2</td>
          </tr>
          <tr>
            <th scope="row">Envoi (SMTP)</th>
            <td>${v.host}</td>
            <td>${v.submissionTls}</td>
            <td>SSL/TLS</td>
            <td>OAuth2</td>
          </tr>
          <tr>
            <th scope="row">Envoi (SMTP)</th>
            <td>${v.host}</td>
            <td>${v.submissionStarttls}</td>
            <td>STARTTLS</td>
            <td>OAuth2</td>
          </tr>
        </tbody>
      </table>
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
body { margin: 0 auto; max-width: 60rem; padding: 0 1rem; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; }
header { border-bottom: 2px solid #000091; padding: .5rem 0; }
header nav ul { list-style: none; display: flex; flex-wrap: wrap; gap: 1rem; padding: 0; margin: .5rem 0; }
.brand a { font-weight: bold; color: #000091; text-decoration: none; }
a { color: #000091; }
.id, .hint { color: #3a3a3a; font-size: .9em; }
.button, button { display: inline-block; background: #000091; color: #fff; border: 0; padding: .6rem 1rem;
  font: inherit; text-decoration: none; border-radius: 4px; cursor: pointer; }
button:focus, a:focus, input:focus, select:focus { outline: 3px solid #0a76f6; outline-offset: 2px; }
.mailbox { border: 1px solid #ccc; border-radius: 4px; padding: 0 1rem 1rem; margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: bold; }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; display: block; overflow-x: auto; }
caption { text-align: left; font-weight: bold; }
th, td { border: 1px solid #ccc; padding: .4rem; text-align: left; vertical-align: top; }
.notice { background: #e8f5e9; border-left: 4px solid #18753c; padding: .5rem 1rem; }
.error { background: #fdecea; border-left: 4px solid #ce0500; padding: .5rem 1rem; }
.warning { background: #fff4e5; border-left: 4px solid #b34000; padding: .5rem 1rem; }
input, select { font: inherit; padding: .4rem; max-width: 100%; }
label { display: block; font-weight: bold; }
fieldset p label { display: inline; font-weight: normal; }
footer { border-top: 1px solid #ccc; margin-top: 2rem; color: #3a3a3a; }
@media (max-width: 40rem) { dl { grid-template-columns: 1fr; } }
`;
