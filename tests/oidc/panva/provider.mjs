// A real, strict OpenID provider for Peerboard's tests: panva's oidc-provider on loopback.
//
// Configuration comes from the PROVIDER_CONFIG environment variable (JSON):
//   {"port": N, "clients": [{"client_id", "client_secret", "redirect_uris": [...], ...}],
//    "accounts": {"<sub>": {"email": ..., "name": ..., "groups": [...], ...}}}
// "port": 0 (or absent) picks a free port. The issuer is http://127.0.0.1:<port>; once the server
// listens, one line "READY <issuer>" is printed on stdout. SIGTERM, SIGINT or the end of stdin
// (the parent went away) shut it down cleanly.
//
// Policy (stricter than the library's defaults):
// - authorization code flow only (response_type=code, grant authorization_code, no refresh tokens);
// - PKCE required for every client, S256 only ("plain" and a missing method are refused);
// - redirect_uri must be sent and must exactly match a registered one;
// - ID tokens signed RS256 with a fresh RSA key per process; RS256 is the only advertised alg;
// - scopes openid, email (email, email_verified), profile (name, ..., groups) and groups (groups);
//   the scope claims are put INTO the ID token too (conformIdTokenClaims: false), and /userinfo
//   serves them as well.
//
// Interactions (no devInteractions): GET /interaction/<uid> shows either
// - a login form: POST /interaction/<uid>/login with field "login" = an account's sub
//   (unknown accounts get a 401 page with class="error"), or
// - a consent form: POST /interaction/<uid>/confirm grants what was asked for;
// GET /interaction/<uid>/abort ends the request with error=access_denied.
// Errors that cannot be redirected to the client render a page with
// <p class="error">..</p> and <p class="error_description">..</p>.

import { randomBytes, generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';
// Subclassing the bundled in-memory adapter only silences its "development-only" warning: a
// throwaway test provider wants exactly an in-memory store.
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

class Adapter extends MemoryAdapter {}

const config = JSON.parse(process.env.PROVIDER_CONFIG ?? '{}');
const accounts = config.accounts ?? {};
const host = '127.0.0.1';

function escapeHtml(value) {
  return String(value ?? '')
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

function errorBody(error, description) {
  return `<p class="error">${escapeHtml(error)}</p>
<p class="error_description">${escapeHtml(description)}</p>`;
}

function sendHtml(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function accountClaims(sub) {
  const claims = { ...accounts[sub], sub };
  if (claims.email !== undefined && claims.email_verified === undefined) {
    claims.email_verified = true;
  }
  return claims;
}

function clientMetadata(client) {
  return {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    ...client,
  };
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: randomUUID(),
    use: 'sig',
    alg: 'RS256',
  };
}

function configuration() {
  const ttl = 10 * 60;
  return {
    adapter: Adapter,
    clients: (config.clients ?? []).map(clientMetadata),
    jwks: { keys: [signingKey()] },
    cookies: {
      keys: [randomBytes(32).toString('base64url')],
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    pkce: { methods: ['S256'], required: () => true },
    allowOmittingSingleRegisteredRedirectUri: false,
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'groups'],
      groups: ['groups'],
    },
    conformIdTokenClaims: false,
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256'],
      userinfoSigningAlgValues: ['RS256'],
      introspectionSigningAlgValues: ['RS256'],
      authorizationSigningAlgValues: ['RS256'],
    },
    features: {
      devInteractions: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      resourceIndicators: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          ctx.type = 'html';
          ctx.body = page(
            'Sign out',
            `${form}<button type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>`,
          );
        },
        async postLogoutSuccessSource(ctx) {
          ctx.type = 'html';
          ctx.body = page('Signed out', '<p>You are signed out.</p>');
        },
      },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    async findAccount(_ctx, sub) {
      if (!Object.hasOwn(accounts, sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          return accountClaims(sub);
        },
      };
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', errorBody(out.error, out.error_description));
    },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: ttl,
      AuthorizationCode: 60,
      ClientCredentials: ttl,
      DeviceCode: ttl,
      BackchannelAuthenticationRequest: ttl,
      Grant: ttl,
      IdToken: ttl,
      Interaction: ttl,
      RefreshToken: ttl,
      Session: ttl,
    },
  };
}

function loginPage(uid, message) {
  const warning = message ? errorBody('login_failed', message) : '';
  return page(
    'Sign in',
    `${warning}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <label>Account <input type="text" name="login" autofocus required></label>
  <button type="submit">Sign in</button>
</form>
<p><a href="/interaction/${escapeHtml(uid)}/abort">Cancel</a></p>`,
  );
}

function consentPage(uid, clientId, details) {
  const scopes = (details.missingOIDCScope ?? []).map((s) => `<li>${escapeHtml(s)}</li>`).join('');
  return page(
    'Authorize',
    `<p>${escapeHtml(clientId)} asks for:</p>
<ul class="scopes">${scopes}</ul>
<form method="post" action="/interaction/${escapeHtml(uid)}/confirm">
  <button type="submit">Allow</button>
</form>
<p><a href="/interaction/${escapeHtml(uid)}/abort">Deny</a></p>`,
  );
}

async function handleInteraction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    sendHtml(res, 400, page('Sign-in error', errorBody('invalid_request', 'interaction mismatch')));
    return;
  }
  const { prompt, params, session, grantId } = details;

  if (action === undefined && req.method === 'GET') {
    if (prompt.name === 'login') {
      sendHtml(res, 200, loginPage(uid));
    } else if (prompt.name === 'consent') {
      sendHtml(res, 200, consentPage(uid, params.client_id, prompt.details));
    } else {
      sendHtml(res, 501, page('Sign-in error', errorBody('server_error', `prompt ${prompt.name}`)));
    }
    return;
  }

  if (action === 'abort' && req.method === 'GET') {
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
    return;
  }

  if (action === 'login' && req.method === 'POST' && prompt.name === 'login') {
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    if (!Object.hasOwn(accounts, login)) {
      sendHtml(res, 401, loginPage(uid, `unknown account: ${login}`));
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: login } },
      { mergeWithLastSubmission: false },
    );
    return;
  }

  if (action === 'confirm' && req.method === 'POST' && prompt.name === 'consent') {
    await readForm(req);
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const result = { consent: { grantId: await grant.save() } };
    await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    return;
  }

  sendHtml(
    res,
    400,
    page('Sign-in error', errorBody('invalid_request', `unexpected ${req.method} for ${prompt.name}`)),
  );
}

const INTERACTION = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/;

const server = http.createServer();
let provider;
let handle;

server.on('request', (req, res) => {
  const { pathname } = new URL(req.url ?? '/', `http://${host}`);
  const match = INTERACTION.exec(pathname);
  if (!handle) {
    sendHtml(res, 503, page('Starting', '<p>not ready</p>'));
    return;
  }
  if (!match) {
    handle(req, res);
    return;
  }
  handleInteraction(provider, req, res, match[1], match[2]).catch((err) => {
    if (res.headersSent) {
      res.destroy(err);
      return;
    }
    sendHtml(res, 400, page('Sign-in error', errorBody(err.name ?? 'error', err.message)));
  });
});

let stopping = false;
function shutdown() {
  if (stopping) return;
  stopping = true;
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
process.stdin.on('error', shutdown);
process.stdin.resume();

server.listen(config.port ?? 0, host, () => {
  const { port } = server.address();
  const issuer = `http://${host}:${port}`;
  provider = new Provider(issuer, configuration());
  handle = provider.callback();
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  process.stdout.write(`READY ${issuer}\n`);
});
