"""Settings of the reference Django project behind entra-auth.

Everything that differs between machines comes from the environment:

  DJANGO_SECRET_KEY        Django's own secret (a random one per start when unset: fine
                           here, since the project keeps no sessions of its own)
  DJANGO_DB                the SQLite database file (default: db.sqlite3 beside manage.py)
  DJANGO_ALLOWED_HOSTS     host names served, comma-separated (default: 127.0.0.1,localhost)
  USER_SYNC_SECRET         the bearer secret the proxy's user-sync call carries
  ENTRA_ALLOWED_TENANTS    tenant ids whose users may be synced, comma-separated
  ENTRA_UPSTREAM_SECRETS   the secrets the filter's x-auth-request-signature may be made
                           with, comma-separated (more than one while rotating)
"""
import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _list(name, default=""):
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(50)
DEBUG = False
ALLOWED_HOSTS = _list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After AuthenticationMiddleware: checks the filter's signature, then sets
    # request.user from x-auth-request-user-id.
    "accounts.middleware.EntraIdentityMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "entrasite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "entrasite.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB") or str(BASE_DIR / "db.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EntraUserIdBackend"]

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"

# The proxy's user-sync call (accounts.views.entra_user_sync).
ENTRA_USER_SYNC_SECRET = os.environ.get("USER_SYNC_SECRET", "")
ENTRA_ALLOWED_TENANTS = _list("ENTRA_ALLOWED_TENANTS")
ENTRA_USER_SYNC_PATH = "/entra/sync"

# The filter's signature (accounts.middleware): required on every request but the
# user-sync call, which the proxy makes itself, with its bearer secret.
ENTRA_UPSTREAM_SECRETS = [s.encode() for s in _list("ENTRA_UPSTREAM_SECRETS")]
ENTRA_SIGNATURE_MAX_SKEW = 30  # seconds, either way
ENTRA_SIGNATURE_EXEMPT_PATHS = [ENTRA_USER_SYNC_PATH]

# Django's own sign-in page is the filter's.
LOGIN_URL = "/.auth/login"
