from django.contrib import admin
from django.urls import path

from accounts import pages, views

urlpatterns = [
    path("", pages.whoami, name="whoami"),
    path("entra/sync", views.entra_user_sync, name="entra-user-sync"),
    path("admin/", admin.site.urls),
]
