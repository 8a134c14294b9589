// <headcount-viewers>: how many are watching now, pushed by Headcount's /counts/stream.
// A drop-in for Mux's <mux-active-viewer-count> (same token / poll-interval / disabled
// attributes, same change / error events); docs/widget.md describes all of it.
// One ES module, no build step, no dependencies. Served by Headcount at /widget/.

const SCRIPT_ORIGIN = new URL(import.meta.url).origin;
const MIN_POLL = 15; // s: Mux's rule, never faster
const DEFAULT_POLL = 20; // s: Mux's default
const DEFAULT_ANNOUNCE = 30; // s between two screen-reader announcements
const MAX_TOKENS = 32; // tokens one stream carries (the server's limit)
const STREAM_TRIES = 2; // streams that fail to open while /counts works => poll
const STREAM_PROBE = 300; // s: a polling page tries the stream again this often
const REOPEN_DEBOUNCE = 50; // ms: elements set up together share one reopen

const backoff = (attempt, base, max) =>
  Math.min(max, base * 2 ** attempt) * (0.5 + Math.random() / 2);

// One /counts request: {kind: "ok", body} | {kind: "refused" | "failed", error} | {kind: "network", error}.
// "refused" is a 4xx envelope: retrying the same token cannot help.
async function readCounts(host, token) {
  let response, body;
  try {
    response = await fetch(`${host}/counts?token=${encodeURIComponent(token)}`);
  } catch (err) {
    return { kind: "network", error: { type: "network_error", messages: [String(err)] } };
  }
  try {
    body = await response.json();
  } catch {
    return { kind: "failed", error: "no data in response" };
  }
  if (body && body.error) {
    const refused = response.status >= 400 && response.status < 500 && response.status !== 429;
    return { kind: refused ? "refused" : "failed", error: body.error };
  }
  if (typeof body?.data?.[0]?.views !== "number") {
    return { kind: "failed", error: "no data in response" };
  }
  return { kind: "ok", body };
}

// One EventSource carrying up to MAX_TOKENS tokens.
class Link {
  constructor(hub, tokens) {
    this.hub = hub;
    this.tokens = tokens;
    this.opened = false;
    this.errors = 0;
    const query = tokens.map((t) => `token=${encodeURIComponent(t)}`).join("&");
    const source = (this.source = new EventSource(`${hub.host}/counts/stream?${query}`));
    source.onopen = () => {
      this.opened = true;
      this.errors = 0;
      hub.opened();
    };
    if (tokens.length === 1) {
      source.addEventListener("message", (e) => this.counts(0, e));
      source.addEventListener("error", (e) => this.error(0, e));
    } else {
      tokens.forEach((_, i) => {
        source.addEventListener(`counts-${i}`, (e) => this.counts(i, e));
        source.addEventListener(`error-${i}`, (e) => this.error(i, e));
      });
      source.addEventListener("error", (e) => this.error(-1, e));
    }
  }

  counts(i, event) {
    try {
      this.hub.deliver(this.tokens[i], JSON.parse(event.data));
    } catch {
      // not JSON: ignore this event, the next one will do
    }
  }

  error(i, event) {
    if (typeof event.data === "string") {
      if (i < 0) return; // not a token's error: nothing this element knows
      // The server's `error` event for a token: it will never count again.
      let error;
      try {
        error = JSON.parse(event.data).error;
      } catch {
        error = undefined;
      }
      this.hub.refuse(this.tokens[i], error ?? { type: "error", messages: [] });
      if (this.tokens.every((t) => this.hub.dead.has(t))) this.hub.drop(this);
      return;
    }
    // The connection itself: never opened, refused (CLOSED), or dropped three times running.
    // A single drop of an open stream is left to EventSource (it reconnects, Last-Event-ID).
    if (!this.opened || this.source.readyState === EventSource.CLOSED || ++this.errors >= 3) {
      this.hub.failed(this);
    }
  }

  close() { this.source.close(); }
}

// Every element of one host shares one hub: one EventSource for all their tokens.
class Hub {
  static #hubs = new Map();

  static for(host) {
    let hub = Hub.#hubs.get(host);
    if (!hub) Hub.#hubs.set(host, (hub = new Hub(host)));
    return hub;
  }

  constructor(host) {
    this.host = host;
    this.members = new Set();
    this.links = [];
    this.dead = new Set(); // tokens refused for good (expired, deleted key, invalid)
    this.blocked = typeof EventSource !== "function";
    this.failures = 0; // streams that failed to open in a row while /counts worked
    this.attempts = 0; // failed streams in a row, whatever the cause (the backoff)
    this.timer = 0;
  }

