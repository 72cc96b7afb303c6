// The passkey page's one job: call WebAuthn with the options the form carries, put the answer
// in the form and submit it. No framework, nothing inline (the page's CSP: script-src 'self').
// The server checks everything; this only moves bytes between the browser and the form.
(function () {
  "use strict";
  var form = document.getElementById("passkey-form");
  if (!form) {
    return;
  }
  var field = form.querySelector("input[name=credential]");
  var button = form.querySelector("button[value=continue]");
  var status = document.getElementById("passkey-status");
  var ceremony = form.getAttribute("data-passkey");

  if (!window.PublicKeyCredential || !navigator.credentials) {
    document.getElementById("no-webauthn").hidden = false;
    button.disabled = true;
    return;
  }

  // WebAuthn Level 3 §5.1.1 JSON <-> ArrayBuffer, for browsers without parse*FromJSON/toJSON.
  function toBuffer(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) {
      out[i] = raw.charCodeAt(i);
    }
    return out.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) {
      raw += String.fromCharCode(bytes[i]);
    }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (c) {
      return { type: c.type, id: toBuffer(c.id) };
    });
  }
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = toBuffer(json.challenge);
    o.user = Object.assign({}, json.user, { id: toBuffer(json.user.id) });
    o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }
  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = toBuffer(json.challenge);
    if (json.allowCredentials) {
      o.allowCredentials = descriptors(json.allowCredentials);
    }
    return o;
  }
  function asJSON(credential) {
    if (typeof credential.toJSON === "function") {
      return credential.toJSON();
    }
    var r = credential.response;
    var response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) {
        response.userHandle = toText(r.userHandle);
      }
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response,
    };
  }
  function explain(error) {
    switch (error && error.name) {
      case "NotAllowedError":
        return "The passkey request was cancelled or timed out. Try again.";
      case "InvalidStateError":
        return "This device already has a passkey for this account: use it to sign in instead.";
      case "SecurityError":
        return "This address cannot use passkeys (it needs a host name, such as localhost).";
      case "NotSupportedError":
        return "This device has no passkey that this site can use.";
      default:
        return "The passkey did not work: " + (error && error.message ? error.message : error);
    }
  }

  form.addEventListener("submit", function (event) {
    if (event.submitter && event.submitter.value === "cancel") {
      return; // a plain post: the server cancels the sign-in
    }
    event.preventDefault();
    var options = JSON.parse(form.getAttribute("data-passkey-options"));
    var call;
    try {
      call = ceremony === "create"
        ? navigator.credentials.create({ publicKey: creationOptions(options) })
        : navigator.credentials.get({ publicKey: requestOptions(options) });
    } catch (error) {
      status.textContent = explain(error);
      return;
    }
    button.disabled = true;
    status.textContent = "Waiting for your passkey…";
    call.then(
      function (credential) {
        field.value = JSON.stringify(asJSON(credential));
        status.textContent = "Checking your passkey…";
        form.submit();
      },
      function (error) {
        button.disabled = false;
        status.textContent = explain(error);
      }
    );
  });
})();
