// A foreign DPoP client: panva's oauth4webapi (npm) against the stack's provider and demo bank.
//
// Run by tests/foreign/test_oauth4webapi_dpop.py, which copies this file next to its npm install
// (outside the repository) and runs:  node oauth4webapi_dpop.mjs ISSUER API CLIENT_ID REDIRECT_URI
//
// It talks JSON lines with the test: it prints {"authorization_url", "jkt"}; the test signs the
// user in with that URL and writes back the URL the provider redirected to; it exchanges the code
// with a DPoP proof, calls the API with proofs, and prints what happened. Every use_dpop_nonce is
// retried once, as oauth4webapi's documentation asks of its callers (isDPoPNonceError).
import * as oauth from 'oauth4webapi'
import { createInterface } from 'node:readline'

const [issuerUrl, apiUrl, clientId, redirectUri] = process.argv.slice(2)
const insecure = { [oauth.allowInsecureRequests]: true } // the servers listen on http://127.0.0.1
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const say = (value) => process.stdout.write(JSON.stringify(value) + '\n')

const issuer = new URL(issuerUrl)
const as = await oauth.processDiscoveryResponse(
  issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }))
const client = { client_id: clientId }
const keyPair = await oauth.generateKeyPair('ES256')
const DPoP = oauth.DPoP(client, keyPair)
const jkt = await DPoP.calculateThumbprint()

const verifier = oauth.generateRandomCodeVerifier()
const state = oauth.generateRandomState()
const nonce = oauth.generateRandomNonce()
const url = new URL(as.authorization_endpoint)
url.search = new URLSearchParams({
  response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope: 'openid',
  state, nonce, code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256', dpop_jkt: jkt,
}).toString()
say({ authorization_url: url.href, jkt })

const callback = new URL((await lines.next()).value)
const params = oauth.validateAuthResponse(as, client, callback, state)

// Retries once when the server asks for a nonce; counts the asks.
async function withNonceRetry (what, attempt) {
  try {
    return { result: await attempt(), nonceRetries: 0 }
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    return { result: await attempt(), nonceRetries: 1 }
  }
}

const token = await withNonceRetry('token', async () => oauth.processAuthorizationCodeResponse(
  as, client,
  await oauth.authorizationCodeGrantRequest(
    as, client, oauth.None(), params, redirectUri, verifier, { DPoP, ...insecure }),
  { expectedNonce: nonce }))

async function call (method, path, body) {
  const headers = new Headers({ accept: 'application/json' })
  if (body !== undefined) headers.set('content-type', 'application/json')
  return withNonceRetry(path, async () => {
    const response = await oauth.protectedResourceRequest(
      token.result.access_token, method, new URL(path, apiUrl), headers,
      body === undefined ? null : JSON.stringify(body), { DPoP, ...insecure })
    return { status: response.status, body: await response.json() }
  })
}

const accounts = await call('GET', '/accounts')
// A transfer needs a step-up: oauth4webapi reports the challenge it parsed.
let transfer
try {
  const ids = accounts.result.body.accounts.map((a) => a.id)
  await call('POST', '/transfers', { from_account: ids[0], to_account: ids[1], amount: '1.00' })
  transfer = { challenged: false }
} catch (err) {
  if (!(err instanceof oauth.WWWAuthenticateChallengeError)) throw err
  transfer = { challenged: true, status: err.status, challenges: err.cause }
}
say({
  token_type: token.result.token_type,
  access_token: token.result.access_token,
  token_nonce_retries: token.nonceRetries,
  accounts: accounts.result,
  accounts_nonce_retries: accounts.nonceRetries,
  transfer,
})
process.exit(0)
