/*! rag-helpdesk widget: one self-contained file, no build step, no dependencies.
 *
 * Embed with one line:
 *   <script src="https://your-rag-host/widget.js" data-api="https://your-rag-host" defer></script>
 *
 * Options (data attributes on the script tag, or on a <rag-helpdesk> element you place yourself):
 *   data-api       service base URL (default: where widget.js was loaded from)
 *   data-lang      "ar" | "en" UI language (default: the page's <html lang>, else "en")
 *   data-title     panel title
 *   data-accent    accent colour (any CSS colour)
 *   data-position  "bottom-right" | "bottom-left" (default: bottom-right, bottom-left on RTL UI)
 *   data-api-key   sent as the X-API-Key header when the service requires a key
 *
 * Security: every piece of text that comes from the service (answers, titles, document text,
 * error messages) is inserted with textContent / createTextNode, never parsed as HTML.
 */
(() => {
  "use strict";

  const TAG = "rag-helpdesk";
  if (customElements.get(TAG)) return; // loaded twice: the first copy wins

  const SCRIPT = document.currentScript;
  const OPTIONS = ["api", "lang", "title", "accent", "position", "apiKey"];
  const HISTORY_LIMIT = 40; // messages kept in sessionStorage
  const TIMEOUT_MS = 30000;
  const SNIPPET_CONTEXT = 60; // code points shown around the answer span in a citation
  const SNIPPET_MAX = 200;

  const STRINGS = {
    en: {
      title: "Help", open: "Open help chat", close: "Close help chat", newChat: "New conversation",
      placeholder: "Ask a question…", inputLabel: "Your question", send: "Send",
      welcome: "Ask a question in English or Arabic. Answers are quoted from our documents, with their sources.",
      thinking: "Searching the documents…", you: "You", assistant: "Answer",
      abstain: "I couldn't find this in the documents.",
      unreachable: "The help service can't be reached right now.", retry: "Retry",
      failed: "The request failed:", sources: "Sources", source: "Source",
      openSource: "Show the source passage", back: "Back to the conversation",
      loadingSource: "Loading the source…", sourceFailed: "The source could not be loaded.",
      openOriginal: "Open the original page", log: "Conversation",
    },
    ar: {
      title: "المساعدة", open: "افتح نافذة المساعدة", close: "أغلق نافذة المساعدة", newChat: "محادثة جديدة",
      placeholder: "اكتب سؤالك…", inputLabel: "سؤالك", send: "إرسال",
      welcome: "اطرح سؤالك بالعربية أو الإنجليزية. الإجابات مقتبسة من وثائقنا مع مصادرها.",
      thinking: "جارٍ البحث في الوثائق…", you: "أنت", assistant: "الإجابة",
      abstain: "لم أجد الإجابة في الوثائق المتاحة.",
      unreachable: "تعذّر الوصول إلى خدمة المساعدة حالياً.", retry: "إعادة المحاولة",
      failed: "تعذّر تنفيذ الطلب:", sources: "المصادر", source: "المصدر",
      openSource: "اعرض المقطع من المصدر", back: "العودة إلى المحادثة",
      loadingSource: "جارٍ تحميل المصدر…", sourceFailed: "تعذّر تحميل المصدر.",
      openOriginal: "افتح الصفحة الأصلية", log: "المحادثة",
    },
  };

  // ---- text helpers -------------------------------------------------------------------------

  const RTL_CHARS = /[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc]/g;
  const LETTERS = /\p{L}/gu;

  /** "rtl" when right-to-left letters are at least half of the letters (Arabic wins ties,
   *  like the service's language detection), "ltr" when there are other letters, else null. */
  function scriptDir(text) {
    const rtl = (text.match(RTL_CHARS) || []).length;
    const all = (text.match(LETTERS) || []).length;
    if (!all) return null;
    return rtl * 2 >= all ? "rtl" : "ltr";
  }

  const langOf = (text) => (scriptDir(text) === "rtl" ? "ar" : "en");

  /** The service counts offsets in code points (Python str); JS strings index UTF-16 units. */
  function units(text, cp) {
    if (!/[\ud800-\udfff]/.test(text)) return Math.max(0, Math.min(cp, text.length));
    let u = 0;
    for (let i = 0; i < cp && u < text.length; i++) u += text.codePointAt(u) > 0xffff ? 2 : 1;
    return u;
  }
  const cpLength = (text) => (/[\ud800-\udfff]/.test(text) ? Array.from(text).length : text.length);
  const cpSlice = (text, start, end) => text.slice(units(text, start), end === undefined ? undefined : units(text, end));

  /** Element factory; `text` always becomes a text node. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) el.append(c); // append(string) = text node
    return el;
  }

  /** `text` with code points [start, end) wrapped in <mark>, as nodes (never HTML). */
  function marked(text, start, end, cls) {
    const frag = document.createDocumentFragment();
    const len = cpLength(text);
    start = Math.max(0, Math.min(start, len));
    end = Math.max(start, Math.min(end, len));
    if (end <= start) {
      frag.append(text);
      return frag;
    }
    frag.append(cpSlice(text, 0, start), h("mark", { class: cls || "hl" }, cpSlice(text, start, end)), cpSlice(text, end));
    return frag;
  }

  const SOURCE_WINDOW = 1500; // code points of context kept on each side of a source span

  /** A cut position in `text` at a line break, else a space, within `range` units of `from`
   *  (searching forwards when range > 0, backwards when < 0); -1 when there is none. */
  function boundary(text, from, range) {
    for (const ch of ["\n", " "]) {
      const i = range > 0 ? text.indexOf(ch, from) : text.lastIndexOf(ch, from);
      if (i >= 0 && Math.abs(i - from) <= Math.abs(range)) return i;
    }
    return -1;
  }

  /** The last ~SOURCE_WINDOW code points of `text`, from a line or word boundary. */
  function trimStart(text) {
    if (cpLength(text) <= SOURCE_WINDOW) return text;
    const tail = cpSlice(text, cpLength(text) - SOURCE_WINDOW);
    return "… " + tail.slice(boundary(tail, 0, 200) + 1);
  }

  /** The first ~SOURCE_WINDOW code points of `text`, up to a line or word boundary. */
  function trimEnd(text) {
    if (cpLength(text) <= SOURCE_WINDOW) return text;
    const head = cpSlice(text, 0, SOURCE_WINDOW);
    const cut = boundary(head, head.length - 1, -200);
    return (cut > 0 ? head.slice(0, cut) : head) + " …";
  }

  function icon(paths, size) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", size || 24);
    svg.setAttribute("height", size || 24);
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    for (const d of paths) {
      const p = document.createElementNS(NS, "path");
      p.setAttribute("d", d);
      svg.append(p);
    }
    return svg;
  }
  const ICON_CHAT = ["M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"];
  const ICON_CLOSE = ["M6 6l12 12M18 6L6 18"];
  const ICON_SEND = ["M3 12l18-9-7 18-2-7-9-2z"];
  const ICON_NEW = ["M12 5v14M5 12h14"];
  const ICON_BACK = ["M15 5l-7 7 7 7"];

  // ---- configuration ------------------------------------------------------------------------

  function scriptConfig() {
    const cfg = {};
    if (!SCRIPT) return cfg;
    for (const k of OPTIONS) if (SCRIPT.dataset[k]) cfg[k] = SCRIPT.dataset[k];
    try {
      cfg.scriptOrigin = new URL(SCRIPT.src, location.href).origin;
    } catch (_) { /* inline copy of the script: fall back to the page origin */ }
    return cfg;
  }
  const SCRIPT_CONFIG = scriptConfig();

  const STYLE = `
:host { display: block; }
/* Page CSS can style the host element (and what it inherits), so the widget's own base styles
   live on an inner wrapper that no page selector can reach. */
.w { all: initial; position: fixed; bottom: 20px; z-index: 2147483000; --accent: var(--rag-accent, #0b6e4f);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", "Noto Sans Arabic", "Noto Sans", Tahoma, "DejaVu Sans", sans-serif;
  color: #1f2328; text-align: start; }
:host([data-side="right"]) .w { right: 20px; }
:host([data-side="left"]) .w { left: 20px; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button { font: inherit; color: inherit; cursor: pointer; }
button:focus-visible, textarea:focus-visible, a:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
svg { fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round; }
.launcher { width: 56px; height: 56px; border-radius: 50%; border: 0; background: var(--accent); color: #fff;
  display: grid; place-items: center; box-shadow: 0 6px 20px rgba(0,0,0,.25); }
.launcher:hover { filter: brightness(1.1); }
.panel { position: absolute; bottom: 68px; width: min(400px, calc(100vw - 32px)); height: min(600px, calc(100vh - 110px));
  background: #fff; border-radius: 14px; box-shadow: 0 12px 40px rgba(0,0,0,.28); display: flex; flex-direction: column; overflow: hidden; }
:host([data-side="right"]) .panel { right: 0; }
:host([data-side="left"]) .panel { left: 0; }
header { display: flex; align-items: center; gap: 6px; padding: 10px 12px; background: var(--accent); color: #fff; }
header h2 { flex: 1; margin: 0; font-size: 16px; font-weight: 600; }
.icon-btn { border: 0; background: transparent; color: inherit; width: 34px; height: 34px; border-radius: 8px; display: grid; place-items: center; }
.icon-btn:hover { background: rgba(255,255,255,.18); }
.log { position: relative; flex: 1; overflow-y: auto; padding: 14px 12px; display: flex; flex-direction: column; gap: 10px; background: #f6f7f9; }
.msg { max-width: 92%; padding: 9px 12px; border-radius: 12px; overflow-wrap: anywhere; white-space: pre-wrap; }
.msg.user { align-self: flex-end; background: var(--accent); color: #fff; border-end-end-radius: 4px; }
.msg.bot { align-self: flex-start; background: #fff; border: 1px solid #e1e4e8; border-end-start-radius: 4px; white-space: normal; }
.msg.welcome { color: #57606a; }
.msg.abstain { background: #fff8e6; border-color: #f0d48a; }
.msg.error { background: #fff0f0; border-color: #f2b8b5; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
p { margin: 0; }
mark.hl { background: #ffe58a; color: inherit; border-radius: 3px; padding: 0 2px; }
mark.soft { background: #fff1bf; box-shadow: inset 0 -2px 0 #f5c842; border-radius: 0; padding: 0; }
.answer-text { font-size: 15.5px; }
.answer-short { font-size: 17px; font-weight: 600; }
.answer-context { margin-top: 6px; font-size: 14px; color: #3d444d; }
.source-link { margin-top: 6px; border: 0; background: none; padding: 0; color: var(--accent); text-decoration: underline; font-size: 13px; }
.citations { margin-top: 10px; border-top: 1px solid #eaecef; padding-top: 8px; }
.citations h3 { margin: 0 0 6px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; font-weight: 600; }
.citations ol { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 6px; }
.cite { width: 100%; text-align: start; border: 1px solid #e1e4e8; background: #fafbfc; border-radius: 8px; padding: 6px 8px; display: block; }
.cite:hover { border-color: var(--accent); }
.cite.has-answer { border-color: var(--accent); background: #fff; }
.cite-head { display: flex; gap: 6px; align-items: baseline; font-weight: 600; font-size: 13px; }
.cite-num { flex: none; min-width: 20px; height: 20px; border-radius: 10px; background: var(--accent); color: #fff; font-size: 12px; display: inline-grid; place-items: center; }
.cite-title { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; unicode-bidi: plaintext; }
.cite-snippet { display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3; overflow: hidden; margin-top: 3px; font-size: 13px; line-height: 1.5; color: #424a53; font-weight: 400; }
.retry { margin-top: 8px; border: 1px solid currentColor; background: #fff; border-radius: 8px; padding: 4px 12px; }
.typing { display: inline-flex; gap: 4px; align-items: center; }
.typing span { width: 7px; height: 7px; border-radius: 50%; background: #8c959f; animation: blink 1.2s infinite ease-in-out; }
.typing span:nth-child(2) { animation-delay: .2s; } .typing span:nth-child(3) { animation-delay: .4s; }
@keyframes blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
@media (prefers-reduced-motion: reduce) { .typing span { animation: none; } }
form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e1e4e8; background: #fff; align-items: flex-end; }
textarea { flex: 1; resize: none; font: inherit; color: inherit; border: 1px solid #d0d7de; border-radius: 10px; padding: 8px 10px; max-height: 120px; min-height: 40px; background: #fff; }
.send { border: 0; border-radius: 10px; width: 42px; height: 40px; background: var(--accent); color: #fff; display: grid; place-items: center; }
.send:disabled { opacity: .5; cursor: default; }
.panel[dir="rtl"] .send svg, .panel[dir="rtl"] .back svg { transform: scaleX(-1); }
.source { flex: 1; overflow-y: auto; padding: 12px 14px; background: #fff; }
.source-bar { display: flex; align-items: center; gap: 6px; margin-bottom: 8px; }
.back { border: 1px solid #d0d7de; background: #fff; border-radius: 8px; padding: 4px 10px 4px 6px; display: inline-flex; align-items: center; gap: 4px; font-size: 13px; }
.source h3 { margin: 0 0 8px; font-size: 15px; unicode-bidi: plaintext; }
.passage { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 14px; line-height: 1.7; }
.source a { display: inline-block; margin-top: 10px; color: var(--accent); font-size: 13px; }
.status { color: #57606a; font-size: 14px; }
@media (max-width: 480px) {
  .panel { position: fixed; inset: 0; width: auto; height: auto; border-radius: 0; bottom: 0; }
  .w.open .launcher { display: none; } /* full-screen panel: its header has the close button */
}
`;

  // ---- the element -----------------------------------------------------------------------------

  class RagHelpdesk extends HTMLElement {
    constructor() {
      super();
      this._root = this.attachShadow({ mode: "open" });
      this._pending = false;
      this._history = [];
    }

    static get observedAttributes() {
      return ["data-lang", "data-title", "data-accent", "data-position"];
    }

    attributeChangedCallback() {
      if (this._built) this._applyOptions();
    }

    /** Option from the element's own data-* first, then the script tag. */
    _opt(name) {
      return this.dataset[name] || SCRIPT_CONFIG[name] || "";
    }

    get apiBase() {
      const api = this._opt("api") || SCRIPT_CONFIG.scriptOrigin || location.origin;
      return api.replace(/\/+$/, "");
    }

    /** UI language: data-lang, else the page's <html lang>, else English. */
    get uiLang() {
      const lang = (this._opt("lang") || document.documentElement.lang || "en").toLowerCase().slice(0, 2);
      return STRINGS[lang] ? lang : "en";
    }

    connectedCallback() {
      if (this._built) return;
      this._built = true;
      this._build();
      this._applyOptions();
      this._restore();
      // Follow the page when it switches language at runtime (single-page sites).
      this._langObserver = new MutationObserver(() => this._applyOptions());
      this._langObserver.observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
    }

    disconnectedCallback() {
      if (this._langObserver) this._langObserver.disconnect();
      this._built = false;
      this._root.replaceChildren();
    }

    // ---- structure ----------------------------------------------------------------------------

    _build() {
      const root = this._root;
      if ("adoptedStyleSheets" in root && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
        // constructed sheets are not "inline styles", so a strict CSP on the host page allows them
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(STYLE);
        root.adoptedStyleSheets = [sheet];
      } else {
        root.append(h("style", { text: STYLE }));
      }

      this.$launcher = h("button", { class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "panel",
        "aria-haspopup": "dialog", onclick: () => (this.isOpen ? this.close() : this.open()) }, icon(ICON_CHAT, 26));

      this.$title = h("h2", { id: "title" });
      this.$new = h("button", { class: "icon-btn new", type: "button", onclick: () => this.clear() }, icon(ICON_NEW, 20));
      this.$close = h("button", { class: "icon-btn close", type: "button", onclick: () => this.close() }, icon(ICON_CLOSE, 20));

      this.$log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0" });
      this.$status = h("div", { class: "sr", role: "status", "aria-live": "polite" });

      this.$input = h("textarea", { rows: "1", name: "question", maxlength: "1000", autocomplete: "off", dir: "auto" });
      this.$input.addEventListener("keydown", (e) => {
        // Enter sends, Shift+Enter is a newline; never interrupt an IME composition.
        if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
          e.preventDefault();
          this._submit();
        }
      });
      this.$input.addEventListener("input", () => this._autosize());
      this.$send = h("button", { class: "send", type: "submit" }, icon(ICON_SEND, 20));
      this.$form = h("form", { onsubmit: (e) => { e.preventDefault(); this._submit(); } }, this.$input, this.$send);

      this.$back = h("button", { class: "back", type: "button", onclick: () => this._closeSource() }, icon(ICON_BACK, 16), h("span"));
      this.$sourceBody = h("div", { class: "source-body" });
      this.$source = h("section", { class: "source", hidden: true, "aria-labelledby": "source-title" },
        h("div", { class: "source-bar" }, this.$back), this.$sourceBody);

      this.$panel = h("div", { class: "panel", id: "panel", role: "dialog", "aria-modal": "true", "aria-labelledby": "title", hidden: true },
        h("header", null, this.$title, this.$new, this.$close), this.$log, this.$source, this.$form, this.$status);
      this.$panel.addEventListener("keydown", (e) => this._onKey(e));

      this.$wrap = h("div", { class: "w" }, this.$panel, this.$launcher);
      root.append(this.$wrap);
    }

    /** (Re)apply options that can change: language strings, direction, accent, side. */
    _applyOptions() {
      const t = STRINGS[this.uiLang];
      this._t = t;
      const dir = this.uiLang === "ar" ? "rtl" : "ltr";
      this.$panel.setAttribute("dir", dir);
      this.$panel.setAttribute("lang", this.uiLang);
      this.$title.textContent = this._opt("title") || t.title;
      this.$launcher.setAttribute("aria-label", this.isOpen ? t.close : t.open);
      this.$launcher.title = this.isOpen ? t.close : t.open;
      this.$new.setAttribute("aria-label", t.newChat);
      this.$new.title = t.newChat;
      this.$close.setAttribute("aria-label", t.close);
      this.$close.title = t.close;
      this.$log.setAttribute("aria-label", t.log);
      this.$input.placeholder = t.placeholder;
      this.$input.setAttribute("aria-label", t.inputLabel);
      this.$send.setAttribute("aria-label", t.send);
      this.$send.title = t.send;
      this.$back.lastChild.textContent = t.back;
      const welcome = this.$log.querySelector(".welcome");
      if (welcome) welcome.replaceWith(this._welcome());

      const accent = this._opt("accent");
      if (accent && CSS.supports("color", accent)) this.style.setProperty("--rag-accent", accent);
      else this.style.removeProperty("--rag-accent");
      const pos = this._opt("position");
      const side = pos === "bottom-left" ? "left" : pos === "bottom-right" ? "right" : dir === "rtl" ? "left" : "right";
      this.setAttribute("data-side", side);
    }

    _welcome() {
      const t = this._t;
      return h("div", { class: "msg bot welcome", dir: this.uiLang === "ar" ? "rtl" : "ltr" }, h("p", { text: t.welcome }));
    }

    _autosize() {
      this.$input.style.height = "auto";
      this.$input.style.height = Math.min(this.$input.scrollHeight + 2, 120) + "px";
    }

    // ---- open / close / keyboard ----------------------------------------------------------------

    get isOpen() {
      return this.$panel ? !this.$panel.hidden : false;
    }

    open() {
      if (this.isOpen) return;
      this.$panel.hidden = false;
      this.$wrap.classList.add("open");
      this.$launcher.setAttribute("aria-expanded", "true");
      this.$launcher.setAttribute("aria-label", this._t.close);
      this.$launcher.title = this._t.close;
      this._reveal(this.$log.lastElementChild);
      this.$input.focus();
    }

    close() {
      if (!this.isOpen) return;
      this._closeSource(false);
      this.$panel.hidden = true;
      this.$wrap.classList.remove("open");
      this.$launcher.setAttribute("aria-expanded", "false");
      this.$launcher.setAttribute("aria-label", this._t.open);
      this.$launcher.title = this._t.open;
      // focus goes back to the launcher (the control that opened the panel)
      this.$launcher.focus();
    }

    _focusable() {
      const sel = 'button:not([disabled]), textarea:not([disabled]), a[href], [tabindex]:not([tabindex="-1"])';
      return Array.from(this.$panel.querySelectorAll(sel)).filter((el) => !el.closest("[hidden]") && el.getClientRects().length);
    }

    _onKey(e) {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        if (!this.$source.hidden) this._closeSource();
        else this.close();
        return;
      }
      if (e.key !== "Tab") return;
      // Focus trap: Tab and Shift+Tab cycle inside the open panel.
      const items = this._focusable();
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      const active = this._root.activeElement;
      if (e.shiftKey && (active === first || !this.$panel.contains(active))) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && (active === last || !this.$panel.contains(active))) {
        e.preventDefault();
        first.focus();
      }
    }

    // ---- history ------------------------------------------------------------------------------

    get _storageKey() {
      return `rag-helpdesk:v1:${this.apiBase}`;
    }

    _restore() {
      let saved = [];
      try {
        saved = JSON.parse(sessionStorage.getItem(this._storageKey) || "[]");
      } catch (_) { /* storage disabled or corrupt: start empty */ }
      this._history = Array.isArray(saved) ? saved.slice(-HISTORY_LIMIT) : [];
      this.$log.replaceChildren();
      if (!this._history.length) this.$log.append(this._welcome());
      for (const item of this._history) this._renderItem(item);
    }

    _remember(item) {
      this._history.push(item);
      this._history = this._history.slice(-HISTORY_LIMIT);
      try {
        sessionStorage.setItem(this._storageKey, JSON.stringify(this._history));
      } catch (_) { /* quota or disabled storage: history just is not kept */ }
    }

    /** Forget the conversation. */
    clear() {
      this._history = [];
      try {
        sessionStorage.removeItem(this._storageKey);
      } catch (_) { /* ignore */ }
      this._restore();
      this.$input.focus();
    }

    _renderItem(item) {
      if (item.role === "user") this._append(this._userBubble(item.text));
      else if (item.role === "bot") this._append(this._answerBubble(item.result));
    }

    // ---- asking -------------------------------------------------------------------------------

    _submit() {
      const q = this.$input.value.trim();
      if (!q || this._pending) return;
      this.$input.value = "";
      this._autosize();
      this.ask(q);
    }

    /** Ask a question (also callable from the host page: `document.querySelector("rag-helpdesk").ask("...")`). */
    async ask(question, { retry = false } = {}) {
      if (this._pending) return;
      if (!this.isOpen) this.open();
      if (!retry) {
        const item = { role: "user", text: question };
        this._remember(item);
        this._renderItem(item);
      }
      this._setPending(true);
      const typing = this._append(h("div", { class: "msg bot typing-msg", "aria-label": this._t.thinking },
        h("span", { class: "typing", "aria-hidden": "true" }, h("span"), h("span"), h("span"))));
      this.$status.textContent = this._t.thinking;
      let bubble;
      try {
        const result = await this._request("POST", "/ask", { question });
        const item = { role: "bot", result };
        this._remember(item);
        bubble = this._answerBubble(result);
      } catch (err) {
        bubble = this._errorBubble(question, err);
      } finally {
        typing.remove();
        this._setPending(false);
      }
      this._append(bubble);
      this._reveal(bubble);
      this.$status.textContent = bubble.textContent.slice(0, 300);
      return bubble;
    }

    _setPending(on) {
      this._pending = on;
      this.$send.disabled = on;
      this.$log.setAttribute("aria-busy", on ? "true" : "false");
    }

    async _request(method, path, body) {
      const headers = { Accept: "application/json" };
      if (body) headers["Content-Type"] = "application/json";
      const key = this._opt("apiKey");
      if (key) headers["X-API-Key"] = key;
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
      let res;
      try {
        res = await fetch(this.apiBase + path, { method, headers, body: body ? JSON.stringify(body) : undefined,
          signal: ctrl.signal, credentials: "omit", mode: "cors" });
      } catch (_) {
        throw Object.assign(new Error("unreachable"), { unreachable: true });
      } finally {
        clearTimeout(timer);
      }
      let data = null;
      try {
        data = await res.json();
      } catch (_) { /* a proxy's HTML error page */ }
      if (!res.ok) {
        const unreachable = res.status >= 502 && res.status <= 504;
        const message = (data && data.error && data.error.message) || `HTTP ${res.status}`;
        throw Object.assign(new Error(String(message)), { unreachable, status: res.status });
      }
      if (!data) throw Object.assign(new Error("unreachable"), { unreachable: true });
      return data;
    }

    // ---- rendering ----------------------------------------------------------------------------

    _append(node) {
      const welcome = this.$log.querySelector(".welcome");
      if (welcome && !node.classList.contains("welcome")) welcome.remove();
      this.$log.append(node);
      this._scrollDown();
      return node;
    }

    _scrollDown() {
      this.$log.scrollTop = this.$log.scrollHeight;
    }

    /** Scroll so an answer starts at the top together with the question before it: a long
     *  answer with its sources must not open scrolled to its last citation. */
    _reveal(node) {
      if (!node || !node.classList.contains("bot")) return this._scrollDown();
      const prev = node.previousElementSibling;
      const anchor = prev && prev.classList.contains("user") ? prev : node;
      this.$log.scrollTop = anchor.offsetTop - 10;
    }

    _userBubble(text) {
      const lang = langOf(text);
      return h("div", { class: "msg user", dir: scriptDir(text) || "auto", lang },
        h("span", { class: "sr", text: STRINGS[lang].you + ": " }), text);
    }

    /** One answer (or abstention) with its citations; labels in the question's language. */
    _answerBubble(r) {
      const lang = STRINGS[r.language] ? r.language : langOf(r.question || "");
      const t = STRINGS[lang];
      const dir = lang === "ar" ? "rtl" : "ltr";
      const a = r.answer;
      if (!a) {
        return h("div", { class: "msg bot abstain", dir, lang, "data-kind": "abstain" }, h("p", { class: "abstain-text", text: t.abstain }));
      }
      const msg = h("div", { class: "msg bot answer", dir, lang, "data-kind": "answer" });
      msg.append(h("span", { class: "sr", text: t.assistant + ": " }));
      const s = a.sentence;
      if (s && s.start <= a.start && s.end >= a.end && (s.start < a.start || s.end > a.end)) {
        // A short answer (the span reader's): the answer first, then its sentence with it marked.
        msg.append(h("p", { class: "answer-text answer-short", dir: scriptDir(a.text) || "auto", text: a.text }));
        const context = h("p", { class: "answer-context", dir: scriptDir(s.text) || "auto" });
        context.append(marked(s.text, a.start - s.start, a.end - s.start));
        msg.append(context);
      } else {
        // The answer sentence, with the factoid (focus) or else the whole sentence highlighted.
        const f = a.focus;
        const text = h("p", { class: "answer-text", dir: scriptDir(a.text) || "auto" });
        if (f && f.start >= a.start && f.end <= a.end) text.append(marked(a.text, f.start - a.start, f.end - a.start));
        else text.append(marked(a.text, 0, cpLength(a.text), "hl soft")); // no factoid: the sentence is the answer
        msg.append(text);
      }

      const citations = Array.isArray(r.citations) ? r.citations : [];
      const own = citations.findIndex((c) => c.doc_id === a.doc_id && c.start <= a.start && c.end >= a.end);
      msg.append(h("button", { class: "source-link", type: "button",
        onclick: (e) => this._openSource(a.doc_id, a.start, a.end, e.currentTarget) },
        own >= 0 ? `${t.source} [${own + 1}]` : t.openSource));

      if (citations.length) {
        const list = h("ol");
        citations.forEach((c, i) => list.append(h("li", null, this._citation(c, i, a, t))));
        msg.append(h("div", { class: "citations" }, h("h3", { text: t.sources }), list));
      }
      return msg;
    }

    /** A numbered source: title + snippet, with the answer span marked when it lies inside. */
    _citation(c, i, a, t) {
      const text = String(c.text || "");
      const len = cpLength(text);
      let s = 0;
      let e = 0;
      if (a && c.doc_id === a.doc_id) {
        s = Math.max(0, a.start - c.start);
        e = Math.min(len, a.end - c.start);
      }
      const contains = e > s;
      // Show a window of the passage around the answer span (or its beginning).
      let from = 0;
      let to = Math.min(len, SNIPPET_MAX);
      let markEnd = e;
      if (contains) {
        from = Math.max(0, s - SNIPPET_CONTEXT);
        if (from > 0) {
          // start the window at a word, not inside one
          const u = units(text, from);
          const space = text.slice(u, units(text, s)).search(/\s/);
          if (space >= 0) from += cpLength(text.slice(u, u + space + 1));
        }
        markEnd = Math.min(e, s + SNIPPET_MAX);
        to = Math.min(len, markEnd + (markEnd < e ? 0 : SNIPPET_CONTEXT));
      }
      const snippet = h("span", { class: "cite-snippet", dir: scriptDir(text) || "auto" });
      if (from > 0) snippet.append("… ");
      const shown = cpSlice(text, from, to);
      snippet.append(contains ? marked(shown, s - from, markEnd - from, "hl soft") : shown);
      if (to < len || markEnd < e) snippet.append(" …");
      // Open the answer span when this passage holds it, else the passage itself.
      const [os, oe] = contains ? [a.start, a.end] : [c.start, c.end];
      return h("button", { class: "cite" + (contains ? " has-answer" : ""), type: "button", "data-doc-id": c.doc_id,
        "aria-label": `${t.source} ${i + 1}: ${c.title || c.doc_id}`,
        onclick: (ev) => this._openSource(c.doc_id, os, oe, ev.currentTarget) },
      h("span", { class: "cite-head" }, h("span", { class: "cite-num", text: String(i + 1) }),
        h("span", { class: "cite-title", dir: "auto", text: c.title || c.doc_id })), snippet);
    }

    _errorBubble(question, err) {
      const t = this._t;
      const qt = STRINGS[langOf(question)];
      const msg = err && err.unreachable ? qt.unreachable : `${qt.failed} ${err && err.message ? err.message : ""}`;
      const bubble = h("div", { class: "msg bot error", dir: qt === STRINGS.ar ? "rtl" : "ltr", role: "alert", "data-kind": "error" },
        h("p", { class: "error-text", text: msg }));
      if (!err || err.unreachable || !err.status || err.status === 429 || err.status >= 500) {
        bubble.append(h("button", { class: "retry", type: "button", text: qt.retry || t.retry, onclick: () => {
          bubble.remove();
          this.ask(question, { retry: true });
          this.$input.focus();
        } }));
      }
      return bubble;
    }

    // ---- source view --------------------------------------------------------------------------

    async _openSource(docId, start, end, opener) {
      const t = this._t;
      this._sourceOpener = opener || null;
      this._logScroll = this.$log.scrollTop;
      this.$log.hidden = true;
      this.$form.hidden = true;
      this.$source.hidden = false;
      this.$sourceBody.replaceChildren(h("p", { class: "status", role: "status", text: t.loadingSource }));
      this.$back.focus();
      const token = (this._sourceToken = {});
      let doc;
      try {
        const q = `?start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
        // ids may contain "/" (files below the corpus folder): encode segment by segment
        const path = String(docId).split("/").map(encodeURIComponent).join("/");
        doc = await this._request("GET", `/documents/${path}${q}`);
      } catch (err) {
        if (token !== this._sourceToken) return;
        this.$sourceBody.replaceChildren(h("p", { class: "status", role: "alert",
          text: err && err.unreachable ? t.sourceFailed : `${t.sourceFailed} ${err.message || ""}` }));
        return;
      }
      if (token !== this._sourceToken) return; // closed or another source opened meanwhile
      const passage = h("p", { class: "passage", dir: scriptDir(doc.text || (doc.marked && doc.marked.span) || "") || "auto" });
      let { before, span, after } = doc.marked || {};
      if (typeof span !== "string") {
        // a service without `marked`: cut the span out of the full text
        const text = String(doc.text || "");
        [before, span, after] = [cpSlice(text, 0, start), cpSlice(text, start, end), cpSlice(text, end)];
      }
      // `before`/`after` can be the whole rest of a long document: show a window around the span.
      passage.append(trimStart(String(before || "")), h("mark", { class: "hl" }, span), trimEnd(String(after || "")));
      const body = [h("h3", { id: "source-title", dir: "auto", text: doc.title || docId }), passage];
      if (typeof doc.url === "string" && /^https?:\/\//i.test(doc.url)) {
        // only http(s) links: a javascript: URL in a document record must never become clickable
        body.push(h("a", { href: doc.url, target: "_blank", rel: "noopener noreferrer", text: t.openOriginal }));
      }
      this.$sourceBody.replaceChildren(...body);
      const mark = passage.querySelector("mark");
      if (mark) mark.scrollIntoView({ block: "center" });
    }

    _closeSource(restoreFocus = true) {
      if (this.$source.hidden) return;
      this._sourceToken = null;
      this.$source.hidden = true;
      this.$log.hidden = false;
      this.$form.hidden = false;
      this.$log.scrollTop = this._logScroll || 0;
      const opener = this._sourceOpener;
      this._sourceOpener = null;
      if (restoreFocus) (opener && opener.isConnected ? opener : this.$input).focus();
    }
  }

  customElements.define(TAG, RagHelpdesk);

  // The script tag alone is the embed: add one widget unless the page placed its own element.
  function mount() {
    if (!document.querySelector(TAG)) document.body.append(document.createElement(TAG));
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
})();
