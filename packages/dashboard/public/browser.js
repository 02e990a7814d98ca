// Meridian web UI: the registry browser (repositories, a repository's tags, a manifest with its
// platforms, layers, config, referrers and replication), the sign-in form and the view router.
// Reads `/acr/v1` (ACR's data plane), `/v2` and `/meridian/v1` through api.js. Every value
// from the registry (names, tags, labels, annotations) is attacker-controlled: it only ever
// reaches the page as text (textContent, setAttribute), never as HTML.
(function () {
  'use strict';

  var api = window.MeridianApi;
  var MANIFEST_TYPES = [
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v2+json',
  ].join(', ');
  /** Repositories whose details (size, pulls) are read at once in the list. */
  var DETAILED = 60;
  /** Tags whose replication is read (one request each). */
  var REPLICATION_TAGS = 50;

  var view = 0; // bumped on every navigation: late answers of an old view are dropped
  var catalog = null; // {names, total, details: {name -> Promise}} while on the list

  // ---- small helpers ------------------------------------------------------------------------

  function $(sel) {
    return document.querySelector(sel);
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }
  function td(label, content, cls) {
    return el('td', { 'data-label': label, class: cls }, [
      content instanceof Node ? content : String(content),
    ]);
  }
  function fmtBytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return '—';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    var i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i === 0 || n >= 100 ? Math.round(n) : n.toFixed(1)) + ' ' + units[i];
  }
  function fmtAgo(iso) {
    if (!iso) return '—';
    var s = (Date.now() - Date.parse(iso)) / 1000;
    if (!isFinite(s)) return '—';
    if (s < 5) return 'just now';
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }
  function when(iso) {
    return el('time', { datetime: iso || undefined, title: iso || undefined, text: fmtAgo(iso) });
  }
  function short(d) {
    if (!d) return '—';
    var i = d.indexOf(':');
    return d.slice(0, i + 1) + d.slice(i + 1, i + 13);
  }
  function digestEl(d) {
    return el('span', { class: 'mono', title: d, text: short(d) });
  }
  function link(hash, text, cls) {
    return el('a', { href: hash, text: text, class: cls });
  }
  function repoHash(name) {
    return '#/repository/' + encodeURIComponent(name);
  }
  function manifestHash(name, ref) {
    return '#/manifest/' + encodeURIComponent(name) + (ref.indexOf(':') >= 0 ? '@' : ':') + ref;
  }
  function scopeOf(name) {
    return ['repository:' + name + ':pull,metadata_read,metadata_write,delete'];
  }
  function acr(name, rest) {
    // Repository names keep their slashes; tags and digests are one encoded segment.
    return 'acr/v1/' + name + (rest || '');
  }
  function platformText(m) {
    if (m.references && m.references.length)
      return m.references
        .filter(function (r) {
          return r.os || r.architecture;
        })
        .map(function (r) {
          return (r.os || '?') + '/' + (r.architecture || '?');
        })
        .join(', ');
    return m.os || m.architecture ? (m.os || '?') + '/' + (m.architecture || '?') : '—';
  }
  function locked(lock) {
    return !!lock && (lock.writeEnabled === false || lock.deleteEnabled === false);
  }
  function lockBadge(lock) {
    if (!lock) return '—';
    var off = ['deleteEnabled', 'writeEnabled', 'readEnabled', 'listEnabled'].filter(function (k) {
      return lock[k] === false;
    });
    if (!off.length) return '—';
    var by = lock.lockedBy || {};
    return el('span', {
      class: 'badge warn',
      'data-lock': 'locked',
      text: 'locked',
      title: off
        .map(function (k) {
          return k + '=false' + (by[k] ? ' (' + by[k] + ')' : '');
        })
        .join('; '),
    });
  }
  function dots(states) {
    if (!states) return el('span', { class: 'muted', text: '—' });
    return el(
      'span',
      { class: 'dots' },
      states.map(function (r) {
        var label =
          r.region +
          ': ' +
          r.state +
          (r.replicatedAt ? ' ' + fmtAgo(r.replicatedAt) : '') +
          (r.role === 'primary' ? ' (primary)' : '');
        return el('span', {
          class: 'dot',
          role: 'img',
          'aria-label': label,
          title: label,
          'data-region': r.region,
          'data-state': r.state,
        });
      }),
    );
  }
  function section(title, children, attrs) {
    return el('section', attrs || {}, [el('h2', { text: title })].concat(children));
  }
  function problem(err) {
    return el('p', { class: 'banner', role: 'alert', text: err.message || String(err) });
  }
  function host() {
    return location.host;
  }

  /** `docker pull` for the name this page is served under, with a copy button. */
  function pullCommand(name, ref, servedBy) {
    var cmd = 'docker pull ' + host() + '/' + name + (ref.indexOf(':') >= 0 ? '@' : ':') + ref;
    var code = el('code', { text: cmd, 'data-pull': '' });
    var button = el('button', { type: 'button', text: 'Copy' });
    button.addEventListener('click', function () {
      var done = function () {
        button.textContent = 'Copied';
      };
      var select = function () {
        var r = document.createRange();
        r.selectNodeContents(code);
        var s = getSelection();
        s.removeAllRanges();
        s.addRange(r);
        button.textContent = 'Press Ctrl+C';
      };
      if (navigator.clipboard) navigator.clipboard.writeText(cmd).then(done, select);
      else select();
    });
    return el('div', {}, [
      el('div', { class: 'pull' }, [code, button]),
      el('p', {
        class: 'muted',
        text: servedBy
          ? 'Pulls through ' +
            host() +
            ' are served by the nearest healthy region: ' +
            servedBy +
            '.'
          : 'Pull from this region.',
      }),
    ]);
  }

  function servedBy(res) {
    return res && res.headers ? res.headers.get('x-meridian-region') : null;
  }

  /** Renders into the browser view if it is still the current one. */
  function mount(seq, nodes) {
    if (seq !== view) return;
    var main = $('#browser');
    main.textContent = '';
    nodes.forEach(function (n) {
      if (n) main.appendChild(n);
    });
  }

  function failed(seq, err) {
    if (err && err.signIn) return;
    mount(seq, [crumbs([]), problem(err)]);
  }

  function crumbs(parts) {
    return el(
      'h2',
      { class: 'crumbs' },
      [link('#/repositories', 'Repositories')].concat(
        parts.reduce(function (a, p) {
          return a.concat([el('span', { class: 'muted', text: '/' }), p]);
        }, []),
      ),
    );
  }

  /** An action that changes something: confirm, send, then show the view again. */
  function act(label, question, run, after, cls) {
    var b = el('button', { type: 'button', text: label, class: cls });
    b.addEventListener('click', function () {
      if (question && !window.confirm(question)) return;
      b.disabled = true;
      run().then(after, function (err) {
        b.disabled = false;
        if (err && err.signIn) return;
        window.alert(label + ' failed: ' + err.message);
      });
    });
    return b;
  }

  function patchLock(path, lock) {
    var flags = lock
      ? { writeEnabled: false, deleteEnabled: false }
      : { writeEnabled: true, deleteEnabled: true };
    return api.json(path, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(flags),
    });
  }

  // ---- repositories -------------------------------------------------------------------------

  function repositoryDetails(name) {
    var opts = { scopes: scopeOf(name) };
    return Promise.all([
      api.json(acr(name), opts),
      api.json(acr(name, '/_manifests?n=1000'), opts),
    ]).then(function (r) {
      var repo = r[0].body;
      var manifests = r[1].body.manifests || [];
      var lastPull = manifests.reduce(function (a, m) {
        return m.lastPulledTime && (!a || m.lastPulledTime > a) ? m.lastPulledTime : a;
      }, null);
      return {
        tags: repo.tagCount,
        size: manifests.reduce(function (a, m) {
          return a + (m.imageSize || 0);
        }, 0),
        lastPush: repo.lastUpdateTime,
        lastPull: lastPull,
      };
    });
  }

  function renderRepositories(q) {
    var seq = ++view;
    var load = catalog
      ? Promise.resolve(catalog)
      : api.json('acr/v1/_catalog?n=1000', { scopes: ['registry:catalog:*'] }).then(function (r) {
          catalog = {
            details: {},
            names: r.body.repositories || [],
            total: Number(r.headers.get('x-total-count')) || (r.body.repositories || []).length,
          };
          return catalog;
        });
    load.then(
      function (c) {
        var needle = (q || '').toLowerCase();
        var names = c.names.filter(function (n) {
          return n.toLowerCase().indexOf(needle) >= 0;
        });
        var search = el('input', {
          type: 'search',
          id: 'repo-search',
          placeholder: 'Search repositories',
          'aria-label': 'Search repositories',
          value: q || '',
        });
        var timer = null;
        search.addEventListener('input', function () {
          clearTimeout(timer);
          timer = setTimeout(function () {
            // The user may have moved on (clicked a repository) while the timer ran: never pull
            // them back to the list.
            if (seq !== view) return;
            history.replaceState(
              null,
              '',
              '#/repositories' + (search.value ? '?q=' + encodeURIComponent(search.value) : ''),
            );
            renderRepositories(search.value);
            var again = $('#repo-search');
            again.focus();
            again.setSelectionRange(again.value.length, again.value.length);
          }, 200);
        });
        var tbody = el('tbody');
        var shown = names.slice(0, DETAILED);
        shown.forEach(function (n) {
          var row = el('tr', { 'data-repository': n }, [
            td('Repository', link(repoHash(n), n, 'mono')),
            td('Tags', '…', 'num'),
            td('Size', '…', 'num'),
            td('Last push', '…'),
            td('Last pull', '…'),
          ]);
          tbody.appendChild(row);
          // Read once per visit of the list: typing in the search box does not read them again.
          if (!c.details[n]) c.details[n] = repositoryDetails(n);
          c.details[n].then(
            function (d) {
              var cells = row.querySelectorAll('td');
              cells[1].textContent = String(d.tags);
              cells[2].textContent = fmtBytes(d.size);
              cells[2].title =
                "Sum of its manifests' sizes (a layer two manifests share counts twice)";
              cells[3].textContent = '';
              cells[3].appendChild(when(d.lastPush));
              cells[4].textContent = '';
              cells[4].appendChild(
                d.lastPull ? when(d.lastPull) : document.createTextNode('never'),
              );
            },
            function (err) {
              var cells = row.querySelectorAll('td');
              for (var i = 1; i < cells.length; i++) cells[i].textContent = '—';
              cells[1].title = err.message;
            },
          );
        });
        mount(seq, [
          crumbs([]),
          el('div', { class: 'toolbar' }, [
            search,
            el('span', {
              class: 'muted',
              id: 'repo-count',
              text:
                names.length +
                ' of ' +
                c.total +
                ' repositories' +
                (names.length > shown.length ? ' (first ' + shown.length + ' shown)' : ''),
            }),
          ]),
          el('table', { id: 'repositories', class: 'stack' }, [
            el('thead', {}, [
              el('tr', {}, [
                el('th', { text: 'Repository' }),
                el('th', { text: 'Tags' }),
                el('th', { text: 'Size' }),
                el('th', { text: 'Last push' }),
                el('th', { text: 'Last pull' }),
              ]),
            ]),
            tbody,
          ]),
          names.length ? null : el('p', { class: 'muted', text: 'No repository matches.' }),
        ]);
      },
      failed.bind(null, seq),
    );
  }

  // ---- a repository -------------------------------------------------------------------------

  var tagOrder = 'timedesc';

  function renderRepository(name) {
    var seq = ++view;
    var opts = { scopes: scopeOf(name) };
    Promise.all([
      api.allowedOn(name),
      api.json(acr(name), opts),
      api.json(acr(name, '/_tags?n=1000&orderby=' + tagOrder), opts),
      api.json(acr(name, '/_manifests?n=1000'), opts),
    ]).then(
      function (r) {
        var allowed = r[0];
        var may = function (a) {
          return allowed.indexOf('*') >= 0 || allowed.indexOf(a) >= 0;
        };
        var repo = r[1].body;
        var tags = r[2].body.tags || [];
        var byDigest = {};
        (r[3].body.manifests || []).forEach(function (m) {
          byDigest[m.digest] = m;
        });
        var again = function () {
          catalog = null;
          renderRepository(name);
        };
        var tbody = el('tbody');
        tags.forEach(function (t, i) {
          var m = byDigest[t.digest] || {};
          var repl = el('span', { class: 'muted', text: i < REPLICATION_TAGS ? '…' : '—' });
          var actions = el('div', { class: 'actions' }, [
            may('metadata_write')
              ? locked(t.changeableAttributes)
                ? act(
                    'Unlock',
                    null,
                    function () {
                      return patchLock(acr(name, '/_tags/' + encodeURIComponent(t.name)), false);
                    },
                    again,
                  )
                : act(
                    'Lock',
                    null,
                    function () {
                      return patchLock(acr(name, '/_tags/' + encodeURIComponent(t.name)), true);
                    },
                    again,
                  )
              : null,
            may('delete')
              ? act(
                  'Delete',
                  'Delete tag ' + name + ':' + t.name + '? The manifest stays.',
                  function () {
                    return api.json(acr(name, '/_tags/' + encodeURIComponent(t.name)), {
                      method: 'DELETE',
                    });
                  },
                  again,
                  'danger',
                )
              : null,
          ]);
          tbody.appendChild(
            el('tr', { 'data-tag': t.name }, [
              td('Tag', link(manifestHash(name, t.name), t.name, 'mono')),
              td('Digest', link(manifestHash(name, t.digest), short(t.digest), 'mono')),
              td('Size', fmtBytes(m.imageSize), 'num'),
              td('Platforms', platformText(m)),
              td('Lock', lockBadge(t.effectiveLock)),
              td('Pushed', when(t.lastUpdateTime)),
              td('Last pull', t.lastPulledTime ? when(t.lastPulledTime) : 'never'),
              td('Replication', repl),
              td('Actions', actions),
            ]),
          );
          if (i < REPLICATION_TAGS)
            api
              .json(
                'meridian/v1/replication/status?repository=' +
                  encodeURIComponent(name) +
                  '&reference=' +
                  encodeURIComponent(t.name),
              )
              .then(
                function (s) {
                  repl.replaceWith(dots(s.body.regions));
                },
                function () {
                  repl.textContent = '—'; // a single node: no replication to show
                },
              );
        });
        // Neither tagged, nor a platform of an index, nor a signature/SBOM of another manifest.
        var children = {};
        Object.keys(byDigest).forEach(function (d) {
          (byDigest[d].references || []).forEach(function (r) {
            children[r.digest] = true;
          });
        });
        var untagged = Object.keys(byDigest)
          .map(function (d) {
            return byDigest[d];
          })
          .filter(function (m) {
            return (!m.tags || !m.tags.length) && !m.subject && !children[m.digest];
          });
        var order = el('button', {
          type: 'button',
          id: 'tag-order',
          text: tagOrder === 'timedesc' ? 'Newest first' : 'Oldest first',
          title: 'Sort the tags by when they were pushed',
        });
        order.addEventListener('click', function () {
          tagOrder = tagOrder === 'timedesc' ? 'timeasc' : 'timedesc';
          renderRepository(name);
        });
        var first = tags[0] ? tags[0].name : 'latest';
        var bin = el('div');
        mount(seq, [
          crumbs([el('span', { class: 'mono', text: name })]),
          el('p', {
            class: 'muted',
            text:
              repo.tagCount +
              ' tags, ' +
              repo.manifestCount +
              ' manifests, last pushed ' +
              fmtAgo(repo.lastUpdateTime) +
              (locked(repo.effectiveLock) ? ' · repository locked' : ''),
          }),
          pullCommand(name, first, servedBy(r[1])),
          section('Tags', [
            el('div', { class: 'toolbar' }, [order]),
            el('table', { id: 'tags', class: 'stack' }, [
              el('thead', {}, [
                el(
                  'tr',
                  {},
                  [
                    'Tag',
                    'Digest',
                    'Size',
                    'Platforms',
                    'Lock',
                    'Pushed',
                    'Last pull',
                    'Replication',
                    '',
                  ].map(function (h) {
                    return el('th', { text: h });
                  }),
                ),
              ]),
              tbody,
            ]),
            tags.length ? null : el('p', { class: 'muted', text: 'No tags.' }),
          ]),
          untagged.length
            ? section('Untagged manifests', [
                el(
                  'ul',
                  { class: 'tree' },
                  untagged.map(function (m) {
                    return el('li', {}, [
                      link(manifestHash(name, m.digest), m.digest, 'mono'),
                      ' ' + fmtBytes(m.imageSize) + ', ' + platformText(m),
                    ]);
                  }),
                ),
              ])
            : null,
          bin,
        ]);
        recycleBin(name, bin, again);
      },
      function (err) {
        if (err.status !== 404) return failed(seq, err);
        // Nothing left in it — its last manifest may still be in the recycle bin.
        var bin = el('div');
        mount(seq, [
          crumbs([el('span', { class: 'mono', text: name })]),
          el('p', { class: 'muted', text: err.message }),
          bin,
        ]);
        recycleBin(name, bin, function () {
          renderRepository(name);
        });
      },
    );
  }

  /** The recycle bin (soft delete), for identities that may restore: shown only when readable. */
  function recycleBin(name, into, after) {
    api
      .json('meridian/v1/admin/deleted?repository=' + encodeURIComponent(name))
      .then(function (r) {
        var items = (r.body && r.body.manifests) || [];
        if (!items.length) return;
        into.appendChild(
          section(
            'Recycle bin',
            [
              el('table', { class: 'stack' }, [
                el('thead', {}, [
                  el(
                    'tr',
                    {},
                    ['Digest', 'Tags', 'Size', 'Deleted', 'Expires', ''].map(function (h) {
                      return el('th', { text: h });
                    }),
                  ),
                ]),
                el(
                  'tbody',
                  {},
                  items.map(function (m) {
                    return el('tr', { 'data-deleted': m.digest }, [
                      td('Digest', digestEl(m.digest)),
                      td('Tags', (m.tags || []).join(', ') || '—'),
                      td('Size', fmtBytes(m.size), 'num'),
                      td('Deleted', when(m.deletedAt)),
                      td('Expires', el('span', { text: m.expiresAt, class: 'muted' })),
                      td(
                        'Actions',
                        act(
                          'Restore',
                          null,
                          function () {
                            return api.json('meridian/v1/admin/deleted/restore', {
                              method: 'POST',
                              headers: { 'Content-Type': 'application/json' },
                              body: JSON.stringify({ repository: name, digest: m.digest }),
                            });
                          },
                          after,
                        ),
                      ),
                    ]);
                  }),
                ),
              ]),
            ],
            { id: 'recycle-bin' },
          ),
        );
      })
      .catch(function () {
        /* not an Owner, or soft delete off: no bin to show */
      });
  }

  // ---- a manifest ---------------------------------------------------------------------------

  /** What kind of referrer an artifact type (or a config media type) names. */
  function referrerKind(type) {
    var t = String(type || '').toLowerCase();
    if (/sig|signature|notary/.test(t)) return 'signature';
    if (/spdx|cyclonedx|sbom|syft/.test(t)) return 'SBOM';
    if (/in-toto|attest|provenance|slsa|vuln|sarif/.test(t)) return 'attestation';
    return 'artifact';
  }

  /** The referrers of a manifest and theirs, two levels deep. */
  function referrersTree(name, digest, depth) {
    return api
      .json('v2/' + name + '/referrers/' + digest, { scopes: scopeOf(name) })
      .then(function (r) {
        var list = (r.body && r.body.manifests) || [];
        return Promise.all(
          list.map(function (d) {
            var below = depth > 0 ? referrersTree(name, d.digest, depth - 1) : Promise.resolve([]);
            return below.then(function (children) {
              return { desc: d, children: children };
            });
          }),
        );
      });
  }

  function treeList(name, nodes) {
    return el(
      'ul',
      { class: 'tree' },
      nodes.map(function (n) {
        var d = n.desc;
        var type = d.artifactType || d.mediaType;
        var kind = referrerKind(type);
        var created = d.annotations && d.annotations['org.opencontainers.image.created'];
        return el('li', { 'data-referrer': kind, 'data-digest': d.digest }, [
          el('span', { class: 'badge ok', text: kind }),
          ' ',
          link(manifestHash(name, d.digest), short(d.digest), 'mono'),
          ' ',
          el('span', { class: 'muted mono', text: type || '' }),
          created ? el('span', { class: 'muted', text: ' · ' + created }) : null,
          n.children.length ? treeList(name, n.children) : null,
        ]);
      }),
    );
  }

  function kvList(obj, id) {
    var keys = Object.keys(obj || {}).sort();
    if (!keys.length) return el('p', { class: 'muted', text: 'None.' });
    return el(
      'dl',
      { class: 'kv', id: id },
      keys.reduce(function (a, k) {
        return a.concat([el('dt', { class: 'mono', text: k }), el('dd', { text: String(obj[k]) })]);
      }, []),
    );
  }

  function renderManifest(name, reference) {
    var seq = ++view;
    var opts = { scopes: scopeOf(name) };
    var ref = encodeURIComponent(reference).replace(/%3A/g, ':');
    Promise.all([api.allowedOn(name), api.json(acr(name, '/_manifests/' + ref), opts)])
      .then(function (r) {
        var attrs = r[1].body.manifest;
        return api
          .request('v2/' + name + '/manifests/' + attrs.digest, {
            scopes: opts.scopes,
            headers: { Accept: MANIFEST_TYPES },
          })
          .then(function (res) {
            if (!res.ok) throw new Error('reading the manifest: HTTP ' + res.status);
            return res.json();
          })
          .then(function (raw) {
            return { allowed: r[0], attrs: attrs, raw: raw, servedBy: servedBy(r[1]) };
          });
      })
      .then(function (x) {
        var allowed = x.allowed;
        var may = function (a) {
          return allowed.indexOf('*') >= 0 || allowed.indexOf(a) >= 0;
        };
        var a = x.attrs;
        var raw = x.raw;
        var digest = a.digest;
        var isIndex = Array.isArray(raw.manifests);
        var again = function () {
          renderManifest(name, reference);
        };
        var refs = el('div', { id: 'referrers' }, [el('p', { class: 'muted', text: '…' })]);
        var config = el('div', { id: 'config' });
        var overview = {
          Digest: digest,
          'Media type': a.mediaType,
          'Artifact type': a.artifactType,
          Size: fmtBytes(a.imageSize),
          Platform: isIndex ? undefined : platformText(a),
          Tags: (a.tags || []).join(', ') || '—',
          Pushed: a.createdTime,
          'Last pull': a.lastPulledTime
            ? a.lastPulledTime + ' (' + (a.pullCount || 0) + ' pulls)'
            : 'never',
        };
        Object.keys(overview).forEach(function (k) {
          if (overview[k] === undefined) delete overview[k];
        });
        var actions = el('div', { class: 'actions' }, [
          may('metadata_write')
            ? act(
                locked(a.changeableAttributes) ? 'Unlock' : 'Lock',
                null,
                function () {
                  return patchLock(
                    acr(name, '/_manifests/' + digest),
                    !locked(a.changeableAttributes),
                  );
                },
                again,
              )
            : null,
          may('delete')
            ? act(
                'Delete manifest',
                'Delete ' + name + '@' + digest + ' and every tag that points to it?',
                function () {
                  return api.json(acr(name, '/_manifests/' + digest), { method: 'DELETE' });
                },
                function () {
                  catalog = null;
                  location.hash = repoHash(name);
                },
                'danger',
              )
            : null,
        ]);
        var platforms = isIndex
          ? section('Platforms', [
              el('table', { id: 'platforms', class: 'stack' }, [
                el('thead', {}, [
                  el(
                    'tr',
                    {},
                    ['Platform', 'Digest', 'Size'].map(function (h) {
                      return el('th', { text: h });
                    }),
                  ),
                ]),
                el(
                  'tbody',
                  {},
                  raw.manifests.map(function (m) {
                    var p = m.platform || {};
                    var text =
                      (p.os || '?') +
                      '/' +
                      (p.architecture || '?') +
                      (p.variant ? '/' + p.variant : '');
                    return el('tr', { 'data-platform': text }, [
                      td('Platform', text),
                      td('Digest', link(manifestHash(name, m.digest), short(m.digest), 'mono')),
                      td('Size', fmtBytes(m.size), 'num'),
                    ]);
                  }),
                ),
              ]),
            ])
          : null;
        var layers = Array.isArray(raw.layers)
          ? section('Layers', [
              el('table', { id: 'layers', class: 'stack' }, [
                el('thead', {}, [
                  el(
                    'tr',
                    {},
                    ['#', 'Digest', 'Media type', 'Size'].map(function (h) {
                      return el('th', { text: h });
                    }),
                  ),
                ]),
                el(
                  'tbody',
                  {},
                  raw.layers.map(function (l, i) {
                    return el('tr', { 'data-layer': l.digest }, [
                      td('#', String(i + 1), 'num'),
                      td('Digest', digestEl(l.digest)),
                      td('Media type', el('span', { class: 'mono', text: l.mediaType })),
                      td('Size', fmtBytes(l.size), 'num'),
                    ]);
                  }),
                ),
              ]),
              el('p', {
                class: 'muted',
                text:
                  raw.layers.length +
                  ' layers, ' +
                  fmtBytes(
                    raw.layers.reduce(function (s, l) {
                      return s + (l.size || 0);
                    }, 0),
                  ),
              }),
            ])
          : null;
        var replication = a.replication
          ? section('Replication', [
              el('table', { id: 'manifest-replication', class: 'stack' }, [
                el('thead', {}, [
                  el(
                    'tr',
                    {},
                    ['Region', 'State', 'Since'].map(function (h) {
                      return el('th', { text: h });
                    }),
                  ),
                ]),
                el(
                  'tbody',
                  {},
                  a.replication.map(function (s) {
                    return el('tr', { 'data-region': s.region, 'data-state': s.state }, [
                      td('Region', s.region + (s.role === 'primary' ? ' (primary)' : '')),
                      td('State', el('span', {}, [dots([s]), ' ' + s.state])),
                      td('Since', when(s.replicatedAt)),
                    ]);
                  }),
                ),
              ]),
            ])
          : null;
        mount(seq, [
          crumbs([
            link(repoHash(name), name, 'mono'),
            el('span', { class: 'mono', text: short(digest), title: digest }),
          ]),
          pullCommand(name, digest, x.servedBy),
          actions,
          el('div', { class: 'grid2' }, [
            section('Overview', [
              kvList(overview, 'overview'),
              a.subject
                ? el('p', {}, [
                    'Refers to ',
                    link(manifestHash(name, a.subject), short(a.subject), 'mono'),
                  ])
                : null,
              a.effectiveLock && locked(a.effectiveLock)
                ? el('p', {}, ['Lock: ', lockBadge(a.effectiveLock)])
                : null,
            ]),
            replication,
          ]),
          platforms,
          layers,
          raw.config ? section('Config', [config]) : null,
          section('Annotations', [kvList(raw.annotations, 'annotations')]),
          section('Referrers', [refs]),
        ]);
        if (raw.config) loadConfig(name, raw.config, config, opts);
        referrersTree(name, digest, 2).then(
          function (tree) {
            refs.textContent = '';
            refs.appendChild(
              tree.length
                ? treeList(name, tree)
                : el('p', {
                    class: 'muted',
                    text: 'No signatures, SBOMs or attestations refer to this manifest.',
                  }),
            );
          },
          function (err) {
            refs.textContent = '';
            refs.appendChild(problem(err));
          },
        );
      })
      .catch(failed.bind(null, seq));
  }

  /** The image config's labels, creation time and platform (a JSON config up to 1 MiB). */
  function loadConfig(name, desc, into, opts) {
    var facts = { Digest: desc.digest, 'Media type': desc.mediaType, Size: fmtBytes(desc.size) };
    var show = function (labels, note) {
      into.textContent = '';
      into.appendChild(kvList(facts, 'config-facts'));
      into.appendChild(el('h3', { text: 'Labels' }));
      into.appendChild(kvList(labels, 'labels'));
      if (note) into.appendChild(el('p', { class: 'muted', text: note }));
    };
    if (!/json/.test(desc.mediaType || '') || !(desc.size <= 1024 * 1024)) {
      show({}, 'Not a JSON config: not read.');
      return;
    }
    api
      .request('v2/' + name + '/blobs/' + desc.digest, opts)
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(
        function (c) {
          if (c.created) facts.Created = c.created;
          if (c.os || c.architecture)
            facts.Platform = (c.os || '?') + '/' + (c.architecture || '?');
          show((c.config && c.config.Labels) || {});
        },
        function (err) {
          show({}, 'The config could not be read: ' + err.message);
        },
      );
  }

  // ---- sign-in and routing ------------------------------------------------------------------

  function showOnly(id) {
    ['signin', 'replication', 'browser'].forEach(function (v) {
      $('#' + v).hidden = v !== id;
    });
    $('#nav-replication').setAttribute('aria-current', id === 'replication' ? 'page' : 'false');
    $('#nav-repositories').setAttribute('aria-current', id === 'browser' ? 'page' : 'false');
  }

  function showWho() {
    var user = api.user();
    $('#who').hidden = !user;
    $('#sign-out').hidden = !user;
    $('#who').textContent = user ? 'signed in as ' + user : '';
  }

  var signingIn = false;
  api.onSignInRequired(function (message) {
    if (signingIn) return;
    signingIn = true;
    showOnly('signin');
    showWho();
    var pill = $('#summary');
    pill.className = 'pill warn';
    pill.textContent = 'sign in required';
    var e = $('#signin-error');
    e.hidden = !/ended/.test(message);
    e.textContent = /ended/.test(message) ? message : '';
    $('#signin-user').focus();
  });

  function route() {
    var h = location.hash;
    var m;
    if (signingIn) return;
    if ((m = /^#\/repositories(?:\?q=(.*))?$/.exec(h))) {
      showOnly('browser');
      catalog = null; // read afresh on each visit; the search box re-renders without reading
      renderRepositories(m[1] ? decodeURIComponent(m[1]) : '');
    } else if ((m = /^#\/repository\/(.+)$/.exec(h))) {
      showOnly('browser');
      renderRepository(decodeURIComponent(m[1]));
    } else if ((m = /^#\/manifest\/([^@:]+)[@:](.+)$/.exec(h))) {
      showOnly('browser');
      renderManifest(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
    } else {
      view++;
      showOnly('replication');
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    $('#signin-form').addEventListener('submit', function (ev) {
      ev.preventDefault();
      var user = $('#signin-user');
      var password = $('#signin-password');
      var button = $('#signin-form button');
      var error = $('#signin-error');
      button.disabled = true;
      error.hidden = true;
      api.signIn(user.value.trim(), password.value).then(
        function () {
          password.value = '';
          button.disabled = false;
          signingIn = false;
          showWho();
          catalog = null;
          route();
          document.dispatchEvent(new Event('meridian:signed-in'));
        },
        function (err) {
          button.disabled = false;
          error.hidden = false;
          error.textContent = err.message;
        },
      );
    });
    $('#sign-out').addEventListener('click', function () {
      api.signOut();
      location.hash = '#/';
      location.reload();
    });
    window.addEventListener('hashchange', route);
    showWho();
    route();
  });
})();