  join(member) { this.members.add(member); this.schedule(REOPEN_DEBOUNCE); }
  leave(member) { this.members.delete(member); this.schedule(REOPEN_DEBOUNCE); }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reopen(), delay);
  }

  needed() {
    const tokens = [];
    for (const m of this.members) {
      if (m.wantsStream() && !this.dead.has(m.token) && !tokens.includes(m.token)) {
        tokens.push(m.token);
      }
    }
    return tokens;
  }

  // Reopen only when a token is missing or none is needed: extra tokens cost nothing.
  reopen() {
    if (this.blocked) return;
    const tokens = this.needed();
    const carried = this.links.flatMap((l) => l.tokens);
    if (tokens.length && this.links.length && tokens.every((t) => carried.includes(t))) return;
    this.links.forEach((l) => l.close());
    this.links = [];
    for (let i = 0; i < tokens.length; i += MAX_TOKENS) {
      this.links.push(new Link(this, tokens.slice(i, i + MAX_TOKENS)));
    }
  }

  drop(link) {
    link.close();
    this.links = this.links.filter((l) => l !== link);
  }

  opened() {
    this.failures = 0;
    this.attempts = 0;
    this.members.forEach((m) => m.transportChanged());
  }

  deliver(token, body) {
    for (const m of this.members) if (m.token === token) m.receive(body);
  }

  refuse(token, error) {
    this.dead.add(token);
    for (const m of this.members) if (m.token === token) m.refused(error);
  }

  // A stream would not open (or kept dropping): ask /counts why, token by token.
  async failed(link) {
    this.drop(link);
    let works = false;
    await Promise.all(
      link.tokens
        .filter((t) => !this.dead.has(t))
        .map(async (token) => {
          const answer = await readCounts(this.host, token);
          if (answer.kind === "ok") {
            works = true;
            this.deliver(token, answer.body);
          } else if (answer.kind === "refused") {
            this.refuse(token, answer.error);
          } else {
            for (const m of this.members) if (m.token === token) m.failed(answer.error);
          }
        }),
    );
    // /counts answers but the stream does not: something between (a proxy, an older server)
    // blocks streams. Poll, and try the stream again now and then.
    if (works && ++this.failures >= STREAM_TRIES) {
      this.blocked = true;
      this.members.forEach((m) => m.transportChanged());
      setTimeout(() => this.probe(), STREAM_PROBE * 1000);
      return;
    }
    this.schedule(backoff(this.attempts++, 1000, 60000));
  }

  probe() {
    this.blocked = typeof EventSource !== "function";
    if (this.blocked) return;
    this.failures = STREAM_TRIES - 1; // one more failure and polling goes on
    this.reopen();
  }
}

const template = document.createElement("template");
template.innerHTML = `<style>
  :host { display: inline; font-variant-numeric: tabular-nums; }
  :host([hidden]) { display: none; }
  .sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0;
        overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
</style><span part="count" aria-hidden="true">??</span><span class="sr" role="status"
  aria-live="polite" aria-atomic="true"></span>`;

export class HeadcountViewers extends HTMLElement {
  static observedAttributes = ["token", "poll-interval", "pollinterval", "disabled", "host",
    "show", "label", "announce-interval"];

  #count;
  #status;
  #reading = null; // the last /counts body's data[0]
  #readAt = 0; // ms
  #state = "idle"; // idle | stream | poll | expired | stopped
  #hub = null;
  #pollTimer = 0;
  #pollFailures = 0;
  #announced = 0; // ms
  #announceTimer = 0;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    root.append(template.content.cloneNode(true));
    [this.#count, this.#status] = root.querySelectorAll("span");
  }

