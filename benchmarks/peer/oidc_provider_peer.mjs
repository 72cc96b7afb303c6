// The peer for benchmarks/bench_token_endpoint.py: panva's node-oidc-provider (npm
// `oidc-provider`, 9.x), configured like the stepup provider it is compared with — one confidential
// client (client_secret_basic), RS256 with the 2048-bit key given in $PEER_JWKS, RFC 9068 JWT access
// tokens for one resource, refresh tokens rotated on every use (as stepup always does), everything
// kept in memory.
//
// The benchmark copies this file next to the npm install (outside the repository) and runs it with:
//   PEER_PORT  the port of the provider
//   PEER_ADMIN the port of a control server (bench only; never under load): POST /mint?kind=code|refresh&n=N
//              answers N form bodies, one per line, each usable once at the token endpoint
//   PEER_ISSUER, PEER_JWKS (a file), PEER_CLIENT_ID, PEER_CLIENT_SECRET, PEER_AUDIENCE
//
// The in-memory adapter is the library's own MemoryAdapter over a plain Map: the default store is an
// LRU of 1,000 entries, which would drop the codes minted ahead of a round.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';
import MemoryAdapter from './node_modules/oidc-provider/lib/adapters/memory_adapter.js';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const issuer = env('PEER_ISSUER');
const clientId = env('PEER_CLIENT_ID');
const clientSecret = env('PEER_CLIENT_SECRET');
const audience = env('PEER_AUDIENCE');
const redirectUri = 'http://127.0.0.1:8765/callback';
const scope = 'accounts:read';

const map = new Map();
const store = {
  get: (key) => map.get(key),
  set: (key, value) => map.set(key, value),
  delete: (key) => map.delete(key),
};

const provider = new Provider(issuer, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    redirect_uris: [redirectUri],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: JSON.parse(readFileSync(env('PEER_JWKS'), 'utf8')),
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  scopes: ['openid', 'offline_access', scope],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience,
        accessTokenTTL: 300,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: 300, ClientCredentials: 300, IdToken: 300, AuthorizationCode: 600, Grant: 86400,
    RefreshToken: 86400,
  },
});

const b64url = (buf) => buf.toString('base64url');
const T = () => Math.floor(Date.now() / 1000);

async function newGrant(sub) {
  const grant = new provider.Grant({ accountId: sub, clientId });
  grant.addOIDCScope('openid offline_access');
  grant.addResourceScope(audience, scope);
  return grant.save();
}

async function mintCode(i) {
  const sub = `user-${i}`;
  const grantId = await newGrant(sub);
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const code = new provider.AuthorizationCode({
    accountId: sub,
    acr: 'urn:stepup:loa:2',
    amr: ['pwd', 'otp'],
    authTime: T(),
    client: await provider.Client.find(clientId),
    grantId,
    redirectUri,
    scope: `openid offline_access ${scope}`,
    resource: audience,
    codeChallenge: challenge,
    codeChallengeMethod: 'S256',
  });
  const value = await code.save();
  const q = new URLSearchParams({
    grant_type: 'authorization_code', code: value, redirect_uri: redirectUri, code_verifier: verifier,
  });
  return q.toString();
}

async function mintRefresh(i) {
  const sub = `user-${i}`;
  const grantId = await newGrant(sub);
  const rt = new provider.RefreshToken({
    accountId: sub,
    acr: 'urn:stepup:loa:2',
    amr: ['pwd', 'otp'],
    authTime: T(),
    client: await provider.Client.find(clientId),
    grantId,
    gty: 'authorization_code',
    resource: audience,
    rotations: 0,
    scope: `openid offline_access ${scope}`,
  });
  const value = await rt.save();
  return new URLSearchParams({ grant_type: 'refresh_token', refresh_token: value }).toString();
}

const admin = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://admin');
  const n = Number(url.searchParams.get('n') || '1');
  const kind = url.searchParams.get('kind');
  const mint = kind === 'code' ? mintCode : kind === 'refresh' ? mintRefresh : null;
  if (req.method !== 'POST' || !mint) {
    res.writeHead(404).end();
    return;
  }
  const lines = [];
  for (let i = 0; i < n; i += 1) lines.push(await mint(i));
  res.writeHead(200, { 'content-type': 'text/plain' }).end(`${lines.join('\n')}\n`);
});

provider.listen(Number(env('PEER_PORT')), '127.0.0.1');
admin.listen(Number(env('PEER_ADMIN')), '127.0.0.1');
