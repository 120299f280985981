// The web chat: a thin front end on the conversation API. No build step, no framework.
// Every word shown comes from the catalogs, embedded in the page as #chat-config.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const POLL_MS = 2000;
  const MAX_FILE_BYTES = 10 * 1024 * 1024; // the conversation API refuses larger files
  const SECRET_ECHO = "●●●"; // shown for a typed password, which is never displayed
  const STORE = {
    token: "renkei.chat.token",
    user: "renkei.chat.user",
    locale: "renkei.chat.locale",
    conversation: "renkei.chat.conversation",
  };
  const ERRORS = {
    token: "error_token",
    not_found: "error_not_found",
    network: "error_network",
    generic: "error_generic",
    file_too_large: "error_file_too_large",
    demo: "error_demo_unavailable",
  };

  const $ = (id) => document.getElementById(id);
  const state = {
    locale: config.default_locale,
    token: null,
    user: null,
    conversation: null,
    shown: "", // what the log shows last, so a poll that brings nothing new changes nothing
    busy: false,
    sent: 0, // counts inputs: a poll answered after an input was sent is stale
    timer: null,
  };

  class ChatError extends Error {
    constructor(kind) {
      super(kind);
      this.kind = kind;
    }
  }

  // Private browsing may refuse storage: the page still works for this visit.
  function load(key) {
    try {
      return window.localStorage.getItem(key);
    } catch {
      return null;
    }
  }
  function save(key, value) {
    try {
      if (value === null) window.localStorage.removeItem(key);
      else window.localStorage.setItem(key, value);
    } catch {
      /* kept in memory only */
    }
  }

  function t(key, params) {
    const words =
      (config.strings[state.locale] || {})[key] ?? config.strings[config.default_locale][key] ?? key;
    return words.replace(/\{(\w+)\}/g, (all, name) => (params && name in params ? params[name] : all));
  }

  function applyLocale(locale) {
    if (!config.locales.includes(locale)) return;
    state.locale = locale;
    save(STORE.locale, locale);
    document.documentElement.lang = locale;
    document.querySelectorAll("[data-text]").forEach((el) => {
      el.textContent = t(el.dataset.text);
    });
    document.querySelectorAll("[data-label]").forEach((el) => {
      el.setAttribute("aria-label", t(el.dataset.label));
    });
    document.querySelectorAll("[data-placeholder]").forEach((el) => {
      el.setAttribute("placeholder", t(el.dataset.placeholder));
    });
    document.querySelectorAll("button.lang").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.locale === locale));
    });
    $("who").textContent = state.user ? t("signed_in_as", { user: state.user }) : "";
    updateStatus();
  }

  function showError(kind) {
    const box = $("error");
    box.textContent = t(ERRORS[kind] || ERRORS.generic);
    box.dataset.text = ERRORS[kind] || ERRORS.generic; // re-worded on a language switch
    box.hidden = false;
  }
  function clearError() {
    const box = $("error");
    box.hidden = true;
    box.textContent = "";
    delete box.dataset.text;
  }

  async function request(method, path, body, token) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ChatError("network");
    }
    if (response.status === 401) throw new ChatError("token");
    if (response.status === 404) throw new ChatError("not_found");
    if (response.status === 409) throw new ChatError("conflict");
    if (!response.ok) throw new ChatError("generic");
    return response.json();
  }

  const api = (method, path, body) => request(method, config.api + path, body, state.token);

  // ------------------------------------------------------------------ sign-in
  function signedIn(token, user) {
    state.token = token;
    state.user = user;
    save(STORE.token, token);
    save(STORE.user, user);
    $("token").value = "";
    enterChat();
  }

  function signOut({ keepUrl = false } = {}) {
    stopPolling();
    state.token = state.user = state.conversation = null;
    state.shown = "";
    save(STORE.token, null);
    save(STORE.user, null);
    save(STORE.conversation, null);
    $("log").replaceChildren();
    if (!keepUrl) window.history.replaceState(null, "", "/chat");
    $("chat").hidden = true;
    $("signin").hidden = false;
    applyLocale(state.locale);
    $("token").focus();
  }

  async function signInWithToken(event) {
    event.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    clearError();
    try {
      const me = await request("GET", "/chat/me", undefined, token);
      signedIn(token, me.user);
    } catch (error) {
      showError(error.kind === "token" ? "token" : error.kind);
    }
  }

  async function signInAsDemo() {
    clearError();
    try {
      const session = await request("POST", "/chat/demo-session");
      signedIn(session.token, session.user);
    } catch (error) {
      showError(error.kind === "network" ? "network" : "demo");
    }
  }

  // ------------------------------------------------------------ conversation
  function wanted() {
    return new URLSearchParams(window.location.search).get("conversation") || load(STORE.conversation);
  }

  async function enterChat() {
    $("signin").hidden = true;
    $("chat").hidden = false;
    applyLocale(state.locale);
    const id = wanted();
    try {
      if (id) {
        try {
          render(await api("GET", `/conversations/${encodeURIComponent(id)}`), { moveFocus: true });
          return;
        } catch (error) {
          if (error.kind !== "not_found") throw error;
          showError("not_found");
        }
      }
      await startConversation();
    } catch (error) {
      handle(error);
    }
  }

  async function startConversation() {
    stopPolling();
    state.shown = "";
    $("log").replaceChildren();
    const conversation = await api("POST", "/conversations", {
      user: state.user,
      locale: state.locale,
    });
    render(conversation, { moveFocus: true });
  }

  function handle(error) {
    if (error.kind === "token") {
      signOut({ keepUrl: true }); // after signing in again, the same conversation resumes
      showError("token");
    } else {
      showError(error.kind || "generic");
    }
  }

  async function send(body, echo, { fromTextBox = false } = {}) {
    if (state.busy || !state.conversation) return;
    state.busy = true;
    state.sent += 1;
    stopPolling();
    clearError();
    if (echo) appendMine(echo);
    const path = `/conversations/${encodeURIComponent(state.conversation.id)}`;
    try {
      let conversation;
      try {
        conversation = await api("POST", `${path}/messages`, body);
      } catch (error) {
        // Another input (or the back end's event) got there first: show where it is now.
        if (error.kind !== "conflict") throw error;
        conversation = await api("GET", path);
      }
      render(conversation, { moveFocus: !fromTextBox, force: true });
    } catch (error) {
      handle(error);
      schedulePoll();
    } finally {
      state.busy = false;
    }
  }

  function appendMine(words) {
    const item = document.createElement("li");
    item.className = "turn mine";
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.dataset.text = "speaker_you";
    who.textContent = t("speaker_you");
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = words;
    item.append(who, text);
    $("log").append(item);
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch {
      return null;
    }
  }

  // renkei's start link goes on to the card issuer only in the member's own browser: this
  // page is signed in, so it asks with the member's token (the answer sets an HttpOnly
  // cookie the callback checks) instead of the one-time code.
  const START_PATH = `${config.api}/oauth/start/`;
  async function openStart(event, href) {
    const url = new URL(href);
    if (url.origin !== window.location.origin || !url.pathname.startsWith(START_PATH)) return;
    event.preventDefault();
    try {
      const answer = await api("POST", `${url.pathname.slice(config.api.length)}/signed-in`);
      const next = safeUrl(answer.issuer_url);
      if (next) {
        window.location.assign(next);
        return;
      }
    } catch {
      // Fall through: the start page asks for the code instead.
    }
    window.location.assign(href);
  }

  function replyElement(reply) {
    const box = document.createElement("div");
    box.className = "reply";
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = reply.text;
    box.append(text);
    const href = reply.link && safeUrl(reply.link.url);
    if (href) {
      // Same tab: the issuer's callback page links back to /chat?conversation=..., where
      // this page resumes the conversation.
      const link = document.createElement("a");
      link.className = "link button-like primary";
      link.href = href;
      link.textContent = reply.link.label;
      link.addEventListener("click", (event) => openStart(event, href));
      box.append(link);
      if (reply.link.note) {
        const note = document.createElement("p");
        note.className = "text note";
        note.textContent = reply.link.note;
        box.append(note);
      }
    }
    // The step's own choices first; help, back, cancel... in a quieter row below.
    const steps = reply.choices.filter((c) => !config.navigation.includes(c.value));
    const navigation = reply.choices.filter((c) => config.navigation.includes(c.value));
    for (const [group, className] of [
      [steps, "choices"],
      [navigation, "choices nav"],
    ]) {
      if (!group.length) continue;
      const choices = document.createElement("div");
      choices.className = className;
      for (const choice of group) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "choice";
        button.textContent = choice.label;
        button.addEventListener("click", () => send({ choice: choice.value }, choice.label));
        choices.append(button);
      }
      box.append(choices);
    }
    return box;
  }

  function render(conversation, { moveFocus = false, force = false } = {}) {
    state.conversation = conversation;
    save(STORE.conversation, conversation.id);
    const here = `/chat?conversation=${encodeURIComponent(conversation.id)}`;
    if (window.location.pathname + window.location.search !== here) {
      window.history.replaceState(null, "", here); // a reload resumes this conversation
    }
    if (conversation.locale !== state.locale) applyLocale(conversation.locale);
    const seen = JSON.stringify([conversation.flow, conversation.state, conversation.locale, conversation.replies]);
    if (seen !== state.shown || force) {
      state.shown = seen;
      // Only the newest turn can be answered: older buttons and links would be stale.
      document.querySelectorAll("#log .choices, #log .link").forEach((el) => el.remove());
      const item = document.createElement("li");
      item.className = "turn theirs";
      const who = document.createElement("span");
      who.className = "visually-hidden";
      who.dataset.text = "speaker_assistant";
      who.textContent = t("speaker_assistant");
      item.append(who);
      conversation.replies.forEach((reply) => item.append(replyElement(reply)));
      $("log").append(item);
      const first = item.querySelector(".text");
      const typing = document.activeElement === $("message");
      if (first && (moveFocus || !typing)) {
        first.tabIndex = -1;
        first.focus({ preventScroll: true });
      }
      item.scrollIntoView({ block: "nearest" });
    }
    // A password step: the field is masked, and what is typed is never shown (the log
    // gets a placeholder, as the stored transcript does).
    const box = $("message");
    const wanted = conversation.secret ? "password" : "text";
    if (box.type !== wanted) {
      box.value = "";
      box.type = wanted;
    }
    schedulePoll();
  }

  // ------------------------------------------------------------------ polling
  // While a procedure is under way the back end may move it on by itself (the issuer's
  // consent arrives, the first sync ends): ask again every two seconds.
  function waiting() {
    return Boolean(state.conversation && state.conversation.flow !== null);
  }
  function waitingOnIssuer() {
    const replies = state.conversation ? state.conversation.replies : [];
    return waiting() && replies.length > 0 && replies[replies.length - 1].link !== null;
  }

  function updateStatus() {
    const status = $("status");
    if (status) status.textContent = waitingOnIssuer() ? t("waiting_issuer") : "";
  }

  function stopPolling() {
    if (state.timer !== null) window.clearTimeout(state.timer);
    state.timer = null;
  }

  function schedulePoll() {
    stopPolling();
    updateStatus();
    if (waiting()) state.timer = window.setTimeout(poll, POLL_MS);
  }

  async function poll() {
    state.timer = null;
    if (!waiting() || !state.token) return;
    if (document.hidden || state.busy) {
      schedulePoll();
      return;
    }
    const before = state.sent;
    try {
      const conversation = await api("GET", `/conversations/${encodeURIComponent(state.conversation.id)}`);
      if (before === state.sent) render(conversation);
      else schedulePoll();
    } catch (error) {
      if (error.kind === "token") handle(error);
      else schedulePoll(); // a passing network failure: keep asking
    }
  }

  function pollNow() {
    if (waiting() && !state.busy) {
      stopPolling();
      poll();
    }
  }

  // -------------------------------------------------------------------- wiring
  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(new ChatError("generic"));
      reader.readAsDataURL(file);
    });
  }

  function wire() {
    $("token-form").addEventListener("submit", signInWithToken);
    const demo = $("demo");
    if (demo) demo.addEventListener("click", signInAsDemo);
    $("signout").addEventListener("click", () => signOut());
    $("new").addEventListener("click", async () => {
      clearError();
      save(STORE.conversation, null);
      window.history.replaceState(null, "", "/chat");
      try {
        await startConversation();
      } catch (error) {
        handle(error);
      }
    });
    document.querySelectorAll("button.lang").forEach((button) => {
      button.addEventListener("click", () => {
        const locale = button.dataset.locale;
        if (locale === state.locale) return;
        applyLocale(locale);
        // The conversation speaks the same language as the page.
        if (state.conversation && !$("chat").hidden) send({ choice: `lang:${locale}` }, null);
      });
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const box = $("message");
      const text = box.value.trim();
      if (!text) return;
      box.value = "";
      const echo = box.type === "password" ? SECRET_ECHO : text;
      send({ text }, echo, { fromTextBox: true });
    });
    $("file").addEventListener("change", async (event) => {
      const input = event.target;
      const file = input.files && input.files[0];
      input.value = "";
      if (!file) return;
      if (file.size > MAX_FILE_BYTES) {
        showError("file_too_large");
        return;
      }
      try {
        const content = await readFile(file);
        await send({ file: { name: file.name, content_base64: content } }, t("sent_file", { name: file.name }));
      } catch (error) {
        handle(error);
      }
    });
    // Back from the issuer's pages in another tab, or through the browser's back button.
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) pollNow();
    });
    window.addEventListener("pageshow", (event) => {
      if (event.persisted) pollNow();
    });
  }

  function start() {
    wire();
    applyLocale(load(STORE.locale) || config.default_locale);
    $("loading").hidden = true;
    state.token = load(STORE.token);
    state.user = load(STORE.user);
    if (state.token && state.user) {
      enterChat();
    } else {
      $("signin").hidden = false;
    }
  }

  start();
})();
