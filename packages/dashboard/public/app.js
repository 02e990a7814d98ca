// Meridian replication dashboard: polls the node's (or gateway's) JSON API every 2 s, through
// api.js (tokens, sign-in). No framework, no build step; charts are uPlot (MIT).
(function () {
  'use strict';

  var POLL_MS = 2000;
  var HOUR_MS = 3600 * 1000;
  var API = new URL('../meridian/v1/replication/', location.href);
  var PALETTE = ['#79c0ff', '#ff9bce', '#e3b341', '#56d364', '#d2a8ff', '#ffa657', '#a5d6ff'];

  var state = {
    regions: [],
    restarts: [], // child processes `meridian dev` restarted, newest first (none outside dev)
    gc: {}, // region → {lastSuccessAt, lastRun, lastFailure} (absent where GC is not run)
    webhooks: null, // [{hook, events}] for an Owner; null when not shown
    webhooksRefused: false, // not an Owner, or no webhooks on this node: stop asking
    history: new Map(), // region -> points (oldest first)
    copies: new Map(), // region -> its last blob copies [{at, bytes, seconds}], newest first
    signedOut: false, // the registry wants a signed-in identity: the sign-in form is shown
    recent: [],
    lookup: null, // {repository, reference}
    servedBy: null,
    charts: null, // {regions: string[], lag: uPlot, backlog: uPlot}
    rangeMs: HOUR_MS, // the charts' time range
  };

  // ---- formatting ---------------------------------------------------------------------------

  function fmtDur(s) {
    if (s === null || s === undefined || !isFinite(s)) return '—';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 60) return Math.round(s) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' m ' + (Math.round(s) % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + (Math.floor(s / 60) % 60) + ' m';
  }
  function fmtRate(bytesPerSecond) {
    if (bytesPerSecond === null || !isFinite(bytesPerSecond)) return '—';
    var units = ['B/s', 'KiB/s', 'MiB/s', 'GiB/s'];
    var v = bytesPerSecond;
    var i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return (v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)) + ' ' + units[i];
  }
  function fmtBytes(n) {
    return n === null || n === undefined ? '—' : fmtRate(n).replace('/s', '');
  }
  function fmtAgo(iso) {
    if (!iso) return '—';
    var s = (Date.now() - Date.parse(iso)) / 1000;
    if (s < 5) return 'just now';
    return fmtDur(s) + ' ago';
  }
  function fmtClock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour12: false });
  }
  function shortDigest(d) {
    if (!d) return '—';
    var i = d.indexOf(':');
    return i >= 0 ? d.slice(0, i + 1) + d.slice(i + 1, i + 13) : d.slice(0, 19);
  }
  function num(n) {
    return n === null || n === undefined ? '—' : String(n);
  }

  // ---- DOM helpers --------------------------------------------------------------------------

  function $(sel) {
    return document.querySelector(sel);
  }
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs)
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] === undefined || attrs[k] === null) return;
        if (k === 'class') e.className = attrs[k];
        else if (k === 'text') e.textContent = attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    (children || []).forEach(function (c) {
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }
  function cell(label, content, cls) {
    var td = el('td', { 'data-label': label, class: cls });
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content;
    return td;
  }
  function badge(text, kind) {
    return el('span', { class: 'badge ' + kind, text: text });
  }
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // ---- data ---------------------------------------------------------------------------------

  function getJson(path, params) {
    var url = new URL(path, API);
    Object.keys(params || {}).forEach(function (k) {
      url.searchParams.set(k, params[k]);
    });
    return MeridianApi.json(url.href).then(function (r) {
      var region = r.headers.get('x-meridian-region');
      if (region) state.servedBy = region;
      return r.body;
    });
  }

  function mergeHistory(regions) {
    var cutoff = Date.now() - HOUR_MS;
    regions.forEach(function (r) {
      var old = state.history.get(r.region) || [];
      var first = r.points.length ? r.points[0].t : Infinity;
      var kept = old.filter(function (p) {
        return p.t < first && p.t >= cutoff;
      });
      state.history.set(r.region, kept.concat(r.points));
      state.copies.set(r.region, r.copies || []);
    });
  }

  function lastPointT() {
    var t = 0;
    state.history.forEach(function (points) {
      if (points.length) t = Math.max(t, points[points.length - 1].t);
    });
    return t;
  }

  function poll() {
    if (state.signedOut) return Promise.resolve();
    var since = lastPointT();
    var jobs = [
      getJson('regions').then(function (b) {
        state.regions = b.regions;
        state.restarts = b.restarts || [];
      }),
      // After the first load only the last buckets change: ask for those.
      getJson('history', since ? { since: since - 20000 } : {}).then(function (b) {
        mergeHistory(b.regions);
      }),
      getJson('recent', { limit: 40 }).then(function (b) {
        state.recent = b.events;
      }),
      getJson('../gc/regions')
        .then(function (b) {
          var gc = {};
          b.regions.forEach(function (r) {
            gc[r.region] = r;
          });
          state.gc = gc;
        })
        .catch(function () {
          state.gc = {};
        }),
    ];
    if (state.lookup) jobs.push(lookupOnce());
    if (!state.webhooksRefused) jobs.push(loadWebhooks());
    return Promise.allSettled(jobs).then(function (results) {
      if (state.signedOut) return; // the sign-in form is shown instead
      var failed = results.filter(function (r) {
        return r.status === 'rejected';
      });
      var banner = $('#error');
      // The lookup reports its own errors.
      var apiFailed = failed.filter(function (r) {
        return !(r.reason && (r.reason.lookup || r.reason.signIn));
      });
      if (apiFailed.length) {
        banner.hidden = false;
        banner.textContent =
          'Cannot reach the replication API (' +
          apiFailed[0].reason.message +
          '); showing the last data received.';
      } else banner.hidden = true;
      render();
    });
  }

  function loop() {
    poll().finally(function () {
      setTimeout(loop, POLL_MS);
    });
  }

  // ---- lookup -------------------------------------------------------------------------------

  /** `repo:tag`, `repo@sha256:…`, or a full pull reference with a registry host. */
  function parseRef(s) {
    s = s.trim();
    if (!s) return null;
    var slash = s.indexOf('/');
    if (slash > 0) {
      var first = s.slice(0, slash);
      if (first.indexOf('.') >= 0 || first.indexOf(':') >= 0 || first === 'localhost')
        s = s.slice(slash + 1);
    }
    var at = s.indexOf('@');
    if (at > 0) return { repository: s.slice(0, at), reference: s.slice(at + 1) };
    var colon = s.lastIndexOf(':');
    if (colon > 0 && s.slice(colon).indexOf('/') < 0)
      return { repository: s.slice(0, colon), reference: s.slice(colon + 1) };
    return { repository: s, reference: 'latest' };
  }

  function lookupOnce() {
    var q = state.lookup;
    // When it was last pulled in each region: shown when the node counts pulls.
    var usage = getJson('../usage', { repository: q.repository }).catch(function () {
      return null;
    });
    return Promise.all([getJson('status', q), usage]).then(
      function (both) {
        if (state.lookup === q) renderLookup(q, both[0], null, both[1]);
      },
      function (err) {
        if (state.lookup === q) renderLookup(q, null, err.message);
        err.lookup = true;
        throw err;
      },
    );
  }

  function renderLookup(q, body, error, usage) {
    $('#lookup-result').hidden = false;
    var title = $('#lookup-title');
    var tbody = $('#lookup-table tbody');
    var sep = q.reference.indexOf(':') >= 0 ? '@' : ':';
    tbody.textContent = '';
    if (error) {
      title.textContent = q.repository + sep + q.reference + ': ' + error;
      return;
    }
    var regions = body.regions || [];
    var primary = regions.filter(function (r) {
      return r.role === 'primary';
    })[0];
    var digest = regions.length ? regions[0].digest : null;
    if (primary && primary.state === 'missing')
      title.textContent = q.repository + sep + q.reference + ' is not on the primary.';
    else {
      var done = regions.filter(function (r) {
        return r.state === 'replicated';
      }).length;
      title.textContent =
        q.repository +
        sep +
        q.reference +
        (digest ? ' → ' + shortDigest(digest) : '') +
        ' — in ' +
        done +
        ' of ' +
        regions.length +
        ' regions';
    }
    var pulls = usage && (q.reference.indexOf(':') >= 0 ? usage.manifests : usage.tags);
    var pulled = (pulls && pulls[q.reference]) || null;
    regions.forEach(function (r) {
      var kind =
        r.state === 'replicated'
          ? 'ok'
          : r.state === 'pending'
            ? 'warn'
            : r.state === 'out-of-scope'
              ? ''
              : 'bad';
      var p = pulled && pulled.regions[r.region];
      var last = p ? new Date(p.lastPulledAt).toISOString() : null;
      var lastPull = el('span', {
        text: usage ? (p ? fmtAgo(last) + ' · ' + p.count + '×' : 'never') : '—',
        title: last || undefined,
      });
      var since = el('span', {
        text: r.replicatedAt ? fmtAgo(r.replicatedAt) : '—',
        title: r.replicatedAt || undefined,
      });
      tbody.appendChild(
        el('tr', { 'data-region': r.region, 'data-state': r.state }, [
          cell('Region', r.region + (r.role === 'primary' ? ' (primary)' : '')),
          cell('State', badge(r.state, kind)),
          cell('Since', since),
          cell('Took', r.role === 'primary' ? '—' : fmtDur(r.lagSeconds)),
          cell('Last pull', lastPull),
          cell(
            'Digest',
            el('span', { class: 'mono', text: shortDigest(r.digest), title: r.digest }),
          ),
        ]),
      );
    });
  }

  // ---- rendering ----------------------------------------------------------------------------

  /** How many of a region's last copies the copy rate covers. */
  var RATE_COPIES = 5;

  /**
   * The speed of the region's last blob copies: their bytes over the time spent copying (the
   * union of their intervals, as copies run side by side) — not an average over a minute in
   * which a 100 MB copy took one second.
   */
  function copyRate(copies) {
    var last = (copies || []).slice(0, RATE_COPIES);
    if (!last.length) return null;
    var spans = last
      .map(function (c) {
        return [c.at - c.seconds * 1000, c.at];
      })
      .sort(function (a, b) {
        return a[0] - b[0];
      });
    var busy = 0;
    var end = -Infinity;
    spans.forEach(function (s) {
      var from = Math.max(s[0], end);
      if (s[1] > from) busy += s[1] - from;
      end = Math.max(end, s[1]);
    });
    var bytes = last.reduce(function (a, c) {
      return a + c.bytes;
    }, 0);
    return { n: last.length, bytes: bytes, seconds: busy / 1000, latest: last[0].at };
  }

  function regionStats(region) {
    var points = state.history.get(region) || [];
    var last = points.length ? points[points.length - 1] : null;
    var fallbacks = points.reduce(function (a, p) {
      return a + p.fallbacks;
    }, 0);
    return {
      last: last,
      copies: copyRate(state.copies.get(region)),
      fallbacks: points.length ? fallbacks : null,
    };
  }

  /** p99 as measured: the lag itself, or "≤ bound" where only the histogram could say. */
  function p99Cell(p) {
    if (!p || p.p99 === null || p.p99 === undefined) return '—';
    if (p.quantiles === 'bound')
      return el('span', {
        text: '≤ ' + fmtDur(p.p99),
        title:
          'More changes than the history keeps one by one: the upper bound of the histogram bucket that holds the 99th percentile',
        'data-quantiles': 'bound',
      });
    return el('span', {
      text: fmtDur(p.p99),
      title:
        '99th percentile of the lags recorded in the last minute (nearest rank); slowest ' +
        fmtDur(p.lagMax),
      'data-quantiles': 'exact',
    });
  }

  function rateCell(c) {
    if (!c || c.seconds <= 0) return '—';
    return el('span', {
      text: fmtRate(c.bytes / c.seconds),
      title:
        'Last ' +
        (c.n > 1 ? c.n + ' copies' : 'copy') +
        ': ' +
        fmtBytes(c.bytes) +
        ' in ' +
        fmtDur(c.seconds) +
        ', ' +
        fmtAgo(new Date(c.latest).toISOString()),
    });
  }

  function renderSummary() {
    var pill = $('#summary');
    var down = state.regions.filter(function (r) {
      return !r.healthy;
    });
    var replicas = state.regions.filter(function (r) {
      return r.role === 'replica';
    });
    var worst = replicas.reduce(function (a, r) {
      return (r.lagSeconds || 0) > (a ? a.lagSeconds || 0 : -1) ? r : a;
    }, null);
    var pending = replicas.reduce(function (a, r) {
      return a + (r.pending || 0);
    }, 0);
    var failed = replicas.reduce(function (a, r) {
      return a + ((r.queue && r.queue.failed) || 0);
    }, 0);
    var text;
    var kind;
    if (!state.regions.length) {
      text = 'no data';
      kind = 'warn';
    } else if (down.length) {
      kind = 'bad';
      text =
        down
          .map(function (r) {
            return r.region;
          })
          .join(', ') + (down.length > 1 ? ' are down' : ' is down');
    } else if (worst && worst.lagSeconds > 30) {
      kind = 'warn';
      text = worst.region + ' is ' + fmtDur(worst.lagSeconds) + ' behind';
    } else if (failed > 0) {
      kind = 'warn';
      text = failed + ' failed sync job' + (failed > 1 ? 's' : '');
    } else if (pending > 0) {
      kind = 'ok';
      text = 'replicating ' + pending + ' change' + (pending > 1 ? 's' : '');
    } else {
      kind = 'ok';
      text = 'all regions caught up';
    }
    pill.className = 'pill ' + kind;
    pill.textContent = text;
    $('#updated').textContent =
      'updated ' + fmtClock(Date.now()) + (state.servedBy ? ' · via ' + state.servedBy : '');
  }

  /** When the region was last collected; a failure since, or two days without, is flagged. */
  function gcCell(g) {
    if (!g) return '—';
    if (g.lastFailure)
      return badge('failed ' + fmtAgo(new Date(g.lastFailure.at).toISOString()), 'bad');
    if (!g.lastSuccessAt) return 'not yet';
    var age = (Date.now() - g.lastSuccessAt) / 1000;
    var text = fmtAgo(new Date(g.lastSuccessAt).toISOString());
    return age > 2 * 86400 ? badge(text, 'bad') : text;
  }

  function renderRegions() {
    var tbody = $('#regions tbody');
    tbody.textContent = '';
    state.regions.forEach(function (r) {
      var s = regionStats(r.region);
      var replica = r.role === 'replica';
      var health = r.healthy
        ? badge('healthy', 'ok')
        : badge(r.node === 'down' ? 'node down' : 'storage down', 'bad');
      var lagKind = !replica ? '' : r.lagSeconds > 30 ? 'bad' : r.lagSeconds > 5 ? 'warn' : '';
      var q = r.queue;
      var failed = q ? q.failed : null;
      tbody.appendChild(
        el(
          'tr',
          {
            'data-region': r.region,
            'data-health': r.healthy ? 'up' : 'down',
            class: r.healthy ? '' : 'down',
          },
          [
            cell('Region', r.region),
            cell(
              'Role',
              r.scope
                ? el('span', {
                    text: r.role + ' (scoped)',
                    title: 'replicates ' + r.scope.join(' '),
                  })
                : r.role,
            ),
            cell('Health', health),
            cell(
              'Lag now',
              replica && lagKind
                ? badge(fmtDur(r.lagSeconds), lagKind)
                : replica
                  ? fmtDur(r.lagSeconds)
                  : '—',
              'num',
            ),
            cell('p99 (1 m)', replica ? p99Cell(s.last) : '—', 'num'),
            cell('Backlog', replica ? num(r.pending) : '—', 'num'),
            cell('Queue', q ? q.waiting + ' / ' + q.active + ' / ' + q.delayed : '—', 'num'),
            cell(
              'Failed',
              failed ? badge(String(failed), 'bad') : replica ? num(failed) : '—',
              'num',
            ),
            cell('Copy rate', replica ? rateCell(s.copies) : '—', 'num'),
            cell('Fallbacks (1 h)', replica ? num(s.fallbacks) : '—', 'num'),
            cell('GC', gcCell(state.gc[r.region])),
            cell(
              'Freed (last GC)',
              state.gc[r.region] && state.gc[r.region].lastRun
                ? fmtBytes(state.gc[r.region].lastRun.bytesFreed)
                : '—',
              'num',
            ),
            cell('Endpoint', el('span', { class: 'mono', text: r.endpoint })),
          ],
        ),
      );
    });
  }

  function renderFeed() {
    var ol = $('#feed');
    ol.textContent = '';
    $('#feed-empty').hidden = state.recent.length > 0;
    state.recent.forEach(function (e) {
      var sep = e.kind === 'tag' ? ':' : '@';
      var what =
        e.kind +
        ' ' +
        e.repository +
        sep +
        (e.kind === 'tag' ? e.reference : shortDigest(e.reference));
      // A lock's reference is `repository`, `tag=<tag>` or `manifest=<digest>` (ADR 0015).
      if (e.kind === 'lock')
        what =
          'lock ' +
          e.repository +
          (e.reference.indexOf('tag=') === 0
            ? ':' + e.reference.slice(4)
            : e.reference.indexOf('manifest=') === 0
              ? '@' + shortDigest(e.reference.slice(9))
              : '');
      ol.appendChild(
        el('li', { class: e.result, 'data-region': e.region }, [
          el('span', { class: 'when muted', text: fmtClock(Date.parse(e.at)), title: e.at }),
          el('span', { class: 'region', text: e.region }),
          el('span', { class: 'what mono', text: what, title: e.error || what }),
          e.result === 'ok'
            ? el('span', { class: 'took', text: fmtDur(e.lagSeconds) })
            : el('span', { class: 'took' }, [badge('failed', 'bad')]),
        ]),
      );
    });
  }

  // ---- charts -------------------------------------------------------------------------------

  function chartOpts(el, series, yFmt, yIncrs) {
    var fg = cssVar('--muted');
    var grid = cssVar('--grid');
    var axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    return {
      width: Math.max(200, el.clientWidth),
      height: 240,
      series: [{}].concat(series),
      scales: {
        x: {
          time: true,
          range: function (u, min, max) {
            return [max - state.rangeMs / 1000, max];
          },
        },
        y: {
          range: function (u, min, max) {
            return [0, Math.max(1, max * 1.1)];
          },
        },
      },
      axes: [
        Object.assign({}, axis, { space: 70 }),
        Object.assign({}, axis, {
          size: 64,
          incrs: yIncrs,
          values: function (u, splits) {
            return splits.map(yFmt);
          },
        }),
      ],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
  }

  function buildCharts(regions) {
    var lagEl = $('#lag-chart');
    var backlogEl = $('#backlog-chart');
    if (state.charts) {
      state.charts.lag.destroy();
      state.charts.backlog.destroy();
    }
    var lagSeries = [];
    var backlogSeries = [];
    regions.forEach(function (r, i) {
      var color = PALETTE[i % PALETTE.length];
      var fmt = function (u, v) {
        return v === null || v === undefined ? '—' : fmtDur(v);
      };
      // Points too: after a quiet spell a burst of changes is a short segment.
      var dots = { show: true, size: 4, fill: color };
      lagSeries.push({ label: r + ' p50', stroke: color, width: 2, value: fmt, points: dots });
      lagSeries.push({
        label: r + ' p99',
        stroke: color,
        width: 1.5,
        dash: [6, 4],
        value: fmt,
        points: dots,
      });
      backlogSeries.push({
        label: r,
        stroke: color,
        width: 2,
        fill: color + '22',
        points: { show: false },
      });
    });
    state.charts = {
      regions: regions,
      lag: new uPlot(chartOpts(lagEl, lagSeries, fmtDur), [[]], lagEl),
      backlog: new uPlot(
        chartOpts(
          backlogEl,
          backlogSeries,
          function (v) {
            return String(Math.round(v));
          },
          [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6],
        ),
        [[]],
        backlogEl,
      ),
    };
  }

  function renderCharts() {
    if (typeof uPlot === 'undefined') return;
    var regions = Array.from(state.history.keys());
    if (!regions.length) return;
    if (!state.charts || state.charts.regions.join() !== regions.join()) buildCharts(regions);
    var base = state.history.get(regions[0]);
    var xs = base.map(function (p) {
      return p.t / 1000;
    });
    var lag = [xs];
    var backlog = [xs];
    regions.forEach(function (r) {
      var byT = new Map(
        (state.history.get(r) || []).map(function (p) {
          return [p.t, p];
        }),
      );
      var at = function (t, k) {
        var p = byT.get(t * 1000);
        return p ? p[k] : null;
      };
      lag.push(
        xs.map(function (t) {
          return at(t, 'p50');
        }),
      );
      lag.push(
        xs.map(function (t) {
          return at(t, 'p99');
        }),
      );
      backlog.push(
        xs.map(function (t) {
          return at(t, 'backlog');
        }),
      );
    });
    state.charts.lag.setData(lag, true);
    state.charts.backlog.setData(backlog, true);
  }

  function render() {
    renderSummary();
    renderRegions();
    renderFeed();
    renderCharts();
    renderWebhooks();
    renderRestarts();
  }

  // ---- meridian dev: restarted processes -----------------------------------------------------

  /**
   * The nodes, worker, gateway (and Redis) `meridian dev` saw die and restarted: when, why, and
   * the pid it runs as now. Hidden when there are none (and outside dev, where none are recorded).
   */
  function renderRestarts() {
    var list = state.restarts || [];
    $('#restarts-section').hidden = list.length === 0;
    var tbody = $('#restarts tbody');
    tbody.textContent = '';
    list.forEach(function (r) {
      var killed = /killed/.test(r.reason);
      tbody.appendChild(
        el('tr', { 'data-process': r.process }, [
          cell('Process', r.process),
          cell(
            'Exited',
            el('span', {
              text: fmtClock(Date.parse(r.exitedAt)) + ' (' + fmtAgo(r.exitedAt) + ')',
              title: r.exitedAt,
            }),
          ),
          cell('Reason', badge(r.reason, killed ? 'bad' : 'warn')),
          cell('Pid', r.newPid ? r.pid + ' → ' + r.newPid : String(r.pid), 'num'),
          cell('Restarted', el('span', { text: fmtAgo(r.restartedAt), title: r.restartedAt })),
        ]),
      );
    });
  }

  // ---- webhooks -----------------------------------------------------------------------------

  /**
   * Webhooks and their last deliveries. Only an Owner may read them: for anyone else (or a node
   * without webhooks) the first refusal hides the table and stops the requests.
   */
  function loadWebhooks() {
    return getJson('../admin/webhooks')
      .catch(function (err) {
        if (err.status === 401 || err.status === 403 || err.status === 404)
          state.webhooksRefused = true;
        throw err;
      })
      .then(function (b) {
        return Promise.all(
          b.webhooks.map(function (w) {
            return getJson('../admin/webhooks/' + encodeURIComponent(w.name) + '/events', {
              limit: 20,
            })
              .then(function (e) {
                return { hook: w, events: e.events };
              })
              .catch(function () {
                return { hook: w, events: [] };
              });
          }),
        );
      })
      .then(function (list) {
        state.webhooks = list;
      })
      .catch(function () {
        state.webhooks = null;
      });
  }

  function renderWebhooks() {
    var list = state.webhooks || [];
    $('#webhooks-section').hidden = list.length === 0;
    var tbody = $('#webhooks tbody');
    tbody.textContent = '';
    list.forEach(function (x) {
      var w = x.hook;
      var last = x.events[0];
      var ok = 0;
      var pending = 0;
      var failed = 0;
      x.events.forEach(function (e) {
        if (e.state === 'delivered') ok++;
        else if (e.state === 'failed') failed++;
        else if (e.state !== 'skipped') pending++;
      });
      var kind = !last
        ? ''
        : last.state === 'delivered'
          ? 'ok'
          : last.state === 'failed'
            ? 'bad'
            : 'warn';
      var lastCell = last
        ? el('span', {}, [
            badge(last.state, kind),
            ' ' + last.action + ' ' + (last.repository || '') + ', ' + fmtAgo(last.updatedAt),
          ])
        : '—';
      tbody.appendChild(
        el('tr', {}, [
          cell('Webhook', el('span', { class: 'mono', text: w.name })),
          cell('Status', badge(w.status, w.status === 'enabled' ? 'ok' : 'warn')),
          cell('Actions', w.actions.join(', ')),
          cell('Location', w.location),
          cell('Last delivery', lastCell),
          cell('Recent', ok + ' / ' + pending + ' / ' + failed, 'num'),
        ]),
      );
    });
  }

  // ---- wiring -------------------------------------------------------------------------------

  function setTheme(theme) {
    document.documentElement.setAttribute('data-theme', theme);
    $('#theme').textContent = theme === 'dark' ? 'light' : 'dark';
    try {
      localStorage.setItem('meridian-theme', theme);
    } catch (e) {
      /* private mode */
    }
    if (state.charts) {
      var regions = state.charts.regions;
      state.charts.lag.destroy();
      state.charts.backlog.destroy();
      state.charts = null;
      buildCharts(regions);
      renderCharts();
    }
  }

  function startLookup(text) {
    var q = parseRef(text);
    state.lookup = q;
    if (!q) {
      $('#lookup-result').hidden = true;
      history.replaceState(null, '', location.pathname);
      return;
    }
    history.replaceState(null, '', '#lookup=' + encodeURIComponent(text.trim()));
    lookupOnce().catch(function () {});
  }

  MeridianApi.onSignInRequired(function () {
    state.signedOut = true;
  });
  document.addEventListener('meridian:signed-in', function () {
    state.signedOut = false;
    poll();
  });

  document.addEventListener('DOMContentLoaded', function () {
    var saved = null;
    try {
      saved = localStorage.getItem('meridian-theme');
    } catch (e) {
      /* private mode */
    }
    setTheme(saved === 'light' ? 'light' : 'dark');
    $('#theme').addEventListener('click', function () {
      setTheme(document.documentElement.getAttribute('data-theme') === 'dark' ? 'light' : 'dark');
    });
    $('#lookup').addEventListener('submit', function (ev) {
      ev.preventDefault();
      startLookup($('#lookup-input').value);
    });
    Array.prototype.forEach.call(document.querySelectorAll('#range button'), function (b) {
      b.addEventListener('click', function () {
        state.rangeMs = Number(b.getAttribute('data-minutes')) * 60000;
        document.querySelectorAll('#range button').forEach(function (o) {
          o.setAttribute('aria-pressed', String(o === b));
        });
        renderCharts();
      });
    });
    var m = /^#lookup=(.+)$/.exec(location.hash);
    if (m) {
      $('#lookup-input').value = decodeURIComponent(m[1]);
      startLookup($('#lookup-input').value);
    }
    if (typeof ResizeObserver !== 'undefined')
      new ResizeObserver(function () {
        if (!state.charts) return;
        var lagEl = $('#lag-chart');
        var backlogEl = $('#backlog-chart');
        state.charts.lag.setSize({ width: Math.max(200, lagEl.clientWidth), height: 240 });
        state.charts.backlog.setSize({ width: Math.max(200, backlogEl.clientWidth), height: 240 });
      }).observe($('.charts'));
    loop();
  });
})();
