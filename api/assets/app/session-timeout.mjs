// The timeout warning. A session ends after 15 minutes without activity; a couple of minutes
// before, a modal dialog (role="alertdialog", focused) says so and offers "Stay signed in", a
// real request (POST /session/renew) that starts the idle time again, or "Sign out". When the
// time runs out it says so and leaves the page as it is: a form sent then is kept while its
// author signs in again (api/src/web/kept_form.rs), so nothing is lost by staying.
//
// The page says how long its session has (data-ends-in, seconds from when the page was made),
// so a wrong clock in the browser does not matter. Other tabs of the site renew the same
// session: the latest end any of them knows is shared in localStorage, so that one tab does not
// warn of an end that another has already pushed back.

const SHARED_END = 'catalogue-session-ends-at';
const dialog = document.getElementById('session-timeout');
if (dialog && typeof dialog.showModal === 'function') watch(dialog);

function watch(dialog) {
  const warnBefore = Number(dialog.dataset.warnBefore) * 1000;
  const form = dialog.querySelector('form');
  const countdown = dialog.querySelector('[data-countdown]');
  const warning = dialog.querySelector('[data-warning]');
  const ended = dialog.querySelector('[data-ended]');
  let endsAt = Date.now() + Number(dialog.dataset.endsIn) * 1000;
  let timer;
  let ticker;
  share(endsAt);
  schedule();

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(warn, Math.max(0, endsAt - warnBefore - Date.now()));
  }

  /** Whether another tab has renewed the session since: then wait for its end instead. */
  function renewedElsewhere() {
    const later = shared();
    if (later <= endsAt + 1000) return false;
    endsAt = later;
    close();
    schedule();
    return true;
  }

  function warn() {
    if (renewedElsewhere()) return;
    warning.hidden = false;
    ended.hidden = true;
    label('session-timeout-heading', 'session-timeout-message');
    update();
    if (!dialog.open) dialog.showModal();
    dialog.focus();
    clearInterval(ticker);
    ticker = setInterval(update, 1000);
  }

  function update() {
    const left = Math.ceil((endsAt - Date.now()) / 1000);
    if (left > 0) {
      countdown.textContent = words(left);
    } else if (!renewedElsewhere()) {
      showEnded();
    }
  }

  function showEnded() {
    clearInterval(ticker);
    warning.hidden = true;
    ended.hidden = false;
    label('session-ended-heading', 'session-ended-message');
    if (!dialog.open) dialog.showModal();
    dialog.focus();
  }

  function close() {
    clearInterval(ticker);
    if (dialog.open) dialog.close();
  }

  function label(heading, message) {
    dialog.setAttribute('aria-labelledby', heading);
    dialog.setAttribute('aria-describedby', message);
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    form.elements.namedItem('next').value = location.pathname + location.search;
    try {
      const response = await fetch(form.action, {
        method: 'POST',
        body: new URLSearchParams(new FormData(form)),
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
        // An ended session is answered with a redirect to sign in: not followed, it is a failure.
        redirect: 'manual',
      });
      if (!response.ok) throw new Error(`renewal answered ${response.status}`);
      const renewed = await response.json();
      endsAt = Date.now() + Number(renewed.expires_in) * 1000;
      share(endsAt);
      close();
      schedule();
    } catch {
      showEnded();
    }
  });

  // Escape means "stay", as in the GOV.UK pattern; once signed out it closes the dialog.
  dialog.addEventListener('cancel', (event) => {
    if (!warning.hidden) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  dialog.querySelector('[data-continue]').addEventListener('click', close);
}

function share(at) {
  try {
    if (at > shared()) localStorage.setItem(SHARED_END, String(at));
  } catch {
    // Storage refused (a private window's settings): each tab keeps its own time.
  }
}

function shared() {
  try {
    return Number(localStorage.getItem(SHARED_END)) || 0;
  } catch {
    return 0;
  }
}

function words(seconds) {
  if (seconds >= 60) {
    const minutes = Math.ceil(seconds / 60);
    return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  }
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}
