// npm oidc-provider as the OpenID Provider of examples/sso, on 127.0.0.1. Reads its set-up
// as JSON from the EMBEDGATE_INTEROP_IDP environment variable:
// {"port", "client": {client_id, client_secret, redirect_uri, backchannel_logout_uri},
//  "accounts": {"<login>": {claims...}}}. Its development interactions (a login form, then
// a consent form) stay on; any password is accepted for a known login.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const setup = JSON.parse(process.env.EMBEDGATE_INTEROP_IDP);
const issuer = `http://127.0.0.1:${setup.port}`;
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', alg: 'RS256', use: 'sig' };
const NAMESPACE = 'https://embedgate.dev/claims';

const provider = new Provider(issuer, {
  clients: [{
    client_id: setup.client.client_id,
    client_secret: setup.client.client_secret,
    redirect_uris: [setup.client.redirect_uri],
    backchannel_logout_uri: setup.client.backchannel_logout_uri,
    backchannel_logout_session_required: true,
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // The defaults: the email and profile claims are answered by UserInfo only, the ID
  // token carries sub (conformIdTokenClaims).
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups', 'employee_id', NAMESPACE],
  },
  features: {
    devInteractions: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  pkce: { required: () => true },
  async findAccount(ctx, id) {
    const claims = setup.accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { ...claims, sub: id } } };
  },
  // Its guard refuses requests to special-use addresses; the relying party listens on
  // 127.0.0.1 here, and only loopback URLs are let through without it.
  async fetch(url, options) {
    const target = new URL(url);
    if (target.hostname === '127.0.0.1') {
      delete options.dispatcher;
    }
    return globalThis.fetch(url, options);
  },
});
provider.on('backchannel.error', (error, client) => {
  console.error('back-channel logout failed', client.clientId, error);
});
provider.listen(setup.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
