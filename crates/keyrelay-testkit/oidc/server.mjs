// A real, independently written OpenID Provider (panva/oidc-provider) on
// 127.0.0.1 for keyrelay's tests. No browser: the login/consent interaction
// completes automatically as the configured account, granting everything
// that was asked for.
//
//   PORT=0 OIDC_CONFIG='{"clients":[...]}' node server.mjs
//
// Prints exactly one line `READY <port>` on stdout once it is listening;
// everything else (warnings, errors) goes to stderr. With
// OIDC_EXIT_ON_STDIN_EOF=1 it exits when its stdin closes.
//
// OIDC_CONFIG (JSON, every field optional):
//   clients: [{ client_id, client_secret, redirect_uris,
//               token_endpoint_auth_method: "client_secret_basic" | "client_secret_post",
//               grant_types: ["authorization_code", "refresh_token"] and/or ["client_credentials"],
//               scope: "openid email profile ..." }]
//   access_token_ttl: seconds (default 3600; also used for client_credentials tokens)
//   rotate_refresh_tokens: bool (default true; every refresh returns a new
//                          refresh token, the old one is consumed, and reusing
//                          a consumed one revokes the whole grant)
//   pkce_required: bool (default true; S256 is the only method)
//   account: subject everyone is logged in as (default "test-user")
//
// A client must authenticate (token, introspection, revocation) with its
// registered token_endpoint_auth_method; the other one gets 401 invalid_client.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { format } from 'node:util';

import Provider from 'oidc-provider';

function log(...args) {
  process.stderr.write(`[oidc] ${format(...args)}\n`);
}

function fail(message) {
  log(`fatal: ${message}`);
  process.exit(1);
}

let raw;
try {
  raw = JSON.parse(process.env.OIDC_CONFIG || '{}');
} catch (err) {
  fail(`OIDC_CONFIG is not valid JSON: ${err.message}`);
}

const cfg = {
  clients: Array.isArray(raw.clients) ? raw.clients : [],
  accessTokenTtl: Number.isInteger(raw.access_token_ttl) && raw.access_token_ttl > 0
    ? raw.access_token_ttl : 3600,
  rotateRefreshTokens: raw.rotate_refresh_tokens ?? true,
  pkceRequired: raw.pkce_required ?? true,
  account: typeof raw.account === 'string' && raw.account ? raw.account : 'test-user',
};

const port = Number.parseInt(process.env.PORT ?? '0', 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  fail(`PORT is not a port number: ${process.env.PORT}`);
}

// Client metadata as oidc-provider wants it.
const clients = cfg.clients.map((c) => {
  const grantTypes = c.grant_types ?? ['authorization_code', 'refresh_token'];
  const redirectFlow = grantTypes.includes('authorization_code');
  return {
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: redirectFlow ? (c.redirect_uris ?? []) : [],
    response_types: redirectFlow ? ['code'] : [],
    grant_types: grantTypes,
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    ...(c.scope ? { scope: c.scope } : {}),
  };
});

// Every scope a client may use must be known to the provider, or it is
// silently dropped from authorization requests.
const scopes = new Set(['openid', 'offline_access', 'email', 'profile']);
for (const c of clients) {
  for (const s of (c.scope ?? '').split(' ')) {
    if (s) scopes.add(s);
  }
}

const account = {
  sub: cfg.account,
  email: `${cfg.account}@example.test`,
  email_verified: true,
  name: 'Test User',
};

// A fixed test-only signing key (instead of oidc-provider's development
// keys), read from a file rather than generated so start-up does no RSA key
// generation: on a loaded CI machine that start-up was seen to stall.
const { _comment, ...signingKey } = JSON.parse(
  readFileSync(new URL('./test-signing-key.json', import.meta.url), 'utf8'),
);

