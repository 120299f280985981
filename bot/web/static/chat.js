// The web chat: a thin front end on the conversation API. No build step, no framework.
// Every word shown comes from the catalogs, embedded in the page as #chat-config.
(() => {
  "use strict";

  const config = JSON.parse(document.getElementById("chat-config").textContent);
  const POLL_MS = 2000;
  const HISTORY_LINES = 200; // as many as a conversation keeps
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
    seq: 0, // the number of the conversation's latest line the log shows
    drawing: 0, // counts draws: a history answered after a newer draw began is dropped
    busy: false,
    sent: 0, // counts inputs: a poll answered after an input was sent is stale
    timer: null,
    notices: [], // the offices' notices, as the API answered them
    answers: { conversation: null, shown: 0 }, // support's answers already in the log
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
    renderNotices();
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
    state.seq = 0;
    save(STORE.token, null);
    save(STORE.user, null);
    save(STORE.conversation, null);
    $("log").replaceChildren();
    state.notices = [];
    renderNotices();
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

  // ----------------------------------------------------------------- notices
  // The offices' notices (a consent ending, a card that appeared, API released, a link
  // to authenticate again), above the log. A notice's button starts a conversation in
  // its office and plays its steps (config.offers: the flow, then the answers that pick
  // the notice's account or card).
  function noticeDay(iso) {
    if (!iso) return "";
    return new Intl.DateTimeFormat(state.locale, { dateStyle: "long", timeZone: "Asia/Tokyo" }).format(
      new Date(iso),
    );
  }

  function fill(steps, fields) {
    return steps.map((step) => step.replace(/\{(\w+)\}/g, (all, name) => String(fields[name] ?? "")));
  }

  // What a notice says and plays: [text key, button key, steps, fields].
  function noticeParts(notice, office, accountNames) {
    const card = notice.card || {};
    const accountId = notice.account_ids[0] || "";
    const fields = {
      office: office.name,
      account: accountNames[accountId] || "",
      account_id: accountId,
      date: noticeDay(notice.expires_at),
      issuer: t(`issuer_${notice.issuer}`),
      card: card.masked_number || "",
      holder: card.holder_name || "",
      card_id: card.card_id || "",
      basic_account_id: card.basic_account_id || "",
    };
    if (notice.kind === "consent_expiring") {
      return ["notice_consent_expiring", "notice_button_consent_expiring", "consent_expiring", fields];
    }
    if (notice.kind === "needs_reauth") {
      // The old link still holds the card at Amex: stopping it is said before the button.
      const text = notice.stop_at_member_site ? "notice_needs_reauth_stop_first" : "notice_needs_reauth";
      return [text, "notice_button_needs_reauth", "needs_reauth", fields];
    }
    if (notice.kind === "card_discovered") {
      if (card.offer === "supplementary_card") {
        const kind = card.basic_account_id ? "supplementary_card" : "supplementary_card_unknown_basic";
        return ["notice_card_discovered_supplementary", "notice_button_supplementary_card", kind, fields];
      }
      const kind = notice.issuer === "jcb" ? "register_jcb" : "register_amex";
      return ["notice_card_discovered_register", "notice_button_register", kind, fields];
    }
    return ["notice_api_released", "notice_button_api_released", "api_released", fields];
  }

  async function startFromNotice(officeId, steps) {
    if (state.busy) return;
    clearError();
    stopPolling();
    state.seq = 0;
    $("log").replaceChildren();
    try {
      let conversation = await api("POST", "/conversations", {
        user: state.user,
        locale: state.locale,
        office_id: officeId,
      });
      const path = `/conversations/${encodeURIComponent(conversation.id)}`;
      for (const step of steps) {
        conversation = await api("POST", `${path}/messages`, { choice: step });
      }
      await render(conversation, { moveFocus: true, whole: true });
    } catch (error) {
      handle(error);
    }
  }

  async function loadNotices() {
    const found = [];
    for (const office of await api("GET", "/offices")) {
      const notices = await api("GET", `/offices/${encodeURIComponent(office.id)}/notices`);
      if (!notices.length) continue;
      const accounts = await api("GET", `/offices/${encodeURIComponent(office.id)}/accounts`);
      const names = Object.fromEntries(accounts.map((a) => [a.id, a.name]));
      notices.forEach((notice) => found.push({ notice, office, names }));
    }
    state.notices = found;
    renderNotices();
  }

  // Drawn again on a language switch: the words and the dates are the page's language.
  function renderNotices() {
    const items = state.notices.map(({ notice, office, names }) => {
      const [textKey, buttonKey, kind, fields] = noticeParts(notice, office, names);
      const item = document.createElement("li");
      item.className = "notice";
      const text = document.createElement("p");
      text.className = "text";
      text.textContent = t(textKey, fields);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "choice";
      button.textContent = t(buttonKey);
      const steps = fill(config.offers[kind], fields);
      button.addEventListener("click", () => startFromNotice(office.id, steps));
      item.append(text);
      if (notice.stop_at_member_site && notice.member_site_url) {
        // The member-site page where the link is stopped, before the button that re-authenticates.
        const site = document.createElement("a");
        site.className = "member-site";
        site.href = notice.member_site_url;
        site.target = "_blank";
        site.rel = "noopener noreferrer";
        site.textContent = t("notice_member_site_link");
        const line = document.createElement("p");
        line.append(site);
        item.append(line);
      }
      item.append(button);
      return item;
    });
    $("notice-list").replaceChildren(...items);
    $("notices").hidden = items.length === 0;
  }

  function showNotices() {
    // A notice that cannot be read leaves the chat as it is: it is not the conversation.
    loadNotices().catch((error) => {
      if (error.kind === "token") handle(error);
    });
  }

  // ------------------------------------------------------------ conversation
  function wanted() {
    return new URLSearchParams(window.location.search).get("conversation") || load(STORE.conversation);
  }

  async function enterChat() {
    $("signin").hidden = true;
    $("chat").hidden = false;
    applyLocale(state.locale);
    showNotices();
    const id = wanted();
    try {
      if (id) {
        try {
          // A reload, the way back from the issuer, another tab: the whole conversation.
          const conversation = await api("GET", `/conversations/${encodeURIComponent(id)}`);
          await render(conversation, { moveFocus: true, whole: true });
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
    state.seq = 0;
    $("log").replaceChildren();
    const conversation = await api("POST", "/conversations", {
      user: state.user,
      locale: state.locale,
    });
    await render(conversation, { moveFocus: true });
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
    showTyping(true);
    const path = `/conversations/${encodeURIComponent(state.conversation.id)}`;
    try {
      let conversation;
      let whole = false;
      try {
        conversation = await api("POST", `${path}/messages`, body);
      } catch (error) {
        // Another input (or the back end's event) got there first: show where it is now.
        if (error.kind !== "conflict") throw error;
        conversation = await api("GET", path);
        whole = true; // this input was not taken: the log is drawn as the conversation is
      }
      await render(conversation, { moveFocus: !fromTextBox, sent: true, whole });
    } catch (error) {
      handle(error);
      schedulePoll();
    } finally {
      showTyping(false);
      state.busy = false;
    }
  }

  // The assistant is answering: three dots under the log until the reply is drawn.
  function showTyping(on) {
    $("typing").hidden = !on;
    if (on) $("typing").scrollIntoView({ block: "nearest" });
  }

  // The time a turn was drawn, in the page's language (24-hour clock in Japanese).
  function timeElement(when = new Date()) {
    const time = document.createElement("time");
    time.dateTime = when.toISOString();
    time.textContent = new Intl.DateTimeFormat(state.locale, {
      hour: "2-digit",
      minute: "2-digit",
    }).format(when);
    return time;
  }

  // A turn of words alone: the person's, or support's answer.
  function wordsElement(kind, speaker, words, when) {
    const item = document.createElement("li");
    item.className = `turn ${kind}`;
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.dataset.text = speaker;
    who.textContent = t(speaker);
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = words;
    item.append(who, text, timeElement(when));
    return item;
  }

  function mineElement(words, when) {
    return wordsElement("mine", "speaker_you", words, when);
  }

  function appendMine(words) {
    $("log").append(mineElement(words));
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
  function isStart(href) {
    const url = new URL(href);
    return url.origin === window.location.origin && url.pathname.startsWith(START_PATH);
  }

  function isOwnApi(href) {
    const url = new URL(href);
    return url.origin === window.location.origin && url.pathname.startsWith(`${config.api}/`);
  }

  // A member site that shows a link back (the simulated issuers) is told where this
  // conversation is, so the person comes back to it in one click.
  function withWayBack(href) {
    const sites = config.way_back_sites.map(safeUrl).filter(Boolean);
    if (!state.conversation || !sites.some((site) => href.startsWith(`${site}/`))) {
      return href;
    }
    const url = new URL(href);
    const here = new URL("/chat", window.location.origin);
    here.searchParams.set("conversation", state.conversation.id);
    url.searchParams.set("return_to", here.href);
    return url.href;
  }

  async function openStart(event, href) {
    if (!isStart(href)) return;
    event.preventDefault();
    const path = new URL(href).pathname;
    try {
      const answer = await api("POST", `${path.slice(config.api.length)}/signed-in`);
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

  function replyElement(reply, turn) {
    const box = document.createElement("div");
    box.className = "reply";
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = reply.text;
    box.append(text);
    const href = reply.link && safeUrl(reply.link.url);
    if (href) {
      const link = document.createElement("a");
      link.className = "link button-like primary";
      link.textContent = reply.link.label;
      if (isStart(href)) {
        // Same tab: the issuer's callback page links back to /chat?conversation=..., where
        // this page resumes the conversation.
        link.href = href;
        link.addEventListener("click", (event) => openStart(event, href));
      } else if (isOwnApi(href)) {
        link.href = href; // a download (a statements export): this page stays as it is
      } else {
        // Any other page (an issuer's member site) opens in a new tab: the chat stays
        // where it was, and the page opened learns nothing of this one.
        link.href = withWayBack(href);
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        const hint = document.createElement("span");
        hint.className = "visually-hidden";
        hint.dataset.text = "opens_new_tab";
        hint.textContent = t("opens_new_tab");
        link.append(" ", hint);
      }
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
        // With the turn it was drawn at: pressed after the conversation moved on (in
        // another tab, or by itself), it is answered as a button of an earlier step.
        button.addEventListener("click", () => send({ choice: choice.value, turn }, choice.label));
        choices.append(button);
      }
      box.append(choices);
    }
    return box;
  }

  // Words of an earlier step, as they were shown: its own buttons as a list that cannot
  // be pressed (help, back... are left out), its link as plain words.
  function pastReply(reply) {
    const box = document.createElement("div");
    box.className = "reply past";
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = reply.text;
    box.append(text);
    if (reply.link) box.append(pastLink(reply.link));
    const labels = reply.choices.filter((c) => !config.navigation.includes(c.value)).map((c) => c.label);
    if (labels.length) box.append(pastChoices(labels));
    return box;
  }

  function pastLink(label) {
    const words = document.createElement("p");
    words.className = "link past";
    words.textContent = label;
    return words;
  }

  function pastChoices(labels) {
    const list = document.createElement("ul");
    list.className = "choices past";
    list.dataset.label = "past_choices";
    list.setAttribute("aria-label", t("past_choices"));
    for (const label of labels) {
      const item = document.createElement("li");
      item.className = "choice past";
      item.textContent = label;
      list.append(item);
    }
    return list;
  }

  // The step just answered becomes an earlier one: only the newest turn can be answered.
  function retire() {
    document.querySelectorAll("#log .choices.nav, #log .note").forEach((el) => el.remove());
    document.querySelectorAll("#log .choices:not(.past)").forEach((group) => {
      group.replaceWith(pastChoices([...group.querySelectorAll("button")].map((b) => b.textContent)));
    });
    document.querySelectorAll("#log a.link").forEach((link) => link.replaceWith(pastLink(link.textContent)));
  }

  function theirsElement(replies, when, drawReply) {
    const item = document.createElement("li");
    item.className = "turn theirs";
    const who = document.createElement("span");
    who.className = "visually-hidden";
    who.dataset.text = "speaker_assistant";
    who.textContent = t("speaker_assistant");
    item.append(who);
    replies.forEach((reply) => item.append(drawReply(reply)));
    item.append(timeElement(when));
    return item;
  }

  function pastElement(line) {
    const when = line.at ? new Date(line.at) : undefined;
    if (line.speaker === "person") {
      return mineElement(line.file ? t("sent_file", { name: line.file }) : line.text, when);
    }
    if (line.speaker === "support") return supportElement(line.text, when);
    return theirsElement(line.replies, when, pastReply);
  }

  // The conversation's kept lines before its current step, when the step was said, and
  // what support said after it (drawn below the step's replies).
  async function earlierLines(conversation) {
    const path = `/conversations/${encodeURIComponent(conversation.id)}/history?limit=${HISTORY_LINES}`;
    const { lines } = await api("GET", path);
    const current = lines.find((line) => line.seq === conversation.turn && line.speaker !== "support");
    const items = lines.filter((line) => line.seq < conversation.turn).map(pastElement);
    const after = lines.filter((line) => line.seq >= conversation.turn && line.speaker === "support");
    const handoff = conversation.handoff ? conversation.handoff.id : null;
    const answered = lines.filter((line) => line.speaker === "support" && line.handoff_id === handoff).length;
    return { items, after: after.map(pastElement), answered, when: current && current.at ? new Date(current.at) : undefined };
  }

  // Draws what is new. The log follows the conversation's lines: the answer to this page's
  // own input (its line and the reply), or one reply the back end moved it on with, is
  // added; anything else (a reload, the way back from the issuer, another tab's turn) draws
  // the whole conversation again from its history.
  async function render(conversation, { moveFocus = false, sent = false, whole = false } = {}) {
    const drawing = ++state.drawing;
    // Support gave the conversation back: what they said last may not have been read
    // yet, and it is in the history alone now.
    const before = state.conversation;
    if (before && before.id === conversation.id && before.handoff && !conversation.handoff) whole = true;
    // A procedure that ended may have done what a notice asked: ask for them again.
    if (state.conversation && state.conversation.flow !== null && conversation.flow === null) showNotices();
    state.conversation = conversation;
    save(STORE.conversation, conversation.id);
    const here = `/chat?conversation=${encodeURIComponent(conversation.id)}`;
    if (window.location.pathname + window.location.search !== here) {
      window.history.replaceState(null, "", here); // a reload resumes this conversation
    }
    if (conversation.locale !== state.locale) applyLocale(conversation.locale);
    const drew = conversation.turn !== state.seq || whole;
    let earlier = null;
    if (drew) {
      const next = state.seq + (sent ? 2 : 1);
      const again = whole || (state.seq !== 0 && conversation.turn !== next);
      if (again) {
        earlier = await earlierLines(conversation);
        if (drawing !== state.drawing) return; // a newer draw took over meanwhile
        $("log").replaceChildren(...earlier.items);
      } else {
        retire();
      }
      state.seq = conversation.turn;
    }
    // No reply at all: a person of support owns the conversation and the assistant is quiet.
    if (drew && conversation.replies.length > 0) {
      const item = theirsElement(
        conversation.replies,
        earlier ? earlier.when : undefined,
        (reply) => replyElement(reply, conversation.turn),
      );
      $("log").append(item);
      const first = item.querySelector(".text");
      const typing = document.activeElement === $("message");
      if (first && (moveFocus || !typing)) {
        first.tabIndex = -1;
        first.focus({ preventScroll: true });
      }
      item.scrollIntoView({ block: "nearest" });
    }
    if (earlier) {
      // Support's answers came with the history: the open handoff's are drawn already.
      $("log").append(...earlier.after);
      state.answers = { conversation: conversation.id, shown: earlier.answered };
    }
    showAnswers(conversation);
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

  // Support's answers to a handoff, each once, as turns of their own in the log.
  function showAnswers(conversation) {
    if (state.answers.conversation !== conversation.id) state.answers = { conversation: conversation.id, shown: 0 };
    const answers = conversation.handoff ? conversation.handoff.answers : [];
    for (const answer of answers.slice(state.answers.shown)) {
      const item = supportElement(answer.text, new Date(answer.at));
      $("log").append(item);
      item.scrollIntoView({ block: "nearest" });
    }
    state.answers.shown = Math.max(state.answers.shown, answers.length);
  }

  function supportElement(words, when) {
    return wordsElement("theirs support", "speaker_support", words, when);
  }

  // ------------------------------------------------------------------ polling
  // While a procedure is under way the back end may move it on by itself (the issuer's
  // consent arrives, the first sync ends), and while support owns the conversation their
  // answers arrive: ask again every two seconds.
  function waiting() {
    return Boolean(state.conversation && (state.conversation.flow !== null || state.conversation.handoff));
  }
  function waitingOnIssuer() {
    const replies = state.conversation ? state.conversation.replies : [];
    return waiting() && replies.length > 0 && replies[replies.length - 1].link !== null;
  }

  function updateStatus() {
    const status = $("status");
    if (!status) return;
    const handedOff = Boolean(state.conversation && state.conversation.handoff);
    status.textContent = handedOff ? t("handoff_waiting") : waitingOnIssuer() ? t("waiting_issuer") : "";
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
      if (before === state.sent) await render(conversation);
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
