"""Takes the user from the filter's identity headers, once their signature is checked.

Every request but the user-sync call (which the proxy makes itself, with its bearer
secret) must carry a valid x-auth-request-signature (accounts.signature): a request that
reached Django without the proxy, or with an identity header the proxy did not sign, is
refused with 403 before any view runs. Then x-auth-request-user-id, the id the user-sync
endpoint answered, names request.user; without it (a skip_paths request) the user is
anonymous."""
import logging

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponseForbidden

from .signature import SignatureError, verify

log = logging.getLogger(__name__)


class EntraIdentityMiddleware:
    def __init__(self, get_response):
        if not settings.ENTRA_UPSTREAM_SECRETS:
            raise ImproperlyConfigured(
                "ENTRA_UPSTREAM_SECRETS is empty: give the secret of the filter's upstream_signature "
                "(without it, anyone who reaches Django directly could claim any identity)")
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in settings.ENTRA_SIGNATURE_EXEMPT_PATHS:
            return self.get_response(request)
        meta = request.META
        # The request target as it arrived: servers that keep it say so (gunicorn's
        # RAW_URI, others' REQUEST_URI); Django's runserver does not, and the path
        # rebuilt from PATH_INFO is the same for the paths the filter lets through.
        target = meta.get("RAW_URI") or meta.get("REQUEST_URI") or request.get_full_path()
        try:
            verify(meta, request.method, meta.get("HTTP_HOST", ""), target,
                   settings.ENTRA_UPSTREAM_SECRETS, settings.ENTRA_SIGNATURE_MAX_SKEW)
        except SignatureError as err:
            log.warning("refused %s %s: %s", request.method, request.path_info.encode("unicode_escape").decode(), err)
            return HttpResponseForbidden("This request did not come through the sign-in proxy.\n",
                                         content_type="text/plain")
        user_id = meta.get("HTTP_X_AUTH_REQUEST_USER_ID")
        user = auth.authenticate(request, entra_user_id=user_id) if user_id else None
        request.user = user or AnonymousUser()
        return self.get_response(request)
