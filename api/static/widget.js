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
 *
 * Language: the panel's own labels follow data-lang (else <html lang>); everything about one
 * answer (its labels, its feedback control and the source view opened from it) follows the
 * language of the question, so an English question on an Arabic page gets English labels.
 *
 * Placement: the element is appended to <html>, not <body>, so a host page with `transform` or
 * `filter` on <body> (which would become the containing block of position: fixed) cannot move it.
 */
(() => {
  "use strict";

  const TAG = "rag-helpdesk";
  if (customElements.get(TAG)) return; // loaded twice: the first copy wins

  const SCRIPT = document.currentScript;
  const OPTIONS = ["api", "lang", "title", "accent", "position", "apiKey"];
  const HISTORY_LIMIT = 40; // messages kept in sessionStorage
  const PREVIOUS_LIMIT = 8; // earlier questions sent with a question, for follow-ups ("and when?")
  const TIMEOUT_MS = 30000;
  const SNIPPET_BEFORE = 50; // code points shown before the answer span in a citation
  const SNIPPET_MAX = 170; // code points of a citation snippet: about three lines in the panel
  const TITLE_MAX = 64; // code points of a citation title: about two lines
  const FULLSCREEN = "(max-width: 480px)"; // the panel covers the screen (keep in sync with the CSS)

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
      openOriginal: "Open the original page", log: "Conversation", stop: "Stop",
      cancelled: "You stopped this question.", timeout: "The help service took too long to answer.",
      interrupted: "This question got no answer.",
      showContext: "Show the sentence", hideContext: "Hide the sentence",
      helpful: "Was this helpful?", helpfulYes: "Yes, this was helpful", helpfulNo: "No, this was not helpful",
      thanks: "Thanks for your feedback.", feedbackFailed: "Your feedback could not be sent. Try again?",
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
      openOriginal: "افتح الصفحة الأصلية", log: "المحادثة", stop: "إيقاف",
      cancelled: "أُوقِف هذا السؤال.", timeout: "استغرقت خدمة المساعدة وقتاً أطول من اللازم للرد.",
      interrupted: "لم يصل رد على هذا السؤال.",
      showContext: "اعرض الجملة كاملة", hideContext: "أخفِ الجملة",
      helpful: "هل كانت الإجابة مفيدة؟", helpfulYes: "نعم، كانت مفيدة", helpfulNo: "لا، لم تكن مفيدة",
      thanks: "شكراً على ملاحظتك.", feedbackFailed: "تعذّر إرسال ملاحظتك. حاول مرة أخرى؟",
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

  const isSpace = (ch) => /\s/.test(ch);

  // Cuts at word edges, so that no word or number is ever split ("28" never shows as "8…").
  // Positions are UTF-16 indexes; `limit` is a word edge itself that the cut must not pass.

  /** `i` moved forwards to the start of a word. */
  function wordStart(text, i, limit) {
    if (i > 0 && i < text.length && !isSpace(text[i - 1])) while (i < limit && !isSpace(text[i])) i++;
    while (i < limit && isSpace(text[i])) i++;
    return i;
  }

  /** `i`, or one less where it would split a surrogate pair (an astral character such as 𝒜). */
  function pairSafe(text, i) {
    const c = text.charCodeAt(i - 1);
    return i > 0 && i < text.length && c >= 0xd800 && c <= 0xdbff ? i - 1 : i;
  }

  /** `i` moved backwards to the end of a word. */
  function wordEnd(text, i, limit) {
    if (i > 0 && i < text.length && !isSpace(text[i])) while (i > limit && !isSpace(text[i - 1])) i--;
    while (i > limit && isSpace(text[i - 1])) i--;
    return i;
  }

  /** `text` shortened to about `max` code points at a word boundary, with "…" when cut. */
  function clip(text, max) {
    if (cpLength(text) <= max) return text;
    const to = wordEnd(text, units(text, max), 0);
    return (to > 0 ? text.slice(0, to) : cpSlice(text, 0, max)) + " …";
  }

  /** The window of a citation's text to show (UTF-16 [from, to)), about SNIPPET_MAX long, with
   *  the marked part [us, ue) in it (cut to markEnd when it is longer than the window). */
  function snippetWindow(text, us, ue) {
    const max = SNIPPET_MAX;
    if (ue <= us) {
      if (text.length <= max) return { from: 0, to: text.length, markEnd: 0 };
      return { from: 0, to: wordEnd(text, max, 0) || max, markEnd: 0 };
    }
    const from = wordStart(text, Math.max(0, us - SNIPPET_BEFORE), us);
    let markEnd = ue;
    if (ue - from > max) {
      const cut = wordEnd(text, from + max, us);
      markEnd = cut > us ? cut : pairSafe(text, from + max); // one word longer than the window: cut it
    }
    let to = markEnd;
    if (markEnd === ue && from + max > ue) to = from + max >= text.length ? text.length : wordEnd(text, from + max, ue);
    return { from, to: pairSafe(text, to), markEnd };
  }

  /** The parts of an answer to show, as document offsets: the short answer (the span reader's
   *  span, else the sentence reader's factoid) and the sentence it stands in. */
  function answerParts(a) {
    const whole = { text: String(a.text || ""), start: a.start, end: a.end };
    const s = a.sentence;
    if (s && typeof s.text === "string" && s.start <= a.start && s.end >= a.end && (s.start < a.start || s.end > a.end)) {
      return { short: whole, sentence: { text: s.text, start: s.start, end: s.end } };
    }
    const f = a.focus;
    if (f && typeof f.text === "string" && f.start >= a.start && f.end <= a.end && (f.start > a.start || f.end < a.end)) {
      return { short: { text: f.text, start: f.start, end: f.end }, sentence: whole };
    }
    return { short: null, sentence: whole };
  }

  /** The citation named in "Source [n]": the one holding the short answer (else the answer),
   *  else the one sharing most of the answer (a long sentence can span several chunks). */
  function ownCitation(citations, a, short) {
    const key = short || a;
    const same = (c) => c.doc_id === a.doc_id;
    const holds = citations.findIndex((c) => same(c) && c.start <= key.start && c.end >= key.end);
    if (holds >= 0) return holds;
    let best = -1;
    let most = 0;
    citations.forEach((c, i) => {
      const overlap = same(c) ? Math.min(c.end, a.end) - Math.max(c.start, a.start) : 0;
      if (overlap > most) [best, most] = [i, overlap];
    });
    return best;
  }

  /** What a failed request means for the person asking, as kept in the history. */
  function failure(err) {
    if (err && err.cancelled) return { kind: "cancelled", retry: true };
    if (err && err.timeout) return { kind: "timeout", retry: true };
    if (!err || err.unreachable) return { kind: "unreachable", retry: true };
    const status = err.status || 0;
    return { kind: "error", message: String(err.message || ""), retry: !status || status === 429 || status >= 500 };
  }

  const answerLang = (r) => (STRINGS[r.language] ? r.language : langOf(String(r.question || "")));
  const dirOf = (lang) => (lang === "ar" ? "rtl" : "ltr");

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
  // a paper plane pointing along the reading direction (mirrored in RTL), not a pointer
  const ICON_SEND = ["M4 4.5 21 12 4 19.5 6.8 12z", "M6.8 12H12"];
  const ICON_STOP = ["M7 7h10v10H7z"];
  const ICON_THUMB = ["M7 11v9H4v-9z", "M7 11l3.6-7c1.5 0 2.6 1.2 2.3 2.7L12.4 10H18a2 2 0 0 1 2 2.3l-1.1 6A2 2 0 0 1 16.9 20H7"];
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
/* On the accent-coloured header an accent outline would be invisible: white, with a dark ring
   outside it so that it also shows on a light accent colour. */
header button:focus-visible { outline: 2px solid #fff; outline-offset: 2px; box-shadow: 0 0 0 6px rgba(0,0,0,.55); }
svg { fill: none; stroke: currentColor; stroke-width: 2; stroke-linecap: round; stroke-linejoin: round; }
.launcher { width: 56px; height: 56px; border-radius: 50%; border: 0; background: var(--accent); color: #fff;
  display: grid; place-items: center; box-shadow: 0 6px 20px rgba(0,0,0,.25); }
.launcher:hover { filter: brightness(1.1); }
.panel { position: absolute; bottom: 68px; width: min(400px, calc(100vw - 32px)); height: min(600px, calc(100vh - 110px));
  background: #fff; border-radius: 14px; box-shadow: 0 12px 40px rgba(0,0,0,.28); display: flex; flex-direction: column; overflow: hidden; }
:host([data-side="right"]) .panel { right: 0; }
:host([data-side="left"]) .panel { left: 0; }
header { display: flex; align-items: center; gap: 6px; padding: 10px 12px; background: var(--accent); color: #fff; }
header h2 { flex: 1; min-width: 0; margin: 0; font-size: 16px; font-weight: 600; overflow-wrap: anywhere; }
.icon-btn { border: 0; background: transparent; color: inherit; width: 34px; height: 34px; border-radius: 8px; display: grid; place-items: center; }
.icon-btn:hover { background: rgba(255,255,255,.18); }
.log { position: relative; flex: 1; overflow-y: auto; overscroll-behavior: contain; padding: 14px 12px; display: flex; flex-direction: column; gap: 10px; background: #f6f7f9; }
.msg { max-width: 92%; padding: 9px 12px; border-radius: 12px; overflow-wrap: anywhere; white-space: pre-wrap; }
.msg.user { align-self: flex-end; background: var(--accent); color: #fff; border-end-end-radius: 4px; }
.msg.bot { align-self: flex-start; background: #fff; border: 1px solid #e1e4e8; border-end-start-radius: 4px; white-space: normal; }
.msg.welcome { color: #57606a; }
.msg.abstain { background: #fff8e6; border-color: #f0d48a; }
.msg.error { background: #fff0f0; border-color: #f2b8b5; }
.msg.error.quiet { background: #f6f8fa; border-color: #d0d7de; color: #57606a; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
p { margin: 0; }
mark.hl { background: #ffe58a; color: inherit; border-radius: 3px; padding: 0 2px; }
mark.soft { background: #fff1bf; box-shadow: inset 0 -2px 0 #f5c842; border-radius: 0; padding: 0; }
.answer-text { font-size: 15.5px; }
.answer-short { font-size: 17px; font-weight: 600; }
.answer-context { margin-top: 6px; font-size: 14px; color: #3d444d; }
.answer-actions { margin-top: 6px; display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: baseline; }
.source-link, .context-toggle { border: 0; background: none; padding: 0; color: var(--accent); text-decoration: underline; font-size: 13px; }
.feedback { margin-top: 8px; display: flex; flex-wrap: wrap; align-items: center; gap: 4px 6px; font-size: 13px; color: #57606a; }
.fb-btn { border: 1px solid #d0d7de; background: #fff; color: #57606a; width: 30px; height: 28px; border-radius: 8px; display: grid; place-items: center; }
.fb-btn:hover { border-color: var(--accent); color: var(--accent); }
.fb-btn[aria-pressed="true"] { background: var(--accent); border-color: var(--accent); color: #fff; }
.feedback.done .fb-btn { cursor: default; }
.feedback.done .fb-btn:not([aria-pressed="true"]) { opacity: .45; }
.fb-no svg { transform: scaleY(-1); }
.fb-status:empty { display: none; }
.feedback.failed .fb-status { color: #9a3b38; }
.citations { margin-top: 10px; border-top: 1px solid #eaecef; padding-top: 8px; }
.citations h3 { margin: 0 0 6px; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; font-weight: 600; }
.citations ol { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 6px; }
.cite { width: 100%; text-align: start; border: 1px solid #e1e4e8; background: #fafbfc; border-radius: 8px; padding: 6px 8px; display: block; }
.cite:hover { border-color: var(--accent); }
.cite.has-answer { border-color: var(--accent); background: #fff; }
.cite-head { display: flex; gap: 6px; align-items: baseline; font-weight: 600; font-size: 13px; }
.cite-num { flex: none; min-width: 20px; height: 20px; border-radius: 10px; background: var(--accent); color: #fff; font-size: 12px; display: inline-grid; place-items: center; }
.cite-title { unicode-bidi: plaintext; }
/* Snippets are cut at word boundaries by the script (never by line-clamp, whose ellipsis can
   split a number such as "28" into "8…" in right-to-left text). */
.cite-snippet { display: block; margin-top: 3px; font-size: 13px; line-height: 1.5; color: #424a53; font-weight: 400; }
.retry { margin-top: 8px; border: 1px solid currentColor; background: #fff; border-radius: 8px; padding: 4px 12px; }
.typing { display: inline-flex; gap: 4px; align-items: center; }
.typing span { width: 7px; height: 7px; border-radius: 50%; background: #8c959f; animation: blink 1.2s infinite ease-in-out; }
.typing span:nth-child(2) { animation-delay: .2s; } .typing span:nth-child(3) { animation-delay: .4s; }
@keyframes blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
@media (prefers-reduced-motion: reduce) { .typing span { animation: none; } }
form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e1e4e8; background: #fff; align-items: flex-end; }
textarea { flex: 1; resize: none; font: inherit; color: inherit; border: 1px solid #d0d7de; border-radius: 10px; padding: 8px 10px; max-height: 120px; min-height: 40px; background: #fff; }
.send, .stop { border: 0; border-radius: 10px; width: 42px; height: 40px; background: var(--accent); color: #fff; display: grid; place-items: center; }
.send:disabled { opacity: .5; cursor: default; }
.stop svg { fill: currentColor; }
.panel[dir="rtl"] .send svg, .source[dir="rtl"] .back svg { transform: scaleX(-1); }
.source { flex: 1; overflow-y: auto; overscroll-behavior: contain; padding: 0 14px 12px; background: #fff; }
/* the way back stays in view however far down the marked passage is */
.source-bar { position: sticky; top: 0; z-index: 1; display: flex; align-items: center; gap: 6px; margin: 0 -14px 8px; padding: 10px 14px 8px; background: #fff; border-bottom: 1px solid #eaecef; }
.back { border: 1px solid #d0d7de; background: #fff; border-radius: 8px; padding: 4px 10px 4px 6px; display: inline-flex; align-items: center; gap: 4px; font-size: 13px; }
.source h3 { margin: 0 0 8px; font-size: 15px; unicode-bidi: plaintext; overflow-wrap: anywhere; }
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
      this._ids = 0; // for unique ids inside the shadow root
      this._generation = 0; // bumped by clear(): answers to questions asked before are dropped
      this._scrollLock = null;
      this._onMedia = () => this._updateScrollLock();
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
      if (this._askCtrl) this._askCtrl.abort();
      this._unlockScroll();
      if (this._media) this._media.removeEventListener("change", this._onMedia);
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
      // while a question is on its way the send button gives way to a stop button
      this.$stop = h("button", { class: "stop", type: "button", hidden: true, onclick: () => this.cancel() }, icon(ICON_STOP, 18));
      this.$form = h("form", { onsubmit: (e) => { e.preventDefault(); this._submit(); } }, this.$input, this.$send, this.$stop);

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
      this.$stop.setAttribute("aria-label", t.stop);
      this.$stop.title = t.stop;
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
      this.$launcher.replaceChildren(icon(ICON_CLOSE, 24)); // the launcher now closes the panel
      this._media = this._media || window.matchMedia(FULLSCREEN);
      this._media.addEventListener("change", this._onMedia);
      this._updateScrollLock();
      this._reveal(this.$log.lastElementChild);
      this.$input.focus({ preventScroll: true }); // never scroll the host page
    }

    close() {
      if (!this.isOpen) return;
      this._closeSource(false);
      this.$panel.hidden = true;
      this.$wrap.classList.remove("open");
      this.$launcher.setAttribute("aria-expanded", "false");
      this.$launcher.setAttribute("aria-label", this._t.open);
      this.$launcher.title = this._t.open;
      this.$launcher.replaceChildren(icon(ICON_CHAT, 26));
      if (this._media) this._media.removeEventListener("change", this._onMedia);
      this._unlockScroll();
      // focus goes back to the launcher (the control that opened the panel)
      this.$launcher.focus({ preventScroll: true });
    }

    // While the panel covers the whole screen (narrow viewports) the page behind it must not
    // scroll; the page's own inline overflow values are put back exactly on close.
    _updateScrollLock() {
      if (this.isOpen && this._media && this._media.matches) this._lockScroll();
      else this._unlockScroll();
    }

    _lockScroll() {
      if (this._scrollLock) return;
      const targets = [document.documentElement, document.body].filter(Boolean);
      this._scrollLock = targets.map((el) => [el, el.style.overflow]);
      for (const el of targets) el.style.overflow = "hidden";
    }

    _unlockScroll() {
      if (!this._scrollLock) return;
      for (const [el, value] of this._scrollLock) el.style.overflow = value;
      this._scrollLock = null;
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
    // Items: {role: "user", text}, {role: "bot", result, feedback?} and, for a question that got
    // no answer, {role: "bot", question, failed: {kind, message?, retry}}.

    get _storageKey() {
      return `rag-helpdesk:v1:${this.apiBase}`;
    }

    _restore() {
      let saved = [];
      try {
        saved = JSON.parse(sessionStorage.getItem(this._storageKey) || "[]");
      } catch (_) { /* storage disabled or corrupt: start empty */ }
      saved = Array.isArray(saved) ? saved.filter((i) => i && (i.role === "user" || i.role === "bot")) : [];
      // A question with no reply after it (the page was left while it was on its way) gets a
      // failed reply, so that it can be asked again.
      const items = [];
      saved.forEach((item, i) => {
        items.push(item);
        const next = saved[i + 1];
        if (item.role === "user" && !(next && next.role === "bot")) {
          items.push({ role: "bot", question: String(item.text || ""), failed: { kind: "interrupted", retry: true } });
        }
      });
      this._history = items.slice(-HISTORY_LIMIT);
      this._renderAll();
    }

    _renderAll() {
      this.$log.replaceChildren();
      if (!this._history.length) this.$log.append(this._welcome());
      for (const item of this._history) this._renderItem(item);
    }

    _save() {
      try {
        sessionStorage.setItem(this._storageKey, JSON.stringify(this._history));
      } catch (_) { /* quota or disabled storage: history just is not kept */ }
    }

    _remember(item) {
      this._history.push(item);
      this._history = this._history.slice(-HISTORY_LIMIT);
      this._save();
    }

    /** The questions asked before `question` in this conversation, oldest first: /ask answers a
     * follow-up ("ومتى عقد؟") together with the last of them that is not one itself. */
    _previousQuestions(question) {
      const asked = this._history.filter((x) => x.role === "user").map((x) => String(x.text || ""));
      if (asked.length && asked[asked.length - 1] === question) asked.pop(); // remembered just before asking
      return asked.slice(-PREVIOUS_LIMIT);
    }

    /** Forget the conversation (and stop waiting for a question on its way). */
    clear() {
      this._generation++;
      if (this._askCtrl) this._askCtrl.abort();
      this._history = [];
      try {
        sessionStorage.removeItem(this._storageKey);
      } catch (_) { /* ignore */ }
      this._renderAll();
      this.$input.focus();
    }

    _renderItem(item, fresh = false) {
      if (item.role === "user") return this._append(this._userBubble(String(item.text || "")));
      if (item.role !== "bot") return null;
      return this._append(item.failed ? this._errorBubble(item, fresh) : this._answerBubble(item));
    }

    _id(prefix) {
      return `${prefix}-${++this._ids}`;
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
      if (this._pending) return null;
      if (!this.isOpen) this.open();
      if (!retry) {
        const item = { role: "user", text: question };
        this._remember(item);
        this._renderItem(item);
      }
      const generation = this._generation;
      const ctrl = (this._askCtrl = new AbortController());
      this._setPending(true);
      const typing = this._append(h("div", { class: "msg bot typing-msg", "aria-label": this._t.thinking },
        h("span", { class: "typing", "aria-hidden": "true" }, h("span"), h("span"), h("span"))));
      this.$status.textContent = this._t.thinking;
      let item;
      try {
        const previous = this._previousQuestions(question);
        const body = previous.length ? { question, previous } : { question };
        const result = await this._request("POST", "/ask", body, { signal: ctrl.signal });
        item = { role: "bot", result };
      } catch (err) {
        item = { role: "bot", question, failed: failure(err) };
      } finally {
        typing.remove();
        if (this._askCtrl === ctrl) this._askCtrl = null;
        this._setPending(false);
      }
      if (generation !== this._generation || !this._built) return null; // cleared meanwhile
      this._remember(item);
      const bubble = this._renderItem(item, true);
      this._reveal(bubble);
      this.$status.textContent = bubble.textContent.slice(0, 300);
      return bubble;
    }

    /** Stop waiting for the question on its way (the stop button); it can be asked again. */
    cancel() {
      if (this._askCtrl) this._askCtrl.abort();
    }

    _setPending(on) {
      const active = this._root.activeElement;
      this._pending = on;
      this.$send.disabled = on;
      this.$send.hidden = on;
      this.$stop.hidden = !on;
      this.$log.setAttribute("aria-busy", on ? "true" : "false");
      // the button under the keyboard focus was swapped: keep the focus on its replacement
      if (on && active === this.$send) this.$stop.focus();
      if (!on && active === this.$stop) this.$input.focus();
    }

    /** Ask a failed question again: in place when it is the last one, else at the end. */
    _retry(item, bubble) {
      if (this._pending) return;
      const question = String(item.question || "");
      const i = this._history.indexOf(item);
      const prev = this._history[i - 1];
      const asked = prev && prev.role === "user" && prev.text === question;
      if (i >= 0 && i === this._history.length - 1 && asked) {
        this._history.splice(i, 1);
        this._save();
        if (bubble) bubble.remove();
        this.ask(question, { retry: true });
      } else {
        this._history = this._history.filter((x) => x !== item && !(asked && x === prev));
        this._save();
        this._renderAll();
        this.ask(question);
      }
      this.$input.focus();
    }

    /** fetch with the key header, a TIMEOUT_MS limit and an optional outside AbortSignal. Errors
     *  carry `cancelled`, `timeout`, `unreachable` (no answer, or a proxy's 502-504) or `status`. */
    async _request(method, path, body, { signal, empty = false } = {}) {
      const headers = { Accept: "application/json" };
      if (body) headers["Content-Type"] = "application/json";
      const key = this._opt("apiKey");
      if (key) headers["X-API-Key"] = key;
      const ctrl = new AbortController();
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        ctrl.abort();
      }, TIMEOUT_MS);
      const stop = () => ctrl.abort();
      if (signal) {
        if (signal.aborted) ctrl.abort();
        else signal.addEventListener("abort", stop);
      }
      const noAnswer = () => Object.assign(new Error("unreachable"),
        timedOut ? { timeout: true } : signal && signal.aborted ? { cancelled: true } : { unreachable: true });
      try {
        let res;
        try {
          res = await fetch(this.apiBase + path, { method, headers, body: body ? JSON.stringify(body) : undefined,
            signal: ctrl.signal, credentials: "omit", mode: "cors" });
        } catch (_) {
          throw noAnswer();
        }
        let data = null;
        try {
          data = await res.json();
        } catch (_) {
          if (ctrl.signal.aborted) throw noAnswer(); // stopped while the body was arriving
          /* else an empty body or a proxy's HTML error page */
        }
        if (!res.ok) {
          const ours = data && data.error && data.error.message; // the service's own error shape
          // a proxy's 502-504 means the service cannot be reached; the service's own 503 says why
          const unreachable = res.status >= 502 && res.status <= 504 && !ours;
          const message = ours || `HTTP ${res.status}`;
          throw Object.assign(new Error(String(message)), { unreachable, status: res.status });
        }
        if (!data && !empty) throw Object.assign(new Error("unreachable"), { unreachable: true });
        return data;
      } finally {
        clearTimeout(timer);
        if (signal) signal.removeEventListener("abort", stop);
      }
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

    /** One answer (or abstention) with its citations and feedback control; labels in the
     *  question's language. The short answer comes first, its sentence behind a toggle. */
    _answerBubble(item) {
      const r = item.result || {};
      const lang = answerLang(r);
      const t = STRINGS[lang];
      const dir = dirOf(lang);
      const a = r.answer;
      if (!a) {
        return h("div", { class: "msg bot abstain", dir, lang, "data-kind": "abstain" },
          h("p", { class: "abstain-text", text: t.abstain }), this._feedback(item, lang));
      }
      const msg = h("div", { class: "msg bot answer", dir, lang, "data-kind": "answer" });
      msg.append(h("span", { class: "sr", text: t.assistant + ": " }));
      const { short, sentence } = answerParts(a);
      const actions = h("div", { class: "answer-actions" });
      if (short) {
        msg.append(h("p", { class: "answer-text answer-short", dir: scriptDir(short.text) || "auto", text: short.text }));
        const id = this._id("context");
        const context = h("p", { class: "answer-context", id, dir: scriptDir(sentence.text) || "auto", hidden: true });
        context.append(marked(sentence.text, short.start - sentence.start, short.end - sentence.start));
        const toggle = h("button", { class: "context-toggle", type: "button", "aria-expanded": "false", "aria-controls": id,
          text: t.showContext, onclick: () => {
            const show = context.hidden;
            context.hidden = !show;
            toggle.setAttribute("aria-expanded", String(show));
            toggle.textContent = show ? t.hideContext : t.showContext;
          } });
        msg.append(context);
        actions.append(toggle);
      } else {
        // no shorter answer inside: the sentence is the answer
        const text = h("p", { class: "answer-text", dir: scriptDir(sentence.text) || "auto" });
        text.append(marked(sentence.text, 0, cpLength(sentence.text), "hl soft"));
        msg.append(text);
      }

      const citations = Array.isArray(r.citations) ? r.citations : [];
      const own = ownCitation(citations, a, short);
      actions.append(h("button", { class: "source-link", type: "button",
        onclick: (e) => this._openSource(a.doc_id, a.start, a.end, e.currentTarget, lang) },
      own >= 0 ? `${t.source} [${own + 1}]` : t.openSource));
      msg.append(actions);

      if (citations.length) {
        const list = h("ol");
        citations.forEach((c, i) => list.append(h("li", null, this._citation(c, i, a, short, lang))));
        msg.append(h("div", { class: "citations" }, h("h3", { text: t.sources }), list));
      }
      msg.append(this._feedback(item, lang));
      return msg;
    }

    /** A numbered source: title + snippet, with the short answer (or the answer's part in this
     *  passage) marked. Its accessible name is its visible text (no aria-label that would leave
     *  the snippet out), with "Source" before the number for screen readers. */
    _citation(c, i, a, short, lang) {
      const t = STRINGS[lang];
      const text = String(c.text || "");
      const len = cpLength(text);
      let s = 0;
      let e = 0;
      let cls = "hl soft";
      if (a && c.doc_id === a.doc_id) {
        if (short && short.start >= c.start && short.end <= c.end) {
          [s, e, cls] = [short.start - c.start, short.end - c.start, "hl"];
        } else {
          [s, e] = [Math.max(0, a.start - c.start), Math.min(len, a.end - c.start)];
        }
      }
      const contains = e > s;
      const us = contains ? units(text, s) : 0;
      const ue = contains ? units(text, e) : 0;
      const { from, to, markEnd } = snippetWindow(text, us, ue);
      const snippet = h("span", { class: "cite-snippet", dir: scriptDir(text) || "auto" });
      if (from > 0) snippet.append("… ");
      if (contains) snippet.append(text.slice(from, us), h("mark", { class: cls }, text.slice(us, markEnd)), text.slice(markEnd, to));
      else snippet.append(text.slice(from, to));
      if (to < text.length) snippet.append(" …");
      // Open the answer span when this passage holds it, else the passage itself.
      const [os, oe] = contains ? [a.start, a.end] : [c.start, c.end];
      const title = String(c.title || c.doc_id);
      return h("button", { class: "cite" + (contains ? " has-answer" : ""), type: "button", "data-doc-id": c.doc_id,
        onclick: (ev) => this._openSource(c.doc_id, os, oe, ev.currentTarget, lang) },
      h("span", { class: "cite-head" }, h("span", { class: "sr", text: t.source + " " }), h("span", { class: "cite-num", text: String(i + 1) }),
        h("span", { class: "cite-title", dir: "auto", text: clip(title, TITLE_MAX) })), snippet);
    }

    /** "Was this helpful?" with thumbs up/down: POST /feedback (same headers as /ask). The
     *  choice is kept in the history; a failed post (a service without the route included)
     *  says so quietly and the buttons stay usable. */
    _feedback(item, lang) {
      const t = STRINGS[lang];
      const r = item.result || {};
      const id = this._id("helpful");
      const status = h("span", { class: "fb-status", role: "status" });
      const box = h("div", { class: "feedback", role: "group", "aria-labelledby": id }, h("span", { id, class: "fb-q", text: t.helpful }));
      let busy = false;
      const buttons = [true, false].map((helpful) => h("button", { class: "fb-btn " + (helpful ? "fb-yes" : "fb-no"), type: "button",
        "aria-label": helpful ? t.helpfulYes : t.helpfulNo, title: helpful ? t.helpfulYes : t.helpfulNo, "aria-pressed": "false",
        onclick: () => send(helpful) }, icon(ICON_THUMB, 16)));
      const done = (helpful) => {
        box.classList.remove("failed");
        box.classList.add("done");
        buttons.forEach((b, i) => {
          b.setAttribute("aria-pressed", String((i === 0) === helpful));
          b.setAttribute("aria-disabled", "true");
        });
        status.textContent = t.thanks;
      };
      const send = async (helpful) => {
        if (busy || box.classList.contains("done")) return;
        busy = true;
        box.classList.remove("failed");
        status.textContent = "";
        const a = r.answer;
        try {
          await this._request("POST", "/feedback", {
            question: String(r.question || ""),
            helpful,
            answer: a ? { doc_id: a.doc_id, start: a.start, end: a.end } : null,
            index_version: typeof r.index_version === "number" ? r.index_version : null,
            language: lang,
          }, { empty: true });
          item.feedback = helpful;
          this._save();
          done(helpful);
        } catch (_) {
          box.classList.add("failed");
          status.textContent = t.feedbackFailed;
        } finally {
          busy = false;
        }
      };
      box.append(...buttons, status);
      if (typeof item.feedback === "boolean") done(item.feedback);
      return box;
    }

    /** A question that got no answer, in the question's language, with Retry where trying
     *  again can help (not for a refused question such as one that is too long). */
    _errorBubble(item, fresh) {
      const question = String(item.question || "");
      const lang = langOf(question);
      const t = STRINGS[lang];
      const f = item.failed || {};
      const text = { cancelled: t.cancelled, timeout: t.timeout, interrupted: t.interrupted, unreachable: t.unreachable }[f.kind]
        || `${t.failed} ${f.message || ""}`.trim();
      const quiet = f.kind === "cancelled" || f.kind === "interrupted";
      const bubble = h("div", { class: "msg bot error" + (quiet ? " quiet" : ""), dir: dirOf(lang), lang,
        role: fresh && !quiet ? "alert" : null, "data-kind": "error", "data-failure": f.kind || "error" },
      h("p", { class: "error-text", text }));
      if (f.retry) bubble.append(h("button", { class: "retry", type: "button", text: t.retry, onclick: () => this._retry(item, bubble) }));
      return bubble;
    }

    // ---- source view --------------------------------------------------------------------------

    /** Show document `docId` with [start, end) marked; the view's labels are in `lang` (the
     *  language of the answer it was opened from). */
    async _openSource(docId, start, end, opener, lang) {
      lang = STRINGS[lang] ? lang : this.uiLang;
      const t = STRINGS[lang];
      this._sourceOpener = opener || null;
      if (this.$source.hidden) this._logScroll = this.$log.scrollTop;
      this.$log.hidden = true;
      this.$form.hidden = true;
      this.$source.hidden = false;
      this.$source.setAttribute("lang", lang);
      this.$source.setAttribute("dir", dirOf(lang));
      this.$back.lastChild.textContent = t.back;
      this.$sourceBody.replaceChildren(h("p", { class: "status", role: "status", text: t.loadingSource }));
      this.$back.focus({ preventScroll: true });
      const token = (this._sourceToken = {});
      let doc;
      try {
        const q = `?start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}`;
        // ids may contain "/" (files below the corpus folder): encode segment by segment
        const path = String(docId).split("/").map(encodeURIComponent).join("/");
        doc = await this._request("GET", `/documents/${path}${q}`);
      } catch (err) {
        if (token !== this._sourceToken) return;
        const f = failure(err);
        this.$sourceBody.replaceChildren(h("p", { class: "status", role: "alert",
          text: f.kind === "error" ? `${t.sourceFailed} ${f.message}` : t.sourceFailed }));
        if (f.retry) {
          this.$sourceBody.append(h("button", { class: "retry", type: "button", text: t.retry,
            onclick: () => this._openSource(docId, start, end, opener, lang) }));
        }
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
      if (mark) {
        // centre the mark in the source view; scrollIntoView could scroll the host page too
        const view = this.$source.getBoundingClientRect();
        const box = mark.getBoundingClientRect();
        this.$source.scrollTop += box.top - view.top - Math.max(0, (view.height - box.height) / 2);
      }
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
  // It goes on <html>, after <body>: a `transform` (or filter) on <body> would otherwise become
  // the containing block of the fixed launcher and panel, placing them at the end of the page.
  function mount() {
    if (!document.querySelector(TAG)) document.documentElement.append(document.createElement(TAG));
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
})();
