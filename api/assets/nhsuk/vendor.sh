#!/usr/bin/env bash
# Re-vendors NHS.UK frontend from npm into this folder: the compiled CSS and JS and the few images
# the CSS refers to, at the pinned version. The binary carries these files (see api/src/web/assets.rs).
#
# Two changes are made to the CSS, both by this script:
# - the @font-face rules are removed: they load the Frutiger font from assets.nhs.uk, which the
#   catalogue must not depend on (no internet; the page CSP allows fonts from 'self' only) and
#   whose licence does not allow redistribution. The design system's fallback, Arial, is used.
# - image URLs /assets/images/... become images/..., relative to the CSS, so they resolve under
#   the versioned asset path that the binary serves.
set -euo pipefail
VERSION=10.6.1
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "nhsuk-frontend@$VERSION" >/dev/null && tar xzf "nhsuk-frontend-$VERSION.tgz")
dist="$work/package/dist/nhsuk"
python3 - "$dist/nhsuk-frontend-$VERSION.min.css" "$here/nhsuk-frontend.min.css" <<'PY'
import re, sys
css = open(sys.argv[1], encoding="utf-8").read()
css = re.sub(r"@font-face\{[^}]*\}", "", css)
css = css.replace("url(/assets/images/", "url(images/")
assert "assets.nhs.uk" not in css
open(sys.argv[2], "w", encoding="utf-8").write(css)
PY
# The source map comment would make browsers ask for a file that is not carried.
sed 's|//# sourceMappingURL=.*$||' "$dist/nhsuk-frontend-$VERSION.min.js" > "$here/nhsuk-frontend.min.js"
mkdir -p "$here/images"
for image in favicon.ico favicon.svg nhsuk-icon-arrow-down.svg nhsuk-icon-arrow-up-down.svg nhsuk-icon-arrow-up.svg nhsuk-icon-cross.svg; do
    cp "$dist/assets/images/$image" "$here/images/$image"
done
grep -o 'url(images/[^)]*)' "$here/nhsuk-frontend.min.css" | sort -u | sed 's/url(\(.*\))/\1/' | while read -r used; do
    [ -f "$here/$used" ] || { echo "the CSS refers to $used, which is not vendored" >&2; exit 1; }
done
echo "$VERSION" > "$here/VERSION"
