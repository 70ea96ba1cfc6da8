"""The Content-Security-Policy header, from `settings.CONTENT_SECURITY_POLICY` (docs/security.md)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

HEADER = "Content-Security-Policy"


def policy_header(policy: dict[str, list[str]]) -> str:
    """Return a policy as the header value: `directive source source; ...`."""
    return "; ".join(" ".join([directive, *sources]) for directive, sources in policy.items())


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Send the project's policy with every response that does not carry one of its own."""

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if HEADER not in response:
            response[HEADER] = policy_header(settings.CONTENT_SECURITY_POLICY)
        return response
