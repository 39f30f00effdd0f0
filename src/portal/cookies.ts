/** Cookie names: `__Host-` binds them to this host, `Secure` and path `/` (RFC 6265bis §4.1.3.2). */
export const SESSION_COOKIE = '__Host-mssgw-session';
export const LOGIN_COOKIE = '__Host-mssgw-login';
export const CSRF_COOKIE = '__Host-mssgw-csrf';

/** Every cookie of the portal: never readable by a script, never sent cross-site on a POST. */
export const COOKIE_OPTIONS = { path: '/', secure: true, httpOnly: true, sameSite: 'lax' as const };
