// The streamsink viewer: follows one stream over EventSource and shows its runs as they happen.
// Everything an event carries is hostile input: it reaches the page through textContent only.
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("streamsink-config").textContent);
  var query = new URLSearchParams(window.location.search);
  // EventSource cannot send an Authorization header: a token given to the page in ?token= goes on
  // to the stream URL the same way. It is never shown.
  var token = query.get("token");
  var follow = query.has("follow");
  var MAX_RUNS = 30; // runs kept on the page; older ones are dropped from the DOM
  var MAX_LOG = 300; // rows kept in the event log

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function withQuery(path, params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      if (value !== null && value !== undefined && value !== "") q.set(key, value);
    });
    var text = q.toString();
    return text ? path + "?" + text : path;
  }

  function viewUrl(stream) {
    return withQuery(config.base_path + "/view/" + encodeURIComponent(stream), { token: token });
  }

  // -- the stream picker (GET /) --------------------------------------------------------------

  if (config.stream === null) {
    var form = document.getElementById("pick");
    var input = document.getElementById("pick-stream");
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var stream = input.value.trim();
      if (stream) window.location.assign(viewUrl(stream));
    });
    input.focus();
    return;
  }

  // -- formatting -----------------------------------------------------------------------------

  function clip(text, limit) {
    text = String(text);
    return text.length > limit ? text.slice(0, limit - 1) + "\u2026" : text;
  }

  function jsonText(value, limit) {
    if (value === null || value === undefined) return "";
    var text;
    try {
      text = typeof value === "string" ? value : JSON.stringify(value);
    } catch (e) {
      text = String(value);
    }
    return clip(text, limit || 160);
  }

  function nanos(ns) {
    if (typeof ns !== "number" || !isFinite(ns) || ns <= 0) return "";
    if (ns < 1e6) return (ns / 1e3).toFixed(0) + " \u00b5s";
    if (ns < 1e9) return (ns / 1e6).toFixed(0) + " ms";
    return (ns / 1e9).toFixed(ns < 1e10 ? 2 : 1) + " s";
  }

  function clock(timestamp) {
    var date = new Date(timestamp);
    if (isNaN(date.getTime())) return "";
    return date.toISOString().slice(11, 23);
  }

  function number(value) {
    return typeof value === "number" && isFinite(value) ? value.toLocaleString("en-US") : "";
  }

  function obj(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
  }

  function text(value) {
    return typeof value === "string" ? value : "";
  }

  // -- page state -----------------------------------------------------------------------------

  var state = {
    stream: config.stream,
    received: [], // every event id in arrival order, duplicates included
    types: [], // their types, same order
    duplicates: 0,
    lastId: null,
    status: "connecting",
    opens: 0, // EventSources created by the page
    notices: [], // gap and epoch notices, as received
  };
  var seen = new Set();
  var source = null;
  var retryTimer = null;
  var retryDelay = 1000;
  var lastType = null;
  var runs = new Map();

  var statusNode = document.getElementById("status");
  var countNode = document.getElementById("count");
  var followButton = document.getElementById("follow");
  var runsNode = document.getElementById("runs");
  var noticesNode = document.getElementById("notices");
  var logBody = document.getElementById("log-body");
  var emptyNode = document.getElementById("waiting");

  var STATUS_TEXT = {
    connecting: "connecting\u2026",
    connected: "connected",
    reconnecting: "reconnecting\u2026",
    ended: "ended",
  };

  function setStatus(status) {
    state.status = status;
    statusNode.className = status;
    statusNode.textContent = STATUS_TEXT[status] || status;
    followButton.hidden = status !== "ended";
  }

  function updateCount() {
    var n = seen.size;
    countNode.textContent = n + (n === 1 ? " event" : " events");
    countNode.title = state.lastId ? "last id " + state.lastId : "";
  }

  // -- the connection -------------------------------------------------------------------------

  // Until an event arrives the page starts where its own URL says (?from=newest, ?after=ID),
  // else at the oldest entry, so that a run opened late is shown from its start; after that it
  // resumes after the last event shown. ?run_id= keeps to one run.
  function streamUrl() {
    var first = state.lastId === null;
    return withQuery(config.base_path + "/streams/" + encodeURIComponent(config.stream), {
      last_event_id: state.lastId,
      after: first ? query.get("after") : null,
      from: first ? query.get("from") || "oldest" : null,
      run_id: query.get("run_id"),
      token: token,
    });
  }

  function open() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (source) source.close();
    lastType = null;
    var es = new EventSource(streamUrl());
    source = es;
    state.opens += 1;
    // After a run's end (following the next run) this is a new connection, not a lost one.
    setStatus(state.opens === 1 || state.status === "ended" ? "connecting" : "reconnecting");
    es.onopen = function () {
      if (source !== es) return;
      retryDelay = 1000;
      setStatus("connected");
    };
    es.onerror = function () {
      if (source !== es) return;
      if (lastType === "run_stream_end") {
        finish(); // the gateway ends a response after the run's end: not a failure
        // ?follow: wait for the stream's next run (the demo's page does).
        if (follow) retryTimer = setTimeout(open, 1500);
      } else if (es.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error, a wrong content type): a new EventSource, which
        // cannot send Last-Event-ID, resumes with ?last_event_id= instead.
        es.close();
        setStatus("reconnecting");
        retryTimer = setTimeout(open, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 15000);
      } else {
        setStatus("reconnecting"); // the browser retries by itself, with Last-Event-ID
      }
    };
    config.types.forEach(function (type) {
      es.addEventListener(type, onEvent);
    });
    es.addEventListener("message", onEvent);
    es.addEventListener("gap", function (ev) {
      if (ev.target === source) notice("gap", ev.data);
    });
    es.addEventListener("epoch", function (ev) {
      if (ev.target === source) notice("epoch", ev.data);
    });
  }

  function finish() {
    if (source) source.close();
    source = null;
    clearTimeout(retryTimer);
    setStatus("ended");
  }

  // -- events ---------------------------------------------------------------------------------

  function onEvent(ev) {
    if (ev.target !== source) return;
    var id = ev.lastEventId;
    state.received.push(id);
    state.types.push(ev.type);
    if (id && seen.has(id)) {
      state.duplicates += 1;
      return;
    }
    if (id) {
      seen.add(id);
      state.lastId = id;
    }
    lastType = ev.type;
    var envelope;
    try {
      envelope = obj(JSON.parse(ev.data));
    } catch (e) {
      envelope = { payload: ev.data };
    }
    var type = text(envelope.type) || ev.type;
    var stick = window.innerHeight + window.scrollY >= document.body.scrollHeight - 60;
    render(type, envelope, id);
    addLog(type, envelope, id);
    updateCount();
    if (stick) window.scrollTo(0, document.body.scrollHeight);
  }

  function notice(kind, data) {
    var info;
    try {
      info = JSON.parse(data);
    } catch (e) {
      info = data;
    }
    state.notices.push({ kind: kind, data: info });
    var box = el("p", "notice");
    info = obj(info);
    var what;
    if (kind === "gap") {
      box.appendChild(el("b", null, "Gap:"));
      var count = typeof info.count === "number" ? info.count + " events" : "Events";
      what = count + " after " + text(info.after) + " were gone from the stream (trimmed) ";
      what += "before this page could read them.";
    } else {
      box.appendChild(el("b", null, "New epoch:"));
      what = "the stream is not the one this page was reading";
      what += info.reason ? " (" + text(info.reason).replace(/_/g, " ") + ")" : "";
      what += "; what follows is the stream as it is now, from its start.";
    }
    box.appendChild(document.createTextNode(what));
    noticesNode.appendChild(box);
  }

  function section(run, key, title, build) {
    if (run[key]) return run[key];
    var wrap = el("div", "part");
    wrap.appendChild(el("h3", null, title));
    var node = wrap.appendChild(build());
    var body = node.tagName === "TABLE" ? node.tBodies[0] : node;
    run.slots[key].appendChild(wrap);
    run[key] = body;
    return body;
  }

  // headings: "name" for a text column, "#name" for a number column (right-aligned)
  function table(headings, className) {
    var t = el("table", className);
    var head = el("tr");
    headings.forEach(function (h) {
      var numeric = h.charAt(0) === "#";
      head.appendChild(el("th", numeric ? "num" : null, numeric ? h.slice(1) : h));
    });
    t.appendChild(el("thead")).appendChild(head);
    t.appendChild(el("tbody"));
    return t;
  }

  function row(body, cells) {
    var tr = el("tr");
    cells.forEach(function (cell) {
      tr.appendChild(el("td", cell[0], cell[1]));
    });
    body.appendChild(tr);
    return tr;
  }

  function runView(runId, timestamp) {
    var run = runs.get(runId);
    if (run) return run;
    if (emptyNode) {
      emptyNode.remove();
      emptyNode = null;
    }
    var node = el("section", "run");
    var head = node.appendChild(el("div", "run-head"));
    head.appendChild(el("h2", null, runId ? "run " + runId : "(no run id)"));
    var stateNode = head.appendChild(el("span", "run-state", "running"));
    var started = clock(timestamp);
    if (started) head.appendChild(el("span", "run-time", "started " + started + " UTC"));
    var slots = {};
    ["steps", "tools", "reply", "usage", "other"].forEach(function (key) {
      slots[key] = node.appendChild(el("div"));
    });
    run = { node: node, stateNode: stateNode, slots: slots, calls: new Map(), failed: false };
    runs.set(runId, run);
    runsNode.appendChild(node);
    if (runs.size > MAX_RUNS) {
      var oldest = runs.keys().next().value;
      runs.get(oldest).node.remove();
      runs.delete(oldest);
    }
    return run;
  }

  function toolRow(run, callId, name) {
    var tool = run.calls.get(callId);
    if (tool) return tool;
    var body = section(run, "tools", "Tool calls", function () {
      return table(["tool", "status", "#duration", "details"]);
    });
    var tr = row(body, [["name", name], ["", ""], ["num", ""], ["detail", ""]]);
    var pill = tr.children[1].appendChild(el("span", "pill running", "running"));
    tool = { name: tr.children[0], pill: pill, duration: tr.children[2], detail: tr.children[3] };
    run.calls.set(callId, tool);
    return tool;
  }

  function render(type, envelope, id) {
    var run = runView(text(envelope.run_id), envelope.timestamp);
    var p = obj(envelope.payload);
    switch (type) {
      case "tool_start": {
        var started = toolRow(run, text(p.tool_call_id), text(p.tool_name));
        if (p.tool_name) started.name.textContent = text(p.tool_name);
        started.detail.textContent = text(p.display_hint) || jsonText(p.payload);
        break;
      }
      case "tool_end": {
        var ended = toolRow(run, text(p.tool_call_id), text(p.tool_name));
        var error = obj(p.error);
        var failed = p.error !== null && p.error !== undefined;
        ended.pill.className = "pill " + (failed ? "error" : "ok");
        ended.pill.textContent = failed ? "error" : "ok";
        var ms = obj(p.telemetry).DurationMs;
        ended.duration.textContent =
          nanos(p.duration) || (typeof ms === "number" && ms > 0 ? ms + " ms" : "");
        ended.detail.textContent = failed
          ? text(error.Message) || jsonText(p.error)
          : text(p.result_preview) || jsonText(p.result) || ended.detail.textContent;
        break;
      }
      case "assistant_reply": {
        var reply = section(run, "reply", "Reply", function () {
          return el("pre", "reply");
        });
        reply.appendChild(document.createTextNode(text(p.text)));
        break;
      }
      case "usage": {
        var usage = section(run, "usage", "Usage", function () {
          return table(
            ["model", "#input", "#output", "#total", "#cache read", "#cache write"],
            "compact"
          );
        });
        row(usage, [
          ["mono", text(p.Model) || text(p.ModelClass)],
          ["num", number(p.InputTokens)],
          ["num", number(p.OutputTokens)],
          ["num", number(p.TotalTokens)],
          ["num", number(p.CacheReadTokens)],
          ["num", number(p.CacheWriteTokens)],
        ]);
        break;
      }
      case "workflow": {
        var steps = section(run, "steps", "Workflow", function () {
          return el("ul", "steps");
        });
        var label = text(p.phase) || "(phase)";
        if (p.status) label += " \u00b7 " + text(p.status);
        if (p.error) label += ": " + clip(text(p.error), 120);
        var step = steps.appendChild(el("li", null, label));
        if (p.status === "failed" || p.phase === "failed" || p.error) {
          step.className = "failed";
          run.failed = true;
        } else if (p.status === "success") {
          step.className = "success";
        }
        if (p.name) step.title = text(p.name);
        break;
      }
      case "run_stream_end":
        run.stateNode.textContent = run.failed ? "ended (failed)" : "ended";
        run.stateNode.className = "run-state " + (run.failed ? "failed" : "done");
        break;
      default: {
        var other = section(run, "other", "Other events", function () {
          return table(["type", "details"]);
        });
        var summary =
          text(p.question) || text(p.prompt) || text(p.note) || text(p.delta) || jsonText(p, 200);
        row(other, [["mono", type], ["detail", summary]]);
      }
    }
  }

  function addLog(type, envelope, id) {
    row(logBody, [
      ["mono", id],
      ["mono", clock(envelope.timestamp)],
      ["mono", type],
      ["mono", text(envelope.run_id)],
    ]);
    while (logBody.children.length > MAX_LOG) logBody.firstChild.remove();
  }

  // -- start ----------------------------------------------------------------------------------

  followButton.addEventListener("click", function () {
    open();
  });

  // A tiny hook for people and tests: the state, and closing or re-creating the EventSource
  // (a new one resumes after the last event shown, with ?last_event_id=).
  window.streamsinkViewer = {
    state: state,
    reopen: open,
    close: finish,
  };

  updateCount();
  open();
})();
