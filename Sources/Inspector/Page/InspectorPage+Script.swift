extension InspectorPage {
    /// The page script: live list over server-sent events, filters, detail,
    /// replay with a side-by-side comparison, edit and replay with re-signing,
    /// curl and HAR export.
    static let script = #"""
        // The inspector page: live list, filters, detail, replay, edit and replay,
        // curl and HAR. Everything that came off the wire goes into the DOM through
        // textContent or setAttribute only (webhook bodies are hostile).
        "use strict";
        (() => {
          const F = WOWFormat;
          const PAGE = 200;
          const SEARCH_PREFIX = 64 * 1024;
          const state = {
            items: new Map(),        // id -> summary
            search: new Map(),       // id -> {headers, text} for header/body filters
            searching: new Set(),
            checked: new Set(),
            fresh: new Set(),
            selectedId: null,
            detail: null,            // detail of the selected webhook
            editing: false,
            hasOlder: false,
          };
          // The re-signing secret lives only here, in memory: never in storage,
          // the URL or the server's history.
          let signSecret = "";

          const $ = (id) => document.getElementById(id);

          function el(tag, props, ...children) {
            const node = document.createElement(tag);
            for (const [key, value] of Object.entries(props || {})) {
              if (value === null || value === undefined || value === false) continue;
              if (key === "class") node.className = value;
              else if (key === "testid") node.setAttribute("data-testid", value);
              else if (key === "text") node.textContent = value;
              else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
              else node.setAttribute(key, value === true ? "" : String(value));
            }
            for (const child of children.flat()) {
              if (child === null || child === undefined || child === false) continue;
              node.append(typeof child === "string" ? document.createTextNode(child) : child);
            }
            return node;
          }

          async function api(path, options) {
            const response = await fetch(path, options);
            const text = await response.text();
            let json = null;
            try { json = text ? JSON.parse(text) : null; } catch (_) { /* not JSON */ }
            if (!response.ok) {
              throw new Error((json && json.error) || `${response.status} ${response.statusText}`);
            }
            return json;
          }

          const bodyURL = (id, part) => `/api/webhooks/${encodeURIComponent(id)}/${part}.body`;
          const harURL = (ids) => ids ? "/api/har?ids=" + ids.map(encodeURIComponent).join(",") : "/api/har";

          function timeValue(summary) {
            const t = Date.parse(summary.time);
            return Number.isNaN(t) ? 0 : t;
          }

          function compareIDs(a, b) {
            if (/^\d+$/.test(a) && /^\d+$/.test(b)) return Number(b) - Number(a);
            return a < b ? 1 : a > b ? -1 : 0;
          }

          function sorted() {
            return Array.from(state.items.values()).sort((a, b) => (timeValue(b) - timeValue(a)) || compareIDs(a.id, b.id));
          }

          function clock(iso) {
            const d = new Date(iso);
            if (Number.isNaN(d.getTime())) return iso || "";
            const p = (n, w) => String(n).padStart(w || 2, "0");
            return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
          }

          function statusClass(status) {
            return status ? "s" + String(status)[0] : "pending";
          }

          // ---- filters ---------------------------------------------------------

          function filters() {
            return {
              method: $("filter-method").value,
              status: $("filter-status").value.trim(),
              path: $("filter-path").value.trim().toLowerCase(),
              header: $("filter-header").value.trim().toLowerCase(),
              body: $("filter-body").value.trim().toLowerCase(),
            };
          }

          function needsSearch(f) { return Boolean(f.header || f.body); }

          // Header and body filters need each webhook's detail: it is fetched once
          // per webhook while such a filter is set, and only the first 64 KiB of
          // each body is kept for searching (docs/inspector-page.md).
          function matches(summary, f) {
            if (f.method && summary.method !== f.method) return false;
            if (f.status && !F.statusMatches(f.status, summary.status)) return false;
            if (f.path && !summary.path.toLowerCase().includes(f.path)) return false;
            if (!needsSearch(f)) return true;
            const found = state.search.get(summary.id);
            if (!found) return false;
            if (f.header) {
              const colon = f.header.indexOf(":");
              const name = (colon < 0 ? f.header : f.header.slice(0, colon)).trim();
              const value = colon < 0 ? null : f.header.slice(colon + 1).trim();
              const hit = found.headers.some(([n, v]) => n.toLowerCase() === name && (value === null || v.toLowerCase().includes(value)));
              if (!hit) return false;
            }
            if (f.body && !found.text.includes(f.body)) return false;
            return true;
          }

          function searchTextOf(body) {
            if (!body || !body.body_base64) return "";
            const bytes = F.bytesFromBase64(body.body_base64).subarray(0, SEARCH_PREFIX);
            return new TextDecoder("utf-8").decode(bytes).toLowerCase();
          }

          function remember(detail) {
            if (detail.state !== "complete") return;
            const headers = (detail.request ? detail.request.headers : []).concat(detail.response ? detail.response.headers : []);
            state.search.set(detail.id, { headers, text: searchTextOf(detail.request) + "\n" + searchTextOf(detail.response) });
          }

          async function fillSearch() {
            const missing = sorted().filter((s) => !state.search.has(s.id) && !state.searching.has(s.id));
            let next = 0;
            const worker = async () => {
              while (next < missing.length && needsSearch(filters())) {
                const summary = missing[next++];
                state.searching.add(summary.id);
                let detail = null;
                try { detail = await api(`/api/webhooks/${encodeURIComponent(summary.id)}`); remember(detail); } catch (_) { /* evicted */ }
                state.searching.delete(summary.id);
                // It completed while its in-progress detail was being fetched: fetch it again.
                const now = state.items.get(summary.id);
                if (detail && detail.state !== "complete" && now && now.state === "complete") missing.push(now);
                scheduleRender();
              }
            };
            await Promise.all([worker(), worker(), worker(), worker()]);
          }

          // ---- list ------------------------------------------------------------

          function upsert(summary, isNew) {
            const known = state.items.get(summary.id);
            if (!known && isNew) state.fresh.add(summary.id);
            state.items.set(summary.id, summary);
            if (known && known.state !== summary.state) state.search.delete(summary.id);
          }

          // Many webhooks a second must not mean many full renders: one per frame.
          let renderPending = false;
          function scheduleRender() {
            if (renderPending) return;
            renderPending = true;
            requestAnimationFrame(() => { renderPending = false; render(); });
          }

          // The page keeps at most this many summaries (the history's default bound
          // is 1,000): a tab left open for days does not grow without end.
          const KEEP = 2000;
          function trim() {
            if (state.items.size <= KEEP) return;
            for (const s of sorted().slice(KEEP)) {
              if (s.id === state.selectedId) continue;
              state.items.delete(s.id);
              state.search.delete(s.id);
              state.checked.delete(s.id);
            }
          }

          const rowCache = new Map();  // id -> {key, node}

          function render() {
            const f = filters();
            const all = sorted();
            const shown = all.filter((s) => matches(s, f));
            // Rows whose webhook did not change are kept, so a click in progress is
            // not lost to a live update, and the DOM is touched only if it differs.
            const rows = shown.map((s) => {
              const key = JSON.stringify(s) + (s.id === state.selectedId) + state.checked.has(s.id);
              const cached = rowCache.get(s.id);
              if (cached && cached.key === key && !state.fresh.has(s.id)) return cached.node;
              const node = row(s);
              rowCache.set(s.id, { key, node });
              return node;
            });
            for (const id of rowCache.keys()) if (!state.items.has(id)) rowCache.delete(id);
            const body = $("rows");
            const current = Array.from(body.children);
            if (current.length !== rows.length || current.some((node, i) => node !== rows[i])) body.replaceChildren(...rows);
            state.fresh.clear();
            $("empty").hidden = all.length > 0;
            $("count").textContent = shown.length === all.length ? `${all.length} webhooks` : `${shown.length} of ${all.length} webhooks`;
            $("more").hidden = !state.hasOlder;
            const pending = needsSearch(f) ? all.filter((s) => !state.search.has(s.id)).length : 0;
            $("filter-note").textContent = pending ? `checking ${pending} webhooks…` : "";
            // A detail fetched mid-exchange or lost to a failed request is looked up again
            // shortly, so no race between the live events and the fetches leaves a row out.
            if (pending && !state.searchRetry) {
              state.searchRetry = setTimeout(() => { state.searchRetry = null; if (needsSearch(filters())) fillSearch(); }, 300);
            }
            const checked = Array.from(state.checked).filter((id) => state.items.has(id));
            const exportSelected = $("export-selected");
            exportSelected.hidden = checked.length === 0;
            exportSelected.textContent = `Export ${checked.length} selected (HAR)`;
            exportSelected.href = harURL(checked);
          }

          function row(s) {
            const tags = [];
            if (s.replay_of) tags.push(el("span", { class: "tag replay", title: `replay of ${s.replay_of}`, testid: "tag-replay" }, "replay"));
            if (s.delivery_id) tags.push(el("span", { class: "tag queued", title: `queued by the server while the client was away (${s.delivery_id})`, testid: "tag-queued" }, "queued"));
            if (s.error) tags.push(el("span", { class: "tag error", title: s.error }, "error"));
            const status = s.state === "in_progress" ? "…" : s.status === null || s.status === undefined ? "—" : String(s.status);
            const checkbox = el("input", { type: "checkbox", "aria-label": "select for HAR export", onclick: (e) => e.stopPropagation(), onchange: (e) => {
              if (e.target.checked) state.checked.add(s.id); else state.checked.delete(s.id);
              render();
            } });
            checkbox.checked = state.checked.has(s.id);
            const classes = ["row"];
            if (s.id === state.selectedId) classes.push("selected");
            if (state.fresh.has(s.id)) classes.push("fresh");
            return el("tr", { class: classes.join(" "), testid: "webhook-row", "data-id": s.id, "data-state": s.state, onclick: () => select(s.id) },
              el("td", {}, checkbox),
              el("td", { class: "time", title: s.time }, clock(s.time)),
              el("td", { class: "method" }, s.method),
              el("td", { class: "path", title: s.path }, el("div", {}, el("span", { class: "p" }, s.path), tags)),
              el("td", { class: "status " + statusClass(s.status), testid: "row-status" }, status),
              el("td", { class: "num" }, F.duration(s.duration_ms)),
              el("td", { class: "num" }, F.size(s.request_size)),
              el("td", { class: "num" }, F.size(s.response_size)),
            );
          }

          async function loadPage(before) {
            const query = `?limit=${PAGE}` + (before ? `&before=${encodeURIComponent(before)}` : "");
            const page = await api("/api/webhooks" + query);
            for (const summary of page.webhooks) upsert(summary, false);
            if (before || state.items.size <= page.webhooks.length) state.hasOlder = page.webhooks.length === PAGE;
            render();
            if (needsSearch(filters())) fillSearch();
          }

          function connect() {
            const live = $("live");
            const events = new EventSource("/api/events");
            let dropped = false;
            events.onopen = () => {
              live.textContent = "live";
              live.className = "live on";
              if (dropped) loadPage().catch(() => {});
            };
            events.onerror = () => {
              dropped = true;
              live.textContent = "reconnecting…";
              live.className = "live off";
            };
            events.addEventListener("webhook", (event) => {
              let summary;
              try { summary = JSON.parse(event.data); } catch (_) { return; }
              const before = state.items.get(summary.id);
              upsert(summary, true);
              trim();
              scheduleRender();
              if (needsSearch(filters()) && summary.state === "complete") fillSearch();
              if (summary.id === state.selectedId && before && before.state !== "complete" && !state.editing) select(summary.id);
            });
          }

          // ---- detail ----------------------------------------------------------

          async function select(id) {
            state.selectedId = id;
            state.editing = false;
            render();
            const pane = $("detail");
            let detail;
            try {
              detail = await api(`/api/webhooks/${encodeURIComponent(id)}`);
            } catch (error) {
              if (state.selectedId === id) pane.replaceChildren(el("p", { class: "card error-box" }, `Could not load ${id}: ${error.message}`));
              return;
            }
            if (state.selectedId !== id) return;
            remember(detail);
            state.detail = detail;
            pane.setAttribute("data-id", id);
            pane.replaceChildren(...renderDetail(detail).filter(Boolean));
          }

          function renderDetail(d) {
            const tags = [];
            if (d.replay_of) tags.push(el("span", { class: "tag replay" }, "replay"));
            if (d.delivery_id) tags.push(el("span", { class: "tag queued" }, "queued"));
            const meta = el("div", { class: "meta" },
              el("span", {}, "id ", el("b", { testid: "detail-id" }, d.id)),
              el("span", { title: d.time }, "received ", el("b", {}, new Date(d.time).toLocaleString())),
              el("span", {}, "took ", el("b", { testid: "detail-duration" }, d.state === "complete" ? F.duration(d.duration_ms) : "in progress")),
              d.replay_of ? el("span", {}, "replay of ", el("button", { class: "link", type: "button", onclick: () => select(d.replay_of) }, d.replay_of)) : null,
              d.delivery_id ? el("span", {}, "queued delivery ", el("b", {}, d.delivery_id)) : null,
            );
            const actions = el("div", { class: "actions" },
              el("button", { type: "button", class: "primary", testid: "replay", onclick: (e) => replay(d, null, e.target) }, "Replay"),
              el("button", { type: "button", class: "secondary", testid: "edit", onclick: () => openEditor(d) }, "Edit and replay"),
              el("button", { type: "button", class: "secondary", testid: "copy-curl", onclick: () => copyCurl(d) }, "Copy as curl"),
              el("a", { class: "button", testid: "export-one", href: harURL([d.id]), download: `webhook-${d.id}.har` }, "HAR"),
            );
            const error = d.error ? el("div", { class: "card error-box", testid: "detail-error" }, d.error) : null;
            return [
              el("h2", {}, `${d.method} ${d.path}`, tags),
              meta,
              actions,
              el("div", { id: "curl", testid: "curl" }),
              el("div", { id: "editor", testid: "editor" }),
              el("div", { id: "replay-result", testid: "replay-result" }),
              error,
              el("h3", {}, "Request"),
              requestCard(d),
              el("h3", {}, d.error && d.response ? "Answer the sender got (from the tunnel)" : "Answer the sender got"),
              responseCard(d),
            ];
          }

          function headersTable(headers, testid) {
            return el("table", { class: "headers", testid },
              el("tbody", {}, (headers || []).map(([name, value]) =>
                el("tr", { testid: "header-row" }, el("td", { class: "name" }, name + ":"), el("td", { class: "value" }, value)))));
          }

          function requestCard(d) {
            const r = d.request;
            return el("div", { class: "card", testid: "request" },
              el("div", { class: "startline" }, `${r.method} ${r.path}`),
              headersTable(r.headers, "request-headers"),
              bodyView(d.id, "request", r));
          }

          function responseCard(d) {
            const r = d.response;
            if (!r) {
              const text = d.state === "complete" ? "No answer was sent." : "Waiting for the local app's answer…";
              return el("div", { class: "card", testid: "response" }, el("p", { class: "note" }, text));
            }
            return el("div", { class: "card", testid: "response" },
              el("div", { class: "startline " + statusClass(r.status), testid: "response-status" }, String(r.status)),
              headersTable(r.headers, "response-headers"),
              bodyView(d.id, "response", r));
          }

          function bodyView(id, part, message) {
            const bytes = F.bytesFromBase64(message.body_base64);
            const formatted = F.formatBody(bytes, F.header(message.headers, "content-type"));
            const holder = el("div", { testid: `${part}-body-view` });
            let raw = false;
            const show = () => {
              if (formatted.kind === "empty") {
                holder.replaceChildren(el("p", { class: "note" }, "(empty body)"));
              } else if (raw) {
                const text = F.textOf(bytes);
                holder.replaceChildren(el("pre", { class: "body", testid: `${part}-body`, "data-kind": "raw" }, text === null ? F.hexDump(bytes) : text));
              } else if (formatted.kind === "form") {
                holder.replaceChildren(el("table", { class: "form", testid: `${part}-form` },
                  el("thead", {}, el("tr", {}, el("th", {}, "field"), el("th", {}, "value"))),
                  el("tbody", {}, formatted.fields.map((field) => el("tr", { testid: "form-field" },
                    el("td", { class: "name" }, field.name),
                    el("td", { class: "value" }, field.json ? el("pre", {}, field.value) : field.value))))));
              } else {
                holder.replaceChildren(el("pre", { class: "body", testid: `${part}-body`, "data-kind": formatted.kind }, formatted.text));
              }
            };
            const toggle = el("button", { type: "button", class: "link", testid: `${part}-raw-toggle`, onclick: () => {
              raw = !raw;
              toggle.textContent = raw ? `show as ${formatted.kind}` : "raw";
              show();
            } }, "raw");
            const bar = el("div", { class: "body-bar" },
              el("span", { testid: `${part}-body-kind` }, formatted.kind === "empty" ? "no body" : formatted.kind),
              el("span", {}, F.size(message.body_size)),
              message.body_truncated
                ? el("span", { class: "tag truncated", testid: `${part}-truncated` }, `first ${bytes.length} of ${message.body_size} bytes, sha256 ${message.body_sha256}`)
                : null,
              formatted.kind === "empty" ? null : toggle,
              message.body_size > 0 ? el("a", { href: bodyURL(id, part), download: `${part}-${id}.body`, testid: `${part}-download` }, "download raw bytes") : null,
            );
            show();
            return el("div", {}, bar, holder);
          }

          // ---- replay ----------------------------------------------------------

          async function waitComplete(detail) {
            const deadline = Date.now() + 120000;
            let current = detail;
            while (current.state !== "complete" && Date.now() < deadline) {
              await new Promise((resolve) => setTimeout(resolve, 250));
              current = await api(`/api/webhooks/${encodeURIComponent(current.id)}`);
            }
            return current;
          }

          async function replay(original, edits, button) {
            const target = $("replay-result");
            if (button) button.disabled = true;
            target.replaceChildren(el("p", { class: "note", testid: "replay-pending" }, "Replaying…"));
            try {
              const created = await api(`/api/webhooks/${encodeURIComponent(original.id)}/replay`, {
                method: "POST",
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify(edits || {}),
              });
              const done = await waitComplete(created);
              if (state.selectedId !== original.id) return;
              upsert(done, false);
              render();
              target.replaceChildren(compare(original, done));
              target.scrollIntoView({ block: "nearest" });
            } catch (error) {
              target.replaceChildren(el("div", { class: "card error-box", testid: "replay-error" }, `Replay failed: ${error.message}`));
            } finally {
              if (button) button.disabled = false;
            }
          }

          function answerText(message) {
            if (!message) return { head: "", body: "" };
            const bytes = F.bytesFromBase64(message.body_base64);
            const formatted = F.formatBody(bytes, F.header(message.headers, "content-type"));
            const body = formatted.kind === "form" ? formatted.fields.map((f) => `${f.name} = ${f.value}`).join("\n") : formatted.text;
            return { head: F.headLines(message.headers), body };
          }

          // The original answer and the replay's side by side; lines only one side
          // has are highlighted on that side.
          function compare(original, replayed) {
            const a = answerText(original.response), b = answerText(replayed.response);
            const statusA = original.response ? original.response.status : "—";
            const statusB = replayed.response ? replayed.response.status : "—";
            const changed = statusA !== statusB;
            const side = (ops, keep, cls, testid) => el("pre", { class: "diff", testid },
              ops.filter((o) => o.op === "same" || o.op === keep).map((o) => el("span", { class: o.op === "same" ? "same" : cls }, o.line || " ")));
            const headOps = F.lineDiff(a.head, b.head), bodyOps = F.lineDiff(a.body, b.body);
            const column = (title, status, keep, cls, prefix, error) => el("div", {},
              el("h4", {}, title, " ", el("span", { class: "startline " + statusClass(status) + (changed ? " changed" : ""), testid: `${prefix}-status` }, String(status))),
              error ? el("div", { class: "note" }, error) : null,
              side(headOps, keep, cls, `${prefix}-headers`),
                    side(bodyOps, keep, cls, `${prefix}-body`));
            const differences = [changed ? "status" : null, headOps.some((o) => o.op !== "same") ? "headers" : null,
              bodyOps.some((o) => o.op !== "same") ? "body" : null].filter(Boolean);
            return el("div", { class: "card", testid: "replay-compare", "data-replay-id": replayed.id },
              el("div", { class: "body-bar" },
                el("b", {}, "Replay "),
                el("button", { type: "button", class: "link", testid: "open-replay", onclick: () => select(replayed.id) }, replayed.id),
                el("span", { testid: "replay-differences" }, differences.length ? `differs in ${differences.join(", ")}` : "same answer"),
                el("span", {}, F.duration(replayed.duration_ms))),
              el("div", { class: "compare" },
                column("Original", statusA, "del", "del", "original", original.error),
                column("Replay", statusB, "add", "add", "replay", replayed.error)));
          }

          // ---- edit and replay -------------------------------------------------

          function openEditor(d) {
            state.editing = true;
            const r = d.request;
            const bytes = F.bytesFromBase64(r.body_base64);
            const text = F.textOf(bytes);
            const editable = text !== null && !r.body_truncated;
            const method = el("input", { testid: "edit-method", value: r.method, size: 8, "aria-label": "method" });
            const path = el("input", { class: "path", testid: "edit-path", value: r.path, "aria-label": "path" });
            const headers = el("textarea", { testid: "edit-headers", spellcheck: "false" });
            headers.value = F.headLines(r.headers);
            const body = el("textarea", { testid: "edit-body", spellcheck: "false", disabled: !editable });
            body.value = editable ? text : "";
            const sign = el("select", { testid: "edit-sign" },
              el("option", { value: "" }, "do not re-sign"),
              el("option", { value: "github" }, "GitHub (X-Hub-Signature-256)"),
              el("option", { value: "stripe" }, "Stripe (Stripe-Signature)"),
              el("option", { value: "slack" }, "Slack (X-Slack-Signature)"));
            const secret = el("input", { type: "password", testid: "edit-secret", autocomplete: "off", placeholder: "signing secret", "aria-label": "signing secret",
              oninput: (e) => { signSecret = e.target.value; } });
            secret.value = signSecret;
            const problem = el("p", { class: "note", testid: "edit-problem" });
            const send = el("button", { type: "button", class: "primary", testid: "edit-send", onclick: () => {
              const edits = { method: method.value.trim().toUpperCase(), path: path.value.trim() };
              const lines = headers.value.split("\n").map((l) => l.replace(/\r$/, "")).filter((l) => l.trim() !== "");
              const parsed = [];
              for (const line of lines) {
                const colon = line.indexOf(":");
                if (colon <= 0) { problem.textContent = `Not a header line (Name: value): ${line}`; return; }
                parsed.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
              }
              if (editable) {
                const newBytes = new TextEncoder().encode(body.value);
                edits.body_base64 = F.base64FromBytes(newBytes);
                if (body.value !== text) {
                  // The backend frames the edited body; a stale length would lie.
                  edits.headers = parsed.filter(([n]) => !["content-length", "transfer-encoding"].includes(n.toLowerCase()));
                }
              }
              if (!edits.headers) edits.headers = parsed;
              if (sign.value) {
                if (!signSecret) { problem.textContent = "Type the signing secret to re-sign."; return; }
                edits.sign = { provider: sign.value, secret: signSecret };
              }
              problem.textContent = "";
              replay(d, edits, send);
            } }, "Send");
            const editor = el("div", { class: "card editor", testid: "editor-form" },
              el("label", {}, "Request line"),
              el("div", { class: "row2" }, method, path),
              el("label", {}, "Headers (one Name: value per line, in order)"),
              headers,
              el("label", {}, editable ? "Body" : r.body_truncated ? "Body (only its first bytes were kept: sent as captured)" : "Body (binary: sent unchanged)"),
              body,
              el("label", {}, "Re-sign the body"),
              el("div", { class: "row2" }, sign, secret),
              el("p", { class: "note" }, "The secret stays in this page's memory: it is sent with this replay only, never stored."),
              problem,
              el("div", { class: "actions" }, send,
                el("button", { type: "button", class: "secondary", onclick: () => { state.editing = false; $("editor").replaceChildren(); } }, "Close")));
            $("editor").replaceChildren(editor);
            method.focus();
          }

          // ---- curl ------------------------------------------------------------

          async function copyCurl(d) {
            const command = F.curlCommand(d.request, F.bytesFromBase64(d.request.body_base64), d.id);
            const status = el("span", { class: "note", testid: "curl-status" }, "copying…");
            const box = el("textarea", { class: "curl", testid: "curl-text", readonly: true, spellcheck: "false" });
            box.value = "# TARGET is your local app, e.g. TARGET=http://127.0.0.1:3000\n" + command;
            $("curl").replaceChildren(el("div", { class: "card" }, status, box));
            try {
              await navigator.clipboard.writeText(box.value);
              status.textContent = "Copied to the clipboard.";
            } catch (_) {
              status.textContent = "The browser refused the clipboard: select the text below and copy it.";
              box.focus();
              box.select();
            }
          }

          // ---- start -----------------------------------------------------------

          function start() {
            $("filters").addEventListener("submit", (e) => e.preventDefault());
            for (const id of ["filter-method", "filter-status", "filter-path", "filter-header", "filter-body"]) {
              for (const kind of ["input", "change"]) {
                $(id).addEventListener(kind, () => { render(); if (needsSearch(filters())) fillSearch(); });
              }
            }
            $("filter-clear").addEventListener("click", () => {
              for (const id of ["filter-status", "filter-path", "filter-header", "filter-body"]) $(id).value = "";
              $("filter-method").value = "";
              render();
            });
            $("select-all").addEventListener("change", (e) => {
              const f = filters();
              for (const s of state.items.values()) {
                if (!matches(s, f)) continue;
                if (e.target.checked) state.checked.add(s.id); else state.checked.delete(s.id);
              }
              render();
            });
            $("more").addEventListener("click", () => {
              const oldest = sorted().pop();
              if (oldest) loadPage(oldest.id).catch(() => {});
            });
            connect();
            loadPage().catch((error) => {
              $("empty").textContent = `Could not load the history: ${error.message}`;
            });
          }

          start();
        })();

        """#
}
