"""The page behind the filter: who Django takes the user to be."""
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.utils.html import format_html, format_html_join


@login_required  # settings.LOGIN_URL is the filter's sign-in path
def whoami(request):
    user = request.user
    groups = [g.name for g in user.groups.order_by("name")]
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse({"username": user.username, "email": user.email, "is_staff": user.is_staff,
                             "is_superuser": user.is_superuser, "groups": groups})
    return HttpResponse(format_html(
        "<!doctype html><title>Signed in</title><h1>Signed in as {}</h1><p>{}{}</p><ul>{}</ul>"
        '<p><a href="/admin/">Django admin</a> · <a href="/.auth/logout">Sign out</a></p>',
        user.username, user.email, " (staff)" if user.is_staff else "",
        format_html_join("", "<li>{}</li>", ((g,) for g in groups))))
