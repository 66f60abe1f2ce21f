// Runs first in <body>: marks the page as scripted so NHS.UK frontend's enhanced styles apply.
// An external file rather than the design system's inline snippet, so the page CSP can forbid
// inline scripts. Pages work the same without it.
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' nhsuk-frontend-supported' : '');
