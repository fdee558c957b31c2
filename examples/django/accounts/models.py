# accounts/models.py  (settings.AUTH_USER_MODEL = "accounts.User")
from django.contrib.auth.models import AbstractUser
from django.db import models

class User(AbstractUser):
    entra_tenant_id = models.CharField(max_length=64, blank=True)
    entra_object_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["entra_tenant_id", "entra_object_id"], name="one_user_per_entra_identity",
            condition=~models.Q(entra_object_id=""))]
