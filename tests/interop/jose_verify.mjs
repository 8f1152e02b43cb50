// Verifies embedgate tokens with npm jose. Reads {"cases": [...]} as JSON on stdin; each
// case has a token, one key source (jwks_url: a remote JWKS, jwks: a key set object, or
// secret: an HMAC secret), algorithms, issuer and audience. Prints one result per case:
// {"ok": true, "alg", "kid", "claims"} or {"ok": false, "code", "message"}.
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { cases } = JSON.parse(Buffer.concat(chunks).toString('utf8'));

const results = [];
for (const c of cases) {
  let key;
  if (c.jwks_url) key = createRemoteJWKSet(new URL(c.jwks_url), { timeoutDuration: 5000 });
  else if (c.jwks) key = createLocalJWKSet(c.jwks);
  else key = new TextEncoder().encode(c.secret);
  try {
    const { payload, protectedHeader } = await jwtVerify(c.token, key, {
      algorithms: c.algorithms,
      issuer: c.issuer,
      audience: c.audience,
      requiredClaims: ['sub', 'iat', 'exp', 'jti'],
    });
    results.push({ ok: true, alg: protectedHeader.alg, kid: protectedHeader.kid, claims: payload });
  } catch (error) {
    results.push({ ok: false, code: error.code ?? error.name, message: String(error.message) });
  }
}
process.stdout.write(JSON.stringify(results));
