"""The user the filter vouches for, by the id the user-sync endpoint gave it."""
from django.contrib.auth.backends import BaseBackend

from .models import User


class EntraUserIdBackend(BaseBackend):
    """Finds a user by primary key: the x-auth-request-user-id the filter sets, which is
    the user_id accounts.views.entra_user_sync answered. No passwords."""

    def authenticate(self, request, entra_user_id=None):
        return self.get_user(entra_user_id)

    def get_user(self, user_id):
        try:
            user = User.objects.get(pk=int(user_id))
        except (User.DoesNotExist, TypeError, ValueError):
            return None
        return user if user.is_active else None
