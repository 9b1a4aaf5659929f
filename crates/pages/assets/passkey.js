// Passkeys on Postern's pages. A form marked data-passkey="create" or "get" asks the server
// for WebAuthn options (data-options, posted with the form's CSRF token), lets the browser
// make or use a passkey, puts the answer into the form's hidden fields (ceremony,
// credential) and submits the form, so the server answers as it does any form: a redirect
// or a page. Binary fields travel as base64url, as the server's JSON has them.
(function () {
  "use strict";
  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) b64 += "=";
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  // Options without their empty (null) members, which the browser's API does not take.
  function dropNulls(value) {
    if (Array.isArray(value)) return value.map(dropNulls);
    if (value && typeof value === "object") {
      var out = {};
      Object.keys(value).forEach(function (k) {
        if (value[k] !== null) out[k] = dropNulls(value[k]);
      });
      return out;
    }
    return value;
  }
  function ids(list) {
    (list || []).forEach(function (c) { c.id = toBytes(c.id); });
  }
  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    ids(o.excludeCredentials);
    return o;
  }
  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    ids(o.allowCredentials);
    return o;
  }
  function answer(credential) {
    var r = credential.response;
    var out = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      extensions: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      out.response.userHandle = r.userHandle ? toText(r.userHandle) : null;
    }
    return out;
  }
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    var status = form.querySelector("[data-passkey-status]");
    var say = function (text) { if (status) status.textContent = text; };
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!window.PublicKeyCredential || !navigator.credentials) {
        say("This browser cannot use passkeys.");
        return;
      }
      say("Waiting for your passkey…");
      var body = new URLSearchParams();
      body.set("csrf", form.elements.csrf.value);
      fetch(form.dataset.options, { method: "POST", body: body, credentials: "same-origin" })
        .then(function (response) {
          return response.json().then(function (json) {
            if (!response.ok) throw new Error(json.error || "Passkeys are unavailable right now.");
            return json;
          });
        })
        .then(function (json) {
          form.elements.ceremony.value = json.ceremony;
          var options = dropNulls(json.options.publicKey);
          return form.dataset.passkey === "create"
            ? navigator.credentials.create({ publicKey: creationOptions(options) })
            : navigator.credentials.get({ publicKey: requestOptions(options) });
        })
        .then(function (credential) {
          form.elements.credential.value = JSON.stringify(answer(credential));
          form.submit();
        })
        .catch(function (e) {
          say(e && e.name === "NotAllowedError"
            ? "No passkey was used. Try again, or use another way."
            : (e && e.message) || "The passkey could not be used.");
        });
    });
  });
})();
