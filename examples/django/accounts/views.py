# accounts/views.py  (urls.py: path("entra/sync", views.entra_user_sync))
import hmac, json

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import User

FLAG_FIELDS = {"is_staff", "is_superuser", "is_active"}

@csrf_exempt  # called by the proxy with a bearer secret, never by a browser
@require_POST
def entra_user_sync(request):
    secret = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not hmac.compare_digest(secret.encode(), settings.ENTRA_USER_SYNC_SECRET.encode()):
        return JsonResponse({"error": "invalid_token"}, status=401)
    try:
        body = json.loads(request.body)
        tenant_id, object_id = body["tenant_id"], body["object_id"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "invalid_request"}, status=400)
    if tenant_id not in settings.ENTRA_ALLOWED_TENANTS:
        return JsonResponse({"error": "forbidden"}, status=403)  # the user sees a 403 page

    fields = {
        "username": (body.get("username") or object_id)[:150],
        "email": body.get("email", ""),
        "first_name": body.get("given_name", "")[:150],
        "last_name": body.get("family_name", "")[:150],
        "last_login": timezone.now(),
    }
    fields |= {k: bool(v) for k, v in body.get("flags", {}).items() if k in FLAG_FIELDS}
    with transaction.atomic():
        user, _ = User.objects.update_or_create(
            entra_tenant_id=tenant_id, entra_object_id=object_id, defaults=fields)
        groups = [Group.objects.get_or_create(name=g)[0] for g in body.get("groups", [])]
        if body.get("mirror_groups", True):
            user.groups.set(groups)   # Entra's list is complete: replace
        else:
            user.groups.add(*groups)
    return JsonResponse({"user_id": str(user.pk)})

