// mosaicrec web page: the only script. Plain JavaScript, no dependencies, no build step.
// 1. Like / dislike: post the form with fetch and swap in the refreshed history and
//    recommendations the server renders (without script, the form posts and redirects).
// 2. The collection switcher in the header.
"use strict";

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.classList || !form.classList.contains("feedback")) return;
  event.preventDefault();
  const body = new URLSearchParams(new FormData(form));
  if (event.submitter && event.submitter.name) body.set(event.submitter.name, event.submitter.value);
  const lists = document.getElementById("user-lists");
  form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
  lists.setAttribute("aria-busy", "true");
  try {
    const response = await fetch(form.action, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    });
    if (response.status === 401) { window.location.reload(); return; }
    const html = await response.text();
    if (!response.ok) throw new Error(html);
    lists.innerHTML = html;
    lists.dataset.updated = String(Date.now());
  } catch (err) {
    const note = document.createElement("p");
    note.className = "error";
    note.textContent = "Could not record that: " + (err.message || err).replace(/<[^>]*>/g, "");
    form.replaceWith(note);
  } finally {
    lists.removeAttribute("aria-busy");
  }
});

document.addEventListener("change", (event) => {
  const select = event.target;
  if (select.classList && select.classList.contains("switch") && select.value) {
    window.location.href = select.value;
  }
});