function configuration() {
  return {
    clients,
    scopes: [...scopes],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    // ID tokens carry the scope claims too (like most real providers).
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      if (sub !== account.sub) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { ...account };
        },
      };
    },
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
    },
    interactions: {
      url: async (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    pkce: {
      required: () => cfg.pkceRequired,
    },
    // Refresh tokens for every client allowed the refresh_token grant,
    // without offline_access + prompt=consent.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // ... and they do not die with the (cookie) session.
    expiresWithSession: async () => false,
    rotateRefreshToken: () => cfg.rotateRefreshTokens,
    ttl: {
      AccessToken: () => cfg.accessTokenTtl,
      ClientCredentials: () => cfg.accessTokenTtl,
      AuthorizationCode: () => 60,
      IdToken: () => 3600,
      RefreshToken: () => 14 * 24 * 60 * 60,
      Interaction: () => 60 * 60,
      Session: () => 14 * 24 * 60 * 60,
      Grant: () => 14 * 24 * 60 * 60,
    },
    async renderError(ctx, out, error) {
      log('renderError', out, error?.stack ?? error);
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

// Completes the login and consent prompts at once: logs in as the configured
// account and grants every requested scope and claim.
async function autoInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  const accountId = session?.accountId ?? account.sub;

  let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  if (!grant) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }

  if (typeof params.scope === 'string' && params.scope) {
    grant.addOIDCScope(params.scope);
  }
  const missing = prompt.details ?? {};
  if (missing.missingOIDCScope?.length) {
    grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  }
  if (missing.missingOIDCClaims?.length) {
    grant.addOIDCClaims(missing.missingOIDCClaims);
  }
  if (missing.missingResourceScopes) {
    for (const [indicator, s] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, s.join(' '));
    }
  }

  const result = { consent: { grantId: await grant.save() } };
  if (prompt.name === 'login' || !session?.accountId) {
    result.login = { accountId };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// oidc-provider accepts client_secret_basic and client_secret_post
// interchangeably for a client registered with either; real providers often
// do not, so the registered method is the only one accepted here.
const registeredAuthMethod = new Map(clients.map((c) => [c.client_id, c.token_endpoint_auth_method]));
const clientAuthPaths = new Set(['/token', '/token/introspection', '/token/revocation']);

function presentedAuthMethod(req, body) {
  const header = req.headers.authorization;
  if (header !== undefined && /^basic\s/i.test(header)) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i === -1) return undefined;
    try {
      return { clientId: decodeURIComponent(decoded.slice(0, i).replaceAll('+', '%20')), method: 'client_secret_basic' };
    } catch {
      return undefined;
    }
  }
  const params = new URLSearchParams(body.toString('utf8'));
  if (params.has('client_secret')) {
    return { clientId: params.get('client_id'), method: 'client_secret_post' };
  }
  return undefined;
}

async function readAll(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks);
}

// Returns false (having answered 401 invalid_client) when a client
// authenticates with a method other than its registered one.
async function checkClientAuthMethod(req, res) {
  const body = await readAll(req);
  // oidc-provider reads an already consumed body from req.body.
  req.body = body;
  const presented = presentedAuthMethod(req, body);
  const registered = presented && registeredAuthMethod.get(presented.clientId);
  if (registered && registered !== presented.method) {
    log(`client ${presented.clientId} authenticated with ${presented.method}, but is registered for ${registered}`);
    const headers = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
    if (presented.method === 'client_secret_basic') {
      headers['www-authenticate'] = 'Basic realm="oidc-provider"';
    }
    res.writeHead(401, headers);
    res.end(JSON.stringify({
      error: 'invalid_client',
      error_description: `the provided authentication mechanism does not match the registered client authentication method (${registered})`,
    }));
    return false;
  }
  return true;
}

let provider;
const server = createServer((req, res) => {
  if (!provider) {
    res.writeHead(503).end();
    return;
  }
  const path = (req.url ?? '').split('?')[0];
  if (
    req.method === 'POST'
    && clientAuthPaths.has(path)
    && /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '')
  ) {
    checkClientAuthMethod(req, res)
      .then((ok) => {
        if (ok) provider.callback()(req, res);
      })
      .catch((err) => {
        log('client auth method check failed:', err?.stack ?? err);
        if (!res.headersSent) res.writeHead(400).end();
      });
    return;
  }
  if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(path)) {
    autoInteraction(provider, req, res).catch((err) => {
      log('interaction failed:', err?.stack ?? err);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'interaction_failed', error_description: String(err?.message ?? err) }));
      }
    });
    return;
  }
  provider.callback()(req, res);
});

server.on('error', (err) => fail(`listen failed: ${err.message}`));

server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  try {
    provider = new Provider(`http://127.0.0.1:${actual}`, configuration());
  } catch (err) {
    fail(`bad provider configuration: ${err?.stack ?? err}`);
  }

  provider.on('server_error', (_ctx, err) => log('server_error:', err?.stack ?? err));
  for (const event of [
    'authorization.error',
    'grant.error',
    'introspection.error',
    'revocation.error',
    'userinfo.error',
    'discovery.error',
    'end_session.error',
    'jwks.error',
  ]) {
    provider.on(event, (_ctx, err) => {
      const detail = err?.error_description
        ? `${err.error}: ${err.error_description}${err.error_detail ? ` (${err.error_detail})` : ''}`
        : (err?.stack ?? err);
      log(`${event}:`, detail);
    });
  }

  process.stdout.write(`READY ${actual}\n`);
});

// Spawned by the Rust test kit: exit when the parent goes away (stdin closes),
// even if it could not kill us.
if (process.env.OIDC_EXIT_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
