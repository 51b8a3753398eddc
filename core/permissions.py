"""Permission classes shared by the apps' APIs."""

from rest_framework.permissions import BasePermission


class IsStaff(BasePermission):
    """Staff users only (token or session). Anonymous → 401 NOT_AUTHENTICATED,
    authenticated non-staff → 403 PERMISSION_DENIED."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


class IsStaffOrReadOnly(IsStaff):
    """Anyone may read; only staff may write."""

    def has_permission(self, request, view) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().has_permission(request, view)
