// The OpenID provider zt's single sign-on tests run against: panva's oidc-provider (a certified
// OP implementation), standalone on 127.0.0.1, configured from the environment by the test
// harness (zt-core/tests/common/oidc.rs). Test-only: in-memory storage, development login pages
// that accept any login name, keys made at start (a restart is a key rotation).
//
// OP_CONFIG (JSON): { port, clients: [{ client_id, client_secret, redirect_uris,
//   backchannel_logout_uri? }], kid, id_token_ttl? }
// Accounts are made up from the login name: sub = name, email = name@example.test, verified
// unless the name starts with "unverified", groups from OP_CONFIG.groups[name] or ["staff"].
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OP_CONFIG || '{}');
const port = Number(config.port || 9090);
const issuer = `http://127.0.0.1:${port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: config.kid || 'key-1', alg: 'RS256', use: 'sig' };

const claimsOf = (id) => ({
  sub: id,
  preferred_username: id,
  name: `User ${id}`,
  email: `${id}@example.test`,
  email_verified: !id.startsWith('unverified'),
  groups: (config.groups && config.groups[id]) || ['staff'],
});

const clients = (config.clients || []).map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  redirect_uris: c.redirect_uris,
  response_types: ['code'],
  grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'],
  token_endpoint_auth_method: 'client_secret_basic',
  post_logout_redirect_uris: c.post_logout_redirect_uris || [],
  ...(c.backchannel_logout_uri ? {
    backchannel_logout_uri: c.backchannel_logout_uri,
    backchannel_logout_session_required: true,
  } : {}),
}));

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [jwk] },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return claimsOf(id); } };
  },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    revocation: { enabled: true },
  },
  pkce: { required: () => true },
  conformIdTokenClaims: false,
  ttl: { IdToken: Number(config.id_token_ttl || 3600) },
  cookies: { keys: ['test-only-cookie-key'] },
  // Test-only: the relying party under test listens on 127.0.0.1, which the provider's
  // protection against server-side request forgery would refuse to post logout tokens to.
  fetch: (url, options) => {
    const { dispatcher, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
});
provider.proxy = false;

// A logout token minted the way oidc-provider's own back-channel logout mints it, returned
// instead of sent, so a test can replay it (GET /test/logout-token?client=&sub=&sid=).
const mint = async (ctx, next) => {
  if (ctx.path !== '/test/logout-token') return next();
  const client = await provider.Client.find(ctx.query.client);
  if (!client) { ctx.status = 404; return undefined; }
  const token = new provider.IdToken({ sub: ctx.query.sub }, { client, ctx: undefined });
  token.mask = { sub: null };
  token.set('events', { 'http://schemas.openid.net/event/backchannel-logout': {} });
  token.set('jti', ctx.query.jti || `jti-${Date.now()}-${Math.random()}`);
  if (ctx.query.sid) token.set('sid', ctx.query.sid);
  ctx.body = await token.issue({ use: 'logout' });
  return undefined;
};
provider.use(mint);

const server = provider.listen(port, '127.0.0.1', () => console.log(`OP listening on ${issuer}`));
const stop = () => { server.closeAllConnections?.(); server.close(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The harness holds stdin open; when it goes away, so does the provider.
process.stdin.on('end', stop);
process.stdin.resume();
