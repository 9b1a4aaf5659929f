// An MCP client logging in with the official TypeScript SDK's OAuth support, the way an agent
// does: it knows only the MCP server's URL, discovers Postern from the server's protected
// resource metadata (RFC 9728), registers itself (RFC 7591, or names itself by its client ID
// metadata document, below), sends the person's browser to
// Postern (PKCE, `resource`), takes the code at its own localhost callback and calls the server
// with the token. The Rust test (crates/server/tests/api/mcp.rs) plays the person, in Chromium.
//
// With AGENT_DOCUMENT_CERT and AGENT_DOCUMENT_KEY (PEM files for 127.0.0.1), the agent instead
// publishes its client ID metadata document at https://127.0.0.1:PORT/client.json and names
// itself by that URL, as the SDK does when discovery says `client_id_metadata_document_supported`.
//
// Usage: node agent.mjs MCP_SERVER_URL OTHER_SERVER_URL
// Prints, one per line: `REGISTERED <client_id>`, `AUTHORIZE <url>`, `CALL <status> <body>`,
// `OTHER <status>`, then `DONE`; exits non-zero on any failure.

import { auth } from "@modelcontextprotocol/sdk/client/auth.js";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";

const [serverUrl, otherUrl] = process.argv.slice(2);
if (!serverUrl || !otherUrl) {
  console.error("usage: node agent.mjs MCP_SERVER_URL OTHER_SERVER_URL");
  process.exit(2);
}

// The agent's own callback: a loopback listener on a port the system picks, named localhost.
let deliverCode;
const codeArrived = new Promise((resolve) => (deliverCode = resolve));
const callback = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (url.pathname !== "/callback") {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end("<!doctype html><title>Agent</title><p>Agent: authorization received</p>");
  deliverCode(url.searchParams);
});
await new Promise((resolve) => callback.listen(0, "127.0.0.1", resolve));
const redirectUrl = `http://localhost:${callback.address().port}/callback`;

const clientMetadata = {
  client_name: "MCP test agent",
  redirect_uris: [redirectUrl],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "none",
};

// The client ID metadata document, served over https by the agent itself.
let clientMetadataUrl;
let documentServer;
if (process.env.AGENT_DOCUMENT_CERT && process.env.AGENT_DOCUMENT_KEY) {
  let document;
  documentServer = https.createServer(
    { cert: fs.readFileSync(process.env.AGENT_DOCUMENT_CERT), key: fs.readFileSync(process.env.AGENT_DOCUMENT_KEY) },
    (req, res) => {
      if (req.url !== "/client.json") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "cache-control": "max-age=300" });
      res.end(JSON.stringify(document));
    },
  );
  await new Promise((resolve) => documentServer.listen(0, "127.0.0.1", resolve));
  clientMetadataUrl = `https://127.0.0.1:${documentServer.address().port}/client.json`;
  document = { client_id: clientMetadataUrl, ...clientMetadata };
}

const store = {};
const provider = {
  clientMetadataUrl,
  get redirectUrl() {
    return redirectUrl;
  },
  get clientMetadata() {
    return clientMetadata;
  },
  state: () => "agent-state",
  clientInformation: () => store.client,
  saveClientInformation: (info) => {
    store.client = info;
    console.log(`REGISTERED ${info.client_id}`);
  },
  tokens: () => store.tokens,
  saveTokens: (tokens) => {
    store.tokens = tokens;
  },
  redirectToAuthorization: (url) => {
    console.log(`AUTHORIZE ${url.href}`);
  },
  saveCodeVerifier: (verifier) => {
    store.verifier = verifier;
  },
  codeVerifier: () => store.verifier,
};

try {
  const first = await auth(provider, { serverUrl });
  if (first !== "REDIRECT") throw new Error(`expected a redirect to Postern, got ${first}`);
  const params = await codeArrived;
  if (params.get("state") !== "agent-state") throw new Error(`state came back as ${params.get("state")}`);
  if (!params.get("code")) throw new Error(`no code: ${params}`);
  const second = await auth(provider, { serverUrl, authorizationCode: params.get("code") });
  if (second !== "AUTHORIZED") throw new Error(`expected tokens, got ${second}`);

  const bearer = { authorization: `Bearer ${store.tokens.access_token}` };
  const call = await fetch(serverUrl, { headers: bearer });
  console.log(`CALL ${call.status} ${(await call.text()).replace(/\s+/g, " ")}`);
  const other = await fetch(otherUrl, { headers: bearer });
  console.log(`OTHER ${other.status}`);
  console.log("DONE");
  process.exit(0);
} catch (error) {
  console.error(`agent failed: ${error?.stack ?? error}`);
  process.exit(1);
}
