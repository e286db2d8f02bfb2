// brisk storefront: the little JavaScript the server-rendered pages need.
// The session (a JWT for the same-origin REST API) lives in localStorage;
// the page's Content-Security-Policy allows no inline script.
"use strict";
(() => {
  const SESSION = "brisk.session", CART = "brisk.cart", CHECKOUT_KEY = "brisk.checkout";
  const $ = (sel, root = document) => root.querySelector(sel);

  // el builds an element; children are nodes or text (never parsed as HTML).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c != null) e.append(c);
    return e;
  }

  const money = (m) => new Intl.NumberFormat("en-US", { style: "currency", currency: m.currency || "USD" }).format(m.amount / 100);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  // ---- session and API -------------------------------------------------

  function session() {
    try {
      const s = JSON.parse(localStorage.getItem(SESSION));
      if (s && s.token && new Date(s.expires_at) > new Date()) return s;
    } catch (_) { /* no or bad session */ }
    return null;
  }
  function saveSession(s) {
    const u = s.user || {};
    localStorage.setItem(SESSION, JSON.stringify({ token: s.token, expires_at: s.expires_at, user: { id: u.id, email: u.email, name: u.name, role: u.role } }));
    localStorage.removeItem(CART);
  }
  function signOut() {
    localStorage.removeItem(SESSION);
    localStorage.removeItem(CART);
    sessionStorage.removeItem(CHECKOUT_KEY);
  }
  function toLogin() {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }
  function requireLogin() {
    if (session()) return true;
    toLogin();
    return false;
  }

  // api calls the REST API; a network failure throws, an HTTP error does not.
  async function api(method, path, body, headers) {
    const s = session();
    const h = Object.assign({ Accept: "application/json" }, headers);
    if (s) h.Authorization = "Bearer " + s.token;
    if (body !== undefined) h["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (res.status === 401 && s) {
      signOut();
      toLogin();
    }
    return { status: res.status, ok: res.ok, data, headers: res.headers };
  }
  const problem = (r) => (r && r.data && (r.data.detail || r.data.title)) || "The request failed (" + (r ? r.status : "network error") + ").";

  function flash(msg, bad) {
    const f = $("#flash");
    if (!f) return;
    f.classList.toggle("bad", !!bad);
    f.textContent = msg;
  }

  // ---- cart count in the header ---------------------------------------

  function cartCache() {
    try { return JSON.parse(localStorage.getItem(CART)); } catch (_) { return null; }
  }
  function rememberCart(cart) {
    const items = {};
    for (const l of cart.items || []) items[l.product_id] = l.quantity;
    localStorage.setItem(CART, JSON.stringify({ items, count: cart.item_count || 0 }));
    showCount();
  }
  function showCount() {
    const c = cartCache();
    const n = c ? c.count : 0;
    const b = $("#cart-count");
    if (b) {
      b.textContent = String(n);
      b.setAttribute("aria-label", n + (n === 1 ? " item" : " items") + " in cart");
    }
  }

  function header() {
    const s = session();
    for (const e of document.querySelectorAll("[data-auth]")) {
      const want = e.dataset.auth;
      e.hidden = want === "in" ? !s : want === "out" ? !!s : !(s && s.user.role === "admin");
    }
    const out = $("#signout");
    if (out) {
      if (s) out.textContent = "Sign out (" + (s.user.name || s.user.email) + ")";
      out.addEventListener("click", () => { signOut(); location.assign("/"); });
    }
    showCount();
  }

  // ---- adding to the cart ---------------------------------------------

  async function addToCart(id, qty, exact) {
    if (!requireLogin()) return false;
    let cache = cartCache();
    if (!cache) {
      const r = await api("GET", "/v1/cart");
      if (r.ok) { rememberCart(r.data); cache = cartCache(); }
    }
    const have = (cache && cache.items[id]) || 0;
    const q = Math.min(99, exact ? qty : have + qty);
    const r = await api("PUT", "/v1/cart/items/" + id, { quantity: q });
    if (!r.ok) {
      flash(problem(r), true);
      return false;
    }
    rememberCart(r.data);
    const line = (r.data.items || []).find((l) => l.product_id === Number(id));
    flash("Added " + (line ? line.name : "the product") + " to your cart (" + q + " in cart).");
    return true;
  }

  function wireAdd() {
    document.addEventListener("click", async (ev) => {
      const b = ev.target.closest("button.add");
      if (!b || b.disabled) return;
      b.disabled = true;
      try { await addToCart(b.dataset.product, 1, false); } finally { b.disabled = false; }
    });
    const form = $("#add-form");
    if (form) {
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const btn = $("button", form);
        btn.disabled = true;
        try { await addToCart(form.dataset.product, Number($("#qty").value) || 1, false); } finally { btn.disabled = false; }
      });
    }
  }

  // ---- cart page -------------------------------------------------------

  async function cartPage() {
    if (!requireLogin()) return;
    const box = $("#cart");
    const r = await api("GET", "/v1/cart");
    box.removeAttribute("aria-busy");
    if (!r.ok) { box.replaceChildren(el("p", { class: "alert-bad" }, problem(r))); return; }
    rememberCart(r.data);
    renderCart(box, r.data);
  }

  function renderCart(box, cart) {
    if (!cart.items.length) {
      box.replaceChildren(el("p", { class: "empty" }, "Your cart is empty. ", el("a", { href: "/" }, "Start shopping"), "."));
      return;
    }
    const update = async (id, q) => {
      const r = q > 0 ? await api("PUT", "/v1/cart/items/" + id, { quantity: q }) : await api("DELETE", "/v1/cart/items/" + id);
      if (!r.ok) { flash(problem(r), true); return; }
      rememberCart(r.data);
      renderCart(box, r.data);
      flash(q > 0 ? "Cart updated." : "Removed from your cart.");
    };
    const rows = cart.items.map((l) => el("tr", {},
      el("td", {}, el("a", { href: "/p/" + l.product_id }, l.name)),
      el("td", { class: "num" }, money(l.unit_price)),
      el("td", { class: "num" },
        el("label", { class: "vh", for: "q" + l.product_id }, "Quantity of " + l.name),
        el("input", { id: "q" + l.product_id, type: "number", min: 1, max: 99, value: l.quantity, inputmode: "numeric",
          onchange: (e) => { const q = Math.max(1, Math.min(99, Number(e.target.value) || 1)); update(l.product_id, q); } })),
      el("td", { class: "num" }, money(l.line_total)),
      el("td", {}, el("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": "Remove " + l.name, onclick: () => update(l.product_id, 0) }, "Remove"))));
    box.replaceChildren(
      el("div", { class: "scroll" }, el("table", { class: "data" },
        el("caption", { class: "vh" }, "Products in your cart"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Product"), el("th", { scope: "col", class: "num" }, "Price"),
          el("th", { scope: "col", class: "num" }, "Quantity"), el("th", { scope: "col", class: "num" }, "Total"), el("th", { scope: "col" }, el("span", { class: "vh" }, "Remove")))),
        el("tbody", {}, rows),
        el("tfoot", {}, el("tr", {}, el("td", { colspan: 3 }, cart.item_count + " items"), el("td", { class: "num", id: "cart-total" }, money(cart.total)), el("td", {}))))),
      el("div", { class: "actions" }, el("a", { href: "/", class: "btn btn-ghost" }, "Continue shopping"), el("a", { href: "/checkout", class: "btn", id: "to-checkout" }, "Checkout")));
  }

  // ---- checkout --------------------------------------------------------

  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  }

  // checkoutKey returns the Idempotency-Key of this checkout: the same one
  // for every retry of the same cart and card (also across a reload), a new
  // one when the cart or card changes.
  function checkoutKey(fp) {
    let k = null;
    try { k = JSON.parse(sessionStorage.getItem(CHECKOUT_KEY)); } catch (_) { k = null; }
    if (!k || k.fp !== fp) {
      k = { fp, key: newKey() };
      sessionStorage.setItem(CHECKOUT_KEY, JSON.stringify(k));
    }
    return k.key;
  }

  async function checkoutPage() {
    if (!requireLogin()) return;
    const box = $("#summary"), form = $("#checkout-form"), msg = $("#checkout-msg"), btn = $("#place");
    const r = await api("GET", "/v1/cart");
    box.removeAttribute("aria-busy");
    if (!r.ok) { box.replaceChildren(el("p", { class: "alert-bad" }, problem(r))); return; }
    const cart = r.data;
    rememberCart(cart);
    if (!cart.items.length) {
      box.replaceChildren(el("p", { class: "empty" }, "Your cart is empty. ", el("a", { href: "/" }, "Start shopping"), "."));
      return;
    }
    box.replaceChildren(
      el("div", { class: "scroll" }, el("table", { class: "data" },
        el("caption", { class: "vh" }, "Order summary"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Product"), el("th", { scope: "col", class: "num" }, "Quantity"), el("th", { scope: "col", class: "num" }, "Total"))),
        el("tbody", {}, cart.items.map((l) => el("tr", {}, el("td", {}, l.name), el("td", { class: "num" }, String(l.quantity)), el("td", { class: "num" }, money(l.line_total))))))),
      el("p", { class: "summary-total" }, "Total ", el("span", { id: "order-total" }, money(cart.total))));
    form.hidden = false;

    let busy = false;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (busy) return; // a double click sends one request; a retry reuses the key anyway
      busy = true;
      btn.disabled = true;
      btn.textContent = "Placing order…";
      msg.replaceChildren();
      const token = $("#card").value;
      const fp = [session().user.id, token, cart.items.map((l) => l.product_id + "x" + l.quantity).join(",")].join("|");
      const key = checkoutKey(fp);
      const done = await placeOrder(key, token, msg);
      if (!done) {
        busy = false;
        btn.disabled = false;
        btn.textContent = "Place order";
      }
    });
  }

  // placeOrder posts the checkout, retrying with the same Idempotency-Key
  // while the outcome is unknown (network error, 5xx, 429, request still in
  // flight): the server answers a retry with the first request's result.
  async function placeOrder(key, token, msg) {
    const delays = [300, 600, 1200, 2400, 4800];
    for (let attempt = 0; ; attempt++) {
      let r = null;
      try {
        r = await api("POST", "/v1/checkout", { payment_token: token }, { "Idempotency-Key": key });
      } catch (_) {
        r = null; // network error: the order may or may not exist; retry with the same key
      }
      if (r && r.status === 201) {
        sessionStorage.removeItem(CHECKOUT_KEY);
        localStorage.setItem(CART, JSON.stringify({ items: {}, count: 0 }));
        location.assign("/orders/" + encodeURIComponent(r.data.id) + "?placed=1");
        return true;
      }
      const retryable = !r || r.status >= 500 || r.status === 429 ||
        (r.status === 409 && r.data && r.data.type === "/problems/request-in-flight");
      if (!retryable || attempt >= delays.length) {
        if (r && !retryable) sessionStorage.removeItem(CHECKOUT_KEY); // final answer: a new attempt is a new request
        const order = r && r.data && r.data.order_id;
        msg.replaceChildren(el("p", { class: "alert-bad" }, problem(r) + " ",
          order ? el("a", { href: "/orders/" + encodeURIComponent(order) }, "See the order.") : null));
        msg.setAttribute("tabindex", "-1");
        msg.focus();
        return false;
      }
      const ra = r && Number(r.headers.get("Retry-After"));
      const wait = ra > 0 ? ra * 1000 : delays[attempt] * (0.5 + Math.random());
      msg.replaceChildren(el("p", { class: "muted" }, "Still working on your order…"));
      await sleep(Math.min(wait, 10000));
    }
  }

  // ---- orders ------------------------------------------------------------

  const statusBadge = (s) => el("span", { class: "status status-" + s }, s);
  const when = (t) => new Date(t).toLocaleString("en-US", { dateStyle: "medium", timeStyle: "short" });

  async function ordersPage() {
    if (!requireLogin()) return;
    const box = $("#orders"), more = $("#more");
    let cursor = "", table = null;
    const load = async () => {
      const r = await api("GET", "/v1/orders?limit=20" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      box.removeAttribute("aria-busy");
      if (!r.ok) { box.replaceChildren(el("p", { class: "alert-bad" }, problem(r))); return; }
      if (!table) {
        if (!r.data.items.length) {
          box.replaceChildren(el("p", { class: "empty" }, "No orders yet. ", el("a", { href: "/" }, "Start shopping"), "."));
          return;
        }
        table = el("tbody", {});
        box.replaceChildren(el("div", { class: "scroll" }, el("table", { class: "data", id: "orders-table" },
          el("caption", { class: "vh" }, "Your orders, newest first"),
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Order"), el("th", { scope: "col" }, "Placed"),
            el("th", { scope: "col", class: "num" }, "Items"), el("th", { scope: "col", class: "num" }, "Total"), el("th", { scope: "col" }, "Status"))),
          table)));
      }
      for (const o of r.data.items) {
        table.append(el("tr", { "data-order": o.id },
          el("td", {}, el("a", { href: "/orders/" + encodeURIComponent(o.id) }, "#" + o.id.slice(-8))),
          el("td", {}, when(o.created_at)),
          el("td", { class: "num" }, String(o.items.reduce((n, l) => n + l.quantity, 0))),
          el("td", { class: "num" }, money(o.total)),
          el("td", {}, statusBadge(o.status))));
      }
      cursor = r.data.next_cursor || "";
      more.hidden = !cursor;
    };
    more.addEventListener("click", load);
    await load();
  }

  async function orderPage() {
    if (!requireLogin()) return;
    const box = $("#order");
    const id = decodeURIComponent(location.pathname.split("/").pop());
    const r = await api("GET", "/v1/orders/" + encodeURIComponent(id));
    box.removeAttribute("aria-busy");
    if (!r.ok) { box.replaceChildren(el("h1", {}, "Order"), el("p", { class: "alert-bad" }, problem(r))); return; }
    const o = r.data;
    if (new URLSearchParams(location.search).get("placed") && o.status !== "failed") flash("Thank you! Your order is placed.");
    box.replaceChildren(...[
      el("h1", {}, "Order #" + o.id.slice(-8), " ", statusBadge(o.status)),
      el("p", { class: "muted" }, "Placed " + when(o.created_at) + " · order id " + o.id),
      o.failure_reason ? el("p", { class: "alert-bad" }, "Payment failed: " + o.failure_reason) : null,
      el("div", { class: "scroll" }, el("table", { class: "data" },
        el("caption", { class: "vh" }, "Products in this order"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Product"), el("th", { scope: "col", class: "num" }, "Price"), el("th", { scope: "col", class: "num" }, "Quantity"))),
        el("tbody", {}, o.items.map((l) => el("tr", {}, el("td", {}, el("a", { href: "/p/" + l.product_id }, l.name)), el("td", { class: "num" }, money(l.unit_price)), el("td", { class: "num" }, String(l.quantity))))),
        el("tfoot", {}, el("tr", {}, el("td", { colspan: 2 }, "Total"), el("td", { class: "num" }, money(o.total))))))].filter(Boolean));
  }

  // ---- sign in and register -------------------------------------------

  function safeNext() {
    const n = new URLSearchParams(location.search).get("next") || "/";
    return n.startsWith("/") && !n.startsWith("//") && !n.startsWith("/\\") ? n : "/";
  }

  function authPage() {
    const form = $("#auth-form"), msg = $("#auth-msg");
    const alt = $("#alt-link");
    if (alt && safeNext() !== "/") alt.href += "?next=" + encodeURIComponent(safeNext());
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const btn = $("button[type=submit]", form);
      const body = { email: form.email.value.trim(), password: form.password.value };
      if (form.name && form.name.value.trim()) body.name = form.name.value.trim();
      if (!body.email || !body.password) { msg.textContent = "Enter your email and password."; return; }
      btn.disabled = true;
      msg.textContent = "";
      try {
        const r = await api("POST", "/v1/auth/" + form.dataset.action, body);
        if (r.ok) {
          saveSession(r.data);
          location.assign(safeNext());
          return;
        }
        msg.textContent = problem(r);
      } catch (_) {
        msg.textContent = "The shop cannot be reached. Check your connection and try again.";
      }
      btn.disabled = false;
    });
  }

  // ---- start -------------------------------------------------------------

  const pages = { cart: cartPage, checkout: checkoutPage, orders: ordersPage, order: orderPage, login: authPage, register: authPage };

  function start() {
    header();
    wireAdd();
    const p = pages[document.body.dataset.page];
    if (p) p();
    if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => { /* no offline cache */ });
  }
  window.brisk = { api, session, el, money, problem };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
