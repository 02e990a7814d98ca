// Meridian web UI: the one way the page talks to the registry (any node or the gateway).
//
// Signing in is the Docker/OCI token flow, never a cookie: the sign-in form trades the password
// once for a refresh token (`GET /oauth2/token?offline_token=true` with Basic credentials); the
// password is not kept. The refresh token lives in sessionStorage (this tab only) and buys
// short-lived access tokens for the scopes each request needs (`POST /oauth2/token`,
// grant_type=refresh_token), cached until they expire. Every request carries its token in the
// Authorization header with `credentials: 'omit'`, so the browser never attaches ambient
// credentials and no other site can make the page's requests (no CSRF to defend against), and a
// 401 never opens the browser's own password prompt. With auth off no token is ever needed.
(function () {
  'use strict';

  var ROOT = new URL('../', location.href);
  var KEY = 'meridian-session';
  var tokens = new Map(); // scope key -> Promise<{token, exp, granted: {scope -> actions[]}}>
  var listeners = [];
  var session = load(); // {user, refresh} | null
  var authSeen = false; // a 401 was answered: auth is on

  function load() {
    try {
      var s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
      return s && typeof s.refresh === 'string' && typeof s.user === 'string' ? s : null;
    } catch (e) {
      return null;
    }
  }
  function save() {
    try {
      if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
      else sessionStorage.removeItem(KEY);
    } catch (e) {
      /* private mode: the session lasts as long as the page */
    }
  }

  function signInRequired(message) {
    var e = new Error(message || 'sign in to see this registry');
    e.signIn = true;
    listeners.forEach(function (fn) {
      fn(e.message);
    });
    return e;
  }

  /** An error with the OCI error body's message, and the status. */
  function apiError(res, body) {
    var first = body && body.errors && body.errors[0];
    var e = new Error((first && first.message) || 'HTTP ' + res.status);
    e.status = res.status;
    e.code = first && first.code;
    return e;
  }

  /** `repository:a:pull,delete registry:catalog:*` → {"repository:a": ["pull", "delete"], …} */
  function parseGranted(scope) {
    var out = {};
    String(scope || '')
      .split(' ')
      .forEach(function (s) {
        var i = s.lastIndexOf(':');
        if (i > 0) out[s.slice(0, i)] = s.slice(i + 1).split(',');
      });
    return out;
  }

  function tokenResponse(res) {
    return res.json().then(
      function (body) {
        if (!res.ok) throw apiError(res, body);
        return body;
      },
      function () {
        throw apiError(res, null);
      },
    );
  }

  function remember(key, body) {
    var t = {
      token: body.access_token || body.token,
      exp: Date.now() + Math.max(30, Number(body.expires_in) || 60) * 1000,
      granted: parseGranted(body.scope),
    };
    tokens.set(key, Promise.resolve(t));
    return t;
  }

  /** An access token for these scopes (cached), from the refresh token. */
  function tokenFor(scopes) {
    var key = scopes.slice().sort().join(' ');
    var cached = tokens.get(key);
    if (cached)
      return cached.then(function (t) {
        if (t.exp > Date.now() + 15000) return t;
        tokens.delete(key);
        return tokenFor(scopes);
      });
    if (!session) return Promise.reject(signInRequired());
    var form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: session.refresh });
    scopes.forEach(function (s) {
      form.append('scope', s);
    });
    var p = fetch(new URL('oauth2/token', ROOT), {
      method: 'POST',
      credentials: 'omit',
      cache: 'no-store',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: form,
    })
      .then(tokenResponse)
      .then(
        function (body) {
          return remember(key, body);
        },
        function (err) {
          tokens.delete(key);
          if (err.status === 401) {
            signOut();
            throw signInRequired('your session has ended: sign in again');
          }
          throw err;
        },
      );
    tokens.set(key, p);
    return p;
  }

  /** The scope a Bearer challenge asks for, if any. */
  function challengeScope(header) {
    var m = /scope="([^"]*)"/.exec(header || '');
    return m ? m[1] : null;
  }

  /**
   * A request to the registry, relative to its root (`acr/v1/_catalog`, `v2/…`). `opts.scopes`
   * are asked for up front; a 401 naming another scope gets a token for it and one retry.
   */
  function request(path, opts) {
    opts = opts || {};
    var url = new URL(path, ROOT);
    var scopes = opts.scopes || [];
    var send = function (token) {
      var headers = Object.assign({ Accept: 'application/json' }, opts.headers || {});
      if (token) headers.Authorization = 'Bearer ' + token;
      return fetch(url, {
        method: opts.method || 'GET',
        headers: headers,
        body: opts.body,
        credentials: 'omit',
        cache: 'no-store',
      });
    };
    var first = session
      ? tokenFor(scopes).then(function (t) {
          return t.token;
        })
      : Promise.resolve(null);
    return first.then(send).then(function (res) {
      if (res.status !== 401) return res;
      authSeen = true;
      if (!session) throw signInRequired();
      var need = challengeScope(res.headers.get('www-authenticate'));
      if (!need || scopes.indexOf(need) >= 0) return res;
      return tokenFor(scopes.concat([need])).then(function (t) {
        return send(t.token);
      });
    });
  }

  /** `request` and the JSON body; a non-2xx answer throws with the error body's message. */
  function json(path, opts) {
    return request(path, opts).then(function (res) {
      if (res.status === 202 || res.status === 204)
        return { body: null, headers: res.headers, status: res.status };
      return res.json().then(
        function (body) {
          if (!res.ok) throw apiError(res, body);
          return { body: body, headers: res.headers, status: res.status };
        },
        function () {
          throw apiError(res, null);
        },
      );
    });
  }

  /**
   * What this identity may do on a repository: the actions its token was granted (all of them
   * when auth is off). Actions: pull, metadata_read, metadata_write, delete.
   */
  function allowedOn(repository) {
    var scope = 'repository:' + repository + ':pull,metadata_read,metadata_write,delete';
    if (!session) return Promise.resolve(authSeen ? [] : ['*']);
    return tokenFor([scope]).then(function (t) {
      return t.granted['repository:' + repository] || [];
    });
  }

  /** Signs in: the password buys a refresh token, then is forgotten. */
  function signIn(user, password) {
    var url = new URL('oauth2/token', ROOT);
    url.searchParams.set('offline_token', 'true');
    var bin = '';
    new TextEncoder().encode(user + ':' + password).forEach(function (b) {
      bin += String.fromCharCode(b);
    });
    var basic = btoa(bin);
    return fetch(url, {
      credentials: 'omit',
      cache: 'no-store',
      headers: { Authorization: 'Basic ' + basic, Accept: 'application/json' },
    }).then(function (res) {
      return tokenResponse(res).then(
        function (body) {
          if (!body.refresh_token) throw new Error('the registry issued no session for ' + user);
          session = { user: user, refresh: body.refresh_token };
          tokens.clear();
          remember('', body);
          save();
          return session;
        },
        function (err) {
          if (err.status === 401) err.message = 'wrong username or password';
          if (err.status === 429)
            err.message =
              'too many failed sign-ins: try again in ' +
              (res.headers.get('retry-after') || 'a few') +
              ' s';
          throw err;
        },
      );
    });
  }

  function signOut() {
    session = null;
    tokens.clear();
    save();
  }

  window.MeridianApi = {
    request: request,
    json: json,
    allowedOn: allowedOn,
    signIn: signIn,
    signOut: signOut,
    user: function () {
      return session ? session.user : null;
    },
    /** Called with a message whenever a request needs a signed-in identity. */
    onSignInRequired: function (fn) {
      listeners.push(fn);
    },
  };
})();
