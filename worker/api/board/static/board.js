// The at-risk board: countdowns tick every second; the rows come again every few seconds.
// A countdown that reaches a warning or a breach changes its badge at once; the next answer
// from the server then brings the ticket's next checkpoint. Plain DOM, no framework.
(function () {
  "use strict";
  var table = document.getElementById("board");
  if (!table) return;
  var words = JSON.parse(document.getElementById("words").textContent);
  var tbody = document.getElementById("rows");
  var offset = Date.parse(table.dataset.at) - Date.now();  // server clock minus ours
  var pollMs = 1000 * Number(table.dataset.poll || 5);
  var lastAnswer = Date.now();

  function span(seconds) {
    var sign = seconds < 0 ? "-" : "";
    var s = Math.abs(Math.trunc(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), r = s % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d) return sign + d + "d " + h + "h " + two(m) + "m";
    if (h) return sign + h + "h " + two(m) + "m " + two(r) + "s";
    return sign + m + "m " + two(r) + "s";
  }

  function setState(row, state) {
    row.className = "state-" + state;
    var badge = row.querySelector(".badge");
    badge.className = "badge " + state;
    badge.textContent = words[state];
  }

  function tick() {
    var now = Date.now() + offset;
    tbody.querySelectorAll("tr[data-due]").forEach(function (row) {
      var left = (Date.parse(row.dataset.due) - now) / 1000;
      row.querySelector(".countdown").textContent = span(left);
      if (left <= 0) {  // the checkpoint is due: what it means shows before the next answer
        var kind = row.dataset.kind;
        if (kind === "breach") setState(row, "breached");
        else if (kind === "warning" && row.className === "state-running") setState(row, "warned");
      }
    });
    document.getElementById("stale").hidden = Date.now() - lastAnswer < 4 * pollMs;
  }

  function cell(row, label, content) {
    var td = document.createElement("td");
    td.dataset.label = words[label];
    if (content instanceof Node) td.appendChild(content); else td.textContent = content || "—";
    row.appendChild(td);
    return td;
  }

  function lines(first, second, href) {
    var box = document.createDocumentFragment();
    var top = document.createElement(href ? "a" : "span");
    if (href) top.href = href;
    top.textContent = first;
    box.appendChild(top);
    if (second) {
      box.appendChild(document.createElement("br"));
      var sub = document.createElement("span");
      sub.className = "subject";
      sub.textContent = second;
      box.appendChild(sub);
    }
    return box;
  }

  function nextCheckpoint(next) {
    var box = document.createDocumentFragment();
    var key = document.createElement("span");
    key.className = "key";
    key.textContent = next.key;
    var due = document.createElement("time");
    due.dateTime = next.due_at;
    due.textContent = new Date(next.due_at).toLocaleTimeString(words.lang, {hour: "2-digit", minute: "2-digit"});
    box.appendChild(key);
    box.appendChild(document.createElement("br"));
    box.appendChild(due);
    return box;
  }

  function draw(data) {
    var rows = document.createDocumentFragment();
    data.rows.forEach(function (t) {
      var row = document.createElement("tr");
      row.className = "state-" + t.state;
      row.dataset.ticket = t.source + "/" + t.ticket_id;
      var badge = document.createElement("span");
      badge.className = "badge " + t.state;
      badge.textContent = words[t.state];
      cell(row, "state", badge);
      var countdown = document.createElement("span");
      countdown.className = "countdown";
      countdown.textContent = t.left_seconds === null ? "—" : span(t.left_seconds);
      cell(row, "left", countdown).className = "left";
      if (t.counts_to) {
        row.dataset.due = t.counts_to;
        row.dataset.kind = t.next ? t.next.kind : "overdue";  // overdue: counts from its breach
      }
      cell(row, "next", t.next ? nextCheckpoint(t.next) : "—");
      var href = "/tickets/" + encodeURIComponent(t.source) + "/" + t.ticket_id.split("/").map(encodeURIComponent).join("/");
      cell(row, "ticket", lines(t.source + "/" + t.ticket_id, t.subject, href));
      cell(row, "customer", t.customer);
      cell(row, "priority", t.priority);
      cell(row, "plan", t.plan);
      cell(row, "group", t.group);
      cell(row, "assignee", t.assignee);
      rows.appendChild(row);
    });
    if (!data.rows.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      var td = document.createElement("td");
      td.colSpan = 9;
      td.textContent = words.none_open;
      empty.appendChild(td);
      rows.appendChild(empty);
    }
    tbody.replaceChildren(rows);
    document.getElementById("shown").textContent = data.rows.length;
    document.getElementById("total").textContent = data.total;
    var updated = document.getElementById("updated");
    updated.dateTime = data.at;
    updated.textContent = new Date(data.at).toLocaleTimeString(words.lang);
    offset = Date.parse(data.at) - Date.now();
    lastAnswer = Date.now();
    tick();
  }

  function poll() {
    fetch(table.dataset.source, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (answer) {
        if (answer.status === 401) { window.location.reload(); return null; }
        return answer.ok ? answer.json() : null;
      })
      .then(function (data) { if (data) draw(data); })
      .catch(function () { /* shown as stale by tick() */ })
      .finally(function () { window.setTimeout(poll, pollMs); });
  }

  document.querySelectorAll(".filters select").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
  tick();
  window.setInterval(tick, 1000);
  window.setTimeout(poll, pollMs);
})();
