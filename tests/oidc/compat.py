"""Authlib's httpx OAuth2 client, imported in one place.

Authlib 1.9 prefers the ``httpx2`` package and, when only ``httpx`` is installed (as in this
project), warns once at import: "The httpx module is deprecated; please use httpx2 instead."
That fallback is Authlib's documented behaviour, not a deprecated API of ours, so the warning is
ignored here, for that one import only. (``authlib.deprecate`` installs an "always" filter when
first imported, which would win over ours: import it first.)
"""

import warnings

import authlib.deprecate  # noqa: F401  (see above)

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="The httpx module is deprecated", category=DeprecationWarning
    )
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

__all__ = ["AsyncOAuth2Client", "OAuthError"]
