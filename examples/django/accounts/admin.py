from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import User


@admin.register(User)
class EntraUserAdmin(UserAdmin):
    list_display = ("username", "email", "is_staff", "is_superuser", "entra_tenant_id", "entra_object_id", "last_login")
    fieldsets = UserAdmin.fieldsets + (("Entra ID", {"fields": ("entra_tenant_id", "entra_object_id")}),)