  get token() { return this.getAttribute("token") ?? ""; }
  set token(value) { this.setAttribute("token", value ?? ""); }
  get pollInterval() {
    const raw = this.getAttribute("poll-interval") ?? this.getAttribute("pollinterval");
    const seconds = raw === null || raw === "" ? DEFAULT_POLL : Number(raw);
    if (!Number.isFinite(seconds)) return DEFAULT_POLL;
    return Math.max(MIN_POLL, seconds);
  }
  set pollInterval(value) { this.setAttribute("poll-interval", String(value)); }
  get host() { return (this.getAttribute("host") || SCRIPT_ORIGIN).replace(/\/+$/, ""); }
  set host(value) { this.setAttribute("host", value); }
  get show() { return this.getAttribute("show") === "viewers" ? "viewers" : "views"; }
  set show(value) { this.setAttribute("show", value); }
  get disabled() { return this.hasAttribute("disabled"); }
  set disabled(value) { this.toggleAttribute("disabled", Boolean(value)); }
  get views() { return this.#reading?.views; }
  get viewers() { return this.#reading?.viewers; }
  get updatedAt() { return this.#reading?.updated_at; }
  /** How counts arrive now: "stream", "poll", or why they do not: "idle", "expired", "stopped". */
  get transport() { return this.#state; }

  connectedCallback() { this.#restart(); }
  disconnectedCallback() { this.#detach(); }

  attributeChangedCallback(name, old, value) {
    if (old === value || !this.isConnected) return;
    if (name === "show" || name === "label" || name === "announce-interval") {
      return this.#render();
    }
    if (name === "poll-interval" || name === "pollinterval") this.#warnFastPolling();
    if (name === "token" || name === "disabled" || name === "host") {
      // A token answering `tokenexpired` counts the same thing: keep the number meanwhile.
      if (name === "token" && this.#state !== "expired") this.#reading = null;
      this.#restart();
    } else if (this.#state === "poll") {
      this.#schedulePoll();
    }
  }

  // -- called by the hub --------------------------------------------------------------

  wantsStream() {
    return this.#state === "stream" || this.#state === "poll";
  }

  transportChanged() {
    if (!this.wantsStream()) return;
    this.#setState(this.#hub.blocked ? "poll" : "stream");
    if (this.#state === "poll") this.#schedulePoll();
    else clearTimeout(this.#pollTimer);
  }

  receive(body) {
    const row = body?.data?.[0];
    if (typeof row?.views !== "number") return this.failed("no data in response");
    const previous = this.#reading;
    this.#reading = row;
    this.#readAt = Date.now();
    this.#pollFailures = 0;
    if (previous?.views === row.views && previous?.viewers === row.viewers) return;
    this.#render();
    this.dispatchEvent(new CustomEvent("change", { detail: row.views }));
  }

  refused(error) {
    clearTimeout(this.#pollTimer);
    this.#setState(error?.type === "expired_token" ? "expired" : "stopped");
    this.dispatchEvent(new CustomEvent("error", { detail: error }));
    if (this.#state === "expired") {
      this.dispatchEvent(
        new CustomEvent("tokenexpired", {
          bubbles: true,
          composed: true,
          detail: { token: this.token, error },
        }),
      );
    }
  }

  failed(error) {
    this.dispatchEvent(new CustomEvent("error", { detail: error }));
  }

  // -- inside ---------------------------------------------------------------------------

  #restart() {
    this.#detach();
    this.#render();
    if (!this.token || this.disabled) return;
    this.#warnFastPolling();
    this.#hub = Hub.for(this.host);
    this.#setState(this.#hub.blocked ? "poll" : "stream");
    if (this.#hub.dead.has(this.token)) {
      // Refused before: ask /counts again, it says why (once; no retry until the token changes).
      this.#setState("poll");
      this.#poll();
      return;
    }
    this.#hub.join(this);
    if (this.#state === "poll") this.#poll();
  }

  #detach() {
    clearTimeout(this.#pollTimer);
    this.#hub?.leave(this);
    this.#hub = null;
    this.#setState("idle");
  }

  #setState(state) {
    this.#state = state;
    this.setAttribute("state", state);
  }

  #schedulePoll() {
    clearTimeout(this.#pollTimer);
    const interval = this.pollInterval * 1000;
    const delay = this.#pollFailures
      ? Math.max(interval, backoff(this.#pollFailures, interval, 300000))
      : Math.max(0, this.#readAt + interval - Date.now());
    this.#pollTimer = setTimeout(() => this.#poll(), delay);
  }

  async #poll() {
    const token = this.token;
    const host = this.host;
    const answer = await readCounts(host, token);
    if (token !== this.token || host !== this.host || this.#state !== "poll") return;
    if (answer.kind === "ok") {
      this.receive(answer.body);
    } else if (answer.kind === "refused") {
      this.#hub?.refuse(token, answer.error);
      if (this.#state === "poll") this.refused(answer.error); // not a member: told directly
      return;
    } else {
      this.#pollFailures += 1;
      this.failed(answer.error);
    }
    this.#schedulePoll();
  }

  #warnFastPolling() {
    const raw = Number(this.getAttribute("poll-interval") ?? this.getAttribute("pollinterval"));
    if (raw && raw < MIN_POLL) {
      console.warn(`<headcount-viewers>: poll-interval ${raw} raised to ${MIN_POLL} seconds.`);
    }
  }

  #locale() {
    return this.closest("[lang]")?.lang || navigator.language || undefined;
  }

  #render() {
    const value = this.#reading?.[this.show];
    if (typeof value !== "number") {
      this.#count.textContent = "??";
      return;
    }
    const locale = this.#locale();
    this.#count.textContent = new Intl.NumberFormat(locale, { notation: "compact" }).format(value);
    this.#announce(`${this.getAttribute("label") ?? "Viewer Count"} ${value.toLocaleString(locale)}`);
  }

  // The live region is polite and changes at most every `announce-interval` seconds (default
  // 30): a busy stream changes every second and would talk over everything else. 0 turns the
  // announcements off (aria-live="off"); the text is then always current, for reading.
  #announce(text) {
    clearTimeout(this.#announceTimer);
    const raw = this.getAttribute("announce-interval");
    const every = raw === null ? DEFAULT_ANNOUNCE : Math.max(0, Number(raw) || 0);
    this.#status.setAttribute("aria-live", every > 0 ? "polite" : "off");
    const speak = () => {
      this.#announced = Date.now();
      this.#status.textContent = text;
    };
    const wait = this.#announced + every * 1000 - Date.now();
    if (every === 0 || wait <= 0) speak();
    else this.#announceTimer = setTimeout(speak, wait);
  }
}

if (!customElements.get("headcount-viewers")) {
  customElements.define("headcount-viewers", HeadcountViewers);
}
