extension InspectorPage {
    /// Pure helpers the page script uses: base64, body formatting (JSON that
    /// keeps numbers as sent, form fields, XML, text, hex), line diffs, curl.
    static let formatScript = #"""
        // Pure helpers for the inspector page: decoding, body formatting, diffs,
        // curl. Nothing here touches the DOM, so nothing here can inject markup.
        "use strict";
        const WOWFormat = (() => {
          const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

          function bytesFromBase64(text) {
            const binary = atob(text || "");
            const bytes = new Uint8Array(binary.length);
            for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
            return bytes;
          }

          function base64FromBytes(bytes) {
            let binary = "";
            for (let i = 0; i < bytes.length; i += 0x8000) {
              binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
            }
            return btoa(binary);
          }

          // The body as text if it is valid UTF-8 without control characters other
          // than tab, CR and LF; otherwise null (shown as hex).
          function textOf(bytes) {
            let text;
            try { text = utf8.decode(bytes); } catch (_) { return null; }
            // eslint-disable-next-line no-control-regex
            if (/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.test(text)) return null;
            return text;
          }

          function header(headers, name) {
            const lower = name.toLowerCase();
            for (const [n, v] of headers || []) if (n.toLowerCase() === lower) return v;
            return null;
          }

          // Re-indents JSON without parsing numbers, so 2^53+1 and 1.10 stay exactly
          // as they arrived. Only called on text JSON.parse accepts.
          function prettyJSON(text) {
            let out = "", depth = 0, i = 0;
            const pad = () => "\n" + "  ".repeat(depth);
            while (i < text.length) {
              const c = text[i];
              if (c === '"') {
                let j = i + 1;
                while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
                out += text.slice(i, j + 1);
                i = j + 1;
                continue;
              }
              if (c === " " || c === "\t" || c === "\n" || c === "\r") { i++; continue; }
              if (c === "{" || c === "[") {
                let j = i + 1;
                while (j < text.length && " \t\r\n".includes(text[j])) j++;
                if (text[j] === (c === "{" ? "}" : "]")) { out += c + text[j]; i = j + 1; continue; }
                depth++;
                out += c + pad();
              } else if (c === "}" || c === "]") {
                depth--;
                out += pad() + c;
              } else if (c === ",") {
                out += "," + pad();
              } else if (c === ":") {
                out += ": ";
              } else {
                out += c;
              }
              i++;
            }
            return out;
          }

          function looksJSON(text) {
            const t = text.trim();
            if (!(t.startsWith("{") || t.startsWith("["))) return false;
            try { JSON.parse(t); return true; } catch (_) { return false; }
          }

          function prettyXML(text) {
            const doc = new DOMParser().parseFromString(text, "application/xml");
            if (doc.getElementsByTagName("parsererror").length > 0) return null;
            const lines = [];
            const attrs = (el) => Array.from(el.attributes).map((a) => ` ${a.name}="${a.value.replace(/"/g, "&quot;")}"`).join("");
            const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
            const walk = (node, depth) => {
              const pad = "  ".repeat(depth);
              for (const child of node.childNodes) {
                if (child.nodeType === Node.ELEMENT_NODE) {
                  const kids = Array.from(child.childNodes);
                  const onlyText = kids.every((k) => k.nodeType === Node.TEXT_NODE || k.nodeType === Node.CDATA_SECTION_NODE);
                  if (kids.length === 0) {
                    lines.push(`${pad}<${child.nodeName}${attrs(child)}/>`);
                  } else if (onlyText) {
                    const inner = kids.map((k) => k.nodeType === Node.CDATA_SECTION_NODE ? `<![CDATA[${k.data}]]>` : esc(k.data)).join("");
                    lines.push(`${pad}<${child.nodeName}${attrs(child)}>${inner.trim()}</${child.nodeName}>`);
                  } else {
                    lines.push(`${pad}<${child.nodeName}${attrs(child)}>`);
                    walk(child, depth + 1);
                    lines.push(`${pad}</${child.nodeName}>`);
                  }
                } else if (child.nodeType === Node.TEXT_NODE) {
                  if (child.data.trim()) lines.push(pad + esc(child.data.trim()));
                } else if (child.nodeType === Node.CDATA_SECTION_NODE) {
                  lines.push(`${pad}<![CDATA[${child.data}]]>`);
                } else if (child.nodeType === Node.COMMENT_NODE) {
                  lines.push(`${pad}<!--${child.data}-->`);
                } else if (child.nodeType === Node.PROCESSING_INSTRUCTION_NODE) {
                  lines.push(`${pad}<?${child.target} ${child.data}?>`);
                }
              }
            };
            walk(doc, 0);
            const decl = text.trimStart().match(/^<\?xml[^?]*\?>/);
            return (decl ? decl[0] + "\n" : "") + lines.join("\n");
          }

          function hexDump(bytes, limit) {
            const max = Math.min(bytes.length, limit || 64 * 1024);
            const lines = [];
            for (let off = 0; off < max; off += 16) {
              const row = bytes.subarray(off, Math.min(off + 16, max));
              let hex = "", ascii = "";
              for (let i = 0; i < 16; i++) {
                hex += i < row.length ? row[i].toString(16).padStart(2, "0") + " " : "   ";
                if (i === 7) hex += " ";
                if (i < row.length) ascii += row[i] >= 0x20 && row[i] < 0x7f ? String.fromCharCode(row[i]) : ".";
              }
              lines.push(off.toString(16).padStart(8, "0") + "  " + hex + " |" + ascii + "|");
            }
            if (max < bytes.length) lines.push(`… ${bytes.length - max} more bytes (download the raw body)`);
            return lines.join("\n");
          }

          // What the body is and how to show it: {kind, text} or {kind:"form", fields}.
          function formatBody(bytes, contentType) {
            if (bytes.length === 0) return { kind: "empty", text: "" };
            const type = (contentType || "").toLowerCase();
            const text = textOf(bytes);
            if (text === null) return { kind: "hex", text: hexDump(bytes) };
            if ((type.includes("json") || !type) && looksJSON(text)) return { kind: "json", text: prettyJSON(text) };
            if (type.includes("application/x-www-form-urlencoded")) {
              const fields = [];
              for (const [name, value] of new URLSearchParams(text)) {
                fields.push({ name, value: looksJSON(value) ? prettyJSON(value) : value, json: looksJSON(value) });
              }
              return { kind: "form", fields, text };
            }
            if (type.includes("xml") || (!type && text.trimStart().startsWith("<?xml"))) {
              const pretty = prettyXML(text);
              if (pretty !== null) return { kind: "xml", text: pretty };
            }
            if (looksJSON(text)) return { kind: "json", text: prettyJSON(text) };
            return { kind: "text", text };
          }

          // A line diff (longest common subsequence); large inputs fall back to a
          // positional comparison so the page never stalls.
          function lineDiff(a, b) {
            const x = a.split("\n"), y = b.split("\n");
            if (x.length * y.length > 4000000) {
              const out = [];
              for (let i = 0; i < Math.max(x.length, y.length); i++) {
                if (x[i] === y[i]) out.push({ op: "same", line: x[i] });
                else {
                  if (i < x.length) out.push({ op: "del", line: x[i] });
                  if (i < y.length) out.push({ op: "add", line: y[i] });
                }
              }
              return out;
            }
            const n = x.length, m = y.length;
            const table = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
            for (let i = n - 1; i >= 0; i--) {
              for (let j = m - 1; j >= 0; j--) {
                table[i][j] = x[i] === y[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
              }
            }
            const out = [];
            let i = 0, j = 0;
            while (i < n && j < m) {
              if (x[i] === y[j]) { out.push({ op: "same", line: x[i] }); i++; j++; }
              else if (table[i + 1][j] >= table[i][j + 1]) { out.push({ op: "del", line: x[i++] }); }
              else { out.push({ op: "add", line: y[j++] }); }
            }
            while (i < n) out.push({ op: "del", line: x[i++] });
            while (j < m) out.push({ op: "add", line: y[j++] });
            return out;
          }

          function shellQuote(s) {
            return "'" + s.replace(/'/g, "'\\''") + "'";
          }

          // A curl command that sends the request again to the local app. Headers
          // curl sets itself (Host, Content-Length, Transfer-Encoding) are left out.
          function curlCommand(request, bodyBytes, id) {
            const skip = new Set(["host", "content-length", "transfer-encoding", "connection"]);
            const parts = [`curl -X ${request.method} "\${TARGET:-http://127.0.0.1:3000}"${shellQuote(request.path)}`];
            for (const [name, value] of request.headers) {
              if (!skip.has(name.toLowerCase())) parts.push(`-H ${shellQuote(name + ": " + value)}`);
            }
            if (request.body_size > 0) {
              const text = textOf(bodyBytes);
              if (text !== null && !request.body_truncated) parts.push(`--data-binary ${shellQuote(text)}`);
              else parts.push(`--data-binary @request-${id}.body`);
            }
            return parts.join(" \\\n  ");
          }

          // "2xx", "404", "4xx,5xx": does the status match?
          function statusMatches(filter, status) {
            const wanted = filter.split(/[ ,]+/).filter(Boolean);
            if (wanted.length === 0) return true;
            if (status === null || status === undefined) return wanted.some((w) => w === "-" || w === "none");
            const s = String(status);
            return wanted.some((w) => {
              const lower = w.toLowerCase();
              if (/^[1-5]xx$/.test(lower)) return s[0] === lower[0];
              return s === lower;
            });
          }

          function size(bytes) {
            if (bytes === null || bytes === undefined) return "";
            if (bytes < 1024) return `${bytes} B`;
            if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
            return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
          }

          function duration(ms) {
            if (ms === null || ms === undefined) return "";
            if (ms < 10) return `${ms.toFixed(1)} ms`;
            if (ms < 10000) return `${Math.round(ms)} ms`;
            return `${(ms / 1000).toFixed(1)} s`;
          }

          function headLines(headers) {
            return (headers || []).map(([n, v]) => `${n}: ${v}`).join("\n");
          }

          return {
            bytesFromBase64, base64FromBytes, textOf, header, prettyJSON, prettyXML, hexDump, formatBody,
            lineDiff, curlCommand, statusMatches, size, duration, headLines,
          };
        })();

        """#
}
